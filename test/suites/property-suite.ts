import fc from "fast-check";
import { expect, it } from "vitest";
import { QueueError } from "../../durable/core/errors";
import { STATUSES, TERMINAL } from "../../schema/shard";
import { made, type Harness, type WithHarness } from "./harness";

/**
 * Random interleavings of every operation, checked after each step: no task is
 * lost or duplicated, none completes twice, each is in exactly one status, and
 * once consumers drain the queue nothing is left running.
 */

const pick = fc.nat({ max: 1_000 });
const Op = fc.oneof(
  fc.record({
    op: fc.constant("enqueue" as const),
    n: fc.integer({ min: 1, max: 4 }),
    priority: fc.integer({ min: 1, max: 10 }),
    delayMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 })),
    key: fc.option(fc.constantFrom("k1", "k2", "k3"), { nil: undefined }),
  }),
  fc.record({ op: fc.constant("lease" as const), max: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant("heartbeat" as const), i: pick, stale: fc.boolean() }),
  fc.record({ op: fc.constant("complete" as const), i: pick, stale: fc.boolean() }),
  fc.record({ op: fc.constant("fail" as const), i: pick, stale: fc.boolean(), retryable: fc.boolean() }),
  fc.record({ op: fc.constant("release" as const), i: pick, delayMs: fc.constantFrom(0, 500) }),
  fc.record({ op: fc.constant("cancel" as const), i: pick }),
  fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
  fc.record({ op: fc.constant("alarm" as const) }),
);
type Op = typeof Op extends fc.Arbitrary<infer T> ? T : never;

function refused(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof QueueError) return e.code;
    throw e;
  }
}

/** Applies one op; returns what the checks need. */
class Model {
  ids = new Set<string>();
  leases: { id: string; token: string }[] = [];
  issued = new Set<string>();
  completedWith = new Map<string, string>();

  constructor(private readonly h: Harness) {}

  apply(op: Op): void {
    const { engine, settings, address } = this.h;
    const lease = (i: number) => this.leases[i % Math.max(1, this.leases.length)];
    const tokenOf = (l: { token: string }, stale: boolean) => (stale ? `${l.token}-stale` : l.token);
    switch (op.op) {
      case "enqueue": {
        const tasks = Array.from({ length: op.n }, () => ({
          name: "t",
          payload: "{}",
          priority: op.priority,
          delayMs: op.delayMs,
          idempotencyKey: op.key,
          timeoutMs: 10_000,
          maxAttempts: 3,
          backoff: { baseMs: 100, factor: 2, maxMs: 2000 },
        }));
        for (const e of engine.enqueue(address, tasks, settings).map(made)) {
          if (e.created) {
            expect(this.ids.has(e.task.id), "a new task reuses an id").toBe(false);
            this.ids.add(e.task.id);
          } else {
            expect(this.ids.has(e.task.id), "a replay returns a task that exists").toBe(true);
          }
        }
        return;
      }
      case "lease":
        for (const l of engine.lease("w", op.max, settings)) {
          expect(this.issued.has(l.leaseToken), "a lease token is reused").toBe(false);
          this.issued.add(l.leaseToken);
          this.leases.push({ id: l.task.id, token: l.leaseToken });
        }
        return;
      case "heartbeat": {
        const l = lease(op.i);
        if (l) refused(() => engine.heartbeat(l.id, tokenOf(l, op.stale)));
        return;
      }
      case "complete": {
        const l = lease(op.i);
        if (!l) return;
        const token = tokenOf(l, op.stale);
        let done: string | undefined;
        const code = refused(() => (done = engine.complete(l.id, token).status));
        if (op.stale) expect(code, "a forged token completed a task").toBe("stale_lease");
        if (done === "completed") {
          const first = this.completedWith.get(l.id);
          expect(first === undefined || first === token, "a task completed twice under different leases").toBe(true);
          this.completedWith.set(l.id, token);
        }
        return;
      }
      case "fail": {
        const l = lease(op.i);
        if (!l) return;
        const code = refused(() => engine.fail(l.id, tokenOf(l, op.stale), '{"message":"x"}', op.retryable));
        if (op.stale) expect(code).toBe("stale_lease");
        return;
      }
      case "release": {
        const l = lease(op.i);
        if (l) refused(() => engine.release(l.id, l.token, op.delayMs));
        return;
      }
      case "cancel": {
        const ids = [...this.ids];
        if (ids.length) refused(() => engine.cancel(ids[op.i % ids.length]));
        return;
      }
      case "advance":
        this.h.clock.advance(op.ms);
        return;
      case "alarm":
        engine.runDue();
        return;
    }
  }

  check(): void {
    const { engine } = this.h;
    const counts = engine.counts();
    const total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
    expect(total, "tasks lost or duplicated").toBe(this.ids.size);
    for (const id of this.ids) {
      const row = engine.get(id);
      expect(row, `task ${id} lost`).not.toBeNull();
      expect(STATUSES).toContain(row!.status);
      if (row!.status === "running") expect(row!.dueAt).not.toBeNull();
    }
    for (const id of this.completedWith.keys()) expect(engine.get(id)!.status, "a completed task changed").toBe("completed");
  }

  /** Consumers drain everything: in the end every task is finished and none is running. */
  drain(): void {
    const { engine, settings, clock } = this.h;
    for (let round = 0; round < 50; round++) {
      clock.advance(60_000);
      engine.runDue();
      const leased = engine.lease("drainer", 1000, settings);
      for (const l of leased) {
        const prior = this.completedWith.get(l.task.id);
        expect(prior, "a completed task was leased again").toBeUndefined();
        engine.complete(l.task.id, l.leaseToken);
        this.completedWith.set(l.task.id, l.leaseToken);
      }
      const c = engine.counts();
      if (!c.pending && !c.scheduled && !c.running) break;
    }
    for (const id of this.ids) expect(TERMINAL.has(engine.get(id)!.status), `task ${id} never finished`).toBe(true);
  }
}

export function propertySuite(backend: string, withHarness: WithHarness, numRuns: number) {
  it(`random interleavings never lose a task, never complete one twice, and keep one status per task (${backend})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(Op, { minLength: 1, maxLength: 120 }), fc.integer({ min: 1, max: 1e6 }), (ops, seed) =>
        withHarness(
          (h) => {
            const model = new Model(h);
            for (const op of ops) {
              model.apply(op);
              model.check();
            }
            model.drain();
            model.check();
          },
          { seed },
        ),
      ),
      { seed: 20261129, numRuns },
    );
  });
}
