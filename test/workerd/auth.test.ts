import { env, runInDurableObject } from "cloudflare:test";
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { api, expectProblem, freshQueue } from "./helpers";

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function createKey(role: string, extra: object = {}) {
  const res = await api("POST", "/api/v1/keys", { role, name: `${role}-key`, ...extra });
  expect(res.status).toBe(201);
  return res.body as { id: string; key: string; tenant: string; role: string };
}

const privateKeys = JSON.parse((env as unknown as { TEST_JWT_PRIVATE: string }).TEST_JWT_PRIVATE);
const SECRET = "test-hs256-secret-that-is-long-enough-0123456789";
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: object = {}) => ({
  sub: "user-1",
  tenant: "default",
  role: "producer",
  iss: "https://issuer.test",
  aud: "edgeq",
  exp: now() + 300,
  ...extra,
});
const b64url = (o: object) => btoa(JSON.stringify(o)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

describe("authentication", () => {
  it("a request without a valid credential is 401 problem+json", async () => {
    const q = freshQueue();
    for (const headers of [
      { authorization: "" },
      { authorization: "Basic abc" },
      as("nope"),
      as(`eq_${"0".repeat(16)}_${"1".repeat(64)}`),
    ]) {
      expectProblem(await api("GET", `/api/v1/queues/${q}`, undefined, headers), 401, "unauthorized");
    }
  });

  it("an API key is shown once, listed without its secret, and stored only as a hash", async () => {
    const made = await createKey("producer");
    expect(made.key).toMatch(/^eq_[0-9a-f]{16}_[0-9a-f]{64}$/);
    expect(made.tenant).toBe("default");
    const list = await api("GET", "/api/v1/keys?limit=1000");
    const listed = list.body.items.find((k: any) => k.id === made.id);
    expect(listed).toMatchObject({ id: made.id, role: "producer", name: "producer-key" });
    expect(JSON.stringify(list.body)).not.toContain(made.key.slice(20));

    const secret = made.key.split("_")[2];
    const stored = await runInDurableObject(env.ACCESS_KEY.get(env.ACCESS_KEY.idFromName(`key:${made.id}`)), (_o, state) =>
      state.storage.sql.exec("SELECT * FROM credential").toArray(),
    );
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(stored[0].hash).toMatch(/^[0-9a-f]{64}$/);
    const registry = await runInDurableObject(env.QUEUE_REGISTRY.get(env.QUEUE_REGISTRY.idFromName("default")), (_o, state) =>
      state.storage.sql.exec("SELECT * FROM keys").toArray(),
    );
    expect(JSON.stringify(registry)).not.toContain(secret);
  });

  it("a revoked key is refused on its very next request", async () => {
    const { id, key } = await createKey("read-only");
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a" });
    expect((await api("GET", `/api/v1/queues/${q}`, undefined, as(key))).status).toBe(200);
    expect((await api("DELETE", `/api/v1/keys/${id}`)).status).toBe(204);
    expectProblem(await api("GET", `/api/v1/queues/${q}`, undefined, as(key)), 401, "unauthorized");
    expectProblem(await api("DELETE", `/api/v1/keys/${id}`), 404, "not_found");
  });
});

describe("roles", () => {
  it("each role may do exactly what the role matrix says", async () => {
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: 10 }, () => ({ name: "t" })) });
    const calls: Record<string, (h: Record<string, string>) => Promise<{ status: number }>> = {
      read: (h) => api("GET", `/api/v1/queues/${q}`, undefined, h),
      produce: (h) => api("POST", `/api/v1/queues/${q}/tasks`, { name: "p" }, h),
      consume: (h) => api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" }, h),
      manage: (h) => api("POST", `/api/v1/queues/${q}/resume`, undefined, h),
      keys: (h) => api("GET", "/api/v1/keys", undefined, h),
    };
    const matrix: Record<string, string[]> = {
      admin: ["read", "produce", "consume", "manage", "keys"],
      producer: ["read", "produce"],
      consumer: ["read", "consume"],
      "read-only": ["read"],
    };
    for (const [role, allowed] of Object.entries(matrix)) {
      const { key } = await createKey(role);
      for (const [what, call] of Object.entries(calls)) {
        const res = await call(as(key));
        if (allowed.includes(what)) expect(res.status, `${role} ${what}`).toBeLessThan(300);
        else expectProblem(res as any, 403, "forbidden");
      }
    }
  });

  it("a tenant admin manages only its own tenant's keys; the bootstrap token any tenant's", async () => {
    const acmeAdmin = await createKey("admin", { tenant: "acme" });
    expect(acmeAdmin.tenant).toBe("acme");
    const other = await api("POST", "/api/v1/keys", { role: "producer", name: "x", tenant: "globex" }, as(acmeAdmin.key));
    expectProblem(other, 403, "forbidden");
    const own = await api("POST", "/api/v1/keys", { role: "producer", name: "x" }, as(acmeAdmin.key));
    expect(own.body.tenant).toBe("acme");
    const defaultKey = await createKey("producer");
    expectProblem(await api("DELETE", `/api/v1/keys/${defaultKey.id}`, undefined, as(acmeAdmin.key)), 404, "not_found");
  });
});

describe("tenant isolation", () => {
  it("another tenant's task, queue and lease are not found", async () => {
    const acme = await createKey("admin", { tenant: "acme-iso" });
    const globex = await createKey("admin", { tenant: "globex-iso" });
    const q = freshQueue();
    const made = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "secret" }, as(acme.key));
    expect(made.status).toBe(201);
    const leased = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" }, as(acme.key))).body.leases[0];
    const id = made.body.id;
    for (const headers of [as(globex.key), {}]) {
      expectProblem(await api("GET", `/api/v1/tasks/${id}`, undefined, headers), 404, "not_found");
      expectProblem(await api("POST", `/api/v1/tasks/${id}/cancel`, undefined, headers), 404, "not_found");
      expectProblem(await api("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: leased.leaseToken }, headers), 404, "not_found");
      expectProblem(await api("GET", `/api/v1/queues/${q}/tasks`, undefined, headers), 404, "not_found");
      expectProblem(await api("GET", `/api/v1/queues/${q}`, undefined, headers), 404, "not_found");
    }
    const mine = await api("GET", `/api/v1/tasks/${id}`, undefined, as(acme.key));
    expect(mine.body.status).toBe("running");
  });
});

describe("JWT bearer tokens", () => {
  const q = freshQueue();
  const enqueueWith = (token: string) => api("POST", `/api/v1/queues/${q}/tasks`, { name: "jwt" }, as(token));

  it("HS256, RS256 and ES256 tokens act for their tenant and role", async () => {
    expect((await enqueueWith(await sign(claims(), SECRET, "HS256"))).status).toBe(201);
    expect((await enqueueWith(await sign(claims(), privateKeys.rsa, "RS256"))).status).toBe(201);
    expect((await enqueueWith(await sign(claims(), privateKeys.ec, "ES256"))).status).toBe(201);
    const consumer = await sign(claims({ role: "consumer" }), SECRET, "HS256");
    expectProblem(await enqueueWith(consumer), 403, "forbidden");
    const otherTenant = await sign(claims({ tenant: "jwt-elsewhere" }), SECRET, "HS256");
    expectProblem(await api("GET", `/api/v1/queues/${q}`, undefined, as(otherTenant)), 404, "not_found");
  });

  it("refuses alg none, a wrong key, issuer or audience, expired and not-yet-valid tokens, and missing claims", async () => {
    const refused = [
      `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims())}.`,
      await sign(claims(), "some-other-secret-entirely-0123456789", "HS256"),
      await sign(claims({ iss: "https://evil.test" }), SECRET, "HS256"),
      await sign(claims({ aud: "someone-else" }), SECRET, "HS256"),
      await sign(claims({ exp: now() - 10 }), SECRET, "HS256"),
      await sign(claims({ nbf: now() + 600 }), SECRET, "HS256"),
      await sign(claims({ tenant: undefined }), SECRET, "HS256"),
      await sign(claims({ role: "root" }), SECRET, "HS256"),
      await sign(claims({ sub: undefined }), SECRET, "HS256"),
    ];
    for (const token of refused) expectProblem(await enqueueWith(token), 401, "unauthorized");
  });
});

describe("rate limits", () => {
  it("150 concurrent requests against a 100/minute key: exactly 100 pass, the rest are 429 with Retry-After", async () => {
    const { key } = await createKey("read-only", { limits: { perMinute: 100, perHour: 1000 } });
    const results = await Promise.all(Array.from({ length: 150 }, () => api("GET", "/api/v1/queues?limit=1", undefined, as(key))));
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toHaveLength(100);
    expect(limited).toHaveLength(50);
    for (const r of limited) {
      expectProblem(r, 429, "rate_limited");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(r.headers.get("ratelimit-remaining")).toBe("0");
    }
    const remaining = ok.map((r) => Number(r.headers.get("ratelimit-remaining"))).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(ok[0].headers.get("ratelimit-limit")).toBe("100");
  });

  it("the hourly limit applies across minutes; the default limits come from config", async () => {
    const { key } = await createKey("read-only", { limits: { perMinute: 50, perHour: 60 } });
    const first = await Promise.all(Array.from({ length: 70 }, () => api("GET", "/api/v1/queues?limit=1", undefined, as(key))));
    expect(first.filter((r) => r.status === 200)).toHaveLength(50);
    const plain = await createKey("read-only");
    const res = await api("GET", "/api/v1/queues?limit=1", undefined, as(plain.key));
    expect(res.headers.get("ratelimit-limit")).toBe("100");
    expect(res.headers.get("ratelimit-remaining")).toBe("99");
  });

  it("a tenant's limits apply to its keys without their own and to its JWT subjects", async () => {
    const tenant = "limits-tenant";
    const before = (await api("POST", "/api/v1/keys", { role: "read-only", name: "old", tenant })).body.key;
    const own = (await api("POST", "/api/v1/keys", { role: "read-only", name: "own", tenant, limits: { perMinute: 7, perHour: 70 } })).body
      .key;
    const set = await api("PUT", `/api/v1/tenant/limits?tenant=${tenant}`, { limits: { perMinute: 3, perHour: 30 } });
    expect(set.body).toMatchObject({ tenant, limits: { perMinute: 3, perHour: 30 }, effective: { perMinute: 3, perHour: 30 } });
    const after = (await api("POST", "/api/v1/keys", { role: "read-only", name: "new", tenant })).body.key;
    const jwt = await sign(claims({ tenant, sub: "limited", role: "read-only" }), SECRET, "HS256");
    const limitOf = async (token: string) =>
      (await api("GET", "/api/v1/queues?limit=1", undefined, as(token))).headers.get("ratelimit-limit");
    expect(await limitOf(before)).toBe("3");
    expect(await limitOf(after)).toBe("3");
    expect(await limitOf(own)).toBe("7");
    expect(await limitOf(jwt)).toBe("3");
    const burst = await Promise.all(Array.from({ length: 5 }, () => api("GET", "/api/v1/queues?limit=1", undefined, as(after))));
    expect(burst.filter((r) => r.status === 429)).toHaveLength(3); // one was used above
    const reset = await api("PUT", `/api/v1/tenant/limits?tenant=${tenant}`, { limits: null });
    expect(reset.body).toMatchObject({ limits: null, effective: { perMinute: 100, perHour: 1000 } });
    expect((await api("GET", `/api/v1/tenant/limits?tenant=${tenant}`)).body.limits).toBeNull();
    const tenantAdmin = (await api("POST", "/api/v1/keys", { role: "admin", name: "a", tenant })).body.key;
    expectProblem(await api("PUT", "/api/v1/tenant/limits?tenant=default", { limits: null }, as(tenantAdmin)), 403, "forbidden");
  });

  it("the bootstrap admin token is not rate limited", async () => {
    const results = await Promise.all(Array.from({ length: 120 }, () => api("GET", "/api/v1/queues?limit=1")));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results[0].headers.get("ratelimit-limit")).toBeNull();
  });
});
