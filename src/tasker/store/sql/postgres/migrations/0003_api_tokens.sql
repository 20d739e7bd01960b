-- 0003 API tokens for the REST API (tasker auth token create/revoke/list).
-- The plaintext token is shown once and never stored: a row keeps a salted PBKDF2 hash and
-- the token's first 8 characters, which find the candidate rows without a scan.

CREATE TABLE tasker.api_tokens (
    id            bigserial PRIMARY KEY,
    -- Names stay unique after revocation so `token:NAME` in the history means one token.
    name          text NOT NULL UNIQUE,
    token_prefix  text NOT NULL,
    salt          text NOT NULL,
    token_hash    text NOT NULL,
    scopes        jsonb NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
-- Authenticating a request looks up live tokens by prefix.
CREATE INDEX api_tokens_prefix_idx ON tasker.api_tokens (token_prefix) WHERE revoked_at IS NULL;
