-- The tenant's default limits, copied here when they change, used when the key has none of its own.
ALTER TABLE credential ADD COLUMN tenant_limits TEXT;
