-- 0003_server: per-queue concurrency and API keys.

ALTER TABLE switchyard.queues ADD COLUMN concurrency integer NOT NULL DEFAULT 0;

CREATE TABLE switchyard.api_keys (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL,
    prefix       text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
