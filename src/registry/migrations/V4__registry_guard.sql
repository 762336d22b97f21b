-- The registry's own guard (docs/security.md "Database roles", docs/registry.md "Tamper evidence"):
--   * the service role can no longer rewrite the registration counters (one SECURITY DEFINER
--     function draws the next number), create temporary tables or objects in the schema;
--   * an appeal's registration number must be the one its counter just drew;
--   * the SECURITY DEFINER trigger functions search pg_catalog first and pg_temp last and name
--     every table with its schema, so no object of the caller's can stand in for ours;
--   * every appeal event carries a SHA-256 hash chained to the appeal's previous event (the first
--     one to the appeal's registration facts and deadlines; evidence_added events also cover
--     their evidence row), computed here, never by the client: `sitcenter registry verify`
--     recomputes the chain outside the database;
--   * recorded_at (events and evidence) comes from the database clock.

-- Numbers: drawn only through this function.
CREATE FUNCTION public.next_registration_seq(p_year integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO public.appeal_counters AS c (year, last_seq) VALUES (p_year, 1)
    ON CONFLICT (year) DO UPDATE SET last_seq = c.last_seq + 1
    RETURNING c.last_seq;
$$;
REVOKE ALL ON FUNCTION public.next_registration_seq(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.next_registration_seq(integer) TO sitcenter_service;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.appeal_counters FROM sitcenter_service;

CREATE FUNCTION public.appeals_number_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.appeal_counters c
                   WHERE c.year = NEW.reg_year AND c.last_seq = NEW.reg_seq)
       OR NEW.reg_number IS DISTINCT FROM format('109-%s-%s', NEW.reg_year, lpad(NEW.reg_seq::text, 6, '0')) THEN
        RAISE EXCEPTION 'appeal %: a registration number is drawn by next_registration_seq, not chosen', NEW.reg_number
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER appeals_number_check BEFORE INSERT ON public.appeals
    FOR EACH ROW EXECUTE FUNCTION public.appeals_number_check();

-- No temporary tables (they would shadow ours in any function that searches pg_temp first) and
-- no new objects in the schema for anyone but the owner.
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM sitcenter_service', current_database());
END;
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The projection trigger again, schema-qualified, pg_temp last.
CREATE OR REPLACE FUNCTION public.appeal_events_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur public.appeal_state%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM public.appeal_state WHERE appeal_id = NEW.appeal_id;
    IF NOT FOUND THEN
        IF NEW.seq <> 1 OR NEW.from_status IS NOT NULL OR NEW.to_status IS DISTINCT FROM 'detected' THEN
            RAISE EXCEPTION 'appeal %: the first event must register it as detected with seq 1', NEW.appeal_id
                USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO public.appeal_state (appeal_id, status, last_seq, updated_at, body_id, body_name)
        SELECT NEW.appeal_id, 'detected', 1, NEW.at, a.body_id, a.body_name FROM public.appeals a WHERE a.id = NEW.appeal_id;
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
        IF NOT EXISTS (SELECT 1 FROM public.allowed_transitions t
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
    UPDATE public.appeal_state SET
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

-- The hash chain. A field is written `<octets>:<text>;` (NULL as `-;`), times as microseconds
-- since the epoch, numbers in PostgreSQL's text form with extra_float_digits = 1; the same
-- encoding is rebuilt outside the database by `registry verify` (src/registry/verify.rs).
CREATE FUNCTION public.registry_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN v IS NULL THEN '-;' ELSE octet_length(v)::text || ':' || v || ';' END;
$$;

CREATE FUNCTION public.registry_micros(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint::text;
$$;

-- What the first event of an appeal chains to: its registration facts and deadlines.
CREATE FUNCTION public.appeal_genesis(p_appeal bigint) RETURNS bytea
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 AS $$
    SELECT sha256(convert_to(
        'appeal;' ||
        public.registry_field(a.id::text) || public.registry_field(a.reg_number) ||
        public.registry_field(a.category) || public.registry_field(a.source) ||
        public.registry_field(a.lat::text) || public.registry_field(a.lon::text) ||
        public.registry_field(a.address) || public.registry_field(a.description) ||
        public.registry_field(a.district) || public.registry_field(a.body_id) ||
        public.registry_field(a.body_name) || public.registry_field(a.asset_id) ||
        public.registry_field(public.registry_micros(a.registered_at)) ||
        public.registry_field(a.registered_by) ||
        public.registry_field(a.dedup_radius_m::text) || public.registry_field(a.dedup_window_s::text) ||
        coalesce((SELECT string_agg(public.registry_field(d.stage) || public.registry_field(d.ordinal::text) ||
                                    public.registry_field(public.registry_micros(d.due_at)), '' ORDER BY d.ordinal, d.stage)
                  FROM public.appeal_deadlines d WHERE d.appeal_id = a.id), ''),
        'UTF8'))
    FROM public.appeals a WHERE a.id = p_appeal;
$$;

-- An evidence row as the chain covers it.
CREATE FUNCTION public.evidence_digest_input(p_evidence bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 AS $$
    SELECT 'evidence;' ||
        public.registry_field(v.id::text) || public.registry_field(v.appeal_id::text) ||
        public.registry_field(v.source) || public.registry_field(v.source_ref) ||
        public.registry_field(v.actor) || public.registry_field(public.registry_micros(v.observed_at)) ||
        public.registry_field(public.registry_micros(v.recorded_at)) ||
        public.registry_field(v.lat::text) || public.registry_field(v.lon::text) ||
        public.registry_field(v.uncertainty_m::text) || public.registry_field(v.items::text)
    FROM public.evidence v WHERE v.id = p_evidence;
$$;

ALTER TABLE public.appeal_events
    ADD COLUMN recorded_at timestamptz,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash bytea;

CREATE FUNCTION public.appeal_event_digest(e public.appeal_events) RETURNS bytea
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 AS $$
    SELECT sha256(e.prev_hash || convert_to(
        'event;' ||
        public.registry_field(e.appeal_id::text) || public.registry_field(e.seq::text) ||
        public.registry_field(public.registry_micros(e.at)) ||
        public.registry_field(public.registry_micros(e.recorded_at)) ||
        public.registry_field(e.actor) || public.registry_field(e.kind) ||
        public.registry_field(e.from_status) || public.registry_field(e.to_status) ||
        public.registry_field(e.reason) || public.registry_field(e.data::text) ||
        public.registry_field(CASE WHEN e.kind = 'evidence_added'
                                   THEN public.evidence_digest_input((e.data ->> 'evidence_id')::bigint) END),
        'UTF8'));
$$;

CREATE FUNCTION public.appeal_events_chain() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    prev bytea;
BEGIN
    NEW.recorded_at := clock_timestamp();
    IF NEW.seq = 1 THEN
        prev := public.appeal_genesis(NEW.appeal_id);
    ELSE
        SELECT e.hash INTO prev FROM public.appeal_events e
        WHERE e.appeal_id = NEW.appeal_id AND e.seq = NEW.seq - 1;
    END IF;
    IF prev IS NULL THEN
        RAISE EXCEPTION 'appeal %: event seq % has no predecessor to chain to', NEW.appeal_id, NEW.seq
            USING ERRCODE = 'serialization_failure';
    END IF;
    NEW.prev_hash := prev;
    NEW.hash := public.appeal_event_digest(NEW);
    RETURN NEW;
END;
$$;

CREATE FUNCTION public.evidence_recorded_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.recorded_at := clock_timestamp();
    RETURN NEW;
END;
$$;
CREATE TRIGGER evidence_recorded_at BEFORE INSERT ON public.evidence
    FOR EACH ROW EXECUTE FUNCTION public.evidence_recorded_at();

-- Existing history joins the chain (owner only, inside this migration).
ALTER TABLE public.appeal_events DISABLE TRIGGER appeal_events_append_only;
DO $$
DECLARE
    e public.appeal_events%ROWTYPE;
    prev bytea;
BEGIN
    FOR e IN SELECT * FROM public.appeal_events ORDER BY appeal_id, seq LOOP
        IF e.seq = 1 THEN
            prev := public.appeal_genesis(e.appeal_id);
        END IF;
        e.recorded_at := e.at;
        e.prev_hash := prev;
        e.hash := public.appeal_event_digest(e);
        UPDATE public.appeal_events SET recorded_at = e.recorded_at, prev_hash = e.prev_hash, hash = e.hash
        WHERE id = e.id;
        prev := e.hash;
    END LOOP;
END;
$$;
ALTER TABLE public.appeal_events ENABLE TRIGGER appeal_events_append_only;
ALTER TABLE public.appeal_events
    ALTER COLUMN recorded_at SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;

CREATE TRIGGER appeal_events_chain BEFORE INSERT ON public.appeal_events
    FOR EACH ROW EXECUTE FUNCTION public.appeal_events_chain();

-- A node that does not migrate at start checks that the schema is current.
GRANT SELECT ON public.refinery_schema_history TO sitcenter_service;
