import { ShardEngine, type Clock, type Elsewhere, type Enqueued, type Entropy } from "../../durable/core/engine";
import type { ShardStore } from "../../durable/core/store";
import { DEFAULT_SETTINGS, type QueueSettings } from "../../schema/shard";

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(public t = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Seeded randomness (mulberry32), so a failing run can be replayed. */
export function seeded(seed: number): Entropy {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let n = 0;
  return { random, token: () => `tok${++n}_${Math.floor(random() * 1e9)}` };
}

export interface Harness {
  engine: ShardEngine;
  store: ShardStore;
  clock: ManualClock;
  settings: QueueSettings;
  address: { queue: string; shard: number };
  /** rebuilds the engine over the same storage, as after a restart */
  restart(): void;
}

export function makeHarness(store: ShardStore, seed = 1, settings: Partial<QueueSettings> = {}): Harness {
  const clock = new ManualClock();
  const entropy = seeded(seed);
  const h: Harness = {
    engine: new ShardEngine(store, clock, entropy),
    store,
    clock,
    settings: { ...DEFAULT_SETTINGS, ...settings },
    address: { queue: "q", shard: 0 },
    restart() {
      h.engine = new ShardEngine(store, clock, entropy);
    },
  };
  return h;
}

/** Runs a test body with a fresh harness; the workerd side builds it inside a fresh Durable Object. */
export type WithHarness = (body: (h: Harness) => void, options?: { seed?: number; settings?: Partial<QueueSettings> }) => Promise<void>;

/** An enqueue answer that must hold the task (a single-shard engine has no other shard to point at). */
export function made(e: Enqueued | Elsewhere): Enqueued {
  if (!("task" in e)) throw new Error(`expected a task, got a key held for ${e.elsewhere}`);
  return e;
}
