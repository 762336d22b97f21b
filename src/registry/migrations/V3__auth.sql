-- Sign-in, sessions, API keys and their audit trail (src/auth). The service role may read
-- and change users, sessions and keys (password changes, revocation, last use) but only
-- append to the audit log.

CREATE TABLE auth_users (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    roles         text[] NOT NULL,
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    language      text NOT NULL DEFAULT 'ru' CHECK (language IN ('ru', 'kk', 'en')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth_sessions (
    -- SHA-256 of the 256-bit token the cookie carries: a stolen table opens no session.
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES auth_users (id),
    csrf_token   text NOT NULL,
    address      text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE auth_api_keys (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scopes      text[] NOT NULL,
    -- SHA-256 of the key's secret part.
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE auth_audit (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION auth_audit_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'auth_audit is append-only';
END;
$$;
CREATE TRIGGER auth_audit_no_update BEFORE UPDATE OR DELETE ON auth_audit
    FOR EACH ROW EXECUTE FUNCTION auth_audit_append_only();
CREATE TRIGGER auth_audit_no_truncate BEFORE TRUNCATE ON auth_audit
    FOR EACH STATEMENT EXECUTE FUNCTION auth_audit_append_only();

GRANT SELECT, INSERT, UPDATE ON auth_users, auth_sessions, auth_api_keys TO sitcenter_service;
GRANT SELECT, INSERT ON auth_audit TO sitcenter_service;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO sitcenter_service;
