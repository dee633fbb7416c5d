import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app";
import worker from "../../worker/index";
import { api, expectProblem, freshQueue } from "./helpers";

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function createKey(role: string) {
  return (await api("POST", "/api/v1/keys", { role, name: role })).body.key as string;
}

describe("OpenAPI document", () => {
  it("is open, OpenAPI 3.1, and lists every route the app serves with its auth and error shapes", async () => {
    const res = await api("GET", "/openapi.json", undefined, { authorization: "" });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.schemas.Problem).toBeDefined();

    const served = createApp()
      .routes.filter((r) => r.method !== "ALL" && !["/openapi.json", "/docs", "/docs/*"].includes(r.path))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(new Set(served).size).toBeGreaterThan(25);
    for (const route of new Set(served)) expect(documented, route).toContain(route);

    const enqueue = doc.paths["/api/v1/queues/{queue}/tasks"].post;
    expect(Object.keys(enqueue.responses)).toEqual(expect.arrayContaining(["201", "200", "400", "401", "403", "413", "415", "429"]));
    expect(enqueue.responses["400"].content["application/problem+json"]).toBeDefined();
    expect(doc.paths["/health"].get.security).toEqual([]);
  });

  it("Swagger UI is served at /docs from the Worker's own assets, under a CSP that allows only its own scripts", async () => {
    const res = await worker.fetch(new Request("http://edgeq.test/docs"), env, createExecutionContext());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self';");
    const html = await res.text();
    expect(html).toContain('<script src="/docs/swagger-ui-bundle.js"></script>');
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
    const script = await worker.fetch(new Request("http://edgeq.test/docs/init.js"), env, createExecutionContext());
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect(await script.text()).toContain("SwaggerUIBundle");
    const missing = await worker.fetch(new Request("http://edgeq.test/docs/nope.js"), env, createExecutionContext());
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toContain("application/problem+json");
  });
});

describe("health", () => {
  it("ready checks every Durable Object namespace, D1 and KV", async () => {
    const res = await api("GET", "/health/ready");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ready");
    expect(Object.keys(res.body.checks).sort()).toEqual(["accessKey", "d1", "kv", "queueRegistry", "queueShard"]);
    expect(Object.values(res.body.checks).every((c: any) => c.ok)).toBe(true);
  });

  it("ready answers 503 and names the binding that is broken", async () => {
    const broken = { ...env, DB: undefined } as unknown as Env;
    const res = await worker.fetch(
      new Request("http://edgeq.test/health/ready", { headers: { authorization: "Bearer test-admin-token" } }),
      broken,
      createExecutionContext(),
    );
    expect(res.status).toBe(503);
    const body = (await res.json()) as any;
    expect(body.status).toBe("degraded");
    expect(body.checks.d1.ok).toBe(false);
    expect(body.checks.d1.error).toBeTruthy();
    expect(body.checks.kv.ok).toBe(true);
  });

  it("ready needs a credential; liveness does not", async () => {
    expectProblem(await api("GET", "/health/ready", undefined, { authorization: "" }), 401, "unauthorized");
    expect((await api("GET", "/health", undefined, { authorization: "" })).status).toBe(200);
  });
});

describe("metrics", () => {
  it("gives queue depth, task totals and request counts in Prometheus text, to admin and read-only keys only", async () => {
    const q = freshQueue("metrics");
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "a" }, { name: "b" }, { name: "c", maxAttempts: 1 }] });
    const [a, , c] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 3 })).body.leases;
    await api("POST", `/api/v1/tasks/${a.task.id}/complete`, { leaseToken: a.leaseToken });
    await api("POST", `/api/v1/tasks/${c.task.id}/fail`, { leaseToken: c.leaseToken, error: { message: "x" } });

    const readOnly = await createKey("read-only");
    const res = await worker.fetch(new Request("http://edgeq.test/metrics", { headers: as(readOnly) }), env, createExecutionContext());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain(`edgeq_queue_tasks{queue="${q}",status="running"} 1`);
    expect(text).toContain(`edgeq_queue_tasks{queue="${q}",status="completed"} 1`);
    expect(text).toContain(`edgeq_tasks_enqueued_total{queue="${q}"} 3`);
    expect(text).toContain(`edgeq_tasks_failed_total{queue="${q}"} 1`);
    expect(text).toMatch(
      /edgeq_http_requests_total\{isolate="\w+",method="POST",route="\/api\/v1\/queues\/:queue\/leases",status="200"\} \d+/,
    );
    expect(text).toMatch(/edgeq_http_request_duration_ms_bucket\{.*le="\+Inf"\} \d+/);

    for (const role of ["producer", "consumer"]) {
      const key = await createKey(role);
      expectProblem(await api("GET", "/metrics", undefined, as(key)), 403, "forbidden");
    }
    expectProblem(await api("GET", "/metrics", undefined, { authorization: "" }), 401, "unauthorized");
  });

  it("shows only the caller's tenant", async () => {
    const q = freshQueue("hidden");
    const other = (await api("POST", "/api/v1/keys", { role: "admin", name: "x", tenant: "metrics-other" })).body.key;
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a" }, as(other));
    const mine = await worker.fetch(
      new Request("http://edgeq.test/metrics", { headers: as("test-admin-token") }),
      env,
      createExecutionContext(),
    );
    expect(mine.status).toBe(200);
    const text = await mine.text();
    expect(text).toContain("edgeq_queue_tasks{"); // the caller's own queues are there
    expect(text).not.toContain(q);
  });
});

describe("HTTP surface", () => {
  it("echoes a request id, or makes one, on success and on error", async () => {
    const given = await api("GET", "/health", undefined, { "x-request-id": "trace-123" });
    expect(given.headers.get("x-request-id")).toBe("trace-123");
    const made = await api("GET", "/api/v1/nothing");
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const injected = await api("GET", "/health", undefined, { "x-request-id": "bad id\twith spaces" });
    expect(injected.headers.get("x-request-id")).not.toContain(" ");
  });

  it("sets security headers on every response", async () => {
    for (const res of [await api("GET", "/health"), await api("GET", "/api/v1/tasks/nope")]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
      expect(res.headers.get("strict-transport-security")).toBeTruthy();
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    }
  });

  it("allows CORS from the configured dashboard origins only, never `*` with credentials", async () => {
    const preflight = (origin: string) =>
      api("OPTIONS", "/api/v1/queues", undefined, {
        origin,
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      });
    const ok = await preflight("http://127.0.0.1:8788");
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:8788");
    expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
    const evil = await preflight("https://evil.example");
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("a browser may call every method the API uses, PUT included", async () => {
    const res = await api("OPTIONS", "/api/v1/tenant/limits", undefined, {
      origin: "http://127.0.0.1:8788",
      "access-control-request-method": "PUT",
      "access-control-request-headers": "authorization, content-type",
    });
    const allowed = (res.headers.get("access-control-allow-methods") ?? "").split(",").map((m) => m.trim());
    const spec = (await api("GET", "/openapi.json")).body;
    const used = new Set(
      Object.values(spec.paths as Record<string, object>).flatMap((ops) => Object.keys(ops).map((m) => m.toUpperCase())),
    );
    expect(used.has("PUT")).toBe(true);
    for (const m of used) expect(allowed).toContain(m);
  });

  it("the OpenAPI document describes batch heartbeat results as the server sends them", async () => {
    const spec = (await api("GET", "/openapi.json")).body;
    const ref = spec.paths["/api/v1/leases/heartbeat"].post.responses["200"].content["application/json"].schema.$ref;
    const schema = spec.components.schemas[ref.split("/").pop()];
    const done = schema.properties.results.items.anyOf.find(
      (s: any) => s.properties.ok.const === true || s.properties.ok.enum?.[0] === true,
    );
    expect(Object.keys(done.properties).sort()).toEqual(["cancelRequested", "expiresAt", "id", "ok"]);
    const q = freshQueue("hbs");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t" });
    const [l] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" })).body.leases;
    const res = await api("POST", "/api/v1/leases/heartbeat", { items: [{ id: l.task.id, leaseToken: l.leaseToken }] });
    expect(Object.keys(res.body.results[0]).sort()).toEqual(Object.keys(done.properties).sort());
  });

  it("asks the runtime to compress large JSON only for clients that accept it", async () => {
    const q = freshQueue("gzip");
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: 50 }, (_, i) => ({ name: `t${i}` })) });
    const get = (init: RequestInit & { cf?: object }) =>
      worker.fetch(
        new Request(`http://edgeq.test/api/v1/queues/${q}/tasks?limit=50`, {
          ...init,
          headers: { authorization: "Bearer test-admin-token", ...(init.headers as Record<string, string>) },
        }),
        env,
        createExecutionContext(),
      );
    // The runtime encodes the body at the HTTP boundary; in-process the body stays plain JSON.
    const br = await get({ headers: { "accept-encoding": "br, gzip" } });
    expect(br.headers.get("content-encoding")).toBe("br");
    expect(((await br.json()) as any).items).toHaveLength(50);
    expect((await get({ headers: { "accept-encoding": "gzip" } })).headers.get("content-encoding")).toBe("gzip");
    expect((await get({})).headers.get("content-encoding")).toBeNull();
    // The edge rewrites Accept-Encoding; what the client sent is cf.clientAcceptEncoding.
    const rewritten = await get({ headers: { "accept-encoding": "br, gzip" }, cf: { clientAcceptEncoding: "" } });
    expect(rewritten.headers.get("content-encoding")).toBeNull();
  });
});
