-- 0005_events: received CloudEvents, and the rules, sources and endpoints that route them
-- (store.Events). Times are INTEGER unix microseconds, UTC, as in 0001.
--
-- An event is unique per (tenant, source, event_id): a repeat is answered
-- with the stored one. The body is the whole event as the API shows it;
-- the columns are what listings filter on. Listings go newest first by id,
-- within a tenant, optionally of one type. Retention walks the oldest by id
-- (ids follow the time received), so received_at needs no index: every
-- index is paid for on every event recorded.
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
    version    INTEGER NOT NULL DEFAULT 1, -- +1 on every update, for read-modify-write
    UNIQUE (tenant_id, kind, name)
) STRICT;
CREATE INDEX definitions_tenant ON definitions (tenant_id, kind, id);

-- Delivery attempts are the outbound requests that delivered events to
-- endpoints: one row per attempt of a delivery job, with what came back
-- (response_headers is JSON, {"Name":["v"]}; response_body is its first
-- 4 KiB). They name the event and endpoint without a foreign key: events
-- and attempts are each deleted by age, on their own. Listings go newest
-- first by id, within a tenant, of one endpoint or of one event; retention
-- deletes by age.
CREATE TABLE delivery_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT    NOT NULL,
    endpoint_id      TEXT    NOT NULL,
    event_id         INTEGER NOT NULL,
    job_id           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    status           INTEGER NOT NULL DEFAULT 0,
    latency_us       INTEGER NOT NULL DEFAULT 0,
    response_headers TEXT    NOT NULL DEFAULT '{}',
    response_body    TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX delivery_attempts_endpoint ON delivery_attempts (tenant_id, endpoint_id, id);
CREATE INDEX delivery_attempts_event ON delivery_attempts (tenant_id, event_id, id);
CREATE INDEX delivery_attempts_at ON delivery_attempts (at);
