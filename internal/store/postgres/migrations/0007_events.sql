-- 0007_events: received CloudEvents, and the rules, sources and endpoints that route them
-- (store.Events).
--
-- An event is unique per (tenant, source, event_id): a repeat is answered
-- with the stored one. The body is the whole event as the API shows it;
-- the columns are what listings filter on. Listings go newest first by id,
-- within a tenant, optionally of one type. Retention walks the oldest by id
-- (ids follow the time received), so received_at needs no index: every
-- index is paid for on every event recorded.
CREATE TABLE switchyard.events (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    source      text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    subject     text NOT NULL DEFAULT '',
    event_time  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    body        json  NOT NULL, -- json, not jsonb: kept as received
    dispatch    json  NOT NULL DEFAULT '[]',
    UNIQUE (tenant_id, source, event_id)
);
CREATE INDEX events_tenant ON switchyard.events (tenant_id, id);
CREATE INDEX events_tenant_type ON switchyard.events (tenant_id, type, id);

-- Definitions are the tenant's routing configuration: rules, inbound
-- sources, outbound endpoints (kind says which). They are few per tenant
-- and read whole (the engine caches them); the specification is JSON the
-- engine interprets. Names are unique per tenant and kind; ids are unique
-- everywhere, so that an inbound source is found by its id alone.
CREATE TABLE switchyard.definitions (
    id         text PRIMARY KEY,
    kind       text NOT NULL,
    tenant_id  text NOT NULL,
    name       text NOT NULL,
    spec       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    bigint NOT NULL DEFAULT 1, -- +1 on every update, for read-modify-write
    UNIQUE (tenant_id, kind, name)
);
CREATE INDEX definitions_tenant ON switchyard.definitions (tenant_id, kind, id);

-- Delivery attempts are the outbound requests that delivered events to
-- endpoints: one row per attempt of a delivery job, with what came back
-- (response_headers is JSON, {"Name":["v"]}; response_body is its first
-- 4 KiB). They name the event and endpoint without a foreign key: events
-- and attempts are each deleted by age, on their own. Listings go newest
-- first by id, within a tenant, of one endpoint or of one event; retention
-- deletes by age.
CREATE TABLE switchyard.delivery_attempts (
    id               bigserial PRIMARY KEY,
    tenant_id        text NOT NULL,
    endpoint_id      text NOT NULL,
    event_id         bigint NOT NULL,
    job_id           bigint NOT NULL,
    attempt          integer NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    status           integer NOT NULL DEFAULT 0,
    latency_us       bigint NOT NULL DEFAULT 0,
    response_headers json NOT NULL DEFAULT '{}', -- json, not jsonb: kept as received
    response_body    text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT ''
);
CREATE INDEX delivery_attempts_endpoint ON switchyard.delivery_attempts (tenant_id, endpoint_id, id);
CREATE INDEX delivery_attempts_event ON switchyard.delivery_attempts (tenant_id, event_id, id);
CREATE INDEX delivery_attempts_at ON switchyard.delivery_attempts (at);
