-- 0004_access: tenants' settings, users, memberships, refresh tokens, the
-- audit log, shared rate-limit buckets and instance secrets (store.Access).
--
-- There are no foreign keys, as in the SQLite schema (which could not
-- enforce them on every connection): both drivers must behave alike, so the
-- store checks references itself where the contract asks for it.

-- The tenants table and its 'default' row (named 'Default') date from 0001;
-- a tenant now also carries its rate limit (0: the server's default).
ALTER TABLE switchyard.tenants
    ADD COLUMN rate_limit double precision NOT NULL DEFAULT 0,
    ADD COLUMN rate_burst integer NOT NULL DEFAULT 0;

-- GetAPIKey and ListAPIKeys are scoped to a tenant.
CREATE INDEX api_keys_tenant ON switchyard.api_keys (tenant_id, id);

CREATE TABLE switchyard.users (
    id             text PRIMARY KEY,
    email          text NOT NULL UNIQUE, -- lower-cased by the caller
    password_hash  text NOT NULL,
    instance_admin boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE switchyard.memberships (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    role       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- UserMemberships: a user's tenants, in tenant order.
CREATE INDEX memberships_user ON switchyard.memberships (user_id, tenant_id);

CREATE TABLE switchyard.refresh_tokens (
    id         text PRIMARY KEY,
    hash       bytea NOT NULL UNIQUE,
    family_id  text NOT NULL,
    user_id    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);

-- Revoking a family (logout, reuse) and checking whether one is active.
CREATE INDEX refresh_tokens_family ON switchyard.refresh_tokens (family_id);
-- A password change revokes every token of the user.
CREATE INDEX refresh_tokens_user ON switchyard.refresh_tokens (user_id);

CREATE TABLE switchyard.audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    tenant_id  text NOT NULL, -- '' for instance-level events
    actor_type text NOT NULL,
    actor_id   text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    result     text NOT NULL,
    status     integer NOT NULL,
    client_ip  text NOT NULL,
    request_id text NOT NULL,
    detail     text NOT NULL
);

-- ListAudit of one tenant walks this backwards from its cursor; a listing
-- over every tenant walks the primary key.
-- The retention sweep walks the primary key from the oldest: entries are
-- appended in time order, so no index on at is kept up for it.
CREATE INDEX audit_log_tenant ON switchyard.audit_log (tenant_id, id);

-- taken is what the last TakeTokens took: the upsert that updates a bucket
-- returns it, because RETURNING only sees the new row, from which the
-- number taken cannot be told apart from the tokens left.
CREATE TABLE switchyard.rate_buckets (
    key        text PRIMARY KEY,
    tokens     double precision NOT NULL,
    taken      integer NOT NULL,
    updated_at timestamptz NOT NULL
) WITH (
    -- Every request updates a bucket; room on the page keeps those updates
    -- HOT (the key never changes), so they write no index entries.
    fillfactor = 70
);

CREATE TABLE switchyard.instance_secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
