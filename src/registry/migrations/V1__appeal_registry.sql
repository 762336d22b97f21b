-- The appeal registry: registration facts, an append-only event log, evidence by reference,
-- SLA deadlines, and a state projection maintained only by triggers from the log.
-- Nothing here can be updated or deleted by anyone but a trigger; see docs/registry.md.

-- Gap-free registration numbers per year: the row lock serialises writers, and a rolled-back
-- transaction returns its number.
CREATE TABLE appeal_counters (
    year integer PRIMARY KEY,
    last_seq integer NOT NULL CHECK (last_seq > 0)
);

CREATE TABLE appeals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reg_year integer NOT NULL,
    reg_seq integer NOT NULL CHECK (reg_seq > 0),
    reg_number text NOT NULL UNIQUE,
    category text NOT NULL,
    source text NOT NULL CHECK (source IN ('camera', 'sensor', 'vehicle', 'operator', 'citizen')),
    lat double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    address text,
    description text,
    district text,
    body_id text,
    body_name text,
    asset_id text,
    registered_at timestamptz NOT NULL,
    registered_by text NOT NULL,
    dedup_radius_m double precision NOT NULL,
    dedup_window_s bigint NOT NULL,
    UNIQUE (reg_year, reg_seq)
);
CREATE INDEX appeals_category_lat ON appeals (category, lat);
CREATE INDEX appeals_registered_at ON appeals (registered_at);

CREATE TABLE appeal_deadlines (
    appeal_id bigint NOT NULL REFERENCES appeals (id),
    stage text NOT NULL,
    ordinal integer NOT NULL,
    due_at timestamptz NOT NULL,
    PRIMARY KEY (appeal_id, stage)
);
CREATE INDEX appeal_deadlines_due ON appeal_deadlines (due_at);

CREATE TABLE appeal_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appeal_id bigint NOT NULL REFERENCES appeals (id),
    seq integer NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL CHECK (actor <> ''),
    kind text NOT NULL,
    from_status text,
    to_status text,
    reason text,
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (appeal_id, seq)
);
-- An overdue stage is escalated once.
CREATE UNIQUE INDEX appeal_events_one_escalation_per_stage
    ON appeal_events (appeal_id, (data ->> 'stage')) WHERE kind = 'escalated';
CREATE UNIQUE INDEX appeal_events_one_stage_reached
    ON appeal_events (appeal_id, (data ->> 'stage')) WHERE kind = 'stage_reached';

CREATE TABLE evidence (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appeal_id bigint NOT NULL REFERENCES appeals (id),
    source text NOT NULL,
    -- Idempotency: one real-world observation is recorded once.
    source_ref text NOT NULL UNIQUE,
    actor text NOT NULL,
    observed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    uncertainty_m double precision,
    items jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX evidence_appeal ON evidence (appeal_id);

-- The lifecycle, enforced by the log trigger (NULL from = registration).
CREATE TABLE allowed_transitions (
    from_status text,
    to_status text NOT NULL,
    UNIQUE (from_status, to_status)
);
INSERT INTO allowed_transitions (from_status, to_status) VALUES
    (NULL, 'detected'),
    ('detected', 'awaiting_confirmation'),
    ('detected', 'confirmed'),
    ('detected', 'rejected'),
    ('awaiting_confirmation', 'confirmed'),
    ('awaiting_confirmation', 'rejected'),
    ('confirmed', 'assigned'),
    ('assigned', 'assigned'),
    ('in_progress', 'assigned'),
    ('assigned', 'in_progress'),
    ('assigned', 'resolved'),
    ('in_progress', 'resolved'),
    ('resolved', 'closed'),
    ('resolved', 'assigned'),
    ('closed', 'assigned');

-- Current state: derived from the log by the trigger below, never written directly.
CREATE TABLE appeal_state (
    appeal_id bigint PRIMARY KEY REFERENCES appeals (id),
    status text NOT NULL,
    last_seq integer NOT NULL,
    updated_at timestamptz NOT NULL,
    body_id text,
    body_name text,
    evidence_count integer NOT NULL DEFAULT 0,
    last_evidence_at timestamptz
);
CREATE INDEX appeal_state_status ON appeal_state (status);

CREATE FUNCTION appeal_events_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    cur appeal_state%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM appeal_state WHERE appeal_id = NEW.appeal_id;
    IF NOT FOUND THEN
        IF NEW.seq <> 1 OR NEW.from_status IS NOT NULL OR NEW.to_status IS DISTINCT FROM 'detected' THEN
            RAISE EXCEPTION 'appeal %: the first event must register it as detected with seq 1', NEW.appeal_id
                USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO appeal_state (appeal_id, status, last_seq, updated_at, body_id, body_name)
        SELECT NEW.appeal_id, 'detected', 1, NEW.at, a.body_id, a.body_name FROM appeals a WHERE a.id = NEW.appeal_id;
        RETURN NEW;
    END IF;
    IF NEW.seq <> cur.last_seq + 1 THEN
        RAISE EXCEPTION 'appeal %: event seq % does not follow %', NEW.appeal_id, NEW.seq, cur.last_seq
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF NEW.to_status IS NOT NULL THEN
        IF NEW.from_status IS DISTINCT FROM cur.status THEN
            RAISE EXCEPTION 'appeal %: event says from %, but the appeal is %', NEW.appeal_id, NEW.from_status, cur.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM allowed_transitions t
                       WHERE t.from_status = NEW.from_status AND t.to_status = NEW.to_status) THEN
            RAISE EXCEPTION 'appeal %: % -> % is not an allowed transition', NEW.appeal_id, NEW.from_status, NEW.to_status
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.to_status = 'rejected' AND NEW.reason IS NULL THEN
            RAISE EXCEPTION 'appeal %: a rejection needs a reason code', NEW.appeal_id USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.to_status = 'closed' AND coalesce(NEW.data ->> 'confirmed_by', '') NOT IN ('reporter', 'inspector') THEN
            RAISE EXCEPTION 'appeal %: closing needs confirmation by the reporter or the inspector', NEW.appeal_id
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.from_status IS NOT NULL THEN
        RAISE EXCEPTION 'appeal %: from_status without to_status', NEW.appeal_id USING ERRCODE = 'check_violation';
    END IF;
    UPDATE appeal_state SET
        status = coalesce(NEW.to_status, cur.status),
        last_seq = NEW.seq,
        updated_at = NEW.at,
        body_id = coalesce(NEW.data ->> 'body_id', cur.body_id),
        body_name = CASE WHEN NEW.data ? 'body_id' THEN NEW.data ->> 'body_name' ELSE cur.body_name END,
        evidence_count = cur.evidence_count + CASE WHEN NEW.kind = 'evidence_added' THEN 1 ELSE 0 END,
        last_evidence_at = CASE WHEN NEW.kind = 'evidence_added'
                                THEN greatest(cur.last_evidence_at, (NEW.data ->> 'observed_at')::timestamptz)
                                ELSE cur.last_evidence_at END
    WHERE appeal_id = NEW.appeal_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER appeal_events_apply AFTER INSERT ON appeal_events
    FOR EACH ROW EXECUTE FUNCTION appeal_events_apply();

-- History is append-only, for everyone (superusers included): UPDATE, DELETE and TRUNCATE fail.
CREATE FUNCTION registry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the appeal registry is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE FUNCTION appeal_state_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'appeal_state is derived from appeal_events: direct % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['appeals', 'appeal_events', 'evidence', 'appeal_deadlines', 'allowed_transitions'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION registry_append_only()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION registry_append_only()', t || '_no_truncate', t);
    END LOOP;
END;
$$;
CREATE TRIGGER appeal_state_guard BEFORE INSERT OR UPDATE OR DELETE ON appeal_state
    FOR EACH ROW EXECUTE FUNCTION appeal_state_guard();
CREATE TRIGGER appeal_state_no_truncate BEFORE TRUNCATE ON appeal_state
    FOR EACH STATEMENT EXECUTE FUNCTION appeal_state_guard();

-- The service's role: read and append, never UPDATE history, never DELETE or TRUNCATE.
DO $$
BEGIN
    CREATE ROLE sitcenter_service NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM sitcenter_service;
GRANT USAGE ON SCHEMA public TO sitcenter_service;
GRANT SELECT, INSERT ON appeals, appeal_events, evidence, appeal_deadlines TO sitcenter_service;
GRANT SELECT ON appeal_state, allowed_transitions TO sitcenter_service;
GRANT SELECT, INSERT, UPDATE ON appeal_counters TO sitcenter_service;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO sitcenter_service;
