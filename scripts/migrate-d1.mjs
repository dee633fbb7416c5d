#!/usr/bin/env node
// Applies the D1 history migrations (schema/migrations/d1) to the local database kept in a
// state folder, as `wrangler dev --persist-to <folder>` will use it. Idempotent; offline.
// `node scripts/migrate-d1.mjs <folder>` or `import { migrateD1 } from "./migrate-d1.mjs"`.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export function migrateD1(persistTo) {
  execFileSync("node_modules/.bin/wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "1" },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) migrateD1(process.argv[2] ?? ".edgeq/state");
