-- 0005_events: received CloudEvents and the rules that route them
-- (store.Events). Times are INTEGER unix microseconds, UTC, as in 0001.
--
-- An event is unique per (tenant, source, event_id): a repeat is answered
-- with the stored one. The body is the whole event as the API shows it;
-- the columns are what listings filter on. Listings go newest first by id,
-- within a tenant, optionally of one type; retention deletes by age.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    event_time  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    dispatch    TEXT    NOT NULL DEFAULT '[]',
    UNIQUE (tenant_id, source, event_id)
) STRICT;
CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE INDEX events_tenant_type ON events (tenant_id, type, id);
CREATE INDEX events_received ON events (received_at);

-- Rules are few per tenant and read whole (the engine caches them); the
-- specification is JSON the engine interprets.
CREATE TABLE rules (
    id         TEXT    PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;
CREATE INDEX rules_tenant ON rules (tenant_id, id);
