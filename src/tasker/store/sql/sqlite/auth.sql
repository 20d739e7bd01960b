-- insert_api_token --
-- Store a new token's hash; a duplicate name raises a unique violation.
INSERT INTO api_tokens (name, token_prefix, salt, token_hash, scopes, created_at)
VALUES (:name, :token_prefix, :salt, :token_hash, :scopes, :now)
RETURNING id, name, scopes, created_at, last_used_at, revoked_at;

-- find_api_tokens_by_prefix --
-- Live (not revoked) tokens whose plaintext starts with this prefix; the caller checks hashes.
SELECT id, name, salt, token_hash, scopes, created_at, last_used_at, revoked_at
FROM api_tokens
WHERE token_prefix = :token_prefix AND revoked_at IS NULL
ORDER BY id;

-- revoke_api_token --
-- Revoke a live token by name; no row when it is unknown or already revoked.
UPDATE api_tokens SET revoked_at = :now
WHERE name = :name AND revoked_at IS NULL
RETURNING id, name, scopes, created_at, last_used_at, revoked_at;

-- touch_api_token --
-- Record a use, at most once per interval (used_before) so reads rarely write.
UPDATE api_tokens SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :used_before);

-- list_api_tokens --
-- Every token (revoked ones included), without secrets.
SELECT id, name, scopes, created_at, last_used_at, revoked_at
FROM api_tokens ORDER BY name;
