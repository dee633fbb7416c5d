import { applyD1Migrations, env, type D1Migration } from "cloudflare:test";

// Every test file starts with the history tables in place, as npm start applies them
// (idempotent: applied migrations are skipped).
await applyD1Migrations(env.DB, (env as unknown as { TEST_MIGRATIONS: D1Migration[] }).TEST_MIGRATIONS);
