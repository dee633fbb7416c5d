#!/usr/bin/env node
// `npm start`: the API on workerd with state kept on disk in .edgeq/state, and the dashboard (the
// SvelteKit build on Pages' local server) signed in with the local admin token. The API is the
// bundle `wrangler deploy` uploads, on workerd's own socket, local D1 in a workerd of its own
// (scripts/serve-api.mjs). `npm run dev` (--dev) runs it under wrangler dev instead, which
// rebuilds on every save (docs/ARCHITECTURE.md says what each costs).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { spawnApi } from "./api-process.mjs";
import { serveDashboard } from "./dashboard.mjs";
import { migrateD1 } from "./migrate-d1.mjs";

const port = process.env.EDGEQ_PORT ?? "8787";
const dashboardPort = process.env.EDGEQ_DASHBOARD_PORT ?? "8788";
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
// The API reference's static assets (npm install copies them; again here, in case it ran without scripts).
execFileSync(process.execPath, ["scripts/api-assets.mjs"]);
// The dashboard, built once per start (a few seconds); its output is shown only if the build fails.
try {
  execFileSync("node_modules/.bin/vite", ["build", "--logLevel", "error"], { stdio: "pipe" });
} catch (e) {
  process.stderr.write(`${e.stdout ?? ""}${e.stderr ?? ""}`);
  throw new Error("the dashboard did not build (npm run build:app shows why)", { cause: e });
}
console.log(`edgeq API on http://${host}:${port}  (state in .edgeq/state, admin token in .dev.vars)`);
console.log(`dashboard on http://${host}:${dashboardPort}  (signed in as the local admin)`);
console.log("CLI: npx edgeq --help   (reads .edgeq/config.json)");

const dashboardOrigin = `http://${host}:${dashboardPort}`;
const direct = !process.argv.includes("--dev");
// A JSON line per request only at EDGEQ_LOG_LEVEL=info or debug (under load they would be thousands a
// second); wrangler dev's own log level hides them below info, so both stacks print the same.
const logLevel = process.env.EDGEQ_LOG_LEVEL ?? "warn";
const requestLogs = ["info", "log", "debug"].includes(logLevel);
const child = spawnApi({
  direct,
  host,
  port,
  persistTo: ".edgeq/state",
  vars: { EDGEQ_CORS_ORIGINS: dashboardOrigin, ...(requestLogs ? {} : { EDGEQ_LOG_REQUESTS: "false" }) },
  logLevel,
  stdio: "inherit",
});
const dashboard = serveDashboard({ host, port: dashboardPort, api: `http://${host}:${port}`, token });
// Each runs several processes (node, workerd, esbuild): stop each whole group.
const stop = () => {
  for (const c of [child, dashboard]) {
    try {
      process.kill(-c.pid, "SIGTERM");
    } catch {}
  }
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
child.on("exit", (code) => {
  stop();
  process.exit(code ?? 0);
});
dashboard.on("exit", (code) => {
  if (code) console.error(`the dashboard stopped (exit ${code}); the API goes on`);
});
