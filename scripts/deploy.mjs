#!/usr/bin/env node
// `npm run deploy -- --env staging|production [--dry-run]`: checks what a deploy needs, applies the
// D1 migrations, deploys the API Worker and the dashboard (Pages), then checks the deployment:
// /health/ready, and a task enqueued, leased and completed with a deploy key made for the purpose
// (revoked after). Clear lines, and a non-zero exit on the first thing that fails.
//   --dry-run      builds and validates everything offline (no account needed); CI runs it
//   --verify-only  only the checks of a running deployment: --url <api> and EDGEQ_ADMIN_TOKEN
// Configuration (environment): CLOUDFLARE_API_TOKEN (or `wrangler login`), EDGEQ_ADMIN_TOKEN (the
// deployment's admin token; set as its secret when it has none), EDGEQ_D1_ID / EDGEQ_KV_ID (else
// looked up by name), EDGEQ_PAGES_PROJECT (default edgeq-dashboard[-<env>]). See docs/DEPLOYMENT.md.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const PLACEHOLDER_D1 = "00000000-0000-4000-8000-000000000000";
const PLACEHOLDER_KV = "0123456789abcdef0123456789abcdef";
const quiet = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" };

class DeployError extends Error {}
const step = (text) => console.log(`→ ${text}`);
const ok = (text) => console.log(`  ✓ ${text}`);
const fail = (text) => {
  throw new DeployError(text);
};

/** Runs wrangler; its output, or a DeployError naming `what` with what wrangler said. */
function wrangler(args, what, { cwd, input } = {}) {
  const run = spawnSync(resolve("node_modules/.bin/wrangler"), args, { cwd, input, encoding: "utf8", env: quiet });
  if (run.status !== 0) fail(`${what} failed:\n${`${run.stdout}${run.stderr}`.trim().split("\n").slice(-15).join("\n")}`);
  return run.stdout;
}

/** The deployment answers: ready, and a task's whole life with a deploy key (made, then revoked). */
export async function verify(url, adminToken, log = ok) {
  const call = async (method, path, token, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) fail(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
  const ready = await call("GET", "/health/ready", adminToken);
  if (ready.status !== "ready") fail(`/health/ready is ${JSON.stringify(ready)}`);
  log(`${url}/health/ready: ${Object.keys(ready.checks).join(", ")} answer`);
  const started = Date.now();
  const made = await call("POST", "/api/v1/keys", adminToken, { role: "admin", name: `deploy-smoke-${started}` });
  let failure = null;
  try {
    const queue = "edgeq-deploy-smoke";
    await call("PATCH", `/api/v1/queues/${queue}`, made.key, {}); // made if this is the first check
    await call("POST", `/api/v1/queues/${queue}/purge`, made.key); // what an interrupted check left waiting
    const task = await call("POST", `/api/v1/queues/${queue}/tasks`, made.key, { name: "smoke", payload: { at: started } });
    const { leases } = await call("POST", `/api/v1/queues/${queue}/leases`, made.key, {
      workerId: "deploy-smoke",
      max: 100,
      waitMs: 10_000,
    });
    const items = leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken, result: { ok: true } })); // any others are older smoke tasks
    if (!leases.some((l) => l.task.id === task.id)) fail(`the smoke task ${task.id} was not leased (got ${leases.length})`);
    await call("POST", "/api/v1/leases/complete", made.key, { items });
    const done = await call("GET", `/api/v1/tasks/${task.id}`, made.key);
    if (done.status !== "completed") fail(`the smoke task is ${done.status}, not completed`);
    log(`smoke task ${task.id} enqueued → leased → completed with a deploy key in ${Date.now() - started} ms`);
  } catch (e) {
    failure = e;
  }
  try {
    await call("DELETE", `/api/v1/keys/${made.id}`, adminToken);
  } catch (e) {
    failure ??= e; // the check's own failure says more than the clean-up's
  }
  if (failure) throw failure;
}

/** wrangler.toml with the environment's placeholder D1 and KV ids replaced by the real ones. */
function configFor(env, d1, kv) {
  const text = readFileSync("wrangler.toml", "utf8").replaceAll(PLACEHOLDER_D1, d1).replaceAll(PLACEHOLDER_KV, kv);
  const path = resolve(`.edgeq/deploy/wrangler.${env}.toml`);
  // Paths in the config (main, assets, migrations) stay relative to the project: write it beside wrangler.toml's folder layout.
  writeFileSync(
    path,
    text
      .replace(/^main = "(.*)"$/m, `main = "${resolve("worker/index.ts")}"`)
      .replace(/^directory = "(.*)"$/m, `directory = "${resolve("worker/public")}"`)
      .replaceAll('migrations_dir = "schema/migrations/d1"', `migrations_dir = "${resolve("schema/migrations/d1")}"`),
  );
  return path;
}

async function main() {
  const { values } = parseArgs({
    options: {
      env: { type: "string", default: "production" },
      "dry-run": { type: "boolean", default: false },
      "verify-only": { type: "boolean", default: false },
      url: { type: "string" },
    },
  });
  const env = values.env;
  const dry = values["dry-run"];

  if (values["verify-only"]) {
    const url = values.url ?? process.env.EDGEQ_URL ?? fail("--verify-only needs --url <the API's address> (or EDGEQ_URL)");
    const token = process.env.EDGEQ_ADMIN_TOKEN ?? fail("--verify-only needs EDGEQ_ADMIN_TOKEN, the deployment's admin token");
    step(`checking ${url}`);
    await verify(url.replace(/\/$/, ""), token);
    console.log("deployment verified");
    return;
  }

  step("prerequisites");
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 19)) fail(`Node ${process.versions.node}: edgeq needs Node 20.19 or later`);
  ok(`Node ${process.versions.node}`);
  if (!new RegExp(`^\\[env\\.${env.replace(/[^\w-]/g, "")}\\]$`, "m").test(readFileSync("wrangler.toml", "utf8"))) {
    fail(`no environment "${env}" in wrangler.toml (there are: staging, production)`);
  }
  ok(`environment ${env} is in wrangler.toml`);
  if (!existsSync("worker/public/docs/swagger-ui-bundle.js"))
    fail("worker/public/docs has no Swagger UI: run npm install (its prepare step copies it)");
  ok("the API reference's static assets are in worker/public");
  let d1 = process.env.EDGEQ_D1_ID ?? PLACEHOLDER_D1;
  let kv = process.env.EDGEQ_KV_ID ?? PLACEHOLDER_KV;
  if (!dry) {
    if (process.env.CLOUDFLARE_API_TOKEN) ok("CLOUDFLARE_API_TOKEN is set");
    else {
      const who = spawnSync(resolve("node_modules/.bin/wrangler"), ["whoami"], { encoding: "utf8", env: quiet });
      if (who.status !== 0 || /not authenticated/i.test(who.stdout))
        fail("not signed in to Cloudflare: set CLOUDFLARE_API_TOKEN or run npx wrangler login");
      ok("signed in to Cloudflare (wrangler whoami)");
    }
    if (!process.env.EDGEQ_ADMIN_TOKEN)
      fail("set EDGEQ_ADMIN_TOKEN to the deployment's admin token (a long random string): the checks after the deploy use it");
    const dbName = env === "production" ? "edgeq" : `edgeq-${env}`;
    if (d1 === PLACEHOLDER_D1) {
      const list = JSON.parse(wrangler(["d1", "list", "--json"], "listing D1 databases"));
      d1 =
        list.find((d) => d.name === dbName)?.uuid ??
        fail(`no D1 database "${dbName}": npx wrangler d1 create ${dbName}, or set EDGEQ_D1_ID`);
    }
    ok(`D1 database ${dbName}: ${d1}`);
    if (kv === PLACEHOLDER_KV) {
      const title = `${dbName}-cache`;
      const list = JSON.parse(wrangler(["kv", "namespace", "list"], "listing KV namespaces"));
      kv =
        list.find((n) => n.title === title)?.id ??
        fail(`no KV namespace "${title}": npx wrangler kv namespace create ${title}, or set EDGEQ_KV_ID`);
    }
    ok(`KV namespace: ${kv}`);
  }

  step("build and validate");
  mkdirSync(".edgeq/deploy", { recursive: true });
  const config = configFor(env, d1, kv);
  const outdir = resolve(`.edgeq/deploy/${env}`);
  rmSync(outdir, { recursive: true, force: true });
  const bundled = wrangler(["deploy", "--dry-run", "--config", config, "--env", env, "--outdir", outdir], "bundling the Worker");
  const size = /Total Upload: ([^\n]*)/.exec(bundled)?.[1] ?? "?";
  ok(`the Worker bundles (${size}), bindings and vars valid for ${env}`);
  const migrations = readdirSync("schema/migrations/d1")
    .filter((f) => f.endsWith(".sql"))
    .sort();
  for (const m of migrations) if (readFileSync(join("schema/migrations/d1", m), "utf8").trim() === "") fail(`D1 migration ${m} is empty`);
  ok(`${migrations.length} D1 migrations: ${migrations.join(", ")}`);
  // The dashboard, built into a Pages project folder of its own (the local build in .svelte-kit is left alone).
  // A Pages project per environment: a project's settings (its EDGEQ_API_URL) are shared by all its branches.
  const project = process.env.EDGEQ_PAGES_PROJECT ?? (env === "production" ? "edgeq-dashboard" : `edgeq-dashboard-${env}`);
  const pagesDir = resolve(`.edgeq/deploy/pages-${env}`);
  rmSync(pagesDir, { recursive: true, force: true });
  mkdirSync(pagesDir, { recursive: true });
  const pagesConfig = (apiUrl) =>
    writeFileSync(
      join(pagesDir, "wrangler.toml"),
      readFileSync("dashboard.wrangler.toml", "utf8")
        .replace(/^name = .*$/m, `name = ${JSON.stringify(project)}`)
        .replace(/^pages_build_output_dir = .*$/m, `pages_build_output_dir = ${JSON.stringify(join(pagesDir, "dist"))}`) +
        (apiUrl ? `\n[vars]\nEDGEQ_API_URL = ${JSON.stringify(apiUrl)}\n` : ""),
    );
  pagesConfig();
  try {
    execFileSync("node_modules/.bin/vite", ["build", "--logLevel", "error"], {
      stdio: "pipe",
      env: { ...process.env, EDGEQ_DASHBOARD_CONFIG: join(pagesDir, "wrangler.toml"), EDGEQ_APP_OUT_DIR: join(pagesDir, "kit") },
    });
  } catch (e) {
    fail(`the dashboard did not build:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
  if (!existsSync(join(pagesDir, "dist/_worker.js"))) fail("the dashboard build has no _worker.js");
  ok(`the dashboard builds for Pages (${join(pagesDir, "dist")})`);

  if (dry) {
    console.log(
      `dry run for ${env}: nothing was changed. A deploy would now apply ${migrations.length} D1 migrations (--remote), deploy the Worker and the dashboard, and verify them.`,
    );
    return;
  }

  step("D1 migrations");
  wrangler(["d1", "migrations", "apply", "DB", "--remote", "--config", config, "--env", env], "applying D1 migrations");
  ok("applied (those already applied are skipped)");

  step("the API Worker");
  const deployed = wrangler(["deploy", "--config", config, "--env", env], "deploying the Worker");
  const url =
    process.env.EDGEQ_URL ??
    /https:\/\/\S+\.workers\.dev/.exec(deployed)?.[0] ??
    fail("deployed, but its address is not in wrangler's output: set EDGEQ_URL");
  ok(`deployed: ${url}`);

  step("secrets"); // after the first deploy: a Worker that does not exist yet has no secrets to list
  const secrets = JSON.parse(wrangler(["secret", "list", "--config", config, "--env", env, "--format", "json"], "listing secrets")).map(
    (s) => s.name,
  );
  if (!secrets.includes("EDGEQ_ADMIN_TOKEN")) {
    wrangler(["secret", "put", "EDGEQ_ADMIN_TOKEN", "--config", config, "--env", env], "setting EDGEQ_ADMIN_TOKEN", {
      input: process.env.EDGEQ_ADMIN_TOKEN,
    });
    ok("EDGEQ_ADMIN_TOKEN set from the environment");
  } else ok(`secrets present: ${secrets.join(", ")}`);

  step("the dashboard (Pages)");
  pagesConfig(url); // the dashboard's API: this deployment
  const projects = JSON.parse(wrangler(["pages", "project", "list", "--json"], "listing Pages projects"));
  if (!projects.some((p) => (p["Project Name"] ?? p.name) === project)) {
    wrangler(["pages", "project", "create", project, "--production-branch", "production"], `creating the Pages project ${project}`);
  }
  const pages = wrangler(["pages", "deploy", "--project-name", project, "--branch", "production"], "deploying the dashboard", {
    cwd: pagesDir,
  });
  ok(`deployed: ${/https:\/\/\S+\.pages\.dev/.exec(pages)?.[0] ?? project}`);

  step("verify");
  await verify(url, process.env.EDGEQ_ADMIN_TOKEN);
  console.log(`edgeq ${env} is deployed and answers: ${url}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`  ✗ ${e instanceof DeployError ? e.message : e.stack}`);
    process.exit(1);
  });
}
