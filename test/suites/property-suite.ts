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
  fc.record({ op: fc.constant("heartbeat" as const), i: pick }),
  fc.record({ op: fc.constant("complete" as const), i: pick }),
  fc.record({ op: fc.constant("fail" as const), i: pick, retryable: fc.boolean() }),
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
  /** the token whose fail or release ended each task's last run, until the task is leased again */
  endedWith = new Map<string, string>();
  cancelled = new Set<string>();

  constructor(private readonly h: Harness) {}

  /**
   * What a call with lease `l` must answer, judged from the task as stored (after due
   * work): accepted (null) only if `l` is the task's latest lease and has not expired.
   * Leases are drawn from every token ever issued, so superseded ones are real ones.
   */
  private verdict(l: { id: string; token: string }): string | null {
    const row = this.h.engine.get(l.id)!;
    const holds = row.status === "running" && row.leaseToken === l.token && row.dueAt! > this.h.clock.now();
    return holds ? null : "stale_lease";
  }

  apply(op: Op): void {
    const { engine, settings, address } = this.h;
    // Mostly one of the latest leases (likely still held), sometimes any (likely superseded).
    const lease = (i: number) => {
      const n = this.leases.length;
      if (n === 0) return undefined;
      return i % 3 === 0 ? this.leases[i % n] : this.leases[n - 1 - (i % Math.min(n, 5))];
    };
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
          this.endedWith.delete(l.task.id);
        }
        return;
      case "heartbeat": {
        const l = lease(op.i);
        if (!l) return;
        const expected = this.verdict(l);
        const code = refused(() => engine.heartbeat(l.id, l.token));
        expect(code, "heartbeat accepted iff its token holds the lease").toBe(expected);
        if (code === null) expect(engine.get(l.id)!.dueAt).toBe(this.h.clock.now() + engine.get(l.id)!.timeoutMs);
        return;
      }
      case "complete": {
        const l = lease(op.i);
        if (!l) return;
        const before = engine.get(l.id)!;
        const replay = before.status === "completed" && this.completedWith.get(l.id) === l.token;
        const expected = replay ? null : this.verdict(l);
        const code = refused(() => engine.complete(l.id, l.token));
        expect(code, "complete accepted iff its token holds the lease (or completed it)").toBe(expected);
        if (code === null) {
          expect(engine.get(l.id)!.status).toBe("completed");
          const first = this.completedWith.get(l.id);
          expect(first === undefined || first === l.token, "a task completed twice under different leases").toBe(true);
          this.completedWith.set(l.id, l.token);
        }
        return;
      }
      case "fail": {
        const l = lease(op.i);
        if (!l) return;
        const before = engine.get(l.id)!;
        const replay = this.endedWith.get(l.id) === l.token;
        const expected = replay ? null : this.verdict(l);
        const code = refused(() => engine.fail(l.id, l.token, '{"message":"x"}', op.retryable));
        expect(code, "fail accepted iff its token holds the lease (or ended the run)").toBe(expected);
        if (code === null && replay) expect(engine.get(l.id), "a fail sent again changes nothing").toEqual(before);
        else if (code === null) {
          this.endedWith.set(l.id, l.token);
          const after = engine.get(l.id)!.status;
          if (before.cancelRequested) {
            expect(after).toBe("cancelled");
            this.cancelled.add(l.id);
          } else if (!op.retryable || before.attempts >= before.maxAttempts) expect(after).toBe("failed");
          else expect(["scheduled", "pending"]).toContain(after);
        }
        return;
      }
      case "release": {
        const l = lease(op.i);
        if (!l) return;
        const before = engine.get(l.id)!;
        const replay = this.endedWith.get(l.id) === l.token;
        const expected = replay ? null : this.verdict(l);
        const code = refused(() => engine.release(l.id, l.token, op.delayMs));
        expect(code, "release accepted iff its token holds the lease (or ended the run)").toBe(expected);
        if (code === null && replay) expect(engine.get(l.id), "a release sent again changes nothing").toEqual(before);
        else if (code === null) {
          this.endedWith.set(l.id, l.token);
          const after = engine.get(l.id)!;
          // Released after a cancel request: it ends cancelled, and is never leased again.
          if (before.cancelRequested) {
            expect(after.status).toBe("cancelled");
            this.cancelled.add(l.id);
          } else {
            expect(after.status).toBe(op.delayMs > 0 ? "scheduled" : "pending");
            expect(after.attempts).toBe(before.attempts - 1);
          }
        }
        return;
      }
      case "cancel": {
        const ids = [...this.ids];
        if (!ids.length) return;
        // Half the time a task in a consumer's hands, so cancel meets running tasks.
        const id = op.i % 2 === 0 && this.leases.length > 0 ? lease(op.i)!.id : ids[op.i % ids.length];
        const before = engine.get(id)!;
        const code = refused(() => engine.cancel(id));
        const after = engine.get(id)!;
        if (before.status === "completed" || before.status === "failed") expect(code).toBe("invalid_state");
        else if (before.status === "running") expect([after.status, after.cancelRequested]).toEqual(["running", 1]);
        else expect(after.status).toBe("cancelled");
        if (after.status === "cancelled") this.cancelled.add(id);
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
      expect(row?.id, `task ${id} lost`).toBe(id);
      expect(STATUSES).toContain(row!.status);
      if (row!.status === "running") expect(typeof row!.dueAt, "a running task has a lease expiry").toBe("number");
    }
    for (const id of this.completedWith.keys()) expect(engine.get(id)!.status, "a completed task changed").toBe("completed");
    for (const id of this.cancelled) expect(engine.get(id)!.status, "a cancelled task changed").toBe("cancelled");
    // Counts kept in memory agree with storage counted afresh.
    expect(counts).toEqual(this.h.store.counts());
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
        expect(this.cancelled.has(l.task.id), "a cancelled task was leased again").toBe(false);
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
      fc.asyncProperty(fc.array(Op, { minLength: 20, maxLength: 150, size: "max" }), fc.integer({ min: 1, max: 1e6 }), (ops, seed) =>
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
  }, 120_000); // hundreds of generated runs: a busy machine needs more than the default 5 s
}
