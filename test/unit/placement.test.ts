import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ShardEngine, type NewTask, type OutgoingMail } from "../../durable/core/engine";
import { QueueError } from "../../durable/core/errors";
import { shardForKey } from "../../durable/core/ids";
import { MemoryStore } from "../../durable/core/memory-store";
import { place, type ShardCalls } from "../../durable/core/placement";
import { applyPatch } from "../../durable/core/settings";
import { DEFAULT_SETTINGS, shardCounts } from "../../schema/shard";
import { ManualClock, seeded } from "../suites/harness";

/**
 * Idempotency across groups and shards, as a property: placement (the Worker's
 * part) over four engines (the shards' part), with random keys and groups,
 * replays, creations cut short after their claim, deletes whose news to the
 * key's home arrives at once or later, and time passing. After every step no
 * key names two live tasks within its window, and every grouped task lives in
 * its group's shard.
 */
/** Four shards, grown to eight by the `grow` step. */
const S = 4;
const MAX = 8;
const WINDOW = DEFAULT_SETTINGS.idempotencyWindowMs;

function world(seed: number) {
  const clock = new ManualClock();
  const entropy = seeded(seed);
  const stores = Array.from({ length: MAX }, () => new MemoryStore());
  const engines = stores.map((s) => new ShardEngine(s, clock, entropy));
  const address = (shard: number) => ({ tenant: "t", queue: "q", shard });
  const w = { settings: applyPatch(DEFAULT_SETTINGS, { shards: S }, clock.now()) };
  const calls: ShardCalls = {
    claim: async (shard, items) => engines[shard].claim(address(shard), items, w.settings),
    lookup: async (shard, keys) => engines[shard].lookupKeys(keys),
    enqueue: async (shard, tasks) => engines[shard].enqueue(address(shard), tasks, w.settings),
    getMany: async (shard, ids) => ids.map((id) => engines[shard].get(id)).filter((t) => t !== null),
    now: () => clock.now(),
  };
  /** Carries every message between shards (a delete's news to a key's home). */
  const deliver = () => {
    for (const engine of engines) {
      const due: OutgoingMail[] = engine.mailDue();
      for (const m of due) engines[m.to.shard].receive(address(m.to.shard), [m.mail]);
      if (due.length > 0) engine.mailDelivered(due.map((m) => m.seq));
    }
  };
  const all = () => stores.flatMap((s, shard) => [...s.tasks.values()].map((t) => ({ ...t, shard })));
  /** The queue grows to MAX shards; every shard is told (as PATCH does). */
  const grow = () => {
    if (w.settings.shards === MAX) return;
    w.settings = applyPatch(w.settings, { shards: MAX }, clock.now());
    for (const e of engines) e.configure(w.settings);
  };
  return {
    clock,
    engines,
    calls,
    deliver,
    all,
    address,
    grow,
    get settings() {
      return w.settings;
    },
  };
}

const Key = fc.option(fc.constantFrom("k1", "k2", "k3", "k4", "k5"), { nil: undefined });
const Group = fc.option(fc.constantFrom("g1", "g2", "g3"), { nil: undefined });
const Op = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("enqueue" as const),
      tasks: fc.array(fc.record({ key: Key, group: Group }), { minLength: 1, maxLength: 3 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("cutShort" as const),
      key: fc.constantFrom("k1", "k2", "k3", "k4", "k5"),
      group: fc.constantFrom("g1", "g2", "g3"),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ op: fc.constant("delete" as const), i: fc.nat(), tellHome: fc.boolean() }), weight: 2 },
  {
    arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.constantFrom(0, 5_000, 11_000, 3_600_000, WINDOW + 1) }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant("deliver" as const) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("grow" as const) }), weight: 1 },
);

describe("placement", () => {
  it("one idempotency key, one live task per queue within its window, whatever the group or a growth of the shard count; groups stay in their shard", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(Op, { minLength: 10, maxLength: 60, size: "max" }), fc.integer({ min: 1, max: 1e6 }), async (ops, seed) => {
        const w = world(seed);
        for (const op of ops) {
          if (op.op === "enqueue") {
            const inputs: NewTask[] = op.tasks.map((t) => ({ name: "t", payload: "{}", idempotencyKey: t.key, groupKey: t.group }));
            try {
              const out = await place(w.calls, w.settings, inputs);
              out.forEach((o, j) => expect(o.task.idempotencyKey ?? undefined).toBe(inputs[j].idempotencyKey));
              // A key repeated in one call answers one task.
              for (const [j, a] of inputs.entries()) {
                for (const [k, b] of inputs.entries())
                  if (a.idempotencyKey && a.idempotencyKey === b.idempotencyKey) expect(out[j].task.id).toBe(out[k].task.id);
              }
            } catch (e) {
              // Refusals are 409s (a creation on its way, a deleted task's key still being freed), never anything else.
              expect(e instanceof QueueError && e.code === "invalid_state", String(e)).toBe(true);
            }
          } else if (op.op === "cutShort") {
            // A request that claimed its key and died before making the task.
            const n = w.settings.shards;
            const home = shardForKey(op.key, n);
            const target = shardForKey(op.group, n);
            if (home !== target) w.engines[home].claim(w.address(home), [{ key: op.key, shard: target }], w.settings);
          } else if (op.op === "delete") {
            const tasks = w.all();
            if (tasks.length === 0) continue;
            const t = tasks[op.i % tasks.length];
            const engine = w.engines[t.shard];
            if (t.status !== "cancelled") engine.cancel(t.id);
            engine.remove(t.id);
            if (op.tellHome) w.deliver(); // the Worker tells the key's home before answering
          } else if (op.op === "advance") {
            w.clock.advance(op.ms);
            for (const e of w.engines) e.runDue();
          } else if (op.op === "grow") {
            w.grow();
          } else {
            w.deliver();
          }
          const now = w.clock.now();
          const live = w.all();
          const byKey = new Map<string, string[]>();
          for (const t of live) {
            // in its group's shard under the count it was made with (the group moves when the queue grows)
            if (t.groupKey !== null)
              expect(
                shardCounts(w.settings, now).map((n) => shardForKey(t.groupKey!, n)),
                `group ${t.groupKey} outside its shard`,
              ).toContain(t.shard);
            if (t.idempotencyKey !== null && t.createdAt + WINDOW > now)
              byKey.set(t.idempotencyKey, [...(byKey.get(t.idempotencyKey) ?? []), t.id]);
          }
          for (const [key, ids] of byKey) expect(ids, `key ${key} names ${ids.length} live tasks`).toHaveLength(1);
        }
      }),
      { seed: 20261129, numRuns: 300 },
    );
  }, 120_000); // 300 generated runs: a busy machine needs more than the default 5 s
});
