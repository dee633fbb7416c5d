#!/usr/bin/env node
// The API on workerd through Miniflare's API, as `EDGEQ_STACK=direct npm start` runs it: the Worker bundled exactly as
// `wrangler deploy` bundles it (`wrangler deploy --dry-run --outdir`), its bindings read from
// wrangler.toml (and .dev.vars, as wrangler dev reads it), state kept on disk in the layout
// `wrangler dev --persist-to` uses, so `npm start` (wrangler dev) opens the same state. Requests
// reach workerd's own socket: no dev proxy in the path. `EDGEQ_STACK=direct npm start`, the stack
// and browser tests, and the benchmarks with EDGEQ_BENCH_STACK=direct run it.
//
//   node scripts/serve-api.mjs --port 8787 --persist-to .edgeq/state [--host 127.0.0.1]
//        [--var NAME:value]... [--inspector-port 9229]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";
import wrangler from "wrangler";

const quiet = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "1", WRANGLER_LOG: "warn" };

/** Bundles the Worker as `wrangler deploy` would (offline) into `outdir`; its entry is `outdir/index.js`. */
export function buildWorker(outdir) {
  try {
    execFileSync("node_modules/.bin/wrangler", ["deploy", "--dry-run", "--outdir", outdir], { stdio: "pipe", env: quiet });
  } catch (e) {
    process.stderr.write(`${e.stdout ?? ""}${e.stderr ?? ""}`);
    throw new Error("the Worker did not bundle (wrangler deploy --dry-run shows why)", { cause: e });
  }
  return join(outdir, "index.js");
}

/**
 * Starts the bundled Worker on `host:port` with state under `persistTo`; `vars` add to (and
 * override) wrangler.toml's. Resolves to the Miniflare instance once it answers. `assets: false`
 * leaves out the static assets (GET /docs), and with them the router in front of every request
 * (bench/idle-requests.mjs measures what it costs).
 */
export async function serveApi({ host = "127.0.0.1", port, persistTo, vars = {}, inspectorPort, outdir, assets = true }) {
  const script = buildWorker(outdir);
  const { workerOptions } = wrangler.unstable_getMiniflareWorkerOptions("wrangler.toml");
  if (!assets) delete workerOptions.assets;
  const mf = new Miniflare({
    ...workerOptions,
    name: "edgeq", // the name wrangler dev stores Durable Objects under
    modules: true,
    scriptPath: script,
    modulesRoot: outdir,
    bindings: { ...workerOptions.bindings, ...vars },
    host,
    port: Number(port),
    inspectorPort: inspectorPort === undefined ? undefined : Number(inspectorPort),
    defaultPersistRoot: join(resolve(persistTo), "v3"), // as `wrangler dev --persist-to` lays it out
    cf: false, // placeholder request.cf: offline, no fetch of workers.cloudflare.com
    log: new Log(LogLevel.WARN),
  });
  await mf.ready;
  return mf;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8787" },
      "persist-to": { type: "string", default: ".edgeq/state" },
      var: { type: "string", multiple: true, default: [] },
      "inspector-port": { type: "string" },
    },
  });
  const vars = {};
  for (const v of values.var) {
    const at = v.indexOf(":");
    if (at < 1) throw new Error(`--var ${v}: use NAME:value`);
    vars[v.slice(0, at)] = v.slice(at + 1);
  }
  const outdir = mkdtempSync(join(tmpdir(), "edgeq-worker-"));
  // However this process ends (wrangler's own signal handlers exit at once; a failed start throws),
  // the bundle goes; Miniflare's exit hook stops workerd.
  process.on("exit", () => rmSync(outdir, { recursive: true, force: true }));
  await serveApi({
    host: values.host,
    port: values.port,
    persistTo: values["persist-to"],
    vars,
    inspectorPort: values["inspector-port"],
    outdir,
  });
}
