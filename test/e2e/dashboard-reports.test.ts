import { readFileSync } from "node:fs";
import type { Browser, Download, Page, Route } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dashboard, dashboardFixture, fresh, screenshot, scrollsSideways, until } from "./stack";

/**
 * The Reports page (the `npm run build:app` build) in Debian's Chromium
 * against the real local stack: tasks seeded through the API, their history
 * previewed, exported through the page as a real download and read back,
 * grouped, saved, loaded and deleted, the builder shared by its address.
 */

let fixture: Awaited<ReturnType<typeof dashboardFixture>>;
let browser: Browser;
let url: string;
let keyed: Dashboard | null = null;
const call = (method: string, path: string, body?: unknown) => fixture.call(method, path, body);

beforeAll(async () => {
  fixture = await dashboardFixture(1);
  ({ browser } = fixture);
  url = fixture.dashboard.url;
}, 120_000);

afterAll(async () => {
  await keyed?.stop();
  await fixture?.close();
});

/** The default columns plus payload, in the API's documented order. */
const COLUMNS = [
  "id",
  "queue",
  "name",
  "status",
  "priority",
  "attempts",
  "workerId",
  "createdAt",
  "finishedAt",
  "waitMs",
  "runMs",
  "payload",
];
/** Names a CSV must quote (comma, quote, line break) and one a spreadsheet would run (the API prefixes it with '). */
const NAMES = ["bill", "ship", 'ship, "fast"\nnow', "=SUM(A1:A9)", "bill", "ship"];

interface Seeded {
  queue: string;
  /** task id → its status in history */
  status: Map<string, string>;
  name: Map<string, string>;
  payload: Map<string, unknown>;
}

/** A fresh queue with six tasks: three completed, one cancelled, two pending; back once history (D1, about a second behind) has them all so. */
async function seed(): Promise<Seeded> {
  const queue = fresh("rep");
  const tasks = NAMES.map((name, n) => ({ name, payload: { n, note: n === 2 ? 'a, "b"' : "plain" } }));
  const made = (await call("POST", `/queues/${queue}/tasks/batch`, { tasks })).tasks as { id: string }[];
  const status = new Map(made.map((t) => [t.id, "pending"]));
  const { leases } = await call("POST", `/queues/${queue}/leases`, { workerId: "w-reports", max: 3 });
  expect(leases).toHaveLength(3);
  for (const l of leases) {
    await call("POST", `/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken, result: { ok: true } });
    status.set(l.task.id, "completed");
  }
  const cancel = made.find((t) => status.get(t.id) === "pending")!.id;
  await call("POST", `/tasks/${cancel}/cancel`);
  status.set(cancel, "cancelled");
  await until(async () => {
    const { items } = await call("GET", `/tasks?queue=${queue}&limit=50`);
    return items.length === made.length && items.every((t: { id: string; status: string }) => status.get(t.id) === t.status);
  });
  return {
    queue,
    status,
    name: new Map(made.map((t, i) => [t.id, NAMES[i]])),
    payload: new Map(made.map((t, i) => [t.id, tasks[i].payload])),
  };
}

/** RFC 4180: CRLF between records, quoted cells with quotes doubled. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch !== '"') cell += ch;
      else if (text[i + 1] === '"') ((cell += '"'), i++);
      else quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") (row.push(cell), (cell = ""));
    else if (ch === "\r" && text[i + 1] === "\n") (row.push(cell), rows.push(row), (row = []), (cell = ""), i++);
    else cell += ch;
  }
  if (cell !== "" || row.length > 0) (row.push(cell), rows.push(row));
  return rows;
}

async function open(path = "/reports"): Promise<{ page: Page; errors: string[]; urls: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const urls: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => urls.push(r.url()));
  await page.goto(`${url}${path}`);
  await page.getByRole("heading", { name: "Reports", exact: true }).waitFor();
  return { page, errors, urls };
}

const previewRows = (page: Page) => page.locator('table[aria-label="Report preview"] tbody tr');
/** The preview's cells of one column, row by row. */
const column = (page: Page, name: string) =>
  page.locator(`table[aria-label="Report preview"] tbody td[data-column="${name}"]`).allTextContents();

async function exportFile(page: Page, button: string): Promise<{ download: Download; text: string }> {
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: button }).click()]);
  return { download, text: readFileSync((await download.path())!, "utf8") };
}

/** The focused element's accessible name, as far as these buttons and headings need. */
const focused = (page: Page) =>
  page.evaluate(() => {
    const el = (
      globalThis as unknown as {
        document: { activeElement: { getAttribute(n: string): string | null; textContent: string | null } | null };
      }
    ).document.activeElement;
    return el?.getAttribute("aria-label") ?? el?.textContent?.trim() ?? "";
  });

/** What the builder's controls hold, to compare two pages. */
const formOf = (page: Page) =>
  page.locator('form[aria-label="Build a report"]').evaluate((form) => {
    const f = form as unknown as { elements: ArrayLike<{ name: string; value: string; type: string; checked: boolean }> };
    const out: Record<string, string[]> = {};
    for (const el of Array.from(f.elements)) {
      if (!el.name || ((el.type === "checkbox" || el.type === "radio") && !el.checked)) continue;
      (out[el.name] ??= []).push(el.value);
    }
    return out;
  });

describe("the Reports page", () => {
  it("opens a Tasks search, previews the seeded tasks and exports exactly them as CSV through the browser, the key never in a URL", async () => {
    const seeded = await seed();
    const { page, errors, urls } = await open();
    // A search on the Tasks page opens here with the same filters.
    await page.goto(`${url}/tasks?queue=${seeded.queue}`);
    await page.getByRole("link", { name: "Export these tasks as a report" }).click();
    await page.waitForURL(/\/reports\?/);
    expect(await page.getByLabel("Queue", { exact: true }).inputValue()).toBe(seeded.queue);
    await page.getByLabel("payload", { exact: true }).check();
    await page.getByRole("button", { name: "Preview" }).click();
    await page.waitForURL(new RegExp(`queue=${seeded.queue}`));
    await expect.poll(() => previewRows(page).count(), { timeout: 10_000 }).toBe(seeded.status.size);
    expect(await page.locator('table[aria-label="Report preview"] th').allTextContents()).toEqual(COLUMNS);
    const ids = await column(page, "id");
    expect(new Set(ids)).toEqual(new Set(seeded.status.keys()));
    expect(await column(page, "status")).toEqual(ids.map((id) => seeded.status.get(id)));
    await expect(page.getByTestId("preview-summary").textContent()).resolves.toMatch(/All 6 rows/);

    const { download, text } = await exportFile(page, "Export CSV");
    expect(download.suggestedFilename()).toMatch(/^edgeq-report-\d{4}-\d{2}-\d{2}\.csv$/);
    expect(text.endsWith("\r\n")).toBe(true);
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual(COLUMNS);
    expect(rows).toHaveLength(seeded.status.size);
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set(seeded.status.keys())); // none missing, none extra, none twice
    for (const r of rows) {
      const cell = Object.fromEntries(COLUMNS.map((c, i) => [c, r[i]]));
      expect(cell.status).toBe(seeded.status.get(cell.id));
      expect(cell.queue).toBe(seeded.queue);
      const name = seeded.name.get(cell.id)!;
      expect(cell.name).toBe(name.startsWith("=") ? `'${name}` : name);
      expect(JSON.parse(cell.payload)).toEqual(seeded.payload.get(cell.id));
      expect(cell.workerId).toBe(cell.status === "completed" ? "w-reports" : "");
    }
    await page.getByText("Exported 6 rows as edgeq-report-").waitFor(); // the line break inside a quoted name is not a row
    for (const u of urls) expect(u).not.toContain(fixture.stack.token);
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it("grouped: one row per status with its count, in the preview and in a JSON export; the address holds the builder", async () => {
    const seeded = await seed();
    const counts = { completed: 3, cancelled: 1, pending: 2 };
    const { page, errors } = await open();
    await page.getByLabel("Queue", { exact: true }).fill(seeded.queue);
    await page.getByLabel("completed", { exact: true }).check();
    await page.getByLabel("cancelled", { exact: true }).check();
    await page.getByLabel("pending", { exact: true }).check();
    await page.getByLabel("Group by").selectOption("status");
    await page.getByLabel("JSON", { exact: true }).check();
    await page.getByRole("button", { name: "Preview" }).click();
    await page.waitForURL(/groupBy=status/);
    await page.locator('tr[data-key="completed"]').waitFor();
    expect(await previewRows(page).count()).toBe(3);
    for (const [s, n] of Object.entries(counts))
      expect(await page.locator(`tr[data-key="${s}"] td[data-column="count"]`).textContent()).toBe(String(n));
    expect(await page.locator('tr[data-key="completed"] td[data-column="runP50"]').textContent()).toMatch(/^\d+$/);

    const { download, text } = await exportFile(page, "Export JSON");
    expect(download.suggestedFilename()).toMatch(/^edgeq-report-\d{4}-\d{2}-\d{2}\.json$/);
    const groups = JSON.parse(text) as { status: string; count: number }[];
    expect(Object.fromEntries(groups.map((g) => [g.status, g.count]))).toEqual(counts);
    await page.getByText("Exported 3 groups as edgeq-report-").waitFor();

    // The address is the report: another tab opened on it shows the same form, and the same groups.
    const search = new URL(page.url()).searchParams;
    expect(search.get("fields")).toBe("id,queue,name,status,priority,attempts,workerId,createdAt,finishedAt,waitMs,runMs");
    expect(Object.fromEntries([...search].filter(([k]) => k !== "fields"))).toEqual({
      queue: seeded.queue,
      status: "pending,completed,cancelled",
      groupBy: "status",
      format: "json",
    });
    const shared = await open(`${new URL(page.url()).pathname}${new URL(page.url()).search}`);
    await shared.page.locator('tr[data-key="completed"]').waitFor();
    expect(await formOf(shared.page)).toEqual(await formOf(page));
    expect(await formOf(page)).toMatchObject({
      queue: [seeded.queue],
      groupBy: ["status"],
      format: ["json"],
      status: ["pending", "completed", "cancelled"],
    });
    expect(errors.concat(shared.errors)).toEqual([]);
    await shared.page.close();
    await page.close();
  }, 90_000);

  it("saves a report, keeps it across a reload, loads it into the form and deletes it after asking", async () => {
    const seeded = await seed();
    const name = `failed and done ${seeded.queue}`;
    const { page, errors } = await open();
    await page.getByLabel("Queue", { exact: true }).fill(seeded.queue);
    await page.getByLabel("Group by").selectOption("status");
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByRole("button", { name: "Save report" }).click();
    await page
      .getByRole("status")
      .filter({ hasText: `Saved “${name}”.` })
      .waitFor();
    const saved = (await call("GET", "/reports/definitions")).items.find((d: { name: string }) => d.name === name);
    expect(saved.report).toMatchObject({ filters: { queue: seeded.queue }, groupBy: "status", format: "csv" });

    await page.goto(`${url}/reports`);
    expect(await page.getByLabel("Queue", { exact: true }).inputValue()).toBe("");
    const item = page.locator(`li[data-definition="${saved.id}"]`);
    await item.getByRole("button", { name: `Load ${name}` }).click();
    await page.waitForURL(/groupBy=status/);
    expect(await page.getByLabel("Queue", { exact: true }).inputValue()).toBe(seeded.queue);
    expect(await page.getByLabel("Group by").inputValue()).toBe("status");
    await page.locator('tr[data-key="completed"] td[data-column="count"]', { hasText: "3" }).waitFor();

    // Delete asks first, by keyboard alone: Enter on Delete moves to "Keep it", which keeps it and goes back to Delete.
    await item.getByRole("button", { name: `Delete ${name}` }).focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => focused(page)).toBe("Keep it");
    await page.keyboard.press("Enter");
    await expect.poll(() => focused(page)).toBe(`Delete ${name}`);
    await page.keyboard.press("Enter");
    await expect.poll(() => focused(page)).toBe("Keep it");
    await page.keyboard.press("Shift+Tab");
    expect(await focused(page)).toBe(`Yes, delete “${name}”`);
    await page.keyboard.press("Enter");
    await item.waitFor({ state: "detached" });
    await expect.poll(() => focused(page)).toBe("Saved reports");
    expect((await call("GET", "/reports/definitions")).items.some((d: { id: string }) => d.id === saved.id)).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it("a key without the manage permission previews, and its refused save is said readably", async () => {
    const seeded = await seed();
    const { key } = await call("POST", "/keys", { role: "read-only", name: "reports-reader" });
    keyed = await Dashboard.start(fixture.stack.url, fixture.ports[0]);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${keyed.url}/reports?fields=id,status&queue=${seeded.queue}`);
    await page.getByLabel("API", { exact: true }).fill(fixture.stack.url);
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => previewRows(page).count(), { timeout: 10_000 }).toBe(seeded.status.size);
    await page.getByLabel("Name", { exact: true }).fill("not allowed");
    await page.getByRole("button", { name: "Save report" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toMatch(
      /read-only role may not do this \(it needs the manage permission\)/,
    );
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it("a long export shows its progress and can be cancelled: no file, and it says so; a report without fields is refused on the page", async () => {
    const seeded = await seed();
    const { page, errors } = await open(`/reports?fields=id,status&queue=${seeded.queue}`);
    await expect.poll(() => previewRows(page).count(), { timeout: 10_000 }).toBe(seeded.status.size);
    // The export's answer is held back (the preview's, with its small limit, goes through), so it is still running when Cancel is pressed.
    let held: Route | null = null;
    await page.route("**/api/v1/reports", (route) => {
      const body = route.request().method() === "POST" ? route.request().postDataJSON() : null;
      if (body && body.limit === undefined) held = route;
      else route.continue();
    });
    const downloads: Download[] = [];
    page.on("download", (d) => downloads.push(d));
    await page.getByRole("button", { name: "Export CSV" }).click();
    await page.getByText(/Exporting… 0 rows so far/).waitFor();
    await until(async () => held !== null);
    await page.getByRole("button", { name: "Cancel export" }).click();
    await page.getByText("Export cancelled; no file was saved.").waitFor();
    expect(await page.getByRole("button", { name: "Export CSV" }).isEnabled()).toBe(true);
    await (held as Route | null)?.abort().catch(() => undefined);
    expect(downloads).toEqual([]);
    // A report with no field is refused on the page, the form kept as it is.
    await page.unroute("**/api/v1/reports");
    const before = page.url();
    await page.getByLabel("id", { exact: true }).uncheck();
    await page.getByLabel("status", { exact: true }).uncheck();
    await page.getByRole("button", { name: "Preview" }).click();
    await page.getByRole("alert").filter({ hasText: "Pick at least one field." }).waitFor();
    expect(page.url()).toBe(before);
    expect(await page.getByLabel("id", { exact: true }).isChecked()).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it("fits a phone (wide tables scroll in their own box) and leaves a screenshot", async () => {
    const seeded = await seed();
    const { page, errors } = await open(`/reports?fields=${COLUMNS.join(",")},tags,result,error&queue=${seeded.queue}`);
    await expect.poll(() => previewRows(page).count(), { timeout: 10_000 }).toBe(seeded.status.size);
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await scrollsSideways(page)).toBe(false);
    await page.getByLabel("Group by").selectOption("workerId");
    await page.getByRole("button", { name: "Preview" }).click();
    // Three ran on w-reports; the three that never ran have no worker: their group's key is empty.
    await page.locator('tr[data-key="w-reports"] td[data-column="count"]', { hasText: "3" }).waitFor();
    expect(await page.locator('tr[data-key=""]').textContent()).toMatch(/^\(none\)3/);
    expect(await scrollsSideways(page)).toBe(false);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${url}/reports?fields=${COLUMNS.join(",")}&queue=${seeded.queue}`);
    await expect.poll(() => previewRows(page).count(), { timeout: 10_000 }).toBe(seeded.status.size);
    await screenshot(page, "reports");
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);
});
