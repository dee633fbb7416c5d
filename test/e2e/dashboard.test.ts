import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveDashboard } from "../../scripts/dashboard.mjs";
import { freePort, launchChromium, LocalStack } from "./stack";

/**
 * The dashboard (SvelteKit build from `npm run build:app`, on Pages' local
 * server as `npm start` serves it) in Debian's Chromium against the real local
 * stack: signed in by the local stack, or by a key; the overview follows the
 * live socket.
 */

let stack: LocalStack;
let browser: Browser;
const dashboards: { child: ChildProcess; dir: string }[] = [];

/** Ports for the dashboards, known before the API starts: its CORS origins name them. */
const ports: number[] = [];

async function dashboard(token?: string): Promise<string> {
  const port = ports[dashboards.length];
  const dir = mkdtempSync(join(tmpdir(), "edgeq-dash-"));
  const child = serveDashboard({ port, api: stack.url, token, dir, stdio: "ignore" });
  dashboards.push({ child, dir });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(url)).ok) return url;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the dashboard did not answer on ${url}`);
}

/** The dashboard as `npm start` serves it: signed in by the local stack (one, shared by the tests). */
let local: Promise<string> | null = null;
const localDashboard = () => (local ??= dashboard(stack.token));

const call = (method: string, path: string, body?: unknown): Promise<any> =>
  fetch(`${stack.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) }).then((r) => r.json());

beforeAll(async () => {
  ports.push(await freePort(), await freePort());
  stack = new LocalStack({ EDGEQ_CORS_ORIGINS: ports.map((p) => `http://127.0.0.1:${p}`).join(",") });
  await stack.start();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const d of dashboards) {
    try {
      process.kill(-d.child.pid!, "SIGTERM");
    } catch {}
    rmSync(d.dir, { recursive: true, force: true });
  }
  await stack?.stop();
});

describe("the dashboard", () => {
  it("on the local stack it is signed in; the overview goes live and shows an enqueue within a second", async () => {
    const url = await localDashboard();
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
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("anywhere else it asks for a key, refuses a bad one readably, keeps a good one in session storage, never in a URL", async () => {
    const url = await dashboard();
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
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem("edgeq.session"))).toContain(stack.token);
    for (const u of urls) expect(u).not.toContain(stack.token);
    await page.close();
  }, 60_000);

  it("tasks: search by text and status, the view in the URL (shared, it shows the same)", async () => {
    const url = await localDashboard();
    const queue = `dash-${Math.random().toString(36).slice(2, 8)}`;
    const word = `parcel${Math.random().toString(36).slice(2, 8)}`;
    const made = await call("POST", `/queues/${queue}/tasks/batch`, { tasks: [{ name: "ship", payload: { note: word } }, { name: "ship", payload: { note: word } }, { name: "ship", payload: { note: "other" } }] });
    await call("POST", `/tasks/${made.tasks[0].id}/cancel`);
    const page = await browser.newPage();
    await page.goto(`${url}/tasks`);
    await page.getByLabel("Text").fill(word);
    await page.getByLabel("Queue").fill(queue);
    // History lags the live queue by about a second: search until both arrive.
    for (let i = 0; i < 20 && (await page.locator("tr[data-task]").count()) < 2; i++) {
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForTimeout(250);
    }
    expect(await page.locator("tr[data-task]").count()).toBe(2);
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
    await shared.close();
    await page.close();
  }, 60_000);
});
