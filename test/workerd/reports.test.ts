import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { binOf, binValue } from "../../durable/core/bins";
import type { HistoryTask } from "../../durable/core/timeline";
import { writeHistory } from "../../durable/history";
import { csvCell } from "../../worker/reports";
import worker from "../../worker/index";
import { api, historyTask, tenantApi } from "./helpers";

/**
 * POST /reports over history written through the flusher's path: fields,
 * filters, grouping, the three formats, CSV quoting and formula neutralising,
 * streaming, tenant isolation; and saved definitions.
 */

const T0 = Date.parse("2026-02-01T00:00:00Z");

function row(
  n: number,
  o: { queue?: string; name?: string; status?: string; payload?: unknown; wait?: number; run?: number; tags?: string[] } = {},
): HistoryTask {
  const created = T0 + n * 1000;
  const status = o.status ?? "completed";
  const started = o.wait === undefined && status === "pending" ? null : created + (o.wait ?? 10);
  const finished = ["completed", "failed"].includes(status) ? started! + (o.run ?? 100) : null;
  return historyTask(n, { ...o, created, started, finished, status });
}

async function tenantWith(tasks: HistoryTask[]) {
  const tenant = `rp-${crypto.randomUUID().slice(0, 8)}`;
  for (let i = 0; i < tasks.length; i += 2000) {
    const part = tasks.slice(i, i + 2000);
    await writeHistory(env.DB, tenant, "a:0", { upTo: i + part.length, marks: [], tasks: part, events: [], deletes: [], dead: [] });
  }
  return { tenant, call: await tenantApi(tenant) };
}

/** POST /reports; the raw response (a stream). */
async function post(call: Awaited<ReturnType<typeof tenantApi>>, body: unknown) {
  const res = await call("POST", "/api/v1/reports", body);
  return res;
}

/** A minimal RFC 4180 reader: rows of cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let cell = "";
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') ((cell += '"'), i++);
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") (row.push(cell), (cell = ""));
    else if (ch === "\r" && text[i + 1] === "\n") (row.push(cell), rows.push(row), (row = []), (cell = ""), i++);
    else cell += ch;
  }
  return rows;
}

describe("reports", () => {
  it("CSV: header, rows in order, RFC 4180 quoting, formula cells neutralised", async () => {
    const { call } = await tenantWith([
      row(1, { name: "plain", payload: { a: 1 } }),
      row(2, { name: 'say "hi", then\r\nleave', tags: ["x", "y"] }),
      row(3, { name: '=HYPERLINK("http://evil")' }),
      row(4, { name: "+1", status: "failed" }),
      row(5, { name: "@sum", queue: "b" }),
      row(6, { name: "-2", status: "pending" }),
    ]);
    const res = await post(call, { fields: ["id", "name", "status", "payload", "tags", "waitMs", "runMs"], format: "csv" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="report-.*\.csv"$/);
    const text = res.body as string;
    expect(text.endsWith("\r\n")).toBe(true);
    const rows = parseCsv(text);
    expect(rows[0]).toEqual(["id", "name", "status", "payload", "tags", "waitMs", "runMs"]);
    expect(rows.slice(1).map((r) => r[1])).toEqual([
      "plain",
      'say "hi", then\r\nleave',
      '\'=HYPERLINK("http://evil")',
      "'+1",
      "'@sum",
      "'-2",
    ]);
    expect(rows[1].slice(2)).toEqual(["completed", '{"a":1}', "[]", "10", "100"]);
    expect(rows[2][4]).toBe('["x","y"]');
    expect(rows[6].slice(5)).toEqual(["", ""]); // pending: never ran
    expect(csvCell(-3)).toBe("-3"); // numbers are left alone
  });

  it("filters and sort are the search's; json and jsonl carry typed values", async () => {
    const { call } = await tenantWith([
      row(1),
      row(2, { status: "failed", queue: "b" }),
      row(3, { queue: "b" }),
      row(4, { status: "failed" }),
    ]);
    const json = await post(call, {
      fields: ["id", "queue", "status", "createdAt"],
      filters: { status: ["failed"] },
      sort: "-created",
      format: "json",
    });
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(json.body.map((r: { status: string }) => r.status)).toEqual(["failed", "failed"]);
    expect(json.body[0].createdAt > json.body[1].createdAt).toBe(true);
    const lines = await post(call, { fields: ["queue", "runMs"], filters: { queue: "b" }, format: "jsonl" });
    expect(lines.headers.get("content-type")).toBe("application/x-ndjson");
    expect(
      (lines.body as string)
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { queue: "b", runMs: 100 },
      { queue: "b", runMs: 100 },
    ]);
    const none = await post(call, { fields: ["id"], filters: { q: "nothing-matches-this" }, format: "json" });
    expect(none.body).toEqual([]);
  });

  it("a status filter in creation order (one index range per status and priority, merged) gives every match once, in order, across pages", async () => {
    const statuses = ["completed", "failed", "pending"];
    const rows = Array.from({ length: 1_500 }, (_, i) => {
      const t = row(i + 1, { status: statuses[i % 3] });
      t.row.priority = 1 + (i % 10);
      return t;
    });
    const { call } = await tenantWith(rows);
    const res = await post(call, {
      fields: ["id", "status", "priority", "band"],
      filters: { status: ["failed", "completed"] },
      format: "jsonl",
    });
    const got = (res.body as string)
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const want = rows.filter((t) => t.row.status !== "pending").map((t) => t.row.id);
    expect(got.map((r) => r.id)).toEqual(want);
    expect(got[0]).toMatchObject({ status: "completed", priority: 1, band: "low" });
  });

  it("groupBy: a row per group with its count and duration percentiles", async () => {
    const { call } = await tenantWith([
      row(1, { run: 100 }),
      row(2, { run: 300 }),
      row(3, { run: 200 }),
      row(4, { queue: "b", run: 1_000 }),
      row(5, { queue: "b", status: "pending" }),
    ]);
    const res = await post(call, { fields: ["id"], groupBy: "queue", format: "json" });
    expect(res.body).toEqual([
      {
        queue: "a",
        count: 3,
        waitMs: { p50: 10, p95: 10, p99: 10 },
        runMs: { p50: binValue(binOf(200)), p95: binValue(binOf(300)), p99: binValue(binOf(300)) },
      },
      {
        queue: "b",
        count: 2,
        waitMs: { p50: 10, p95: 10, p99: 10 },
        runMs: { p50: binValue(binOf(1_000)), p95: binValue(binOf(1_000)), p99: binValue(binOf(1_000)) },
      },
    ]);
    const csv = parseCsv((await post(call, { fields: ["id"], groupBy: "status", format: "csv" })).body);
    expect(csv[0]).toEqual(["status", "count", "waitP50", "waitP95", "waitP99", "runP50", "runP95", "runP99"]);
    expect(csv.slice(1).map((r) => [r[0], r[1]])).toEqual([
      ["completed", "4"],
      ["pending", "1"],
    ]);
  });

  it("an unknown field, a bad filter or format: 400 naming it; never a 500", async () => {
    const { call } = await tenantWith([row(1)]);
    const unknown = await post(call, { fields: ["id", "secret"] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0]).toMatchObject({ pointer: "/fields/1" });
    expect(unknown.body.errors[0].detail).toMatch(/unknown field "secret"/);
    expect((await post(call, { fields: ["id"], format: "xlsx" })).status).toBe(400);
    expect((await post(call, { fields: ["id"], filters: { status: ["lost"] } })).status).toBe(400);
    expect((await post(call, { fields: ["id"], filters: { nope: 1 } })).status).toBe(400);
    const columnless = await post(call, { format: "json" });
    expect(columnless.status).toBe(400);
    expect(columnless.body.errors[0]).toMatchObject({ pointer: "/fields" });
    // A grouped report has its own columns: no fields needed.
    const grouped = await post(call, { groupBy: "status", format: "json" });
    expect(grouped.status).toBe(200);
    expect(JSON.parse(grouped.text)).toEqual([expect.objectContaining({ status: expect.any(String), count: 1 })]);
    const badQ = await post(call, { fields: ["id"], filters: { q: '"open' } });
    expect(badQ.status).toBe(400);
    expect(badQ.body.errors[0].pointer).toBe("?q");
  });

  it("a large export streams: the first bytes arrive before the last page is read, every row once", async () => {
    const n = 6_000;
    const { tenant } = await tenantWith(Array.from({ length: n }, (_, i) => row(i + 1, { name: `n${i + 1}` })));
    const key = (await api("POST", "/api/v1/keys", { tenant, role: "read-only", name: "r" })).body.key;
    const res = await worker.fetch(
      new Request("http://edgeq.test/api/v1/reports", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ fields: ["id", "name"], format: "jsonl" }),
      }),
      env,
      createExecutionContext(),
    );
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const first = await reader.read();
    // The first chunk is the first page (500 rows), sent before the later pages are read.
    const firstLines = decoder.decode(first.value).trim().split("\n");
    expect(firstLines).toHaveLength(500);
    let text = decoder.decode(first.value, { stream: true });
    let chunks = 1;
    for (let c = await reader.read(); !c.done; c = await reader.read()) ((text += decoder.decode(c.value, { stream: true })), chunks++);
    const names = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).name);
    expect(chunks).toBeGreaterThan(2);
    expect(names).toHaveLength(n);
    expect(new Set(names).size).toBe(n);
    expect(names[0]).toBe("n1");
    expect(names[n - 1]).toBe(`n${n}`);
  });

  it("tenants never see each other's rows or definitions", async () => {
    const a = await tenantWith([row(1, { name: "mine" })]);
    const b = await tenantWith([]);
    expect((await post(b.call, { fields: ["name"], format: "json" })).body).toEqual([]);
    const saved = await a.call("POST", "/api/v1/reports/definitions", { name: "all", report: { fields: ["name"] } });
    expect(saved.status).toBe(201);
    expect((await b.call("GET", "/api/v1/reports/definitions")).body.items).toEqual([]);
    expect((await b.call("DELETE", `/api/v1/reports/definitions/${saved.body.id}`)).status).toBe(404);
  });

  it("definitions: save (checked like a report), list, delete", async () => {
    const { call } = await tenantWith([]);
    const bad = await call("POST", "/api/v1/reports/definitions", { name: "x", report: { fields: ["nope"] } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].pointer).toBe("/report/fields/0");
    const made = await call("POST", "/api/v1/reports/definitions", {
      name: "failed this week",
      report: { fields: ["id", "error"], filters: { status: "failed" }, format: "jsonl" },
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      id: expect.stringMatching(/^rd_[0-9a-f]{16}$/),
      name: "failed this week",
      report: { fields: ["id", "error"], filters: { status: "failed" }, format: "jsonl" },
    }); // as sent
    expect((await call("GET", "/api/v1/reports/definitions")).body.items).toEqual([made.body]);
    expect((await call("DELETE", `/api/v1/reports/definitions/${made.body.id}`)).status).toBe(204);
    expect((await call("GET", "/api/v1/reports/definitions")).body.items).toEqual([]);
    expect((await call("DELETE", `/api/v1/reports/definitions/${made.body.id}`)).status).toBe(404);
  });
});
