import { describe, expect, it } from "vitest";
import {
  DEFAULT_FIELDS,
  DEFAULT_REPORT,
  FIELDS,
  fileName,
  fromRequest,
  fromSearch,
  GROUP_BY,
  localInput,
  problemOf,
  rowCounter,
  tableOf,
  toRequest,
  toSearch,
  type Report,
} from "../../app/lib/report";
import { toSearch as taskSearch, DEFAULTS as TASK_DEFAULTS } from "../../app/lib/filters";
import { GROUP_BY as API_GROUP_BY, REPORT_FIELDS, ReportBody } from "../../schema/api-reports";

const bytes = (s: string) => new TextEncoder().encode(s);
const report = (over: Partial<Report>): Report => ({ ...DEFAULT_REPORT, status: [], ...over });

// The Reports page's builder ↔ its URL, and what it makes of the API's answers.
describe("report builder and the URL", () => {
  it("offers exactly the fields and groupings the API takes", () => {
    expect(FIELDS).toEqual(REPORT_FIELDS);
    expect(GROUP_BY).toEqual(API_GROUP_BY);
  });

  it("round-trips: what the URL says is what the form shows, and back", () => {
    const url =
      "?fields=id%2Cstatus%2CrunMs&queue=email&tag=vip&band=high&status=failed%2Ccancelled&sort=created&groupBy=queue&format=json";
    const r = fromSearch(new URLSearchParams(url));
    expect(r).toMatchObject({
      fields: ["id", "status", "runMs"],
      queue: "email",
      tag: "vip",
      band: "high",
      status: ["failed", "cancelled"],
      sort: "created",
      groupBy: "queue",
      format: "json",
    });
    expect(toSearch(r)).toBe(url);
  });

  it("a plain /reports is the default set of fields as CSV; the fields are always written, so a shared link keeps its columns", () => {
    expect(fromSearch(new URLSearchParams(""))).toEqual(DEFAULT_REPORT);
    expect(toSearch(DEFAULT_REPORT)).toBe(`?fields=${encodeURIComponent(DEFAULT_FIELDS.join(","))}`);
  });

  it("opens a Tasks page search as the same filters (the cursor of a page left out)", () => {
    const tasks = { ...TASK_DEFAULTS, q: "ada", queue: "email", status: ["failed"], cursor: "abc" };
    const r = fromSearch(new URLSearchParams(taskSearch(tasks)));
    expect(r).toMatchObject({ q: "ada", queue: "email", status: ["failed"], fields: DEFAULT_FIELDS });
    expect(r).not.toHaveProperty("cursor");
  });

  it("ignores what it does not know and keeps the fields in the documented order, each once", () => {
    const r = fromSearch(new URLSearchParams("fields=status,bogus,id,status&groupBy=colour&format=xlsx&status=lost,failed"));
    expect(r).toMatchObject({ fields: ["id", "status"], groupBy: "", format: "csv", status: ["failed"] });
    expect(fromSearch(new URLSearchParams("fields=bogus")).fields).toEqual(DEFAULT_FIELDS);
  });

  it("the request is one the API's own schema accepts, with the Tasks page's filters as JSON", () => {
    const r = report({
      fields: ["status", "id"],
      q: "ada",
      queue: "email",
      status: ["failed"],
      band: "high",
      createdFrom: "2026-11-30T10:00",
    });
    const body = toRequest(r);
    expect(body).toEqual({
      fields: ["id", "status"],
      filters: { q: "ada", queue: "email", band: "high", status: ["failed"], createdFrom: new Date("2026-11-30T10:00").toISOString() },
      sort: "-created",
      format: "csv",
    });
    expect(ReportBody.safeParse(body).success).toBe(true);
    expect(toRequest(r, { format: "json", limit: 21 })).toMatchObject({ format: "json", limit: 21 });
  });

  it("a grouped report still sends a field (the API wants one) and its grouping", () => {
    const body = toRequest(report({ fields: [], groupBy: "status" }));
    expect(body).toMatchObject({ fields: ["id"], groupBy: "status" });
    expect(ReportBody.safeParse(body).success).toBe(true);
    expect(problemOf(report({ fields: [], groupBy: "status" }))).toBeNull();
    expect(problemOf(report({ fields: [] }))).toMatch(/at least one field/);
  });

  it("a saved definition fills the form, and says what the form cannot show", () => {
    const from = "2026-11-01T00:00:00.000Z";
    const { report: r, dropped } = fromRequest({
      fields: ["id", "error"],
      filters: { status: "failed", queue: ["email", "sms"], tag: ["a", "b"], createdFrom: from, priority: [9], finishedTo: from },
      groupBy: "band",
      format: "jsonl",
      limit: 10,
    });
    expect(r).toMatchObject({
      fields: ["id", "error"],
      status: ["failed"],
      queue: "email,sms",
      tag: "a,b",
      priority: "9",
      groupBy: "band",
      format: "csv",
      sort: "created",
    });
    expect(new Date(r.createdFrom).toISOString()).toBe(from);
    expect(dropped).toEqual(["format jsonl", "limit 10", "filter finishedTo"]);
    // What the page saves, it loads as it was.
    const mine = report({
      fields: ["id", "status"],
      q: '"a phrase"',
      workerId: "w1",
      status: ["completed"],
      createdTo: "2026-11-30T10:00:30",
      groupBy: "queue",
      format: "json",
      sort: "priority",
    });
    expect(fromRequest(toRequest(mine))).toEqual({ report: mine, dropped: [] });
  });

  it("writes a time as a datetime-local value, seconds only when there are some", () => {
    expect(localInput(new Date(2026, 10, 30, 9, 5).toISOString())).toBe("2026-11-30T09:05");
    expect(localInput(new Date(2026, 10, 30, 9, 5, 7).toISOString())).toBe("2026-11-30T09:05:07");
    expect(localInput("not a time")).toBe("");
  });
});

describe("what the page shows and saves", () => {
  it("a table of rows has the chosen columns in the documented order, JSON values as their text, nothing for null", () => {
    const t = tableOf([{ id: "t1", status: "failed", tags: ["a"], error: null, payload: { x: 1 } }], {
      fields: ["id", "status", "tags", "error", "payload"],
      groupBy: "",
    });
    expect(t).toEqual({ columns: ["id", "status", "tags", "payload", "error"], rows: [["t1", "failed", '["a"]', '{"x":1}', ""]] });
  });

  it("a table of groups has the key, the count and the percentiles flattened as in the CSV", () => {
    const rows = [
      { status: "completed", count: 3, waitMs: { p50: 16, p95: 20, p99: 21 }, runMs: { p50: 78, p95: 90, p99: 91 } },
      { status: "pending", count: 1, waitMs: { p50: null, p95: null, p99: null }, runMs: { p50: null, p95: null, p99: null } },
    ];
    expect(tableOf(rows, { fields: ["id"], groupBy: "status" })).toEqual({
      columns: ["status", "count", "waitP50", "waitP95", "waitP99", "runP50", "runP95", "runP99"],
      rows: [
        ["completed", "3", "16", "20", "21", "78", "90", "91"],
        ["pending", "1", "", "", "", "", "", ""],
      ],
    });
  });

  it("counts CSV rows as they arrive, however the bytes are cut, not counting a line break inside a quoted cell", () => {
    const csv = 'id,error\r\nt1,"{""message"":""line one\r\nline two""}"\r\nt2,\r\nt3,"a,b"\r\n';
    for (let cut = 0; cut <= csv.length; cut++) {
      const c = rowCounter("csv");
      c.add(bytes(csv.slice(0, cut)));
      c.add(bytes(csv.slice(cut)));
      expect(c.rows(true)).toBe(3);
    }
    const c = rowCounter("csv");
    c.add(bytes("id\r\n"));
    expect(c.rows()).toBe(0);
    c.add(bytes("t1\r\nt2"));
    expect(c.rows()).toBe(1);
  });

  it("counts JSON rows as the API writes them, an empty report as none", () => {
    const json = '[\n{"id":"t1","note":"a\\nb"},\n{"id":"t2"}\n]\n';
    const c = rowCounter("json");
    c.add(bytes(json.slice(0, 20)));
    expect(c.rows()).toBe(1);
    c.add(bytes(json.slice(20)));
    expect(c.rows(true)).toBe(2);
    const empty = rowCounter("json");
    empty.add(bytes("[\n]\n"));
    expect(empty.rows(true)).toBe(0);
  });

  it("names the file by the local date and format", () => {
    expect(fileName("csv", new Date(2026, 0, 5, 23, 59))).toBe("edgeq-report-2026-01-05.csv");
    expect(fileName("json", new Date(2026, 10, 30))).toBe("edgeq-report-2026-11-30.json");
  });
});
