-- 0005_hub: payloads of the real-time hub too large for a NOTIFY (store.Hub).
--
-- A row lives for minutes: every node fetches it by id as soon as the
-- notification carrying that id arrives, and the hub sweeps old rows with
-- DeleteHubPayloadsBefore. UNLOGGED, because what it holds is as fleeting
-- as the notifications themselves (PostgreSQL forgets those in a crash too,
-- and the listeners report NotifyResync): writing it to the WAL would only
-- cost.
CREATE UNLOGGED TABLE switchyard.hub_payloads (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload    bytea NOT NULL
);
