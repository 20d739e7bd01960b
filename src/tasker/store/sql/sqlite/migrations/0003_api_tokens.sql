-- 0003 API tokens for the REST API (tasker auth token create/revoke/list).
-- The plaintext token is shown once and never stored: a row keeps a salted PBKDF2 hash and
-- the token's first 8 characters, which find the candidate rows without a scan.

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    -- Names stay unique after revocation so `token:NAME` in the history means one token.
    name          TEXT NOT NULL UNIQUE,
    token_prefix  TEXT NOT NULL,
    salt          TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '[]',
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
-- Authenticating a request looks up live tokens by prefix.
CREATE INDEX api_tokens_prefix_idx ON api_tokens (token_prefix) WHERE revoked_at IS NULL;
