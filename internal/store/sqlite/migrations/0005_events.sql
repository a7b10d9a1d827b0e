-- 0005_events: received CloudEvents, and the rules, sources and endpoints that route them
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

-- Definitions are the tenant's routing configuration: rules, inbound
-- sources, outbound endpoints (kind says which). They are few per tenant
-- and read whole (the engine caches them); the specification is JSON the
-- engine interprets. Names are unique per tenant and kind; ids are unique
-- everywhere, so that an inbound source is found by its id alone.
CREATE TABLE definitions (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, name)
) STRICT;
CREATE INDEX definitions_tenant ON definitions (tenant_id, kind, id);
