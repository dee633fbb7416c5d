import fc from "fast-check";
import { expect } from "vitest";

/**
 * Fuzzing every documented operation: bodies drawn from each operation's own
 * JSON Schema (the zod schemas, through /openapi.json) and then bent — fields
 * dropped, types swapped, numbers at and past their bounds — hostile queries on
 * every path, bodies of the lease calls bent around a *valid* lease token, plus
 * hand-written nasties. No answer may be a 5xx, every error must be problem+json
 * whose status matches the response, and a refused lease call changes nothing.
 * Run in-process (workerd project) and over real HTTP (e2e project).
 */

export type Send = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; headers: Headers; body: any }>;

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

function fill(path: string, ids: string[], queues: string[]) {
  return fc
    .record({
      // A small pool of names: every valid name makes a queue, and listing thousands is not what this tests.
      queue: fc.constantFrom(...queues, "Bad.Name", "x".repeat(49), "%2F..", "🦆", " ", "a/b"),
      id: fc.oneof(fc.constantFrom(...ids), fc.string({ maxLength: 130 }), fc.constant("01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.fuzz")),
      query: fc.oneof(
        fc.constant(""),
        fc.constantFrom(
          "?limit=0",
          "?limit=abc",
          "?status=failed&limit=2",
          "?cursor=%00",
          "?limit=1001",
          "?tenant=other",
          "?status=nope",
          "?cursor=" + "z".repeat(500),
          "?limit=-1&limit=5",
          "?__proto__=1",
        ),
      ),
    })
    .map(
      ({ queue, id, query }) =>
        // every path, parameterised or not, also gets the hostile queries
        path.replace("{queue}", encodeURIComponent(queue)).replace("{id}", encodeURIComponent(id)) + query,
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

/** A lease call's path: the body names a task and its lease token. */
const LEASE_ACTION = /^\/api\/v1\/tasks\/\{id\}\/(complete|fail|heartbeat|release)$/;
const LEASE_BATCH = /^\/api\/v1\/leases\/(complete|fail|heartbeat)$/;

/**
 * A retry an hour away: a task a generated call failed stays scheduled for the whole run, so a
 * refused call's before/after comparison never sees the alarm promote it (time, not the call).
 */
const STILL = { baseMs: 3_600_000, factor: 2, maxMs: 3_600_000 };

export async function fuzzApi(send: Send, options: { token: string; total: number; queue: string }): Promise<number> {
  const { token, total, queue: q } = options;
  doc = (await send("GET", "/openapi.json")).body;
  const operations: Operation[] = Object.entries(doc.paths as Record<string, Record<string, Schema>>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      body: op.requestBody?.content?.["application/json"]?.schema,
    })),
  );
  const admin = `Bearer ${token}`;
  const as = { authorization: admin };
  // Some real tasks and leases, so generated ids sometimes hit something.
  const made = (
    await send(
      "POST",
      `/api/v1/queues/${q}/tasks/batch`,
      { tasks: Array.from({ length: 20 }, (_, i) => ({ name: `t${i}`, backoff: STILL })) },
      as,
    )
  ).body.tasks;
  const ids: string[] = made.map((t: any) => t.id);
  await send("POST", `/api/v1/queues/${q}/leases`, { workerId: "fuzz", max: 10 }, as);
  /** Fresh leases for the lease calls: a bent body around a token that holds. */
  const freshLeases = async (n: number) => {
    await send(
      "POST",
      `/api/v1/queues/${q}/tasks/batch`,
      { tasks: Array.from({ length: n }, (_, i) => ({ name: `l${i}`, backoff: STILL })) },
      as,
    );
    return (await send("POST", `/api/v1/queues/${q}/leases`, { workerId: "fuzz", max: n }, as)).body.leases as {
      task: { id: string };
      leaseToken: string;
    }[];
  };

  let sent = 0;
  const runs = Math.ceil(total / (operations.length - 1));
  for (const op of operations) {
    if (op.path === "/docs") continue;
    const leaseCall = LEASE_ACTION.test(op.path) || LEASE_BATCH.test(op.path);
    const pool = leaseCall ? await freshLeases(Math.min(runs, 200)) : [];
    const request = fc.record({
      path: fill(op.path, ids, [q, "fuzz-2"]),
      body: op.body
        ? fc.oneof({ arbitrary: arb(op.body), weight: 8 }, { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 })
        : fc.constant(undefined),
      lease: fc.nat({ max: Math.max(0, pool.length - 1) }),
      useLease: fc.boolean(),
      auth: fc.oneof(
        { arbitrary: fc.constant(admin), weight: 8 },
        {
          arbitrary: fc.constantFrom("", "Bearer", "Bearer eq_0000000000000000_" + "0".repeat(64), "Bearer a.b.c", "Basic Zm9vOmJhcg=="),
          weight: 1,
        },
      ),
      contentType: fc.oneof(
        { arbitrary: fc.constant("application/json"), weight: 8 },
        {
          arbitrary: fc.constantFrom(
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-8",
            "application/merge-patch+json",
          ),
          weight: 1,
        },
      ),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        sent++;
        let { path, body } = r;
        const held = leaseCall && r.useLease ? pool[r.lease] : undefined;
        if (held) {
          // The same bent body, but naming a task and the token that holds its lease.
          const bent = body && typeof body === "object" && !Array.isArray(body) ? { ...(body as object) } : {};
          if (LEASE_ACTION.test(op.path)) {
            path = op.path.replace("{id}", encodeURIComponent(held.task.id));
            body = { ...bent, leaseToken: held.leaseToken };
          } else {
            const items = Array.isArray((bent as any).items) ? (bent as any).items : [{}];
            body = {
              ...bent,
              items: items.map((it: unknown) => ({
                ...(it && typeof it === "object" ? it : {}),
                id: held.task.id,
                leaseToken: held.leaseToken,
              })),
            };
          }
        }
        const before = held ? (await send("GET", `/api/v1/tasks/${held.task.id}`, undefined, as)).body : null;
        const res = await send(op.method, path, body, { authorization: r.auth, "content-type": r.contentType });
        check(res, `${op.method} ${path}`);
        if (held && before && (res.status === 400 || res.status === 413 || res.status === 415)) {
          // Bad input changes nothing.
          const after = (await send("GET", `/api/v1/tasks/${held.task.id}`, undefined, as)).body;
          expect(after, `${op.method} ${path} refused with ${res.status} but changed the task`).toEqual(before);
        }
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
      const res = await send(op.method, op.path.replace("{queue}", q).replace("{id}", ids[0]), text, {
        ...as,
        "content-type": "application/json",
      });
      check(res, `${op.method} ${op.path} with a nasty body`);
    }
  }
  // Header oddities.
  const oddHeaders: Record<string, string>[] = [
    { "x-request-id": "a".repeat(10_000) },
    { "x-request-id": "<script>alert(1)</script>" },
    { accept: "application/xml" },
    { "accept-encoding": "br, gzip;q=0, *;q=0" },
  ];
  for (const headers of oddHeaders) {
    sent++;
    check(
      await send("POST", `/api/v1/queues/${q}/tasks`, { name: "h" }, { ...as, "content-type": "application/json", ...headers }),
      "header oddity",
    );
  }
  return sent;
}
