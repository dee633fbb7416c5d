#!/usr/bin/env node
// `npm start`: the API on workerd (wrangler dev) with state kept on disk in .edgeq/state.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { migrateD1 } from "./migrate-d1.mjs";

const port = process.env.EDGEQ_PORT ?? "8787";
const host = process.env.EDGEQ_HOST ?? "127.0.0.1";

// The bootstrap admin token lives in .dev.vars (git-ignored), made once.
const vars = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
let token = /^EDGEQ_ADMIN_TOKEN=(.*)$/m.exec(vars)?.[1]?.replace(/^"|"$/g, "");
if (!token) {
  token = `eqadmin_${randomBytes(24).toString("hex")}`;
  appendFileSync(".dev.vars", `EDGEQ_ADMIN_TOKEN="${token}"\n`);
  console.log(`Created .dev.vars with a new admin token:\n\n  EDGEQ_ADMIN_TOKEN=${token}\n`);
}
// The CLI (`npx edgeq ...`) and the examples read .edgeq/config.json when no flag or env says otherwise.
mkdirSync(".edgeq", { recursive: true });
writeFileSync(".edgeq/config.json", `${JSON.stringify({ url: `http://${host}:${port}`, token }, null, 2)}\n`, { mode: 0o600 });
// Task history lives in D1: bring its tables up to date first (a no-op when they are).
migrateD1(".edgeq/state");
console.log(`edgeq API on http://${host}:${port}  (state in .edgeq/state, admin token in .dev.vars)`);
console.log("CLI: npx edgeq --help   (reads .edgeq/config.json)");

const args = ["dev", "--ip", host, "--port", port, "--persist-to", ".edgeq/state", "--log-level", process.env.EDGEQ_LOG_LEVEL ?? "warn"];
const child = spawn("wrangler", args, {
  stdio: "inherit",
  detached: true,
  env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: process.env.CI ?? "1" },
});
// wrangler starts several processes (workerd, esbuild): stop the whole group.
const stop = () => {
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
child.on("exit", (code) => process.exit(code ?? 0));
