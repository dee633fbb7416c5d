import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dashboard, dashboardFixture, screenshot, type LocalStack } from "./stack";

/**
 * The dashboard (SvelteKit build from `npm run build:app`, on Pages' local
 * server as `npm start` serves it) in Debian's Chromium against the real local
 * stack: signed in by the local stack, or by a key; the overview follows the
 * live socket.
 */

let fixture: Awaited<ReturnType<typeof dashboardFixture>>;
let stack: LocalStack;
let browser: Browser;
let url: string;
let keyed: Dashboard | null = null;
const call = (method: string, path: string, body?: unknown) => fixture.call(method, path, body);

beforeAll(async () => {
  fixture = await dashboardFixture(1);
  ({ stack, browser } = fixture);
  url = fixture.dashboard.url;
}, 120_000);

afterAll(async () => {
  await keyed?.stop();
  await fixture?.close();
});

describe("the dashboard", () => {
  it("on the local stack it is signed in; the overview goes live and shows an enqueue within a second", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    await page.getByText("Live", { exact: true }).waitFor({ timeout: 15_000 });
    const queue = `dash-${Math.random().toString(36).slice(2, 8)}`;
    const before = Date.now();
    await call("POST", `/queues/${queue}/tasks`, { name: "hello" });
    await page.locator(`tr[data-queue="${queue}"] td[data-status="pending"]`, { hasText: "1" }).waitFor({ timeout: 5_000 });
    const ms = Date.now() - before;
    expect(ms).toBeLessThan(1_000);
    // It runs, and completes: the row and the counters follow.
    const { leases } = await call("POST", `/queues/${queue}/leases`, { workerId: "w", max: 1 });
    await call("POST", `/tasks/${leases[0].task.id}/complete`, { leaseToken: leases[0].leaseToken });
    await page.locator(`tr[data-queue="${queue}"] td[data-status="completed"]`, { hasText: "1" }).waitFor({ timeout: 5_000 });
    expect(Number(await page.getByTestId("completed").textContent())).toBeGreaterThanOrEqual(1);
    await screenshot(page, "overview");
    await page.emulateMedia({ colorScheme: "dark" });
    expect(
      await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.documentElement).backgroundColor),
    ).toBe("rgb(15, 18, 22)");
    await screenshot(page, "overview-dark");
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("anywhere else it asks for a key, refuses a bad one readably, keeps a good one in session storage, never in a URL", async () => {
    keyed = await Dashboard.start(stack.url, fixture.ports[0]);
    const url = keyed.url;
    const page = await browser.newPage();
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    page.on("websocket", (ws) => urls.push(ws.url()));
    await page.goto(url);
    await page.getByLabel("API", { exact: true }).fill(stack.url);
    await page.getByLabel("API key").fill("eq_not_a_real_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toMatch(/credential|key|unauthorized/i);
    await page.getByLabel("API key").fill(stack.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("Live", { exact: true }).waitFor({ timeout: 15_000 });
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem("edgeq.session"),
      ),
    ).toContain(stack.token);
    for (const u of urls) expect(u).not.toContain(stack.token);
    await page.close();
  }, 60_000);

  it("tasks: search by text and status, the view in the URL (shared, it shows the same)", async () => {
    const queue = `dash-${Math.random().toString(36).slice(2, 8)}`;
    const word = `parcel${Math.random().toString(36).slice(2, 8)}`;
    const made = await call("POST", `/queues/${queue}/tasks/batch`, {
      tasks: [
        { name: "ship", payload: { note: word } },
        { name: "ship", payload: { note: word } },
        { name: "ship", payload: { note: "other" } },
      ],
    });
    await call("POST", `/tasks/${made.tasks[0].id}/cancel`);
    const page = await browser.newPage();
    await page.goto(`${url}/tasks`);
    await page.getByLabel("Text").fill(word);
    await page.getByLabel("Queue").fill(queue);
    // The rows by id, so a failure names what was shown.
    const shown = async () =>
      (await page.locator("tr[data-task]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-task")))).sort();
    const wanted = [made.tasks[0].id, made.tasks[1].id].sort();
    // History lags the live queue by about a second: search until both arrive. (Before the first
    // search answers, the page shows every task history has, other tests' too: not a count to wait for.)
    for (let i = 0; i < 20; i++) {
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForURL(/\?q=/);
      await page.locator('table[aria-busy="false"], p:text("No task matches.")').first().waitFor(); // answered, rows or none
      if (JSON.stringify(await shown()) === JSON.stringify(wanted)) break;
      await page.waitForTimeout(250);
    }
    expect(await shown()).toEqual(wanted);
    expect(new URL(page.url()).search).toBe(`?q=${word}&queue=${queue}`);
    await page.getByLabel("cancelled").check();
    await page.getByRole("button", { name: "Search" }).click();
    await page.waitForURL(/status=cancelled/);
    await page.locator('table[aria-busy="false"]').waitFor(); // the new answer, not the last one still shown
    await expect.poll(() => page.locator("tr[data-task]").count(), { timeout: 5_000 }).toBe(1);
    await page.locator(`tr[data-task="${made.tasks[0].id}"]`).waitFor();
    // The address is the view: another tab opened on it shows the same.
    const shared = await browser.newPage();
    await shared.goto(page.url());
    await shared.locator(`tr[data-task="${made.tasks[0].id}"]`).waitFor();
    await expect.poll(() => shared.locator("tr[data-task]").count(), { timeout: 5_000 }).toBe(1);
    expect(await shared.getByLabel("cancelled").isChecked()).toBe(true);
    await screenshot(shared, "tasks");
    await shared.close();
    await page.close();
  }, 60_000);
});
