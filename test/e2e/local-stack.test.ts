import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The local stack as `npm start` runs it (wrangler dev on workerd, state on
 * disk), driven over real HTTP: it must start, serve a task's whole life, and
 * keep its state across a restart.
 */
const PORT = 8700 + Math.floor(Math.random() * 80);
const BASE = `http://127.0.0.1:${PORT}`;
const TOKEN = `e2e-${Math.random().toString(36).slice(2)}`;
const state = mkdtempSync(join(tmpdir(), "edgeq-e2e-"));
let child: ChildProcess | null = null;

async function start(): Promise<void> {
  child = spawn(
    "node_modules/.bin/wrangler",
    ["dev", "--ip", "127.0.0.1", "--port", String(PORT), "--persist-to", state, "--log-level", "warn",
      "--var", `EDGEQ_ADMIN_TOKEN:${TOKEN}`, "--var", "EDGEQ_LOG_REQUESTS:false"],
    {
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "1" },
    },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d));
  for (let i = 0; i < 240; i++) {
    try {
      if ((await fetch(`${BASE}/health`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev did not answer on ${BASE}: ${stderr}`);
}

async function stop(): Promise<void> {
  if (!child) return;
  const exited = new Promise((r) => child!.once("exit", r));
  try {
    process.kill(-child.pid!, "SIGTERM");
  } catch {}
  await exited;
  child = null;
}

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

afterAll(async () => {
  await stop();
  rmSync(state, { recursive: true, force: true });
});

describe("the local stack", () => {
  it("starts, runs a task's whole life over HTTP, and keeps state across a restart", { timeout: 120_000 }, async () => {
    await start();
    const made = await call("POST", "/api/v1/queues/e2e/tasks", { name: "send", payload: { n: 1 }, priority: 9 });
    expect(made.status).toBe(201);
    const delayed = await call("POST", "/api/v1/queues/e2e/tasks", { name: "later", delayMs: 3_600_000 });
    const leased = await call("POST", "/api/v1/queues/e2e/leases", { workerId: "w", max: 1, waitMs: 1000 });
    const lease = leased.body.leases[0];
    expect(lease.task.id).toBe(made.body.id);
    expect((await call("POST", `/api/v1/tasks/${lease.task.id}/heartbeat`, { leaseToken: lease.leaseToken, progress: 50 })).status).toBe(200);
    const done = await call("POST", `/api/v1/tasks/${lease.task.id}/complete`, { leaseToken: lease.leaseToken, result: { ok: true } });
    expect(done.body.status).toBe("completed");
    expect((await fetch(`${BASE}/api/v1/queues/e2e`)).status).toBe(401);

    await stop();
    await start();
    expect((await call("GET", `/api/v1/tasks/${made.body.id}`)).body).toMatchObject({ status: "completed", result: { ok: true } });
    expect((await call("GET", `/api/v1/tasks/${delayed.body.id}`)).body.status).toBe("scheduled");
    expect((await call("GET", "/api/v1/queues/e2e")).body.counts).toEqual({ completed: 1, scheduled: 1 });
    const docs = await fetch(`${BASE}/openapi.json`);
    expect(docs.status).toBe(200);
  });
});
