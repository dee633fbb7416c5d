import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardFixture, fresh, screenshot, scrollsSideways, until } from "./stack";

/**
 * The dashboard's Analytics page in Debian's Chromium against the real local
 * stack: tasks made, run, completed and failed on a queue of their own show in
 * the trend lines, the distribution bars and the performance table; the tabs
 * work from the keyboard, the URL holds the view, a phone never scrolls
 * sideways.
 */

let fixture: Awaited<ReturnType<typeof dashboardFixture>>;
let browser: Browser;
let url: string;
const queue = fresh("analytics");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 800 };
const made = { enqueued: 6, completed: 3, failed: 2, pending: 1 };
/** How long to wait for the page to catch up (the machine may be busy). */
const POLL = { timeout: 15_000 };
let worker: string;

const call = (method: string, path: string, body?: unknown) => fixture.call(method, path, body);
const sumOf = (items: Record<string, number>[], key: string) => items.reduce((n, i) => n + i[key], 0);

/** A page that records the errors it throws. */
async function open(
  size: { width: number; height: number },
  colorScheme: "light" | "dark" = "light",
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: size, colorScheme });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return { page, errors };
}

const view = (tab: string, q = queue) => `${url}/analytics?tab=${tab}&range=24h&bucket=hour&queue=${q}`;
const selected = (page: Page) => page.locator('[role="tab"][aria-selected="true"]').textContent();
const tabOf = (page: Page) => new URL(page.url()).searchParams.get("tab");

beforeAll(async () => {
  fixture = await dashboardFixture();
  browser = fixture.browser;
  url = fixture.dashboard.url;
  // Six tasks of three names and bands; five run: three complete, two fail for good, one waits.
  const tasks = [
    ...Array.from({ length: 3 }, () => ({ name: "resize", priority: 9 })),
    ...Array.from({ length: 2 }, () => ({ name: "email", priority: 5 })),
    { name: "report", priority: 2 },
  ];
  await call("POST", `/queues/${queue}/tasks/batch`, { tasks });
  worker = (await call("POST", "/workers", { name: "analytics-worker", queues: [queue] })).id;
  const { leases } = await call("POST", `/queues/${queue}/leases`, { workerId: worker, max: 5 });
  expect(leases).toHaveLength(5);
  for (const l of leases.slice(0, 3)) await call("POST", `/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken });
  for (const l of leases.slice(3))
    await call("POST", `/tasks/${l.task.id}/fail`, { leaseToken: l.leaseToken, error: { message: "boom" }, retryable: false });
  await call("POST", `/workers/${worker}/heartbeat`, { currentTasks: [], completed: 3, failed: 2, busyMs: 400 });
  // History reaches D1 about a second later: wait until the API counts everything.
  const from = new Date(Date.now() - 3_600_000).toISOString();
  await until(async () => {
    const t = await call("GET", `/analytics/trends?from=${from}&bucket=hour&queue=${queue}`);
    const d = await call("GET", `/analytics/distributions?from=${from}&queue=${queue}`);
    return (
      sumOf(t.items, "enqueued") === made.enqueued &&
      sumOf(t.items, "completed") === made.completed &&
      sumOf(t.items, "failed") === made.failed &&
      d.status.completed === made.completed &&
      d.status.failed === made.failed
    );
  });
}, 120_000);

afterAll(async () => {
  await fixture?.close();
});

describe("the analytics page", () => {
  it("trends: a line per series with the queue's counts, and the same counts in the table", async () => {
    const { page, errors } = await open(DESKTOP);
    await page.goto(view("trends"));
    const counts = page.getByRole("img", { name: /^Tasks enqueued, completed and failed per hour/ });
    await counts.waitFor();
    expect(await counts.getAttribute("aria-label")).toContain(
      `${made.enqueued} enqueued, ${made.completed} completed, ${made.failed} failed`,
    );
    expect(await counts.locator("title").textContent()).toMatch(/^Tasks enqueued/);
    for (const series of ["enqueued", "completed", "failed"]) {
      const d = (await counts.locator(`path[data-series="${series}"]`).getAttribute("d")) ?? "";
      // A line across the day's buckets that rises where the tasks are: more than one height.
      const ys = [...d.matchAll(/[ML][\d.-]+,([\d.-]+)/g)].map((m) => m[1]);
      expect(ys.length).toBeGreaterThan(20);
      expect(new Set(ys).size).toBeGreaterThan(1);
    }
    expect(await counts.locator("g.axis text").count()).toBeGreaterThan(3);
    // Wait and run time: p50, p95, p99 each.
    for (const name of [/^Wait time per hour/, /^Run time per hour/]) {
      expect(await page.getByRole("img", { name }).locator("path[data-series]").count()).toBe(3);
    }
    expect(await page.getByTestId("enqueued").textContent()).toBe(String(made.enqueued));
    await page.getByText("Show as table").click();
    const table = page.getByRole("table", { name: "Tasks per hour" });
    for (const key of ["enqueued", "completed", "failed"] as const) {
      expect(await table.locator(`tfoot [data-total="${key}"]`).textContent()).toBe(String(made[key]));
    }
    expect(await table.locator("tbody tr").count()).toBeGreaterThanOrEqual(1);
    await screenshot(page, "analytics-trends");
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("tabs: arrow keys move between them, the URL holds the tab, the back button returns; distributions and performance show the queue", async () => {
    const { page, errors } = await open(DESKTOP);
    await page.goto(view("trends"));
    await page.getByRole("tab", { name: "Trends" }).focus();
    await page.keyboard.press("ArrowRight");
    await page.waitForURL(/tab=distributions/);
    expect(await selected(page)).toBe("Distributions");
    expect(
      await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id),
    ).toBe("tab-distributions");
    expect(new URL(page.url()).searchParams.get("queue")).toBe(queue);

    const status = page.locator('[data-field="status"]');
    for (const [key, n] of [
      ["completed", made.completed],
      ["failed", made.failed],
      ["pending", made.pending],
    ] as const) {
      await expect.poll(() => status.locator(`li[data-key="${key}"]`).getAttribute("data-count"), POLL).toBe(String(n));
      expect(await status.locator(`li[data-key="${key}"] .count`).textContent()).toBe(String(n));
    }
    expect(await page.locator(`[data-field="queue"] li[data-key="${queue}"]`).getAttribute("data-count")).toBe(String(made.enqueued));
    expect(await page.locator('[data-field="band"] li[data-key="high"]').getAttribute("data-count")).toBe("3");
    expect(await page.locator('[data-field="name"] li[data-key="resize"]').getAttribute("data-count")).toBe("3");
    expect(await page.locator(`[data-field="worker"] li[data-key="${worker}"]`).getAttribute("data-count")).toBe("5");
    // A bar's length is its share of the largest: completed (3) is longer than failed (2).
    const width = (key: string) =>
      status
        .locator(`li[data-key="${key}"] .bar`)
        .evaluate((e) => (e as unknown as { getBoundingClientRect(): { width: number } }).getBoundingClientRect().width);
    expect(await width("completed")).toBeGreaterThan(await width("failed"));
    await screenshot(page, "analytics-distributions");

    await page.keyboard.press("ArrowRight");
    await page.waitForURL(/tab=performance/);
    expect(await selected(page)).toBe("Performance");
    const row = page.locator(`tr[data-queue="${queue}"]`);
    await row.waitFor();
    expect(await row.locator('td[data-status="pending"]').textContent()).toBe(String(made.pending));
    expect(await row.locator('td[data-rate="dead-letter"]').textContent()).toBe("40%"); // 2 of 5 finished
    const workerRow = page.locator(`tr[data-worker="${worker}"]`);
    expect(await workerRow.locator("th").textContent()).toBe("analytics-worker");
    expect(await workerRow.locator("td").nth(1).textContent()).toMatch(/%$/);
    await expect.poll(() => page.getByTestId("cache-hit-rate").textContent(), POLL).toMatch(/^(<)?\d+(\.\d)?%$/);
    const cache = await call("GET", "/analytics/cache");
    expect(cache.hits + cache.misses).toBeGreaterThan(0);
    expect(Number(await page.getByTestId("cache-misses").textContent())).toBeGreaterThan(0);
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.locator('.performance[aria-busy="false"]').waitFor();
    await screenshot(page, "analytics-performance");

    // Wrapping, Home and End; then the back button walks the tabs back.
    await page.getByRole("tab", { name: "Performance" }).focus();
    await page.keyboard.press("ArrowRight");
    await page.waitForURL(/tab=trends/);
    await page.keyboard.press("End");
    await page.waitForURL(/tab=performance/);
    await page.keyboard.press("ArrowLeft");
    await page.waitForURL(/tab=distributions/);
    await page.goBack();
    await page.waitForURL(/tab=performance/);
    expect(await selected(page)).toBe("Performance");
    await page.goBack();
    await page.waitForURL(/tab=trends/);
    expect(await selected(page)).toBe("Trends");
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("a range, bucket or queue chosen goes into the URL; a queue with no tasks says so; one that does not exist is a readable error", async () => {
    const { page, errors } = await open(DESKTOP);
    await page.goto(view("trends"));
    await page.getByRole("img", { name: /^Tasks enqueued/ }).waitFor();
    await page.getByLabel("Range", { exact: true }).selectOption("1h");
    await page.waitForURL(/range=1h/);
    expect(tabOf(page)).toBe("trends");
    expect(new URL(page.url()).searchParams.get("bucket")).toBe("minute");
    await page.getByRole("img", { name: /^Tasks enqueued, completed and failed per minute/ }).waitFor();
    await page.getByLabel("Per", { exact: true }).selectOption("hour");
    await page.waitForURL(/bucket=hour/);
    await page.getByRole("img", { name: /^Tasks enqueued, completed and failed per hour/ }).waitFor();

    // Changed again before the answer came: the older question is cancelled and its answer never shows.
    await page.route(/\/analytics\/trends\?.*bucket=minute/, async (route) => {
      await new Promise((r) => setTimeout(r, 1_000));
      await route.continue().catch(() => undefined);
    });
    const asked = page.waitForRequest((r) => r.url().includes("bucket=minute"));
    const cancelled = page.waitForEvent("requestfailed", (r) => r.url().includes("bucket=minute"));
    await page.getByLabel("Range", { exact: true }).selectOption("1h");
    await asked;
    await page.getByLabel("Range", { exact: true }).selectOption("30d");
    await page.waitForURL(/range=30d/);
    await cancelled;
    await page.getByRole("img", { name: /^Tasks enqueued, completed and failed per day/ }).waitFor();
    expect(await page.getByRole("img", { name: /per minute/ }).count()).toBe(0);
    await page.unroute(/\/analytics\/trends/);

    const none = fresh("nothing");
    await page.getByLabel("Queue", { exact: true }).fill(none);
    await page.getByLabel("Queue", { exact: true }).press("Enter");
    await page.waitForURL(new RegExp(`queue=${none}`));
    await expect.poll(() => page.getByTestId("empty").textContent(), POLL).toBe("No tasks in this range.");
    await page.getByRole("tab", { name: "Performance" }).click();
    await page.waitForURL(/tab=performance/);
    await expect.poll(() => page.getByRole("alert").textContent(), POLL).toMatch(/queue|not found/i);
    expect(await page.getByRole("alert").textContent()).not.toMatch(/object|undefined/);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("on a phone (375 px, dark) no tab scrolls sideways", async () => {
    const { page, errors } = await open(PHONE, "dark");
    await page.goto(view("trends"));
    await page.getByRole("img", { name: /^Tasks enqueued/ }).waitFor();
    await page.getByText("Show as table").click();
    await page.getByRole("table", { name: "Tasks per hour" }).waitFor();
    expect(await scrollsSideways(page)).toBe(false);
    await screenshot(page, "analytics-phone");
    await page.getByRole("tab", { name: "Distributions" }).click();
    await page.locator('[data-field="status"] li[data-key="completed"]').waitFor();
    expect(await scrollsSideways(page)).toBe(false);
    await page.getByRole("tab", { name: "Performance" }).click();
    await page.locator(`tr[data-queue="${queue}"]`).waitFor();
    expect(await scrollsSideways(page)).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("performance asks again every 10 s, and at once when the page is shown again", async () => {
    const { page, errors } = await open(DESKTOP);
    await page.clock.install();
    await page.goto(view("performance"));
    await page.locator(`tr[data-queue="${queue}"]`).waitFor();
    const asked = () => page.waitForRequest((r) => r.url().includes("/analytics/performance"), POLL);
    let next = asked();
    await page.clock.runFor(10_000);
    await next;
    next = asked();
    await page.evaluate(() =>
      (globalThis as unknown as { document: { dispatchEvent(e: unknown): void } }).document.dispatchEvent(new Event("visibilitychange")),
    );
    await next;
    await page.locator('.performance[aria-busy="false"]').waitFor();
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
