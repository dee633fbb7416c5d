import { describe, expect, it } from "vitest";
import { CHILD_RESULTS_MAX, DUE_BATCH, type NewTask } from "../../durable/core/engine";
import { QueueError } from "../../durable/core/errors";
import type { TaskRow } from "../../schema/shard";
import { made, type Harness, type WithHarness } from "./harness";

/**
 * The queue semantics contract, run against every ShardStore: plain memory in
 * the unit project, the Durable Object's SQLite in the workerd project.
 */

const task = (name: string, extra: Partial<NewTask> = {}): NewTask => ({ name, payload: "{}", ...extra });

function add(h: Harness, ...tasks: NewTask[]): TaskRow[] {
  return h.engine.enqueue(h.address, tasks, h.settings).map((e) => made(e).task);
}

function leaseAll(h: Harness, max = 1000) {
  return h.engine.lease("w1", max, h.settings);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof QueueError) return e.code;
    throw e;
  }
  return undefined;
}

export function engineSuite(backend: string, withHarness: WithHarness) {
  describe(`queue semantics (${backend})`, () => {
    describe("fencing", () => {
      it("a stale lease token cannot heartbeat, complete, fail or release, and changes nothing", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { timeoutMs: 1000 }));
          const first = leaseAll(h)[0];
          h.clock.advance(1500);
          h.engine.runDue(); // the first lease expires; the task waits for its retry
          h.clock.advance(10 * 60_000);
          const second = leaseAll(h)[0];
          expect(second.leaseToken).not.toBe(first.leaseToken);
          const before = h.engine.get(t.id);
          expect(codeOf(() => h.engine.heartbeat(t.id, first.leaseToken))).toBe("stale_lease");
          expect(codeOf(() => h.engine.complete(t.id, first.leaseToken, '"x"'))).toBe("stale_lease");
          expect(codeOf(() => h.engine.fail(t.id, first.leaseToken, '{"message":"x"}'))).toBe("stale_lease");
          expect(codeOf(() => h.engine.release(t.id, first.leaseToken))).toBe("stale_lease");
          expect(h.engine.get(t.id)).toEqual(before);
          expect(h.engine.complete(t.id, second.leaseToken, '"ok"').status).toBe("completed");
        }));

      it("every lease gets a new token", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          const tokens = new Set<string>();
          for (let i = 0; i < 3; i++) {
            const l = leaseAll(h)[0];
            tokens.add(l.leaseToken);
            h.engine.release(t.id, l.leaseToken);
          }
          expect(tokens.size).toBe(3);
        }));

      it("completing again with the current token answers the stored result; any other token is refused", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          const l = leaseAll(h)[0];
          const done = h.engine.complete(t.id, l.leaseToken, '{"n":1}');
          expect(h.engine.complete(t.id, l.leaseToken, '{"n":2}')).toEqual(done);
          expect(codeOf(() => h.engine.complete(t.id, "other", "null"))).toBe("stale_lease");
          expect(h.engine.get(t.id)!.result).toBe('{"n":1}');
        }));

      it("failing or releasing again with the token that ended the run answers the stored task and changes nothing", () =>
        withHarness((h) => {
          const [f, r, d] = add(h, task("f"), task("r"), task("d", { maxAttempts: 1 }));
          const leases = new Map(leaseAll(h).map((l) => [l.task.id, l]));
          const failed = h.engine.fail(f.id, leases.get(f.id)!.leaseToken, '{"message":"first"}');
          expect(["pending", "scheduled"]).toContain(failed.status);
          const dead = h.engine.fail(d.id, leases.get(d.id)!.leaseToken, '{"message":"dead"}');
          expect(dead.status).toBe("failed");
          const released = h.engine.release(r.id, leases.get(r.id)!.leaseToken);
          const before = [f, r, d].map((t) => h.engine.get(t.id));
          // The answers were lost; the consumer sends the same calls again.
          expect(h.engine.fail(f.id, leases.get(f.id)!.leaseToken, '{"message":"again"}')).toEqual(failed);
          expect(h.engine.fail(d.id, leases.get(d.id)!.leaseToken, '{"message":"again"}')).toEqual(dead);
          expect(h.engine.release(r.id, leases.get(r.id)!.leaseToken)).toEqual(released);
          expect([f, r, d].map((t) => h.engine.get(t.id))).toEqual(before);
          // Only that token: another is refused; and the ended run's token completes nothing.
          expect(codeOf(() => h.engine.fail(f.id, "other", '{"message":"x"}'))).toBe("stale_lease");
          expect(codeOf(() => h.engine.complete(f.id, leases.get(f.id)!.leaseToken))).toBe("stale_lease");
          expect(codeOf(() => h.engine.heartbeat(f.id, leases.get(f.id)!.leaseToken))).toBe("stale_lease");
        }));

      it("after a lease expired, or a dead letter was retried by hand, its token fails and releases nothing", () =>
        withHarness((h) => {
          const [e, d] = add(h, task("e", { timeoutMs: 1000 }), task("d", { maxAttempts: 1 }));
          const leases = new Map(leaseAll(h).map((l) => [l.task.id, l]));
          h.engine.fail(d.id, leases.get(d.id)!.leaseToken, '{"message":"dead"}');
          h.clock.advance(1500);
          expect(h.engine.runDue().expired).toBe(1);
          expect(codeOf(() => h.engine.fail(e.id, leases.get(e.id)!.leaseToken, '{"message":"late"}'))).toBe("stale_lease");
          expect(codeOf(() => h.engine.release(e.id, leases.get(e.id)!.leaseToken))).toBe("stale_lease");
          expect(JSON.parse(h.engine.get(e.id)!.error!).message).toMatch(/Lease expired/);
          expect(h.engine.retry(d.id).status).toBe("pending");
          expect(codeOf(() => h.engine.fail(d.id, leases.get(d.id)!.leaseToken, '{"message":"late"}'))).toBe("stale_lease");
          expect(h.engine.get(d.id)!.status).toBe("pending");
        }));

      it("an unknown task answers not_found", () =>
        withHarness((h) => {
          expect(codeOf(() => h.engine.complete("nope", "t"))).toBe("not_found");
          expect(codeOf(() => h.engine.cancel("nope"))).toBe("not_found");
        }));
    });

    describe("ordering", () => {
      it("higher priority leases first; equal priorities lease in the order they were enqueued", () =>
        withHarness((h) => {
          const made = add(
            h,
            task("low1", { priority: 1 }),
            task("mid1", { priority: 5 }),
            task("high1", { priority: 10 }),
            task("mid2", { priority: 5 }),
            task("high2", { priority: 10 }),
            task("low2", { priority: 1 }),
          );
          expect(made.map((t) => t.status)).toEqual(Array(6).fill("pending"));
          expect(leaseAll(h).map((l) => l.task.name)).toEqual(["high1", "high2", "mid1", "mid2", "low1", "low2"]);
        }));

      it("FIFO holds across separate calls and a restart", () =>
        withHarness((h) => {
          for (let i = 0; i < 5; i++) add(h, task(`t${i}`));
          h.restart();
          for (let i = 5; i < 10; i++) add(h, task(`t${i}`));
          expect(leaseAll(h).map((l) => l.task.name)).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`));
        }));

      it("a delayed task is not leased before runAt and is ready at runAt", () =>
        withHarness((h) => {
          const [t] = add(h, task("later", { delayMs: 5000 }));
          expect(t.status).toBe("scheduled");
          expect(h.engine.nextDueAt()).toBe(h.clock.now() + 5000);
          h.clock.advance(4999);
          expect(leaseAll(h)).toHaveLength(0);
          h.clock.advance(1);
          expect(leaseAll(h).map((l) => l.task.id)).toEqual([t.id]);
        }));

      it("retried and delayed tasks re-enter the order by the time they became ready", () =>
        withHarness((h) => {
          const [delayed] = add(h, task("delayed", { delayMs: 1000 }));
          h.clock.advance(2000); // the delayed task became ready at +1000, before the next enqueue
          add(h, task("fresh"));
          const leases = leaseAll(h);
          expect(leases.map((l) => l.task.name)).toEqual(["delayed", "fresh"]);
          // it became ready at its runAt, not when the shard got round to it
          expect(leases[0].task.readyAt).toBe(delayed.runAt);
          expect(leases[1].task.readyAt).toBe(h.clock.now());
        }));

      it("priority beats ready time: a higher priority that became ready later still leases first", () =>
        withHarness((h) => {
          add(h, task("low-early", { priority: 2 }));
          h.clock.advance(1000);
          add(h, task("high-late", { priority: 9, delayMs: 500 }), task("mid-now", { priority: 5 }));
          h.clock.advance(1000);
          add(h, task("low-late", { priority: 2 }));
          expect(leaseAll(h).map((l) => l.task.name)).toEqual(["high-late", "mid-now", "low-early", "low-late"]);
        }));

      it("a released task goes behind tasks that were already waiting", () =>
        withHarness((h) => {
          const [a] = add(h, task("a"));
          const l = h.engine.lease("w1", 1, h.settings)[0];
          add(h, task("b"));
          h.clock.advance(1);
          h.engine.release(a.id, l.leaseToken);
          expect(leaseAll(h).map((x) => x.task.name)).toEqual(["b", "a"]);
        }));
    });

    describe("leases and expiry", () => {
      it("a lease not heartbeated within timeoutMs expires and the task is retried, having used an attempt", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { timeoutMs: 1000, backoff: { baseMs: 10_000, factor: 2, maxMs: 60_000 } }));
          leaseAll(h);
          expect(h.engine.nextDueAt()).toBe(h.clock.now() + 1000);
          h.clock.advance(1000);
          expect(h.engine.runDue().expired).toBe(1);
          const after = h.engine.get(t.id)!;
          // An expired lease backs off like a failure: scheduled within its first backoff window.
          expect(after.status).toBe("scheduled");
          expect(after.runAt).toBeGreaterThan(h.clock.now());
          expect(after.runAt).toBeLessThan(h.clock.now() + 10_000);
          expect(after.attempts).toBe(1);
          expect(JSON.parse(after.error!).message).toMatch(/Lease expired/);
          expect(leaseAll(h)).toEqual([]);
          h.clock.advance(after.runAt - h.clock.now());
          expect(leaseAll(h)[0].task.attempts).toBe(2);
        }));

      it("a heartbeat extends the lease and records progress", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { timeoutMs: 1000 }));
          const l = leaseAll(h)[0];
          for (let i = 0; i < 5; i++) {
            h.clock.advance(900);
            const hb = h.engine.heartbeat(t.id, l.leaseToken, String(i * 10));
            expect(hb.expiresAt).toBe(h.clock.now() + 1000);
            h.engine.runDue();
          }
          const row = h.engine.get(t.id)!;
          expect(row.status).toBe("running");
          expect(row.progress).toBe("40");
        }));

      it("an expired lease is noticed by the next call even before the alarm runs", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { timeoutMs: 1000 }));
          const l = leaseAll(h)[0];
          h.clock.advance(1000);
          expect(codeOf(() => h.engine.heartbeat(t.id, l.leaseToken))).toBe("stale_lease");
        }));

      it("a lease ends at its expiry even when more leases expired than one pass of due work handles", () =>
        withHarness((h) => {
          const n = DUE_BATCH + 20;
          add(h, ...Array.from({ length: n }, (_, i) => task(`t${i}`, { timeoutMs: 1000 })));
          const leases = leaseAll(h, 1000);
          expect(leases).toHaveLength(n);
          h.clock.advance(1000);
          const last = leases[n - 1];
          expect(codeOf(() => h.engine.heartbeat(last.task.id, last.leaseToken))).toBe("stale_lease");
          expect(codeOf(() => h.engine.complete(last.task.id, last.leaseToken, "1"))).toBe("stale_lease");
          expect(h.engine.get(last.task.id)!.status).not.toBe("completed");
        }));

      it("a refused call made while work is due leaves that work done and the alarm at the next due time", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { timeoutMs: 1000, backoff: { baseMs: 60_000, factor: 1, maxMs: 60_000 } }));
          const l = leaseAll(h)[0];
          h.clock.advance(1000);
          expect(codeOf(() => h.engine.complete(`${t.id.slice(0, -3)}zz`, l.leaseToken))).toBe("not_found");
          expect(h.store.get(t.id)!.status).toBe("scheduled"); // the expiry was committed, not rolled back
          expect(h.engine.nextDueAt()).toBe(h.store.nextDueAt());
          expect(h.engine.nextDueAt()!).toBeGreaterThan(h.clock.now());
        }));

      it("the next due time is always the earliest of delays, lease expiries and retention", () =>
        withHarness((h) => {
          const now = h.clock.now();
          add(h, task("d", { delayMs: 50_000 }));
          add(h, task("r", { timeoutMs: 20_000 }));
          leaseAll(h);
          expect(h.engine.nextDueAt()).toBe(now + 20_000);
          h.clock.advance(20_000);
          h.engine.runDue();
          const retry = h.engine.list({ limit: 10 }).find((t) => t.name === "r")!;
          expect(retry.status).toBe("scheduled");
          expect(h.engine.nextDueAt()).toBe(Math.min(retry.runAt, now + 50_000));
        }));

      it("nothing stays running forever: with no consumer, every lease ends", () =>
        withHarness((h) => {
          add(h, ...Array.from({ length: 20 }, (_, i) => task(`t${i}`, { timeoutMs: 100, maxAttempts: 2 })));
          for (let round = 0; round < 10; round++) {
            leaseAll(h);
            h.clock.advance(20 * 60_000);
            h.engine.runDue();
          }
          const counts = h.engine.counts();
          expect(counts.running ?? 0).toBe(0);
          expect(counts.failed).toBe(20);
        }));
    });

    describe("retries and dead letters", () => {
      it("maxAttempts bounds the runs and the last failure lands in the dead letters", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { maxAttempts: 3, backoff: { baseMs: 10, factor: 2, maxMs: 100 } }));
          const runs: string[] = [];
          for (let i = 0; i < 5; i++) {
            h.clock.advance(1000);
            const l = leaseAll(h)[0];
            if (!l) continue;
            runs.push(l.leaseToken);
            h.engine.fail(t.id, l.leaseToken, JSON.stringify({ message: `boom ${i}` }));
          }
          expect(runs).toHaveLength(3);
          const dead = h.engine.get(t.id)!;
          expect(dead.status).toBe("failed");
          expect(dead.attempts).toBe(3);
          expect(JSON.parse(dead.error!).message).toBe("boom 2");
          expect(h.engine.list({ status: "failed", limit: 10 }).map((r) => r.id)).toEqual([t.id]);
        }));

      it("a failure that is not retryable is terminal at once", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { maxAttempts: 5 }));
          const l = leaseAll(h)[0];
          expect(h.engine.fail(t.id, l.leaseToken, '{"message":"bad input"}', false).status).toBe("failed");
        }));

      it("a failed attempt waits its backoff before it can run again", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { backoff: { baseMs: 10_000, factor: 2, maxMs: 10_000 } }), task("b"));
          const l = h.engine.lease("w1", 1, h.settings)[0];
          const failed = h.engine.fail(t.id, l.leaseToken, '{"message":"x"}');
          // Full jitter draws from [0, 10 s); the seeded draw here is not zero, so the wait is real.
          expect(failed.status).toBe("scheduled");
          expect(failed.runAt).toBeGreaterThan(h.clock.now());
          expect(failed.runAt).toBeLessThan(h.clock.now() + 10_000);
          expect(leaseAll(h).map((x) => x.task.name)).toEqual(["b"]);
          h.clock.advance(failed.runAt - h.clock.now() - 1);
          expect(leaseAll(h)).toEqual([]);
          h.clock.advance(1);
          expect(leaseAll(h).map((x) => x.task.name)).toEqual(["a"]);
        }));

      it("a manual retry of a dead letter makes it pending with its attempts reset", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { maxAttempts: 1 }));
          const l = leaseAll(h)[0];
          h.engine.fail(t.id, l.leaseToken, '{"message":"x"}');
          const retried = h.engine.retry(t.id);
          expect(retried.status).toBe("pending");
          expect(retried.attempts).toBe(0);
          expect(retried.finishedAt).toBeNull();
          expect(leaseAll(h)[0].task.attempts).toBe(1);
        }));

      it("retrying the dead letters makes every failed task pending, a bounded pass per call, and touches no other", () =>
        withHarness((h) => {
          const dead = add(h, ...Array.from({ length: 5 }, (_, i) => task(`d${i}`, { maxAttempts: 1 })));
          for (const l of leaseAll(h)) h.engine.fail(l.task.id, l.leaseToken, '{"message":"x"}');
          const [c, p] = add(h, task("c"), task("p", { delayMs: 60_000 }));
          h.engine.cancel(c.id);
          const sweep = h.clock.now();
          expect(h.engine.retryFailed(sweep, 3)).toEqual({ retried: 3, done: false });
          expect(h.engine.retryFailed(sweep, 3)).toEqual({ retried: 2, done: true });
          expect(h.engine.retryFailed(sweep, 3)).toEqual({ retried: 0, done: true });
          for (const t of dead) expect(h.engine.get(t.id)).toMatchObject({ status: "pending", attempts: 0, finishedAt: null });
          expect(h.engine.get(c.id)!.status).toBe("cancelled");
          expect(h.engine.get(p.id)!.status).toBe("scheduled");
          expect(
            leaseAll(h)
              .map((l) => l.task.name)
              .sort(),
          ).toEqual(["d0", "d1", "d2", "d3", "d4"]);
        }));

      it("a sweep of dead letters never takes a task twice: one that fails again after its retry waits for the next sweep", () =>
        withHarness((h) => {
          add(h, ...Array.from({ length: 4 }, (_, i) => task(`d${i}`, { maxAttempts: 1 })));
          for (const l of leaseAll(h)) h.engine.fail(l.task.id, l.leaseToken, '{"message":"x"}');
          h.clock.advance(1);
          const sweep = h.clock.now();
          expect(h.engine.retryFailed(sweep, 2).retried).toBe(2);
          h.clock.advance(1);
          for (const l of leaseAll(h)) h.engine.fail(l.task.id, l.leaseToken, '{"message":"again"}'); // the two retried fail at once
          expect(h.engine.retryFailed(sweep, 2)).toEqual({ retried: 2, done: true }); // the other two, not those again
          expect(h.engine.retryFailed(sweep, 2)).toEqual({ retried: 0, done: true });
          expect(h.engine.counts()).toEqual({ failed: 2, pending: 2 });
          expect(h.engine.retryFailed(h.clock.now(), 2)).toEqual({ retried: 2, done: true }); // a new sweep takes them
        }));

      it("only failed or cancelled tasks can be retried by hand", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          expect(codeOf(() => h.engine.retry(t.id))).toBe("invalid_state");
          const l = leaseAll(h)[0];
          expect(codeOf(() => h.engine.retry(t.id))).toBe("invalid_state");
          h.engine.complete(t.id, l.leaseToken);
          expect(codeOf(() => h.engine.retry(t.id))).toBe("invalid_state");
        }));
    });

    describe("cancellation", () => {
      it("cancels pending and scheduled tasks at once", () =>
        withHarness((h) => {
          const [p, s] = add(h, task("p"), task("s", { delayMs: 10_000 }));
          expect(h.engine.cancel(p.id).status).toBe("cancelled");
          expect(h.engine.cancel(s.id).status).toBe("cancelled");
          h.clock.advance(20_000);
          expect(leaseAll(h)).toHaveLength(0);
        }));

      it("a running task sees cancelRequested on its next heartbeat and ends cancelled when it fails", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { maxAttempts: 5 }));
          const l = leaseAll(h)[0];
          const c = h.engine.cancel(t.id);
          expect(c.status).toBe("running");
          expect(c.cancelRequested).toBe(1);
          expect(h.engine.heartbeat(t.id, l.leaseToken).cancelRequested).toBe(true);
          expect(h.engine.fail(t.id, l.leaseToken, '{"message":"stopped"}').status).toBe("cancelled");
        }));

      it("a running task with cancelRequested ends cancelled when its lease expires", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { timeoutMs: 500 }));
          leaseAll(h);
          h.engine.cancel(t.id);
          h.clock.advance(500);
          h.engine.runDue();
          expect(h.engine.get(t.id)!.status).toBe("cancelled");
        }));

      it("a running task with cancelRequested that completes ends completed", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          const l = leaseAll(h)[0];
          h.engine.cancel(t.id);
          expect(h.engine.complete(t.id, l.leaseToken).status).toBe("completed");
        }));

      it("cancelling a cancelled task changes nothing; completed and failed tasks cannot be cancelled", () =>
        withHarness((h) => {
          const [a, b, c] = add(h, task("a"), task("b", { maxAttempts: 1 }), task("c"));
          const la = h.engine.lease("w", 1, h.settings)[0];
          h.engine.complete(a.id, la.leaseToken);
          const lb = h.engine.lease("w", 1, h.settings)[0];
          h.engine.fail(b.id, lb.leaseToken, '{"message":"x"}');
          const cancelled = h.engine.cancel(c.id);
          expect(h.engine.cancel(c.id)).toEqual(cancelled);
          expect(codeOf(() => h.engine.cancel(a.id))).toBe("invalid_state");
          expect(codeOf(() => h.engine.cancel(b.id))).toBe("invalid_state");
        }));
    });

    describe("dependencies", () => {
      it("a parent's lease carries at most CHILD_RESULTS_MAX child results and says when there are more", () =>
        withHarness((h) => {
          const [parent] = add(h, task("parent", { waitForChildren: true, priority: 1 }));
          const n = CHILD_RESULTS_MAX + 5;
          add(h, ...Array.from({ length: n }, (_, i) => task(`c${i}`, { parentId: parent.id, priority: 10 })));
          h.engine.seal(parent.id);
          for (const l of h.engine.lease("w", 1000, h.settings)) h.engine.complete(l.task.id, l.leaseToken, String(l.task.name.length));
          for (const l of h.engine.lease("w", 1000, h.settings))
            if (l.task.id !== parent.id) h.engine.complete(l.task.id, l.leaseToken, "1");
          const [lease] = h.engine.lease("w", 1, h.settings);
          expect(lease.task.id).toBe(parent.id);
          expect(Object.keys(lease.childResults!)).toHaveLength(CHILD_RESULTS_MAX);
          expect(lease.childResultsComplete).toBe(false);
        }));

      it("a task waits (blocked) until all its dependencies complete, then becomes ready", () =>
        withHarness((h) => {
          const [a, b] = add(h, task("a", { priority: 9 }), task("b", { priority: 8 }));
          const [d] = add(h, task("d", { dependsOn: [a.id, b.id] }));
          expect(d).toMatchObject({ status: "blocked", depsWaiting: JSON.stringify([a.id, b.id]) });
          const leases = leaseAll(h);
          expect(leases.map((l) => l.task.id)).toEqual([a.id, b.id]);
          h.engine.complete(a.id, leases[0].leaseToken);
          expect(h.engine.get(d.id)).toMatchObject({ status: "blocked", depsWaiting: JSON.stringify([b.id]) });
          h.engine.complete(b.id, leases[1].leaseToken);
          expect(h.engine.get(d.id)).toMatchObject({ status: "pending", depsWaiting: null });
          expect(leaseAll(h).map((l) => l.task.id)).toEqual([d.id]);
        }));

      it("when a dependency fails terminally or is cancelled, its dependents are cancelled (or, by policy, run anyway)", () =>
        withHarness((h) => {
          const [root, other] = add(h, task("root", { maxAttempts: 1 }), task("other"));
          const [child, runs] = add(
            h,
            task("child", { dependsOn: [root.id] }),
            task("runs", { dependsOn: [root.id], onDependencyFailure: "run" }),
          );
          const [grandchild] = add(h, task("grandchild", { dependsOn: [child.id] }));
          const [onOther] = add(h, task("onOther", { dependsOn: [other.id] }));
          const lease = leaseAll(h, 1)[0];
          h.engine.fail(root.id, lease.leaseToken, '{"message":"x"}');
          expect(h.engine.get(child.id)?.status).toBe("cancelled");
          expect(h.engine.get(grandchild.id)?.status).toBe("cancelled");
          expect(h.engine.get(runs.id)?.status).toBe("pending");
          h.engine.cancel(other.id);
          expect(h.engine.get(onOther.id)?.status).toBe("cancelled");
        }));
    });

    describe("flow control", () => {
      it("a concurrency cap is never exceeded: leases stop at the cap and resume as tasks finish", () =>
        withHarness(
          (h) => {
            add(h, ...Array.from({ length: 10 }, (_, i) => task(`t${i}`)));
            const first = leaseAll(h, 10);
            expect(first).toHaveLength(3);
            expect(leaseAll(h, 10)).toHaveLength(0);
            h.engine.complete(first[0].task.id, first[0].leaseToken);
            h.engine.fail(first[1].task.id, first[1].leaseToken, '{"message":"x"}', false);
            expect(leaseAll(h, 10)).toHaveLength(2);
            h.restart(); // the running count is rebuilt from storage
            expect(leaseAll(h, 10)).toHaveLength(0);
          },
          { settings: { concurrency: 3 } },
        ));

      it("a start limit is never exceeded in any window, across a restart", () =>
        withHarness(
          (h) => {
            add(h, ...Array.from({ length: 20 }, (_, i) => task(`t${i}`)));
            const started = (n: number) => {
              const got = leaseAll(h, n);
              for (const l of got) h.engine.complete(l.task.id, l.leaseToken);
              return got.length;
            };
            expect(started(10)).toBe(4);
            h.clock.advance(600);
            expect(started(10)).toBe(0);
            h.restart();
            h.clock.advance(399);
            expect(started(10)).toBe(0); // 999 ms after the first four
            h.clock.advance(1);
            expect(started(10)).toBe(4);
          },
          { settings: { startLimit: { count: 4, perMs: 1000 } } },
        ));

      it("groups take turns at lease time: small groups are not starved by a big one", () =>
        withHarness((h) => {
          add(h, ...Array.from({ length: 200 }, (_, i) => task(`big${i}`, { groupKey: "big", priority: 10 })));
          for (let g = 0; g < 4; g++) add(h, ...Array.from({ length: 5 }, (_, i) => task(`s${g}-${i}`, { groupKey: `small${g}` })));
          add(h, ...Array.from({ length: 3 }, (_, i) => task(`plain${i}`)));
          const order: string[] = [];
          for (let round = 0; round < 10; round++) {
            for (const l of leaseAll(h, 6)) {
              order.push(l.task.groupKey ?? "");
              h.engine.complete(l.task.id, l.leaseToken);
            }
          }
          const bigBeforeLastSmall = order.slice(0, order.lastIndexOf("small3") + 1).filter((g) => g === "big").length;
          expect(bigBeforeLastSmall).toBeLessThanOrEqual(5);
          expect(order.filter((g) => g === "").length).toBe(3);
          expect(h.engine.groups()).toEqual([{ group: "big", pending: 200 - order.filter((g) => g === "big").length, running: 0 }]);
        }));

      it("per-group limits: a default for every group and overrides by key", () =>
        withHarness(
          (h) => {
            for (const g of ["a", "b", "vip"]) add(h, ...Array.from({ length: 10 }, (_, i) => task(`${g}${i}`, { groupKey: g })));
            const leased = leaseAll(h, 100);
            const per = (g: string) => leased.filter((l) => l.task.groupKey === g).length;
            expect([per("a"), per("b"), per("vip")]).toEqual([2, 2, 5]);
            expect(h.engine.groups()).toEqual([
              { group: "a", pending: 8, running: 2 },
              { group: "b", pending: 8, running: 2 },
              { group: "vip", pending: 5, running: 5 },
            ]);
          },
          { settings: { groupLimits: { default: { concurrency: 2 }, overrides: { vip: { concurrency: 5 } } } } },
        ));
    });

    describe("flow control with any group name", () => {
      it("group keys named like Object.prototype members keep their limits", () =>
        withHarness(
          (h) => {
            const names = ["constructor", "toString", "__proto__", "hasOwnProperty", "alpha"];
            for (const g of names) add(h, ...Array.from({ length: 3 }, (_, i) => task(`${g}${i}`, { groupKey: g })));
            const leased = leaseAll(h, 100);
            expect(leased.map((l) => l.task.groupKey).sort()).toEqual([...names].sort());
            expect(h.engine.groups().map((g) => [g.group, g.pending, g.running])).toEqual([...names].sort().map((g) => [g, 2, 1]));
          },
          { settings: { groupLimits: { default: { concurrency: 1 }, overrides: {} } } },
        ));

      it("a group start limit holds for a group named __proto__, across a restart", () =>
        withHarness(
          (h) => {
            add(h, ...Array.from({ length: 6 }, (_, i) => task(`p${i}`, { groupKey: "__proto__" })));
            expect(leaseAll(h, 10)).toHaveLength(2);
            h.restart();
            h.clock.advance(500);
            expect(leaseAll(h, 10)).toHaveLength(0);
            h.clock.advance(600);
            expect(leaseAll(h, 10)).toHaveLength(2);
          },
          { settings: { groupLimits: { default: { startLimit: { count: 2, perMs: 1000 } }, overrides: {} } } },
        ));
    });

    describe("idempotency", () => {
      it("the same key within the window returns the first task, not a second one", () =>
        withHarness((h) => {
          const [first] = h.engine.enqueue(h.address, [task("a", { idempotencyKey: "k1" })], h.settings).map(made);
          h.clock.advance(h.settings.idempotencyWindowMs - 1);
          const [again] = h.engine.enqueue(h.address, [task("other", { idempotencyKey: "k1" })], h.settings).map(made);
          expect(first.created).toBe(true);
          expect(again.created).toBe(false);
          expect(again.task.id).toBe(first.task.id);
          expect(h.engine.counts().pending).toBe(1);
        }));

      it("a key seen twice in one batch makes one task", () =>
        withHarness((h) => {
          const out = h.engine
            .enqueue(h.address, [task("a", { idempotencyKey: "k" }), task("a", { idempotencyKey: "k" })], h.settings)
            .map(made);
          expect(out.map((o) => o.created)).toEqual([true, false]);
          expect(out[1].task.id).toBe(out[0].task.id);
        }));

      it("a key claimed here for a task of another shard names that task until the window ends, whatever enqueues here", () =>
        withHarness((h) => {
          const [claim] = h.engine.claim(h.address, [{ key: "order-42", shard: 3 }], h.settings);
          expect(claim.fresh).toBe(true);
          expect(claim.id).toMatch(/\.3\.q$/);
          expect(h.engine.claim(h.address, [{ key: "order-42", shard: 5 }], h.settings)).toEqual([{ id: claim.id, fresh: false }]);
          const [local] = h.engine.enqueue(h.address, [task("a", { idempotencyKey: "order-42" })], h.settings);
          expect(local).toEqual({ created: false, elsewhere: claim.id });
          expect(h.engine.counts()).toEqual({});
          h.clock.advance(h.settings.idempotencyWindowMs);
          const [after] = h.engine.enqueue(h.address, [task("a", { idempotencyKey: "order-42" })], h.settings).map(made);
          expect(after.created).toBe(true);
        }));

      it("a task made with a claimed id is made once, however often the call is repeated", () =>
        withHarness((h) => {
          const id = h.engine.claim(h.address, [{ key: "k", shard: 0 }], h.settings)[0].id;
          const first = h.engine.enqueue(h.address, [task("a", { id, idempotencyKey: "k" })], h.settings).map(made);
          const again = h.engine.enqueue(h.address, [task("b", { id, idempotencyKey: "k" })], h.settings).map(made);
          expect(first[0]).toMatchObject({ created: true, task: { id, name: "a" } });
          expect(again[0]).toMatchObject({ created: false, task: { id, name: "a" } });
          expect(h.engine.counts()).toEqual({ pending: 1 });
        }));

      it("deleting a task frees its key", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { idempotencyKey: "k" }));
          h.engine.cancel(t.id);
          h.engine.remove(t.id);
          const [again] = h.engine.enqueue(h.address, [task("a", { idempotencyKey: "k" })], h.settings).map(made);
          expect(again.created).toBe(true);
        }));

      it("keys past their window are swept from storage by the alarm", () =>
        withHarness((h) => {
          add(h, ...Array.from({ length: 5 }, (_, i) => task("a", { idempotencyKey: `k${i}` })));
          expect(h.engine.nextDueAt()).toBe(h.clock.now() + h.settings.idempotencyWindowMs);
          expect(h.store.oldestKeyAt()).toBe(h.clock.now());
          h.clock.advance(h.settings.idempotencyWindowMs);
          h.engine.runDue();
          expect(h.store.oldestKeyAt()).toBeNull();
        }));

      it("after the window the same key makes a new task", () =>
        withHarness((h) => {
          const [first] = h.engine.enqueue(h.address, [task("a", { idempotencyKey: "k" })], h.settings).map(made);
          h.clock.advance(h.settings.idempotencyWindowMs);
          const [second] = h.engine.enqueue(h.address, [task("a", { idempotencyKey: "k" })], h.settings).map(made);
          expect(second.created).toBe(true);
          expect(second.task.id).not.toBe(first.task.id);
        }));
    });

    describe("release", () => {
      it("release hands a task back without using an attempt", () =>
        withHarness((h) => {
          const [t] = add(h, task("a", { maxAttempts: 1 }));
          for (let i = 0; i < 3; i++) {
            const l = leaseAll(h)[0];
            expect(l.task.attempts).toBe(1);
            expect(h.engine.release(t.id, l.leaseToken).status).toBe("pending");
          }
          expect(h.engine.get(t.id)!.attempts).toBe(0);
        }));

      it("release after cancel ends the task cancelled, and it is never leased again", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          const l = leaseAll(h)[0];
          expect(h.engine.cancel(t.id).cancelRequested).toBe(1);
          const released = h.engine.release(t.id, l.leaseToken);
          expect(released.status).toBe("cancelled");
          expect(released.finishedAt).toBe(h.clock.now());
          h.clock.advance(60_000);
          expect(leaseAll(h)).toHaveLength(0);
          expect(h.engine.get(t.id)!.status).toBe("cancelled");
          expect(h.engine.counts()).toEqual({ cancelled: 1 });
        }));

      it("release with a delay schedules the task", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          const l = leaseAll(h)[0];
          expect(h.engine.release(t.id, l.leaseToken, 5000).status).toBe("scheduled");
          expect(leaseAll(h)).toHaveLength(0);
          h.clock.advance(5000);
          expect(leaseAll(h)).toHaveLength(1);
        }));
    });

    describe("purge, delete and retention", () => {
      it("purge cancels pending and scheduled tasks and leaves running and finished ones", () =>
        withHarness((h) => {
          const [r, d] = add(h, task("r", { priority: 10 }), task("d", { priority: 9 }));
          const lr = h.engine.lease("w", 1, h.settings)[0];
          const ld = h.engine.lease("w", 1, h.settings)[0];
          h.engine.complete(d.id, ld.leaseToken);
          add(h, task("p1"), task("p2"), task("s", { delayMs: 60_000 }));
          expect(h.engine.purge()).toEqual({ cancelled: 3, done: true });
          const counts = h.engine.counts();
          expect(counts).toEqual({ running: 1, completed: 1, cancelled: 3 });
          expect(h.engine.complete(r.id, lr.leaseToken).status).toBe("completed");
        }));

      it("a large purge cancels one pass per call and alarm, never tasks enqueued after it, and is picked up after a restart", () =>
        withHarness((h) => {
          const n = DUE_BATCH * 2 + 10;
          add(
            h,
            ...Array.from({ length: n - 10 }, (_, i) => task(`p${i}`)),
            ...Array.from({ length: 10 }, (_, i) => task(`s${i}`, { delayMs: 60_000 })),
          );
          expect(h.engine.purge()).toEqual({ cancelled: DUE_BATCH, done: false });
          expect(h.engine.alarmAt()).toBe(h.clock.now()); // the rest is due at once
          h.clock.advance(1);
          const [late] = add(h, task("late"));
          h.restart();
          expect(h.engine.runDue().cancelled).toBe(DUE_BATCH);
          expect(h.engine.runDue().cancelled).toBe(10);
          expect(h.engine.alarmAt()).not.toBe(h.clock.now());
          expect(h.engine.counts()).toEqual({ cancelled: n, pending: 1 });
          expect(h.engine.get(late.id)!.status).toBe("pending");
        }));

      it("purge cancels the dependents of the tasks it cancels", () =>
        withHarness((h) => {
          const [dep] = add(h, task("dep"));
          const [child] = add(h, task("child", { dependsOn: [dep.id] }));
          expect(h.engine.get(child.id)!.status).toBe("blocked");
          expect(h.engine.purge()).toEqual({ cancelled: 1, done: true });
          expect(h.engine.get(child.id)!.status).toBe("cancelled");
        }));

      it("a parent's records of its children go with it, deleted or swept", () =>
        withHarness((h) => {
          const [p1, p2] = add(h, task("p1"), task("p2"));
          add(h, task("c1", { parentId: p1.id }), task("c2", { parentId: p1.id }), task("c3", { parentId: p2.id }));
          expect(h.store.listChildren(p1.id, undefined, 10)).toHaveLength(2);
          for (const l of leaseAll(h)) h.engine.complete(l.task.id, l.leaseToken);
          h.engine.remove(p1.id);
          expect(h.store.listChildren(p1.id, undefined, 10)).toEqual([]);
          expect(h.store.listChildren(p2.id, undefined, 10)).toHaveLength(1);
          h.clock.advance(h.settings.retentionDays * 86_400_000);
          h.engine.runDue();
          expect(h.engine.get(p2.id)).toBeNull();
          expect(h.store.listChildren(p2.id, undefined, 10)).toEqual([]);
        }));

      it("only finished tasks can be deleted", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          expect(codeOf(() => h.engine.remove(t.id))).toBe("invalid_state");
          h.engine.cancel(t.id);
          h.engine.remove(t.id);
          expect(h.engine.get(t.id)).toBeNull();
        }));

      it("finished tasks are dropped from the shard after the retention period", () =>
        withHarness(
          (h) => {
            const [t] = add(h, task("a"));
            h.engine.cancel(t.id);
            h.clock.advance(86_400_000 - 1);
            expect(h.engine.runDue().purged).toBe(0);
            h.clock.advance(1);
            expect(h.engine.runDue().purged).toBe(1);
            expect(h.engine.get(t.id)).toBeNull();
          },
          { settings: { retentionDays: 1 } },
        ));
    });

    describe("retention sweep", () => {
      it("drops every finished task past retention, in bounded passes, and keeps the rest", () =>
        withHarness(
          (h) => {
            const [old] = add(h, task("far-future", { delayMs: 30 * 86_400_000 }));
            const running = add(h, task("still-running", { priority: 10, timeoutMs: 12 * 3600_000 }))[0];
            const lease = h.engine.lease("w", 1, h.settings)[0];
            expect(lease.task.id).toBe(running.id);
            for (let i = 0; i < 5; i++) {
              add(h, ...Array.from({ length: 1000 }, (_, j) => task(`t${i}-${j}`)));
              const ls = h.engine.lease("w", 1000, h.settings);
              h.engine.completeMany(ls.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })));
            }
            expect(h.engine.counts().completed).toBe(5000);
            for (let i = 0; i < 2; i++) {
              h.clock.advance(8 * 3600_000);
              h.engine.heartbeat(running.id, lease.leaseToken);
            }
            h.clock.advance(8 * 3600_000); // retention is over; the lease (12 h from the last heartbeat) is not
            let purged = 0;
            let passes = 0;
            while (h.engine.nextDueAt()! <= h.clock.now() && passes < 20) {
              purged += h.engine.runDue().purged;
              passes++;
            }
            expect(purged).toBe(5000);
            expect(passes).toBeGreaterThan(1); // no single pass reads the whole table
            expect(h.engine.counts()).toEqual({ scheduled: 1, running: 1 });
            expect(h.engine.get(old.id)!.status).toBe("scheduled");
          },
          { settings: { retentionDays: 1 } },
        ));

      it("a shorter retention takes effect at the next sweep", () =>
        withHarness(
          (h) => {
            const [t] = add(h, task("a"));
            h.engine.cancel(t.id);
            h.clock.advance(2 * 86_400_000);
            h.engine.runDue();
            expect(h.engine.get(t.id)?.id).toBe(t.id);
            h.engine.configure({ ...h.settings, version: h.settings.version + 1, retentionDays: 1 });
            expect(h.engine.nextDueAt()).toBeLessThanOrEqual(h.clock.now());
            h.engine.runDue();
            expect(h.engine.get(t.id)).toBeNull();
          },
          { settings: { retentionDays: 7 } },
        ));
    });

    describe("outbox", () => {
      it("a batch call writes its events as one outbox entry", () =>
        withHarness((h) => {
          const before = outboxRows(h);
          add(h, ...Array.from({ length: 50 }, (_, i) => task(`t${i}`)));
          expect(outboxRows(h) - before).toBe(1);
          const leases = leaseAll(h);
          h.engine.completeMany(leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })));
          expect(outboxRows(h) - before).toBe(3);
        }));

      it("every visible change is an event: replaying the outbox rebuilds every stored task", () =>
        withHarness((h) => {
          const [dep, parent] = add(h, task("dep", { timeoutMs: 1000 }), task("parent", { waitForChildren: true, priority: 1 }));
          add(h, task("waiter", { dependsOn: [dep.id] }), task("waiter2", { dependsOn: [dep.id, parent.id] }));
          add(h, task("child", { parentId: parent.id, priority: 9 }), task("keyed", { idempotencyKey: "k", delayMs: 5000 }));
          let [l] = h.engine.lease("w", 1, h.settings);
          h.clock.advance(10);
          h.engine.heartbeat(l.task.id, l.leaseToken);
          h.engine.heartbeat(l.task.id, l.leaseToken, '{"step":1}');
          h.clock.advance(l.task.timeoutMs); // expires, is retried after backoff
          h.engine.runDue();
          h.clock.advance(60_000);
          h.engine.runDue();
          for (l of h.engine.lease("w", 10, h.settings)) h.engine.complete(l.task.id, l.leaseToken, '"ok"');
          h.engine.seal(parent.id);
          for (l of h.engine.lease("w", 10, h.settings)) h.engine.fail(l.task.id, l.leaseToken, '{"message":"no"}', false);
          const [late] = add(h, task("late"));
          h.engine.cancel(late.id);
          const replayed = new Map<string, Record<string, unknown>>();
          for (const row of h.store.readOutbox(0, 10_000)) {
            for (const e of row.events) {
              if (e.type === "enqueued") {
                expect(Object.values(e.changes)).not.toContain(null); // half the text of a new task's event
                replayed.set(e.id, { ...e.changes });
              } else if (e.type === "deleted") replayed.delete(e.id);
              else Object.assign(replayed.get(e.id)!, e.changes);
            }
          }
          const stored = h.engine.list({ limit: 100 });
          expect(stored.length).toBe(7);
          for (const row of stored) {
            // hasDependents is bookkeeping of the shard (no API field); leaseToken never leaves a lease.
            const { leaseToken: _t, hasDependents: _d, ...visible } = row;
            const { hasDependents: _e, ...fromEvents } = replayed.get(row.id)! as Record<string, unknown>;
            // An enqueued event leaves out the task's null fields: a field no event names is null.
            const filled = Object.fromEntries(Object.keys(visible).map((k) => [k, fromEvents[k] ?? null]));
            expect(filled, row.name).toEqual(visible);
            for (const k of Object.keys(fromEvents)) expect(visible, `${row.name}.${k}`).toHaveProperty(k);
          }
          // The lease token never leaves the lease: no event carries it.
          expect(JSON.stringify(h.store.readOutbox(0, 10_000))).not.toContain("leaseToken");
          const types = new Set(h.store.readOutbox(0, 10_000).flatMap((r) => r.events.map((e) => e.type)));
          for (const t of ["heartbeat", "progress", "child_added", "child_finished", "dependency_resolved", "expired", "unblocked"])
            expect(types).toContain(t);
        }));

      it("a refused call writes no outbox entry", () =>
        withHarness((h) => {
          const [t] = add(h, task("a"));
          const before = outboxRows(h);
          expect(codeOf(() => h.engine.complete(t.id, "forged"))).toBe("stale_lease");
          expect(outboxRows(h)).toBe(before);
        }));
    });

    describe("settings", () => {
      it("a paused shard leases nothing, and settings older than the ones held are ignored", () =>
        withHarness((h) => {
          add(h, task("a"));
          const paused = { ...h.settings, version: 2, paused: true };
          h.engine.configure(paused);
          expect(h.engine.lease("w", 1, { ...h.settings, version: 1, paused: false })).toEqual([]);
          expect(h.engine.settings.paused).toBe(true);
          h.restart(); // remembered across restarts
          expect(h.engine.settings.paused).toBe(true);
          expect(h.engine.lease("w", 1, { ...paused, version: 3, paused: false })).toHaveLength(1);
        }));
    });

    describe("totals", () => {
      it("counts enqueues, leases, completions, retries, expiries, dead letters and cancellations", () =>
        withHarness((h) => {
          const backoff = { baseMs: 0, factor: 1, maxMs: 0 };
          const [a, b, c, d] = add(h, task("a"), task("b", { maxAttempts: 1 }), task("c", { timeoutMs: 100, backoff }), task("d"));
          h.engine.cancel(d.id);
          const leases = h.engine.lease("w", 3, h.settings);
          const token = (id: string) => leases.find((l) => l.task.id === id)!.leaseToken;
          h.engine.complete(a.id, token(a.id));
          expect(codeOf(() => h.engine.complete(a.id, "forged"))).toBe("stale_lease");
          h.engine.fail(b.id, token(b.id), '{"message":"x"}');
          h.clock.advance(100);
          h.engine.runDue();
          expect(h.engine.totals).toEqual({ enqueued: 4, leased: 3, completed: 1, failed: 1, retried: 1, expired: 1, cancelled: 1 });
          expect(h.engine.get(c.id)!.status).toBe("pending"); // a zero backoff: ready again at once
        }));
    });

    describe("batch outcomes", () => {
      it("a stale token in a batch fails only its own item", () =>
        withHarness((h) => {
          add(h, task("a"), task("b"), task("c"));
          const [a, b, c] = leaseAll(h);
          const results = h.engine.completeMany([
            { id: a.task.id, leaseToken: a.leaseToken },
            { id: b.task.id, leaseToken: "forged" },
            { id: c.task.id, leaseToken: c.leaseToken },
          ]);
          expect(results.map((r) => r.ok)).toEqual([true, false, true]);
          expect(results[1].ok === false && results[1].problem.code).toBe("stale_lease");
          expect(h.engine.get(b.task.id)!.status).toBe("running");
        }));
    });
  });
}

function outboxRows(h: Harness): number {
  return h.store.outboxSize();
}
