import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardFixture, fresh, screenshot, scrollsSideways } from "./stack";

/**
 * The dashboard's Task, Dead letters, Queues and Workers pages in Debian's
 * Chromium against the real local stack: what they show, and that their
 * actions (cancel, retry, delete, bulk retry, pause, purge, settings) do what
 * the API says, checked over the API.
 */

let fixture: Awaited<ReturnType<typeof dashboardFixture>>;
let browser: Browser;
let url: string;
const call = (method: string, path: string, body?: unknown) => fixture.call(method, path, body);
const pageErrors: string[] = [];

beforeAll(async () => {
  fixture = await dashboardFixture();
  ({ browser } = fixture);
  url = fixture.dashboard.url;
}, 120_000);

afterAll(async () => {
  await fixture?.close();
});

async function open(path: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.on("pageerror", (e) => pageErrors.push(`${path}: ${e.message}`));
  await page.goto(`${url}${path}`);
  return page;
}

/** Clicks the action's button, then confirms in its dialog. */
async function confirmed(page: Page, label: string) {
  await page.getByRole("button", { name: label, exact: true }).first().click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await dialog.getByRole("button", { name: label, exact: true }).click();
  await dialog.waitFor({ state: "hidden" });
}

async function failedTasks(queue: string, n: number): Promise<string[]> {
  await call("POST", `/queues/${queue}/tasks/batch`, {
    tasks: Array.from({ length: n }, (_, i) => ({ name: `broken-${i}`, maxAttempts: 1 })),
  });
  const { leases } = await call("POST", `/queues/${queue}/leases`, { workerId: "w-e2e", max: n });
  for (const l of leases) await call("POST", `/tasks/${l.task.id}/fail`, { leaseToken: l.leaseToken, error: { message: "card declined" } });
  return leases.map((l: { task: { id: string } }) => l.task.id);
}

describe("dashboard pages", () => {
  it("task: payload and timeline; cancel and retry from the UI, with confirmation; the status follows the task live; delete", async () => {
    const queue = fresh("dash-task");
    const task = await call("POST", `/queues/${queue}/tasks`, {
      name: "resize-image",
      payload: { image: "cat.png", width: 640 },
      tags: ["media"],
    });
    const page = await open(`/tasks/${task.id}`);
    await page.getByRole("heading", { name: "resize-image" }).waitFor();
    expect(await page.getByTestId("status").textContent()).toBe("pending");
    expect(await page.locator("pre").first().textContent()).toContain('"image": "cat.png"');
    // History (the timeline) arrives about a second after each change.
    await page.locator('[data-event="enqueued"]').waitFor({ timeout: 15_000 });

    // Escape closes the dialog and nothing happens.
    await page.getByRole("button", { name: "Cancel", exact: true }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    expect((await call("GET", `/tasks/${task.id}`)).status).toBe("pending");

    await confirmed(page, "Cancel");
    await page
      .getByTestId("status")
      .filter({ hasText: /^cancelled$/ })
      .waitFor();
    expect((await call("GET", `/tasks/${task.id}`)).status).toBe("cancelled");
    await confirmed(page, "Retry");
    await page
      .getByTestId("status")
      .filter({ hasText: /^pending$/ })
      .waitFor();
    expect((await call("GET", `/tasks/${task.id}`)).status).toBe("pending");
    await page.locator('[data-event="retried"]').waitFor({ timeout: 15_000 });
    expect(await page.locator("[data-event]").evaluateAll((els) => els.map((e) => e.getAttribute("data-event")))).toEqual([
      "enqueued",
      "cancelled",
      "retried",
    ]);

    // A worker runs it: the page follows without a reload.
    const { leases } = await call("POST", `/queues/${queue}/leases`, { workerId: "w-e2e", max: 1 });
    await page
      .getByTestId("status")
      .filter({ hasText: /^running$/ })
      .waitFor({ timeout: 5_000 });
    await call("POST", `/tasks/${task.id}/complete`, {
      leaseToken: leases[0].leaseToken,
      result: { url: "https://cdn.example/cat-640.png" },
    });
    await page
      .getByTestId("status")
      .filter({ hasText: /^completed$/ })
      .waitFor({ timeout: 5_000 });
    await page.getByTestId("result").filter({ hasText: "cat-640.png" }).waitFor();
    await page.locator('[data-event="completed"]').waitFor({ timeout: 15_000 });
    await screenshot(page, "task");

    await confirmed(page, "Delete");
    await page.waitForURL(/\/tasks\?queue=/);
    // History still has it for about a second; the list says it was deleted and leaves it out.
    await page
      .getByRole("status")
      .filter({ hasText: `Deleted task ${task.id}.` })
      .waitFor();
    await page.locator('table[aria-busy="false"], p:has-text("No task matches.")').first().waitFor();
    expect(await page.locator(`tr[data-task="${task.id}"]`).count()).toBe(0);
    await expect(
      fetch(`${fixture.stack.url}/api/v1/tasks/${task.id}`, { headers: { authorization: `Bearer ${fixture.stack.token}` } }).then(
        (r) => r.status,
      ),
    ).resolves.toBe(404);
    await page.close();
  }, 90_000);

  it("task: an unknown id says so readably", async () => {
    const page = await open("/tasks/01M8JGEFGF7FJHSYMEQMQ66318.0.nowhere");
    await expect(page.getByRole("alert").textContent()).resolves.toMatch(/not exist|not found/i);
    await page.close();
  }, 30_000);

  it("dead letters: lists a queue's failed tasks with their errors; retry one selected, then all", async () => {
    const queue = fresh("dash-dead");
    const ids = await failedTasks(queue, 3);
    const page = await open(`/dead-letters?queue=${queue}`);
    await page.locator("tr[data-task]").nth(2).waitFor();
    expect(await page.locator("tr[data-task]").count()).toBe(3);
    expect(await page.locator("tbody").textContent()).toContain("card declined");
    await screenshot(page, "dead-letters");
    await page.getByLabel(`Select ${ids[0]}`).check();
    await page.getByRole("button", { name: "Retry selected (1)" }).click();
    await page.getByRole("status").filter({ hasText: "Retried 1 of 1" }).waitFor();
    await expect.poll(() => page.locator("tr[data-task]").count()).toBe(2);
    expect((await call("GET", `/tasks/${ids[0]}`)).status).toBe("pending");
    await confirmed(page, "Retry all");
    await page
      .getByRole("status")
      .filter({ hasText: `Retried 2 dead letters in ${queue}` })
      .waitFor();
    await page.getByText(`No failed task in ${queue}.`).waitFor();
    expect((await call("GET", `/queues/${queue}`)).counts).toEqual({ pending: 3 });
    await page.close();
  }, 60_000);

  it("queues: the list shows depth and state; a queue's page pauses, resumes, saves settings (refusing a bad value readably) and purges", async () => {
    const queue = fresh("dash-queue");
    await call("POST", `/queues/${queue}/tasks/batch`, { tasks: [{ name: "a" }, { name: "b" }, { name: "c", delayMs: 3_600_000 }] });
    const list = await open("/queues");
    const row = list.locator(`tr[data-queue="${queue}"]`);
    await row.waitFor();
    expect(await row.locator("td").nth(1).textContent()).toBe("2"); // pending
    await screenshot(list, "queues");
    await row.getByRole("link", { name: queue }).click();
    await list.waitForURL(new RegExp(`/queues/${queue}$`));
    const page = list;
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByTestId("state").filter({ hasText: "paused" }).waitFor();
    expect((await call("GET", `/queues/${queue}`)).settings.paused).toBe(true);
    await page.getByRole("button", { name: "Resume" }).click();
    await page.getByTestId("state").filter({ hasText: "running" }).waitFor();
    expect((await call("GET", `/queues/${queue}`)).settings.paused).toBe(false);

    await page.getByLabel("Concurrency, whole queue").fill("ten");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("alert").filter({ hasText: "Concurrency, whole queue must be a whole number." }).waitFor();
    await page.getByLabel("Concurrency, whole queue").fill("5");
    await page.getByLabel("Max attempts").fill("7");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("status").filter({ hasText: "Settings saved" }).waitFor();
    const saved = (await call("GET", `/queues/${queue}`)).settings;
    expect(saved).toMatchObject({ concurrency: 5, defaults: { maxAttempts: 7 } });
    // What the API refuses is said under the field's label.
    await page.getByLabel("Shards (may only grow)").fill("0");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page
      .getByRole("alert")
      .filter({ hasText: /^Shards: .*1/ })
      .waitFor();
    expect((await call("GET", `/queues/${queue}`)).settings.shards).toBe(1);
    await page.getByLabel("Shards (may only grow)").fill("1");

    await confirmed(page, "Purge");
    await page.getByRole("status").filter({ hasText: "Cancelled 3 pending and scheduled tasks" }).waitFor();
    expect((await call("GET", `/queues/${queue}`)).counts).toEqual({ cancelled: 3 });
    await screenshot(page, "queue");
    await page.close();
  }, 60_000);

  it("workers: active, idle and lost with what they run now", async () => {
    const queue = fresh("dash-work");
    const task = await call("POST", `/queues/${queue}/tasks`, { name: "encode" });
    const busy = await call("POST", "/workers", { name: "encoder-1", queues: [queue], concurrency: 4 });
    const idle = await call("POST", "/workers", { name: "encoder-2", queues: [queue] });
    await call("POST", `/queues/${queue}/leases`, { workerId: busy.id, max: 1 });
    await call("POST", `/workers/${busy.id}/heartbeat`, { currentTasks: [task.id], completed: 12, failed: 1, busyMs: 5000 });
    const page = await open("/workers");
    const row = page.locator(`tr[data-worker="${busy.id}"]`);
    await row.waitFor();
    expect(await row.locator("[data-status]").textContent()).toBe("active");
    expect(await row.getByRole("link", { name: task.id }).count()).toBe(1);
    expect(await page.locator(`tr[data-worker="${idle.id}"] [data-status]`).textContent()).toBe("idle");
    await page.getByLabel("idle").check();
    await expect.poll(() => page.locator(`tr[data-worker="${busy.id}"]`).count()).toBe(0);
    await page.getByLabel("all").check();
    await screenshot(page, "workers");
    await page.close();
  }, 60_000);

  it("every page fits a phone: no sideways scroll at 375 px, and the nav reaches every page", async () => {
    const queue = fresh("dash-phone");
    const [id] = await failedTasks(queue, 1);
    for (const path of [
      "/",
      "/tasks",
      `/tasks/${id}`,
      `/dead-letters?queue=${queue}`,
      "/queues",
      `/queues/${queue}`,
      "/workers",
      "/analytics",
      "/reports",
    ]) {
      const page = await open(path, { width: 375, height: 800 });
      await page.locator("main h1").first().waitFor();
      await page.waitForLoadState("networkidle");
      expect(await scrollsSideways(page), path).toBe(false);
      if (path === `/tasks/${id}`) await screenshot(page, "phone-task");
      await page.close();
    }
    const lost = await open("/no-such-page");
    await lost.getByRole("heading", { name: "Not found" }).waitFor();
    expect(await lost.getByText("There is no page at /no-such-page.").count()).toBe(1);
    await lost.close();
    const page = await open("/");
    for (const name of ["Tasks", "Dead letters", "Queues", "Workers", "Analytics", "Reports", "Overview"]) {
      await page.getByRole("navigation").getByRole("link", { name }).click();
      await page.locator("main h1", { hasText: name }).waitFor();
      expect(await page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
    }
    await page.close();
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
