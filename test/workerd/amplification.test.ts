import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { accessKeyOf, hashKey, newKey } from "../../worker/keys";
import { ADMIN_TOKEN, api, expectProblem, freshQueue } from "./helpers";

/** The Worker's env with its Durable Object namespaces counting the objects they hand out, by name. */
function countingEnv() {
  const touched: string[] = [];
  const wrap = <T extends object>(ns: T): T =>
    new Proxy(ns, {
      get(target, prop) {
        if (prop === "idFromName")
          return (name: string) => (touched.push(name), (target as unknown as DurableObjectNamespace).idFromName(name));
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  const e: Env = { ...env, ACCESS_KEY: wrap(env.ACCESS_KEY), QUEUE_SHARD: wrap(env.QUEUE_SHARD) };
  return { env: e, touched };
}

async function call(e: Env, method: string, path: string, token: string, body?: unknown) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await worker.fetch(new Request(`http://edgeq.test${path}`, init), e, createExecutionContext());
  return { status: res.status, body: await res.json<any>() };
}

const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");

describe("no storage for strangers", () => {
  it("forged API keys are refused before any Durable Object is touched", async () => {
    const { env: e, touched } = countingEnv();
    for (let i = 0; i < 50; i++) {
      const res = await call(e, "GET", "/api/v1/queues", `eq_${hex(16)}_${hex(64)}`);
      expect(res.status).toBe(401);
      expect(res.body.type).toBe("urn:edgeq:error:unauthorized");
    }
    expect(touched).toEqual([]);
  });

  it("a real key still works, and a key signed here but never stored writes nothing to its object", async () => {
    const made = await api("POST", "/api/v1/keys", { role: "producer", name: "real" });
    expect(made.status).toBe(201);
    expect((await api("GET", "/api/v1/queues", undefined, { authorization: `Bearer ${made.body.key}` })).status).toBe(200);

    const ghost = await newKey(`edgeq-keys:${ADMIN_TOKEN}`);
    expectProblem(await api("GET", "/api/v1/queues", undefined, { authorization: `Bearer ${ghost.key}` }), 401, "unauthorized");
    const tables = await runInDurableObject(accessKeyOf(env, ghost.id), (_o, state) =>
      state.storage.sql
        .exec("SELECT name FROM sqlite_master")
        .toArray()
        .map((r) => r.name),
    );
    expect(tables).toEqual([]);
    expect(await hashKey(ghost.key)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("task ids naming a queue or shard that does not exist answer 404 without waking a shard", async () => {
    const q = freshQueue("amp");
    const created = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t" });
    expect(created.status).toBe(201);
    const ulid = created.body.id.split(".")[0];
    const { env: e, touched } = countingEnv();
    const ids = [`${ulid}.0.${freshQueue("none")}`, `${ulid}.7.${q}`, `${ulid}.9999.${q}`];
    for (const id of ids) {
      expect((await call(e, "GET", `/api/v1/tasks/${id}`, ADMIN_TOKEN)).status).toBe(404);
      expect((await call(e, "POST", `/api/v1/tasks/${id}/complete`, ADMIN_TOKEN, { leaseToken: "x" })).status).toBe(404);
      expect((await call(e, "POST", `/api/v1/tasks/${id}/cancel`, ADMIN_TOKEN)).status).toBe(404);
    }
    const batch = await call(e, "POST", "/api/v1/leases/complete", ADMIN_TOKEN, { items: ids.map((id) => ({ id, leaseToken: "x" })) });
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: any) => r.problem.type)).toEqual(ids.map(() => "urn:edgeq:error:not_found"));
    const dep = await call(e, "POST", `/api/v1/queues/${q}/tasks`, ADMIN_TOKEN, { name: "d", dependsOn: [ids[1]] });
    expect(dep.status).toBe(400);
    expect(touched.filter((n) => !n.endsWith(`:${q}:0`))).toEqual([]);
    // the real task is still found
    expect((await call(e, "GET", `/api/v1/tasks/${created.body.id}`, ADMIN_TOKEN)).status).toBe(200);
  });
});
