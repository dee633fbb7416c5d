import { afterAll, beforeAll, expect, it } from "vitest";
import { adminCall, LocalStack, recordFaults, sleep } from "./stack";

/**
 * The runtime itself crashes: workerd (and the process that started it) SIGKILLed three times
 * while tasks are enqueued and completed, and started again on the same state each time. Every
 * enqueue that was acknowledged must be there, each task completed once, and leases held by the
 * crash must come back.
 */
const stack = new LocalStack();
beforeAll(() => stack.start(), 150_000);
afterAll(() => stack.dispose());

const KILLS = 3;
const QUEUE = "crash";

const call = (method: string, path: string, body?: unknown) => adminCall(stack, method, path, body);

it(
  "workerd SIGKILLed 3 times under enqueue and completion load: every acknowledged enqueue is there, each task completed once, leases recover",
  { timeout: 300_000 },
  async () => {
    const acked = new Set<string>(); // task ids the API acknowledged
    const keyOf = new Map<string, string>(); // idempotency key → id (a retried batch must give the same ids)
    const completedBy = new Map<string, Set<string>>(); // task id → lease tokens whose completion was accepted
    let producing = true;
    let consuming = true;
    let failedCalls = 0;

    const producer = (async () => {
      for (let batch = 0; producing; batch++) {
        const tasks = Array.from({ length: 50 }, (_, i) => ({
          name: "effect",
          payload: { batch, i },
          timeoutMs: 2000,
          maxAttempts: 20,
          idempotencyKey: `k-${batch}-${i}`,
        }));
        for (;;) {
          try {
            const made = await call("POST", `/queues/${QUEUE}/tasks/batch`, { tasks });
            made.tasks.forEach((t: { id: string }, i: number) => {
              const key = tasks[i].idempotencyKey;
              expect(keyOf.get(key) ?? t.id, `a retried enqueue of ${key} gave another task`).toBe(t.id);
              keyOf.set(key, t.id);
              acked.add(t.id);
            });
            break;
          } catch {
            failedCalls++;
            await sleep(100); // the runtime is down: send the same batch again (same keys)
          }
        }
        await sleep(20);
      }
    })();

    const consumer = async (c: number) => {
      while (consuming) {
        try {
          const { leases } = await call("POST", `/queues/${QUEUE}/leases`, { workerId: `c${c}`, max: 50, waitMs: 500 });
          if (leases.length === 0) continue;
          const items = leases.map((l: { task: { id: string }; leaseToken: string }) => ({
            id: l.task.id,
            leaseToken: l.leaseToken,
            result: { c },
          }));
          // A completion whose answer a crash swallowed may have been taken: send the same one again
          // (same tokens; a repeat answers as the first did) until it is answered, as a consumer must.
          let results: { id: string; ok: boolean }[] | undefined;
          while (!results) {
            try {
              ({ results } = await call("POST", "/leases/complete", { items }));
            } catch {
              failedCalls++;
              await sleep(100);
            }
          }
          results.forEach((r: { id: string; ok: boolean }, i: number) => {
            if (!r.ok) return; // a lease the crash outlived: it expired and the task went to another attempt
            const tokens = completedBy.get(r.id) ?? new Set<string>();
            completedBy.set(r.id, tokens.add(items[i].leaseToken));
          });
        } catch {
          failedCalls++;
          await sleep(100);
        }
      }
    };
    const consumers = [0, 1, 2].map(consumer);

    for (let k = 0; k < KILLS; k++) {
      await sleep(2500);
      await stack.crash();
      await sleep(200);
      await stack.start();
    }
    await sleep(1500);
    producing = false;
    await producer;

    // Drain: every acknowledged task completes (leases the crashes held expire after 2 s and are leased again).
    const deadline = Date.now() + 120_000;
    while ([...acked].some((id) => !completedBy.has(id))) {
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    consuming = false;
    await Promise.all(consumers);

    const lost = [...acked].filter((id) => !completedBy.has(id));
    const twice = [...completedBy].filter(([, tokens]) => tokens.size > 1).map(([id]) => id);
    recordFaults("workerd-crash", { injected: KILLS, lost: lost.length, duplicated: twice.length, checked: acked.size });
    expect(acked.size).toBeGreaterThan(500);
    expect(failedCalls).toBeGreaterThan(0); // the crashes were felt
    // What a task not completed is now (gone, or stuck in some state), so a failure says which.
    const states = await Promise.all(
      lost.slice(0, 5).map((id) =>
        call("GET", `/tasks/${id}`).then(
          (t) => `${id}: ${t.status}, attempts ${t.attempts}, runAt ${t.runAt}, expiresAt ${t.expiresAt}`,
          (e) => `${id}: ${String(e).slice(0, 120)}`,
        ),
      ),
    );
    expect(lost, `${JSON.stringify(await call("GET", `/queues/${QUEUE}`).then((s) => s.counts))}\n${states.join("\n")}`).toEqual([]);
    expect(twice).toEqual([]);
    // Each key made one task, and the queue holds exactly the acknowledged tasks, all completed.
    expect(new Set(keyOf.values()).size).toBe(keyOf.size);
    const stats = await call("GET", `/queues/${QUEUE}`);
    expect(stats.counts).toEqual({ completed: acked.size });
  },
);
