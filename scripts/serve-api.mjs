#!/usr/bin/env node
// The API on workerd through Miniflare's API, as `npm start` runs it: the Worker bundled exactly as
// `wrangler deploy` bundles it (`wrangler deploy --dry-run --outdir`), its bindings read from
// wrangler.toml (and .dev.vars, as wrangler dev reads it), local D1 in a workerd process of its
// own, state kept on disk in the layout `wrangler dev --persist-to` uses, so `npm run dev`
// (wrangler dev) opens the same state. Requests reach the Worker's `Api` entrypoint on a workerd
// socket of its own: no dev proxy, entry worker or assets' router in the path. `npm start`, the
// stack and browser tests and the benchmarks run it.
//
//   node scripts/serve-api.mjs --port 8787 --persist-to .edgeq/state [--host 127.0.0.1]
//        [--var NAME:value]... [--inspector-port 9229] [--d1 apart|shared]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";
import wrangler from "wrangler";

/** The Worker's named entrypoint that local stacks serve (worker/index.ts). */
const API_ENTRYPOINT = "Api";

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
 * Local D1's host: forwards each D1 call, as Miniflare's remote-binding client sends it (the
 * call's URL and headers in `MF-URL` and `MF-Header-*`), to the database object itself: what
 * the D1 API of the Worker's runtime sends, unchanged. The client also opens a WebSocket for
 * JS RPC on each call, which D1 has no use for: refused at once. A request that is no D1 call
 * (the watchdog's) is answered 200.
 */
const D1_HOST = `export default {
  fetch(request, env) {
    if (request.headers.has("upgrade")) return new Response(null, { status: 404 });
    if (!request.headers.has("mf-binding")) return new Response("local D1");
    const headers = new Headers();
    for (const [name, value] of request.headers) if (name.startsWith("mf-header-")) headers.set(name.slice(10), value);
    const database = env[\`__D1_BETA__\${request.headers.get("mf-binding")}\`];
    return database.fetch(request.headers.get("mf-url"), { method: request.method, headers, body: request.body });
  },
};`;

/**
 * Local D1 in a workerd process of its own, as D1 is a service of its own at the edge: workerd
 * runs every isolate of a process on one thread, so in the API's process history's SQL would
 * take turns with the shards on one core. The same database object and files as before (so
 * either stack opens the other's state); the API's D1 binding is Miniflare's own D1 API, sent
 * here over loopback (`remoteProxyConnectionString`). Resolves to the instance and the API's
 * `d1Databases` option.
 */
async function startLocalD1(d1Databases, persistRoot) {
  const mf = new Miniflare({
    name: "edgeq-d1",
    modules: true,
    script: D1_HOST,
    // A `__D1_BETA__` binding is the database object's own fetcher, without the D1 API around it.
    d1Databases: Object.fromEntries(Object.entries(d1Databases).map(([name, { id }]) => [`__D1_BETA__${name}`, id])),
    host: "127.0.0.1",
    port: 0,
    // The D1 calls reach this worker's own socket, past Miniflare's entry worker (a fifth less CPU here).
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    defaultPersistRoot: persistRoot,
    cf: false,
    log: new Log(LogLevel.WARN),
  });
  const url = await mf.unsafeGetDirectURL("edgeq-d1");
  const bindings = Object.fromEntries(
    Object.entries(d1Databases).map(([name, { id }]) => [name, { id, remoteProxyConnectionString: new URL(url.href) }]),
  );
  return { mf, bindings, url };
}

/**
 * Starts the bundled Worker on `host:port` with state under `persistTo`; `vars` add to (and
 * override) wrangler.toml's. Resolves once it answers, to `{ url, d1Url, dispose }` (`d1Url`:
 * local D1's host, null when it is shared). `direct: false` serves the Worker's default
 * entrypoint on Miniflare's entry socket instead, behind Miniflare's entry worker and the assets'
 * router (bench/idle-requests.mjs measures what they cost). `d1: "shared"` runs local D1 in the
 * API's process, as wrangler dev does (bench/local-stack.mjs measures what each costs).
 */
export async function serveApi({ host = "127.0.0.1", port, persistTo, vars = {}, inspectorPort, outdir, direct = true, d1 = "apart" }) {
  const script = buildWorker(outdir);
  const { workerOptions } = wrangler.unstable_getMiniflareWorkerOptions("wrangler.toml");
  const persistRoot = join(resolve(persistTo), "v3"); // as `wrangler dev --persist-to` lays it out
  const database = d1 === "shared" ? null : await startLocalD1(workerOptions.d1Databases, persistRoot);
  let mf;
  let url;
  try {
    mf = new Miniflare({
      ...workerOptions,
      ...(database ? { d1Databases: database.bindings } : {}),
      name: "edgeq", // the name wrangler dev stores Durable Objects under
      modules: true,
      scriptPath: script,
      modulesRoot: outdir,
      bindings: { ...workerOptions.bindings, ...vars },
      // Requests reach the Worker's `Api` entrypoint on a socket of its own, past Miniflare's entry
      // worker and the assets' router that stand in front of its default one (worker/index.ts).
      // Miniflare's own entry socket is left on a free loopback port, for Miniflare.
      ...(direct
        ? { host: "127.0.0.1", port: 0, unsafeDirectSockets: [{ host, port: Number(port), entrypoint: API_ENTRYPOINT }] }
        : { host, port: Number(port) }),
      inspectorPort: inspectorPort === undefined ? undefined : Number(inspectorPort),
      defaultPersistRoot: persistRoot,
      cf: false, // placeholder request.cf: offline, no fetch of workers.cloudflare.com
      log: new Log(LogLevel.WARN),
    });
    url = await mf.ready;
    if (direct) url = await mf.unsafeGetDirectURL("edgeq", API_ENTRYPOINT);
  } catch (e) {
    // e.g. the port is taken: no workerd left behind
    await mf?.dispose().catch(() => undefined);
    await database?.mf.dispose();
    throw e;
  }
  return {
    url,
    d1Url: database?.url ?? null,
    dispose: async () => {
      try {
        await mf.dispose();
      } finally {
        await database?.mf.dispose();
      }
    },
  };
}

/**
 * Ends this process when local D1's host stops answering (three checks in a row, 2 s apart):
 * the API would go on with history silently stopped. `npm start` stops with it.
 */
function watchLocalD1(url) {
  let missed = 0;
  const timer = setInterval(async () => {
    const ok = await fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.ok,
      () => false,
    );
    missed = ok ? 0 : missed + 1;
    if (missed === 3) {
      console.error(`local D1 (${url}) stopped answering; stopping the API, whose task history would stop with it`);
      process.exit(1);
    }
  }, 2_000);
  timer.unref();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8787" },
      "persist-to": { type: "string", default: ".edgeq/state" },
      var: { type: "string", multiple: true, default: [] },
      "inspector-port": { type: "string" },
      d1: { type: "string", default: "apart" },
    },
  });
  if (values.d1 !== "apart" && values.d1 !== "shared") throw new Error(`--d1 ${values.d1}: use apart or shared`);
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
  const api = await serveApi({
    host: values.host,
    port: values.port,
    persistTo: values["persist-to"],
    vars,
    inspectorPort: values["inspector-port"],
    outdir,
    d1: values.d1,
  });
  if (api.d1Url) watchLocalD1(api.d1Url);
}
