import init from "./0001_init.sql";
import keys from "./0002_keys.sql";
import tenant from "./0003_tenant.sql";
import workers from "./0004_workers.sql";
import schedules from "./0005_schedules.sql";

/** QueueRegistry storage migrations, applied in order, each once (see durable/migrate.ts). */
export const REGISTRY_MIGRATIONS: { name: string; sql: string }[] = [
  { name: "0001_init", sql: init },
  { name: "0002_keys", sql: keys },
  { name: "0003_tenant", sql: tenant },
  { name: "0004_workers", sql: workers },
  { name: "0005_schedules", sql: schedules },
];
