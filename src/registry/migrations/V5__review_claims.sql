-- The inspectors' review queue (issue 14): who is looking at which appeal awaiting
-- confirmation right now. A claim is a short-lived lock, not history: the verdict itself is an
-- `appeal_events` row like any other change; a claim is deleted when its verdict is recorded,
-- when it expires, or when its holder has no live session any more (signed out, disabled).
CREATE TABLE review_claims (
    appeal_id  bigint PRIMARY KEY REFERENCES appeals (id),
    user_name  text NOT NULL CHECK (user_name <> ''),
    claimed_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > claimed_at)
);
CREATE INDEX review_claims_user ON review_claims (user_name);
-- Verdict statistics read confirmations and rejections by kind.
CREATE INDEX appeal_events_verdicts ON appeal_events (kind, at) WHERE kind IN ('confirmed', 'rejected');

GRANT SELECT, INSERT, UPDATE, DELETE ON review_claims TO sitcenter_service;
