-- Per-token request limits (requests per minute): a tenant default and a per-token value.
-- NULL falls back: token → tenant → the server's --token-rate-limit.
ALTER TABLE tenants ADD COLUMN token_rate_limit INTEGER;
ALTER TABLE api_tokens ADD COLUMN rate_limit INTEGER;
