-- Tenant-wide settings: the default rate limits of the tenant's credentials (JSON, or NULL for the deployment's).
CREATE TABLE tenant (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  limits TEXT
);
