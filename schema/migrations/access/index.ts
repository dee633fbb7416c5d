import init from "./0001_init.sql";
import tenantLimits from "./0002_tenant_limits.sql";

/** AccessKey storage migrations, applied in order, each once (see durable/migrate.ts). */
export const ACCESS_MIGRATIONS: { name: string; sql: string }[] = [
  { name: "0001_init", sql: init },
  { name: "0002_tenant_limits", sql: tenantLimits },
];
