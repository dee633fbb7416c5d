import { describe, expect, it } from "vitest";
import { apiFilters, apiQuery, DEFAULTS, fromSearch, toSearch } from "../../app/lib/filters";

// The Tasks page's filters ↔ its URL.
describe("task filters and the URL", () => {
  it("round-trips: what the URL says is what the form shows, and back", () => {
    const url = "?q=ada%40example.com&queue=email&status=failed%2Ccancelled&sort=-priority";
    const f = fromSearch(new URLSearchParams(url));
    expect(f).toMatchObject({ q: "ada@example.com", queue: "email", status: ["failed", "cancelled"], sort: "-priority" });
    expect(toSearch(f)).toBe(url);
  });

  it("leaves out defaults and empty fields, so the plain view is just /tasks", () => {
    expect(toSearch(DEFAULTS)).toBe("");
    expect(toSearch({ ...DEFAULTS, q: "  ", queue: "" })).toBe("");
  });

  it("ignores what it does not know: a bad status, a bad sort", () => {
    expect(fromSearch(new URLSearchParams("status=lost,failed&sort=sideways"))).toMatchObject({ status: ["failed"], sort: "-created" });
  });

  it("asks the API for a page of 50, dates as ISO-8601", () => {
    const q = new URLSearchParams(apiQuery({ ...DEFAULTS, status: ["pending"], createdFrom: "2026-11-30T10:00:00Z" }).slice(1));
    expect(Object.fromEntries(q)).toEqual({ status: "pending", createdFrom: "2026-11-30T10:00:00.000Z", limit: "50" });
  });

  it("priorities, one or a list, go to the URL and to the API as a comma list", () => {
    const f = fromSearch(new URLSearchParams("priority=8,%209,10"));
    expect(f.priority).toBe("8, 9,10");
    expect(apiQuery(f)).toBe("?priority=8%2C9%2C10&limit=50");
    expect(apiFilters(f)).toEqual({ priority: "8,9,10" });
  });

  it("gives the same filters as JSON for a report; a date that does not parse is left out, not sent as an error", () => {
    const f = { ...DEFAULTS, queue: " email ", status: ["failed"], createdFrom: "yesterday", createdTo: "2026-11-30T10:00:00Z" };
    expect(apiFilters(f)).toEqual({ queue: "email", status: ["failed"], createdTo: "2026-11-30T10:00:00.000Z" });
    const q = new URLSearchParams(apiQuery({ ...f, sort: "priority", cursor: "abc" }).slice(1));
    expect(Object.fromEntries(q)).toEqual({
      queue: "email",
      status: "failed",
      createdTo: "2026-11-30T10:00:00.000Z",
      sort: "priority",
      cursor: "abc",
      limit: "50",
    });
  });
});
