-- rostersync schema v5 (SQLite): API tokens expire.
--
-- `expires_at` (RFC 3339, like every timestamp here) is when the token stops signing in;
-- NULL: never (tokens made before this version, and `token create --expires never`).

ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
