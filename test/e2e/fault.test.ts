import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EdgeqClient } from "../../client/index";
import { LocalStack, recordFaults, sleep } from "./stack";

const stack = new LocalStack();
const dir = mkdtempSync(join(tmpdir(), "edgeq-fault-"));

beforeAll(() => stack.start(), 120_000);
afterAll(async () => {
  await stack.dispose();
  rmSync(dir, { recursive: true, force: true });
});

it(
  "1,000 tasks through 4 consumer processes, one SIGKILLed every 1.5 s: each task completed exactly once, none lost",
  { timeout: 180_000 },
  async () => {
    const edgeq = new EdgeqClient({ url: stack.url, token: stack.token });
    const queue = edgeq.queue("fault");
    const log = join(dir, "log");
    writeFileSync(log, "");
    // Short leases, so a killed consumer's tasks come back within 2 s; attempts to spare for repeated kills.
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ name: "effect", payload: { i }, timeoutMs: 2000, maxAttempts: 20 }));
    const made = await queue.addBulk(tasks);
    expect(new Set(made.map((t) => t.id)).size).toBe(1000);

    const consumer = () =>
      spawn(process.execPath, ["test/e2e/fixtures/fault-consumer.mjs", stack.url, stack.token, queue.name, log], { stdio: "ignore" });
    const live: ChildProcess[] = Array.from({ length: 4 }, consumer);
    let kills = 0;
    const deadline = Date.now() + 150_000;
    let lastKill = Date.now();
    try {
      while ((await queue.stats()).counts.completed !== 1000) {
        if (Date.now() > deadline) throw new Error(`not done: ${JSON.stringify((await queue.stats()).counts)}`);
        if (Date.now() - lastKill >= 1500) {
          const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0];
          victim.kill("SIGKILL");
          kills++;
          live.push(consumer());
          lastKill = Date.now();
        }
        await sleep(100);
      }
    } finally {
      for (const c of live) c.kill("SIGKILL");
    }

    const stats = await queue.stats();
    const lines = readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(" "));
    const ran = lines.filter((l) => l[0] === "ran");
    const done = lines.filter((l) => l[0] === "done");
    // Lost: not completed in the queue. Twice: more accepted completions than tasks (counted by the
    // shards; a consumer killed between the answer and its log line leaves no "done" line, so the log
    // cannot say what was lost, only what was completed twice).
    const accepted = stats.shards.reduce((n, s) => n + (s.totals.completed ?? 0), 0);
    const loggedTwice = done.length - new Set(done.map(([, id]) => id)).size;
    recordFaults("consumer-kills", {
      injected: kills,
      lost: made.length - (stats.counts.completed ?? 0),
      duplicated: Math.max(0, accepted - made.length) + loggedTwice,
      checked: made.length,
    });
    expect(stats.counts).toEqual({ completed: 1000 });
    // The shards counted exactly one accepted completion per task.
    expect(stats.shards.reduce((n, s) => n + (s.totals.completed ?? 0), 0)).toBe(1000);
    const runs = new Set(ran.map(([, id, token]) => `${id} ${token}`));
    // A fencing token is never handed to two runs, and every task ran at least once.
    expect(runs.size).toBe(ran.length);
    expect(new Set(ran.map(([, id]) => id)).size).toBe(1000);
    // No task had two completions accepted; each accepted one belongs to a run.
    const doneIds = done.map(([, id]) => id);
    expect(new Set(doneIds).size).toBe(doneIds.length);
    for (const [, id, token] of done) expect(runs.has(`${id} ${token}`)).toBe(true);
    // Fencing: a killed consumer revived with the token of a run that was superseded (its lease
    // expired and the task ran again) sends its late completion; it is refused and changes nothing.
    const completedBy = new Map(done.map(([, id, token]) => [id, token]));
    const superseded = ran.filter(([, id, token]) => completedBy.has(id) && completedBy.get(id) !== token).slice(0, 20);
    expect(superseded.length).toBeGreaterThan(0);
    for (const [, id, token] of superseded) {
      const late = await fetch(`${stack.url}/api/v1/tasks/${id}/complete`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
        body: JSON.stringify({ leaseToken: token, result: { late: true } }),
      });
      expect(late.status).toBe(409);
      expect(((await late.json()) as { type: string }).type).toBe("urn:edgeq:error:stale_lease");
      const task = await edgeq.get(id);
      expect(task.status).toBe("completed");
      expect(task.result).not.toEqual({ late: true });
    }
    // The faults happened and cost re-runs (at-least-once execution), which stayed bounded.
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(ran.length).toBeGreaterThan(1000);
    console.log(`fault test: ${kills} kills, ${ran.length} runs for 1000 tasks, ${done.length} completions logged before a kill`);
  },
);
