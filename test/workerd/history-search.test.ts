import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { searchPlan } from "../../worker/search";
import { SearchQuery } from "../../schema/api";
import { api, expectProblem, flushHistory, tenantApi } from "./helpers";

/**
 * GET /api/v1/tasks over D1 history: every filter alone and combined, full
 * text, sorts, keyset pages, bad input, tenant isolation and the indexes the
 * queries use. One tenant of its own holds six tasks in six states.
 */

type Api = Awaited<ReturnType<typeof tenantApi>>;
let call: Api;
const tenant = `hs-${crypto.randomUUID().slice(0, 8)}`;
const t: Record<string, { id: string; createdAt: number; finishedAt?: number }> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function make(key: string, queue: string, body: Record<string, unknown>) {
  const res = await call("POST", `/api/v1/queues/${queue}/tasks`, body);
  expect(res.status).toBe(201);
  t[key] = { id: res.body.id, createdAt: Date.parse(res.body.createdAt) };
  await sleep(3);
  return res.body.id as string;
}

async function leaseOne(queue: string, workerId: string) {
  const res = await call("POST", `/api/v1/queues/${queue}/leases`, { workerId, max: 1 });
  expect(res.body.leases).toHaveLength(1);
  return res.body.leases[0] as { task: { id: string }; leaseToken: string };
}

async function ids(query: string) {
  const res = await call("GET", `/api/v1/tasks?${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.items as { id: string }[]).map((i) => i.id);
}

const names = (...keys: string[]) => keys.map((k) => t[k].id);
const sorted = (list: string[]) => [...list].sort();

beforeAll(async () => {
  call = await tenantApi(tenant);
  await make("A", "emails", {
    name: "send-welcome",
    payload: { to: "ada@example.com", user: { name: "Ada Lovelace", id: 4242 } },
    priority: 8,
    tags: ["vip", "eu"],
  });
  await make("B", "emails", {
    name: "send-invoice",
    payload: { to: "bob@example.org", amount: 99.5 },
    priority: 5,
    tags: ["eu"],
    maxAttempts: 1,
  });
  await make("C", "emails", { name: "send-reminder", payload: { note: "quarterly report due" }, priority: 2 });
  await make("D", "reports", { name: "build-report", payload: { kind: "quarterly", region: "emea" }, priority: 9, tags: ["vip"] });
  await make("E", "reports", { name: "build-report", payload: { kind: "monthly" }, priority: 1, delayMs: 60_000 });
  await make("F", "reports", { name: "cleanup", priority: 4 });
  const a = await leaseOne("emails", "w-1");
  expect(a.task.id).toBe(t.A.id);
  t.A.finishedAt = Date.parse(
    (await call("POST", `/api/v1/tasks/${a.task.id}/complete`, { leaseToken: a.leaseToken, result: { sent: true } })).body.finishedAt,
  );
  await sleep(3);
  const b = await leaseOne("emails", "w-2");
  expect(b.task.id).toBe(t.B.id);
  t.B.finishedAt = Date.parse(
    (
      await call("POST", `/api/v1/tasks/${b.task.id}/fail`, {
        leaseToken: b.leaseToken,
        error: { message: "mailbox full" },
        retryable: false,
      })
    ).body.finishedAt,
  );
  await sleep(3);
  expect((await leaseOne("reports", "w-1")).task.id).toBe(t.D.id);
  const f = await call("POST", `/api/v1/tasks/${t.F.id}/cancel`);
  expect(f.body.status).toBe("cancelled");
  t.F.finishedAt = Date.parse(f.body.finishedAt);
  await flushHistory("emails", 0, tenant);
  await flushHistory("reports", 0, tenant);
});

describe("search filters, each alone", () => {
  it("status: one, comma-separated, repeated", async () => {
    expect(await ids("status=completed")).toEqual(names("A"));
    expect(sorted(await ids("status=completed,failed"))).toEqual(sorted(names("A", "B")));
    expect(sorted(await ids("status=pending&status=scheduled&status=running"))).toEqual(sorted(names("C", "E", "D")));
    expect(await ids("status=cancelled")).toEqual(names("F"));
  });

  it("priority and band", async () => {
    expect(await ids("priority=8")).toEqual(names("A"));
    expect(sorted(await ids("priority=1,2"))).toEqual(sorted(names("C", "E")));
    expect(sorted(await ids("band=high"))).toEqual(sorted(names("A", "D")));
    expect(sorted(await ids("band=medium"))).toEqual(sorted(names("B", "F")));
    expect(await ids("band=low&priority=2,8")).toEqual(names("C")); // both: their intersection
    expect(await ids("band=high&priority=1&status=failed")).toEqual([]); // an empty intersection: nothing, not an error
  });

  it("queue", async () => {
    expect(await ids("queue=emails")).toEqual(names("C", "B", "A"));
    expect(sorted(await ids("queue=emails,reports"))).toEqual(sorted(Object.values(t).map((x) => x.id)));
  });

  it("workerId: the consumer that last ran the task", async () => {
    expect(sorted(await ids("workerId=w-1"))).toEqual(sorted(names("A", "D")));
    expect(await ids("workerId=w-2")).toEqual(names("B"));
    expect(await ids("workerId=nobody")).toEqual([]);
  });

  it("tag: every tag given", async () => {
    expect(sorted(await ids("tag=vip"))).toEqual(sorted(names("A", "D")));
    expect(await ids("tag=vip&tag=eu")).toEqual(names("A"));
    expect(await ids("tag=nope")).toEqual([]);
  });

  it("createdFrom / createdTo", async () => {
    const from = new Date(t.C.createdAt).toISOString();
    const to = new Date(t.D.createdAt).toISOString();
    expect(await ids(`createdFrom=${from}&createdTo=${to}`)).toEqual(names("D", "C"));
    expect(await ids(`createdTo=${new Date(t.A.createdAt).toISOString()}`)).toEqual(names("A"));
  });

  it("startedFrom / startedTo: tasks that have run", async () => {
    const a = Date.parse((await call("GET", `/api/v1/tasks/${t.A.id}`)).body.startedAt);
    const d = Date.parse((await call("GET", `/api/v1/tasks/${t.D.id}`)).body.startedAt);
    expect(sorted(await ids(`startedFrom=${new Date(a).toISOString()}`))).toEqual(sorted(names("A", "B", "D")));
    expect(await ids(`startedFrom=${new Date(d).toISOString()}`)).toEqual(names("D"));
    expect(await ids(`startedTo=${new Date(a).toISOString()}`)).toEqual(names("A"));
  });

  it("finishedFrom / finishedTo: finished tasks only", async () => {
    const from = new Date(t.B.finishedAt!).toISOString();
    expect(sorted(await ids(`finishedFrom=${from}`))).toEqual(sorted(names("B", "F")));
    expect(await ids(`finishedTo=${new Date(t.A.finishedAt!).toISOString()}`)).toEqual(names("A"));
  });
});

describe("search sorts", () => {
  it("created (id order) both ways, the newest first by default", async () => {
    const all = names("A", "B", "C", "D", "E", "F");
    expect(await ids("sort=created")).toEqual(all);
    expect(await ids("sort=-created")).toEqual([...all].reverse());
    expect(await ids("")).toEqual([...all].reverse());
  });

  it("finished: finished tasks by finish time", async () => {
    expect(await ids("sort=finished")).toEqual(names("A", "B", "F"));
    expect(await ids("sort=-finished")).toEqual(names("F", "B", "A"));
  });

  it("priority, then id", async () => {
    expect(await ids("sort=-priority")).toEqual(names("D", "A", "B", "F", "C", "E"));
    expect(await ids("sort=priority")).toEqual(names("E", "C", "F", "B", "A", "D"));
    expect(await ids("sort=-priority&status=pending,completed,running")).toEqual(names("D", "A", "C"));
  });
});

describe("search combined", () => {
  it("text + status + created range", async () => {
    const from = new Date(t.A.createdAt).toISOString();
    expect(await ids(`q=quarterly&status=running&createdFrom=${from}`)).toEqual(names("D"));
    expect(sorted(await ids(`q=quarterly&createdFrom=${from}`))).toEqual(sorted(names("C", "D")));
    expect(await ids(`q=quarterly&status=completed`)).toEqual([]);
  });

  it("queue + band + tag + worker", async () => {
    expect(await ids("queue=reports&band=high&tag=vip&workerId=w-1")).toEqual(names("D"));
    expect(await ids("queue=emails&band=high&tag=vip&workerId=w-2")).toEqual([]);
  });

  it("status + priority sort, paged one by one with the cursor", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: { id: string }[]; nextCursor: string | null } } = await call(
        "GET",
        `/api/v1/tasks?status=pending,scheduled,running,completed&sort=-priority&limit=1${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...res.body.items.map((i) => i.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(names("D", "A", "C", "E"));
  });
});

describe("full text", () => {
  it("finds payload values at any depth, and names", async () => {
    expect(await ids("q=lovelace")).toEqual(names("A"));
    expect(await ids("q=4242")).toEqual(names("A"));
    expect(await ids("q=emea")).toEqual(names("D"));
    expect(sorted(await ids("q=report"))).toEqual(sorted(names("C", "D", "E"))); // a word of the payload, or of the name build-report
    expect(await ids("q=cleanup")).toEqual(names("F"));
  });

  it("phrases and prefixes", async () => {
    expect(await ids(`q=${encodeURIComponent('"ada@example.com"')}`)).toEqual(names("A"));
    expect(await ids(`q=${encodeURIComponent('"example com" NOT ada')}`)).toEqual([]);
    expect(await ids(`q=${encodeURIComponent('"report due"')}`)).toEqual(names("C"));
    expect(sorted(await ids(`q=${encodeURIComponent("quart*")}`))).toEqual(sorted(names("C", "D")));
    expect(sorted(await ids(`q=${encodeURIComponent("send* AND eu*")}`))).toEqual([]);
    expect(sorted(await ids(`q=${encodeURIComponent("invoice OR welcome")}`))).toEqual(sorted(names("A", "B")));
  });

  it("plain text needs no quoting: punctuation inside words matches as written", async () => {
    expect(await ids("q=ada@example.com")).toEqual(names("A"));
    expect(await ids(`q=${encodeURIComponent("bob@example.org 99.5")}`)).toEqual(names("B"));
    expect(await ids("q=build-report")).toEqual(sorted(names("D", "E")).reverse());
    expect(await ids(`q=${encodeURIComponent("to:ada")}`)).toEqual([]); // not a column: words "to" and "ada" in a row, which no task has
    expect(await ids(`q=${encodeURIComponent("name:cleanup")}`)).toEqual(names("F")); // FTS5's column filter
  });

  it("bad query syntax is a 400 problem naming q, never a 500", async () => {
    for (const q of ['"unterminated', "AND", "name:", "(", "*", "NOT", "a AND (b", "^", "body:(x"]) {
      const res = await call("GET", `/api/v1/tasks?q=${encodeURIComponent(q)}`);
      expectProblem(res, 400, "validation_failed");
      expect(res.body.errors[0].pointer).toBe("?q");
    }
  });
});

describe("search input", () => {
  it("limit above 200, a bad status, a bad date, a foreign cursor: 400 naming the parameter", async () => {
    for (const [query, pointer] of [
      ["limit=201", "?limit"],
      ["limit=0", "?limit"],
      ["status=done", "?status"],
      ["priority=11", "?priority"],
      ["band=urgent", "?band"],
      ["sort=name", "?sort"],
      ["createdFrom=yesterday", "?createdFrom"],
      ["cursor=xyz", "?cursor"],
      [`queue=${Array.from({ length: 21 }, (_, i) => `q${i}`).join(",")}`, "?queue"],
      [Array.from({ length: 21 }, (_, i) => `tag=t${i}`).join("&"), "?tag"],
    ]) {
      const res = await call("GET", `/api/v1/tasks?${query}`);
      expectProblem(res, 400, "validation_failed");
      expect(res.body.errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    }
    const page = await call("GET", "/api/v1/tasks?limit=1&sort=-priority");
    expectProblem(await call("GET", `/api/v1/tasks?limit=1&sort=created&cursor=${page.body.nextCursor}`), 400, "validation_failed");
  });

  it("the most filters of every kind at once still fit D1's 100 parameters", async () => {
    const many = (name: string, n: number, value: (i: number) => string) =>
      Array.from({ length: n }, (_, i) => `${name}=${value(i)}`).join("&");
    const query = [
      many("queue", 20, (i) => `q${i}`),
      many("tag", 20, (i) => `t${i}`),
      "status=pending,running,completed,failed,cancelled,scheduled,blocked",
      "priority=1,2,3,4,5,6,7,8,9,10",
      "band=high,medium,low",
      "workerId=w&createdFrom=2026-01-01T00:00:00Z&createdTo=2030-01-01T00:00:00Z&finishedFrom=2026-01-01T00:00:00Z&finishedTo=2030-01-01T00:00:00Z",
      "startedFrom=2026-01-01T00:00:00Z&startedTo=2030-01-01T00:00:00Z",
    ].join("&");
    for (const sort of ["-created", "-priority", "-finished"]) {
      expect((await call("GET", `/api/v1/tasks?${query}&sort=${sort}`)).status, sort).toBe(200);
      expect((await call("GET", `/api/v1/tasks?${query}&sort=${sort}&q=word`)).status, sort).toBe(200);
    }
  });

  it("limit 200 is fine, and items never carry a lease token", async () => {
    const res = await call("GET", "/api/v1/tasks?limit=200");
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(6);
    expect(JSON.stringify(res.body)).not.toMatch(/leaseToken/i);
    const a = res.body.items.find((i: { id: string }) => i.id === t.A.id);
    expect(a).toMatchObject({
      name: "send-welcome",
      queue: "emails",
      status: "completed",
      result: { sent: true },
      tags: ["vip", "eu"],
      band: "high",
      workerId: "w-1",
    });
  });
});

describe("tenants", () => {
  it("another tenant finds nothing of these tasks, by any filter", async () => {
    const other = await tenantApi(`hs-other-${crypto.randomUUID().slice(0, 6)}`);
    for (const query of ["", "q=lovelace", "status=completed", "queue=emails", "sort=-priority", "sort=-finished"]) {
      const res = await other("GET", `/api/v1/tasks?${query}`);
      expect(res.status).toBe(200);
      expect(res.body.items).toEqual([]);
    }
    expect((await api("GET", "/api/v1/tasks?q=lovelace")).body.items).toEqual([]); // the default tenant neither
  });
});

describe("pagination while rows arrive", () => {
  it("pages every row exactly once while new tasks are written between pages", async () => {
    const mine = await tenantApi(`hs-page-${crypto.randomUUID().slice(0, 6)}`);
    const tenantName = (await mine("GET", "/api/v1/tenant/history")).body.tenant as string;
    const first: string[] = [];
    const made = await mine("POST", "/api/v1/queues/p/tasks/batch", {
      tasks: Array.from({ length: 25 }, (_, i) => ({ name: `t${i}`, priority: 1 + (i % 10) })),
    });
    first.push(...made.body.tasks.map((x: { id: string }) => x.id));
    await flushHistory("p", 0, tenantName);
    for (const sort of ["-created", "created", "-priority"]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      let round = 0;
      do {
        const res: { body: { items: { id: string }[]; nextCursor: string | null } } = await mine(
          "GET",
          `/api/v1/tasks?queue=p&sort=${sort}&limit=4${cursor ? `&cursor=${cursor}` : ""}`,
        );
        seen.push(...res.body.items.map((i) => i.id));
        cursor = res.body.nextCursor;
        // New tasks arrive between pages (with every priority).
        await mine("POST", "/api/v1/queues/p/tasks/batch", {
          tasks: Array.from({ length: 3 }, (_, i) => ({ name: `late${round}-${i}`, priority: 1 + ((round + i) % 10) })),
        });
        await flushHistory("p", 0, tenantName);
        round++;
      } while (cursor && round < 100);
      const fromFirst = seen.filter((id) => first.includes(id));
      expect(new Set(seen).size, sort).toBe(seen.length); // nothing twice
      expect(sorted(fromFirst), sort).toEqual(sorted(first)); // every row there at the start, once
    }
  }, 30_000); // some 20 flushes, each telling the tenant's hub: slow on a busy machine, not a timing check
});

describe("indexes", () => {
  const plan = async (query: Record<string, string>) => {
    const f = SearchQuery.parse(query);
    const { statements, index } = searchPlan("default", f);
    const details: string[] = [];
    for (const s of statements) {
      const rows = (
        await env.DB.prepare(`EXPLAIN QUERY PLAN ${s.sql}`)
          .bind(...s.params)
          .all<{ detail: string }>()
      ).results;
      details.push(rows.map((r) => r.detail).join(" | "));
    }
    return { index, details };
  };

  it("each main query reads the index it was built for, never a whole table", async () => {
    const cursor = (sort: string, key: number | null) =>
      btoa(JSON.stringify([sort, key, "01M8MMTV804A6QM2BCKEV96WQQ.0.x"]))
        .replaceAll("+", "-")
        .replaceAll("/", "_")
        .replaceAll("=", "");
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /SEARCH t USING PRIMARY KEY \(tenant=\?\)/],
      [{ createdFrom: "2026-01-01T00:00:00Z" }, /SEARCH t USING PRIMARY KEY \(tenant=\? AND id>\?\)/],
      [{ queue: "emails" }, /SEARCH t USING INDEX tasks_queue \(tenant=\? AND queue=\?\)/],
      [{ status: "failed" }, /SEARCH t USING INDEX tasks_status \(tenant=\? AND status=\? AND priority=\?\)/],
      [
        { status: "completed", sort: "-priority", cursor: cursor("-priority", 5) },
        /SEARCH t USING INDEX tasks_status \(tenant=\? AND status=\? AND \(priority,id\)<\(\?,\?\)\)/,
      ],
      [{ sort: "-finished", finishedFrom: "2026-01-01T00:00:00Z" }, /SEARCH t USING INDEX tasks_finished \(tenant=\? AND finished_at>\?\)/],
      [{ q: "quarterly" }, /SCAN task_text VIRTUAL TABLE INDEX .*SEARCH t USING PRIMARY KEY \(tenant=\? AND id=\?\)/],
      [
        { q: "quarterly", status: "completed", createdFrom: "2026-01-01T00:00:00Z" },
        /SCAN task_text VIRTUAL TABLE INDEX .*SEARCH t USING PRIMARY KEY \(tenant=\? AND id=\?\)/,
      ],
    ];
    for (const [query, expected] of cases) {
      const { details } = await plan(query);
      for (const d of details) {
        expect(d, JSON.stringify(query)).toMatch(expected);
        expect(d, JSON.stringify(query)).not.toMatch(/SCAN t\b/);
      }
      // Ranges read in their index's order: no sort of the table's rows (text search sorts its matches).
      if (!query.q) for (const d of details) expect(d, JSON.stringify(query)).not.toMatch(/TEMP B-TREE/);
    }
  });
});
