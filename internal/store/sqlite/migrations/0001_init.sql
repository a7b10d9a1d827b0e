-- 0001_init: the job queue's tables.
--
-- Times are INTEGER unix microseconds, UTC. Tables are STRICT so that a value
-- bound with the wrong Go type (a []byte where JSON text belongs) fails loudly
-- instead of being stored as a BLOB that SQLite's JSON functions would read as
-- JSONB.
--
-- State lists in CHECK constraints and index predicates are written as OR
-- chains, not IN lists: SQLite evaluates an IN list of more than two
-- constants by building a temporary b-tree, and it evaluates these
-- expressions for every row an INSERT or UPDATE touches. That b-tree was the
-- largest single cost of completing a job.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO tenants (id, name, created_at)
VALUES ('default', 'default', CAST(unixepoch('subsec') * 1000000 AS INTEGER));

-- AUTOINCREMENT so that ids are never reused after retention deletes the
-- newest rows: ids are cursors (List's Before) and appear in notifications.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT    NOT NULL DEFAULT 'default',
    queue            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    priority         INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
    state            TEXT    NOT NULL CHECK (state = 'scheduled' OR state = 'available' OR state = 'running' OR state = 'retryable'
                                    OR state = 'succeeded' OR state = 'dead' OR state = 'cancelled'),
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    timeout_ms       INTEGER NOT NULL DEFAULT 0,
    unique_key       TEXT,
    tags             TEXT    NOT NULL DEFAULT '[]',
    result           TEXT,
    errors           TEXT    NOT NULL DEFAULT '[]',
    progress         TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    leased_by        TEXT
) STRICT;

-- Every index costs insert and update throughput, so there are exactly these,
-- each partial so that it only holds the rows its query looks at.
CREATE INDEX jobs_fetch ON jobs (tenant_id, queue, priority, run_at, id) WHERE state = 'available';
CREATE INDEX jobs_pending ON jobs (run_at) WHERE state IN ('scheduled', 'retryable');
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (state, finished_at)
    WHERE state = 'succeeded' OR state = 'cancelled' OR state = 'dead';
-- Queries that look a key up repeat this predicate word for word (liveStates
-- in queries.go), which is how SQLite knows the partial index applies.
CREATE UNIQUE INDEX jobs_unique ON jobs (tenant_id, unique_key)
    WHERE unique_key IS NOT NULL AND (state = 'scheduled' OR state = 'available' OR state = 'running' OR state = 'retryable');

CREATE TABLE queues (
    tenant_id  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE leaders (
    name       TEXT PRIMARY KEY,
    tenant_id  TEXT    NOT NULL DEFAULT 'default',
    leader_id  TEXT    NOT NULL,
    elected_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
