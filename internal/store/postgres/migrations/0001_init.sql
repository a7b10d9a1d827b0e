-- 0001_init: tenants, jobs, queues, leaders.
--
-- The migrator creates the schema switchyard and switchyard.schema_migrations
-- before running this file, under an advisory lock, in one transaction.

CREATE TABLE switchyard.tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO switchyard.tenants (id, name) VALUES ('default', 'Default');

-- Every job is inserted once and updated twice (lease, completion). Those
-- updates change state, a column of every partial index's predicate, so they
-- are never HOT; the free space left by fillfactor still lets the new row
-- version land on the same page, which keeps the heap compact and saves WAL
-- (no extra page touched, no visibility-map bit on another page cleared).
CREATE TABLE switchyard.jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL DEFAULT 'default',
    queue            text NOT NULL,
    kind             text NOT NULL,
    args             jsonb NOT NULL,
    priority         smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
    state            text NOT NULL CHECK (state IN ('scheduled', 'available', 'running', 'retryable', 'succeeded', 'dead', 'cancelled')),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    run_at           timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    timeout_ms       bigint NOT NULL DEFAULT 0,
    unique_key       text,
    tags             text[] NOT NULL DEFAULT '{}',
    result           jsonb,
    errors           jsonb NOT NULL DEFAULT '[]',
    progress         jsonb,
    lease_token      bigint NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    leased_by        text
) WITH (
    fillfactor = 80,
    -- A queue table churns: vacuum it after a small fraction of dead rows so
    -- lease scans do not wade through dead index entries (when autovacuum runs).
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05
);

-- The only indexes: each one costs insert and update throughput.

-- Lease: equality on tenant and queue, then the lease order.
CREATE INDEX jobs_fetch ON switchyard.jobs (tenant_id, queue, priority, run_at, id)
    WHERE state = 'available';

-- Promotion of scheduled and retryable jobs whose time has come.
CREATE INDEX jobs_pending ON switchyard.jobs (run_at)
    WHERE state IN ('scheduled', 'retryable');

-- Rescue of expired leases.
CREATE INDEX jobs_lease ON switchyard.jobs (lease_expires_at)
    WHERE state = 'running';

-- Retention of finished jobs.
CREATE INDEX jobs_finished ON switchyard.jobs (state, finished_at)
    WHERE state IN ('succeeded', 'cancelled', 'dead');

-- A unique key is held by at most one live job per tenant.
CREATE UNIQUE INDEX jobs_unique ON switchyard.jobs (tenant_id, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable');

CREATE TABLE switchyard.queues (
    tenant_id  text NOT NULL,
    name       text NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE switchyard.leaders (
    name       text PRIMARY KEY,
    tenant_id  text NOT NULL DEFAULT 'default',
    leader_id  text NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
