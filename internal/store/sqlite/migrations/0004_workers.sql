-- 0004_workers: the registry of worker nodes (store.Workers).
--
-- A handful of rows (one per process running the job engine), read and
-- written every few seconds: no index beyond the primary key. Times are
-- INTEGER unix microseconds, UTC, as in 0001.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    all_tenants  INTEGER NOT NULL DEFAULT 0,
    queues       TEXT    NOT NULL DEFAULT '[]', -- JSON array of names
    all_queues   INTEGER NOT NULL DEFAULT 0,
    hostname     TEXT    NOT NULL DEFAULT '',
    pid          INTEGER NOT NULL DEFAULT 0,
    timeout_us   INTEGER NOT NULL DEFAULT 0, -- silence after which it is offline
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    offline_at   INTEGER -- NULL while online
) STRICT, WITHOUT ROWID;
