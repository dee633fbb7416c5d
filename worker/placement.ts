import { keyHomes, place } from "../durable/core/placement";
import type { Enqueued, NewTask } from "../durable/core/engine";
import { parseTaskId } from "../durable/core/ids";
import { unwrap } from "../durable/outcome";
import { shardOf } from "../durable/queue-shard";
import type { QueueSettings, TaskRow } from "../schema/shard";
import { findQueue } from "./shards";

/**
 * Enqueues one wave of a batch through `durable/core/placement.ts` (where tasks
 * go, and one task per idempotency key), over the queue's shard stubs.
 */
export function enqueueWave(env: Env, tenant: string, queue: string, settings: QueueSettings, inputs: NewTask[]): Promise<Enqueued[]> {
  const stub = (shard: number) => shardOf(env, tenant, queue, shard);
  const address = (shard: number) => ({ tenant, queue, shard });
  return place(
    {
      claim: async (shard, items) => unwrap(await stub(shard).claim(address(shard), items, settings)),
      lookup: async (shard, keys) => unwrap(await stub(shard).lookupKeys(keys)),
      enqueue: async (shard, tasks) => unwrap(await stub(shard).enqueue(address(shard), tasks, settings)),
      getMany: async (shard, ids) => unwrap(await stub(shard).getMany(ids)),
      now: () => Date.now(),
    },
    settings,
    inputs,
  );
}

/**
 * A deleted task's idempotency key, freed at its home shard before the delete is
 * answered (the deleting shard's mail does it too, later, if this call fails), so
 * a replay right after the delete makes a new task.
 */
export async function freeKeyNow(env: Env, tenant: string, task: TaskRow): Promise<void> {
  const at = parseTaskId(task.id);
  const key = task.idempotencyKey;
  if (!at || key === null) return;
  let homes: Set<number>;
  try {
    const record = await findQueue(env, tenant, at.queue);
    homes = new Set(record ? keyHomes(key, record.settings, Date.now()) : [0]);
  } catch {
    return; // the task is gone; the mail written with the delete frees its key
  }
  homes.delete(at.shard); // freed in the delete's own transaction
  await Promise.all(
    [...homes].map(async (home) => {
      try {
        unwrap(
          await shardOf(env, tenant, at.queue, home).receive({ tenant, queue: at.queue, shard: home }, [
            { kind: "unclaim", key, task: task.id },
          ]),
        );
      } catch {
        // The mail written with the delete delivers it.
      }
    }),
  );
}
