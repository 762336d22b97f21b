-- Manhole-cover sensors (src/sensors): per-sensor state and the idempotency keys of applied
-- messages, written in the same transaction as the appeals they open, so a message's effect
-- and its key commit together (or not at all).

-- The latest state of each sensor: ordering high-water mark (sensor timestamp, sequence
-- number), latest reading and alarm episodes, as JSON (src/sensors/alarms.rs `SensorState`).
-- Not history: the appeals' event log is the history; this row is updated in place.
CREATE TABLE sensor_state (
    sensor_id text PRIMARY KEY,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- When the last applied message was received (silence detection); NULL = never.
    last_seen_at timestamptz,
    updated_at timestamptz NOT NULL
);

-- One row per applied message: `<sensor>:<seq>:<sensor time in ms>`. A message whose key is
-- here has been applied; receiving it again (QoS 1 redelivery, retained copy, repeat) only
-- acknowledges it. Keys older than the retention window are pruned by the sensor stage.
CREATE TABLE sensor_messages (
    msg_key text PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX sensor_messages_received ON sensor_messages (received_at);

GRANT SELECT, INSERT, UPDATE ON sensor_state TO sitcenter_service;
GRANT SELECT, INSERT, DELETE ON sensor_messages TO sitcenter_service;
