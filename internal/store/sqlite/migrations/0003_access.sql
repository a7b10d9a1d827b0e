-- 0003_access: tenants' settings, users, memberships, refresh tokens, the
-- audit log, shared rate-limit buckets and instance secrets (store.Access).
--
-- Times are INTEGER unix microseconds, UTC, as in 0001. There are no
-- foreign keys: SQLite only enforces them on connections that turn them on,
-- and the drivers must behave alike, so the store checks references itself
-- where the contract asks for it.

-- The tenants table and its 'default' row date from 0001; a tenant now also
-- carries its rate limit (0: the server's default).
ALTER TABLE tenants ADD COLUMN rate_limit REAL NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN rate_burst INTEGER NOT NULL DEFAULT 0;

-- The PostgreSQL schema names the default tenant 'Default'; so does this one
-- from now on, unless someone renamed it already.
INSERT INTO tenants (id, name, created_at)
VALUES ('default', 'Default', CAST(unixepoch('subsec') * 1000000 AS INTEGER))
ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE tenants.name = 'default';

-- GetAPIKey and ListAPIKeys are scoped to a tenant.
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE, -- lower-cased by the caller
    password_hash  TEXT    NOT NULL,
    instance_admin INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    tenant_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT, WITHOUT ROWID;

-- UserMemberships: a user's tenants, in tenant order.
CREATE INDEX memberships_user ON memberships (user_id, tenant_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    family_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;

-- Revoking a family (logout, reuse) and checking whether one is active.
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- A password change revokes every token of the user.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- AUTOINCREMENT so that ids are never reused after retention deletes the
-- newest rows: ids are ListAudit's cursor.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY, -- rowid order: entries are appended in time order
    at         INTEGER NOT NULL,
    tenant_id  TEXT    NOT NULL, -- '' for instance-level events
    actor_type TEXT    NOT NULL,
    actor_id   TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    result     TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    client_ip  TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    detail     TEXT    NOT NULL
) STRICT;

-- ListAudit of one tenant walks this backwards from its cursor; a listing
-- over every tenant walks the primary key.
-- The retention sweep walks the primary key from the oldest: entries are
-- appended in time order, so no index on at is kept up for it.
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

CREATE TABLE rate_buckets (
    key        TEXT PRIMARY KEY,
    tokens     REAL    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE instance_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
