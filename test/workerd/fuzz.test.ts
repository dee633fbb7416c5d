import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { api, freshQueue } from "./helpers";

/**
 * Sends at least 10,000 generated requests at every documented operation:
 * bodies drawn from each operation's own JSON Schema (the zod schemas, through
 * /openapi.json) and then bent — fields dropped, types swapped, numbers at and
 * past their bounds — plus hand-written nasties. No answer may be a 5xx, and
 * every error must be problem+json whose status matches the response.
 */

type Schema = Record<string, any>;
let doc: Schema;

function resolve(schema: Schema): Schema {
  if (schema?.$ref) return resolve(doc.components.schemas[schema.$ref.split("/").pop()]);
  return schema ?? {};
}

const weird = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.integer(),
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -0, 0.5, Number.MAX_SAFE_INTEGER),
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.constantFrom("", "\u0000", "🦆".repeat(100), "%00", "../../etc/passwd", "<script>", "DROP TABLE tasks;"),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

/**
 * Fields whose in-range values would make a request slow on purpose, drawn from
 * their edges instead: a 30 s long poll, or hundreds of shards (each a new
 * Durable Object that every later pause and stats call visits).
 */
const OVERRIDES: Record<string, fc.Arbitrary<unknown>> = {
  waitMs: fc.constantFrom(0, 1, -1, 30_001, 1.5, "10", null),
  shards: fc.constantFrom(1, 2, 0, -1, 257, 1.5, "2", null),
};

/** Values for a schema: mostly in shape, sometimes not. */
function arb(schemaIn: Schema, depth = 0): fc.Arbitrary<unknown> {
  const schema = resolve(schemaIn);
  if (depth > 4) return weird;
  const variants: fc.Arbitrary<unknown>[] = [];
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) variants.push(...alts.map((s: Schema) => arb(s, depth + 1)));
  else if (schema.enum) variants.push(fc.constantFrom(...schema.enum));
  else if (schema.type === "object" || schema.properties) {
    const props = Object.entries((schema.properties ?? {}) as Record<string, Schema>);
    const entries = props.map(([k, s]) => [k, OVERRIDES[k] ?? arb(s, depth + 1)] as const);
    variants.push(
      fc.record(Object.fromEntries(entries), { requiredKeys: (schema.required ?? []).filter((k: string) => schema.properties?.[k]) }),
      fc.record(Object.fromEntries(entries), { requiredKeys: [] }),
    );
  } else if (schema.type === "array") {
    variants.push(fc.array(arb(schema.items ?? {}, depth + 1), { maxLength: depth === 0 ? 5 : 3 }));
  } else if (schema.type === "integer" || schema.type === "number") {
    const lo = schema.minimum ?? -1e6;
    const hi = schema.maximum ?? 1e6;
    variants.push(
      fc.integer({ min: Math.max(-(2 ** 31), Math.ceil(lo)), max: Math.min(2 ** 31, Math.floor(hi)) }),
      fc.constantFrom(lo, hi, lo - 1, hi + 1, 1.5),
    );
  } else if (schema.type === "string") {
    variants.push(fc.string({ maxLength: schema.maxLength ?? 50 }), fc.constantFrom("email", "x".repeat(300), "2026-01-01T00:00:00Z"));
  } else if (schema.type === "boolean") variants.push(fc.boolean());
  else variants.push(fc.jsonValue({ maxDepth: 2 }));
  return fc.oneof({ arbitrary: fc.oneof(...variants), weight: 5 }, { arbitrary: weird, weight: 1 });
}

interface Operation {
  method: string;
  path: string;
  body?: Schema;
}

function fill(path: string, ids: string[]) {
  return fc
    .record({
      // A small pool of names: every valid name makes a queue, and listing thousands is not what this tests.
      queue: fc.constantFrom("fuzz", "fuzz-2", "Bad.Name", "x".repeat(49), "%2F..", "🦆", " ", "a/b"),
      id: fc.oneof(fc.constantFrom(...ids), fc.string({ maxLength: 130 }), fc.constant("01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.fuzz")),
      query: fc.oneof(
        fc.constant(""),
        fc.constantFrom("?limit=0", "?limit=abc", "?status=failed&limit=2", "?cursor=%00", "?limit=1001", "?tenant=other", "?status=nope"),
      ),
    })
    .map(({ queue, id, query }) =>
      path.replace("{queue}", encodeURIComponent(queue)).replace("{id}", encodeURIComponent(id)) + (path.includes("{") ? "" : query),
    );
}

function check(res: { status: number; headers: Headers; body: any }, label: string) {
  expect(res.status, `${label} answered ${res.status}: ${JSON.stringify(res.body)?.slice(0, 300)}`).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.headers.get("content-type"), label).toBe("application/problem+json");
    expect(res.body.status, label).toBe(res.status);
    expect(res.body.type, label).toMatch(/^urn:edgeq:error:[a-z_]+$/);
    expect(typeof res.body.detail, label).toBe("string");
  }
}

describe("fuzz", () => {
  it("10,000+ generated and hostile requests: no 5xx, every error problem+json", { timeout: 600_000 }, async () => {
    doc = (await api("GET", "/openapi.json")).body;
    const operations: Operation[] = Object.entries(doc.paths as Record<string, Record<string, Schema>>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        body: op.requestBody?.content?.["application/json"]?.schema,
      })),
    );
    // Some real tasks and leases, so generated ids sometimes hit something.
    const q = freshQueue("fuzz");
    const made = (await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: 20 }, (_, i) => ({ name: `t${i}` })) })).body.tasks;
    const ids: string[] = made.map((t: any) => t.id);
    await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "fuzz", max: 10 });

    let sent = 0;
    const runs = Math.ceil(10_000 / (operations.length - 1));
    for (const op of operations) {
      if (op.path === "/docs") continue;
      const request = fc.record({
        path: fill(op.path, ids),
        body: op.body ? fc.oneof({ arbitrary: arb(op.body), weight: 8 }, { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 }) : fc.constant(undefined),
        auth: fc.oneof(
          { arbitrary: fc.constant("Bearer test-admin-token"), weight: 8 },
          { arbitrary: fc.constantFrom("", "Bearer", "Bearer eq_0000000000000000_" + "0".repeat(64), "Bearer a.b.c", "Basic Zm9vOmJhcg=="), weight: 1 },
        ),
        contentType: fc.oneof(
          { arbitrary: fc.constant("application/json"), weight: 8 },
          { arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8", "application/merge-patch+json"), weight: 1 },
        ),
      });
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          sent++;
          const res = await api(op.method, r.path, r.body, { authorization: r.auth, "content-type": r.contentType });
          check(res, `${op.method} ${r.path}`);
        }),
        { seed: 4242, numRuns: runs, endOnFailure: true },
      );
    }

    // Hand-written nasties against the body-taking routes.
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const nasties = [
      "",
      "{",
      "null",
      "[]",
      '"string"',
      "1e999999",
      `{"name":"a","payload":${deep(20_000)}}`,
      `{"name":"a","payload":${deep(200_000)}}`,
      `{"name":"a","priority":1e309}`,
      `{"name":"a","priority":"5"}`,
      `{"name":"\\ud800","payload":"\\udfff"}`,
      `{"__proto__":{"admin":true},"name":"a"}`,
      `{"constructor":{"prototype":{"x":1}},"name":"a"}`,
      `{"name":"a","tags":[${Array.from({ length: 5000 }, () => '"t"').join(",")}]}`,
      `{"tasks":[${Array.from({ length: 1001 }, () => '{"name":"a"}').join(",")}]}`,
      `{"items":[{"id":"${"A".repeat(10_000)}","leaseToken":"x"}]}`,
      `{"name":"a","payload":"${"x".repeat(10 * 1024 * 1024)}"}`,
      '{"name":"a","payload":{"a":1,"a":2}}',
      "\u0000\u0001\u0002",
    ];
    const bodyRoutes = operations.filter((o) => o.body);
    for (const text of nasties) {
      for (const op of bodyRoutes) {
        sent++;
        const res = await api(op.method, op.path.replace("{queue}", "fuzz").replace("{id}", ids[0]), text);
        check(res, `${op.method} ${op.path} with a nasty body`);
      }
    }
    // Header oddities.
    const oddHeaders: Record<string, string>[] = [
      { "x-request-id": "a".repeat(10_000) },
      { "x-request-id": "<script>alert(1)</script>" },
      { "content-length": "0" },
      { accept: "application/xml" },
      { "accept-encoding": "br, gzip;q=0, *;q=0" },
    ];
    for (const headers of oddHeaders) {
      sent++;
      check(await api("POST", "/api/v1/queues/fuzz/tasks", { name: "h" }, headers), "header oddity");
    }
    expect(sent).toBeGreaterThanOrEqual(10_000);
  });
});
