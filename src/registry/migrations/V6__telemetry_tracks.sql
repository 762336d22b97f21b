-- Vehicle GPS tracks (src/telemetry/store.rs). Sized for a year of 5-second fixes from ~1,000
-- vehicles (~6 billion rows): range-partitioned by UTC day so a day's replay reads one
-- partition through its primary key (vehicle_id, at), and old days are dropped or archived a
-- partition at a time. No PostGIS: every query over history is "one vehicle, one time range";
-- spatial questions are asked of the live R-tree (src/telemetry/live.rs).

CREATE TABLE vehicle_fix (
    vehicle_id text NOT NULL,
    at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    speed_kmh real,
    course_deg real,
    altitude_m real,
    satellites smallint,
    hdop real,
    accuracy_m real,
    ignition boolean,
    -- Sent late from the tracker's black box (or older than the live position on arrival).
    late boolean NOT NULL DEFAULT false,
    protocol text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, at)
) PARTITION BY RANGE (at);

-- The service role may not create tables; the writer calls this (owned by the migrating
-- role) before inserting a day it has not seen yet.
CREATE FUNCTION public.telemetry_ensure_day(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part text := 'vehicle_fix_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass('public.' || quote_ident(part)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS public.%I PARTITION OF public.vehicle_fix FOR VALUES FROM (%L) TO (%L)',
            part,
            (day::timestamp AT TIME ZONE 'UTC'),
            ((day + 1)::timestamp AT TIME ZONE 'UTC'));
    END IF;
END $$;

REVOKE ALL ON FUNCTION telemetry_ensure_day(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION telemetry_ensure_day(date) TO sitcenter_service;
GRANT SELECT, INSERT ON vehicle_fix TO sitcenter_service;
