-- 0006_workers: the registry of worker nodes (store.Workers).
--
-- A handful of rows (one per process running the job engine), read and
-- written every few seconds: no index beyond the primary key.
CREATE TABLE switchyard.workers (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL,
    all_tenants  boolean NOT NULL DEFAULT false,
    queues       text[] NOT NULL DEFAULT '{}',
    all_queues   boolean NOT NULL DEFAULT false,
    hostname     text NOT NULL DEFAULT '',
    pid          integer NOT NULL DEFAULT 0,
    timeout_us   bigint NOT NULL DEFAULT 0, -- silence after which it is offline
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    offline_at   timestamptz -- NULL while online
);
