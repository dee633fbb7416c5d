import type { Elsewhere, Enqueued, NewTask } from "../durable/core/engine";
import { check } from "../durable/core/errors";
import { idTime, parseTaskId, shardForKey } from "../durable/core/ids";
import { unwrap } from "../durable/outcome";
import { shardOf } from "../durable/queue-shard";
import type { QueueSettings, TaskRow } from "../schema/shard";
import { findQueue, groupByShard } from "./shards";

/**
 * Where tasks go and how an idempotency key stays one task per queue.
 *
 * A task with a `groupKey` lives in its group's shard (`hash(groupKey) % shards`),
 * so the group's limits hold exactly there; else in its key's shard; else
 * anywhere (round robin). A key is always held by its home shard
 * (`hash(key) % shards`): when the task goes elsewhere (its group's shard), the
 * home shard first claims the key for a new id in that shard, and the task is
 * then made there with that id. A replay meets the claim and gets the first task.
 */

/** Which shard each task goes to: its group's, else its key's, else round robin from a random start. */
export function placement(inputs: NewTask[], shards: number): number[] {
  let next = Math.floor(Math.random() * shards);
  return inputs.map((t) => {
    const key = t.groupKey ?? t.idempotencyKey;
    return key === undefined ? next++ % shards : shardForKey(key, shards);
  });
}

/**
 * Enqueues tasks none of which names another by ref (one wave of a batch), one
 * call per shard (plus one per key home for keyed tasks placed by their group).
 * Answers in input order, each with the task: a replayed key answers the first task.
 */
export async function enqueueWave(env: Env, tenant: string, queue: string, settings: QueueSettings, inputs: NewTask[]): Promise<Enqueued[]> {
  const shards = placement(inputs, settings.shards);
  const tasks = inputs.map((t) => ({ ...t }));
  const answers = new Array<Enqueued | Elsewhere>(tasks.length);

  // Keys whose task goes to another shard than the key's home: claim them there first.
  const claims = new Map<number, number[]>();
  tasks.forEach((t, j) => {
    if (t.idempotencyKey === undefined) return;
    const home = shardForKey(t.idempotencyKey, settings.shards);
    if (home !== shards[j]) claims.set(home, [...(claims.get(home) ?? []), j]);
  });
  await Promise.all(
    [...claims].map(async ([home, members]) => {
      const items = members.map((j) => ({ key: tasks[j].idempotencyKey!, shard: shards[j] }));
      const claimed = unwrap(await shardOf(env, tenant, queue, home).claim({ tenant, queue, shard: home }, items, settings));
      claimed.forEach((c, k) => {
        const j = members[k];
        if (c.fresh) tasks[j].id = c.id;
        else answers[j] = { created: false, elsewhere: c.id };
      });
    }),
  );

  const byShard = new Map<number, number[]>();
  shards.forEach((s, j) => {
    if (answers[j] === undefined) byShard.set(s, [...(byShard.get(s) ?? []), j]);
  });
  await Promise.all(
    [...byShard].map(async ([shard, members]) => {
      const made = unwrap(await shardOf(env, tenant, queue, shard).enqueue({ tenant, queue, shard }, members.map((j) => tasks[j]), settings));
      made.forEach((m, k) => (answers[members[k]] = m));
    }),
  );
  return resolve(env, tenant, settings, tasks, answers);
}

/** A claimed id younger than this whose task is not there yet is a creation still on its way. */
export const IN_FLIGHT_MS = 10_000;

/**
 * A deleted task's idempotency key, freed at its home shard before the delete is
 * answered (the deleting shard's mail does it too, later, if this call fails), so
 * a replay right after the delete makes a new task.
 */
export async function freeKeyNow(env: Env, tenant: string, task: TaskRow): Promise<void> {
  const at = parseTaskId(task.id);
  const key = task.idempotencyKey;
  if (!at || key === null) return;
  const record = await findQueue(env, tenant, at.queue);
  const home = shardForKey(key, record?.settings.shards ?? 1);
  if (home === at.shard) return; // freed in the delete's own transaction
  try {
    unwrap(await shardOf(env, tenant, at.queue, home).receive({ tenant, queue: at.queue, shard: home }, [{ kind: "unclaim", key, task: task.id }]));
  } catch {
    // The mail written with the delete delivers it.
  }
}

/**
 * Turns each "the key names task X" into task X itself: from this call's answers,
 * else from X's shard. A claimed X that does not exist yet is either a creation
 * still on its way (younger than IN_FLIGHT_MS: 409, retry) or one that was cut
 * short (its caller saw an error): that one is made now, with X's id, from this
 * input — if this input's group lives on X's shard, so group limits stay exact.
 */
async function resolve(
  env: Env,
  tenant: string,
  settings: QueueSettings,
  tasks: NewTask[],
  answers: (Enqueued | Elsewhere)[],
): Promise<Enqueued[]> {
  const known = new Map(answers.flatMap((a) => ("task" in a ? [[a.task.id, a.task] as const] : [])));
  const away = answers.flatMap((a, j) => ("elsewhere" in a && !known.has(a.elsewhere) ? [{ j, id: a.elsewhere }] : []));
  /** tasks this call made while resolving (a cut-short creation finished): they answer `created` */
  const madeNow = new Map<string, boolean>();
  await Promise.all(
    groupByShard(away, (w) => w.id).map(async (g) => {
      const stub = shardOf(env, tenant, g.queue, g.shard);
      const found = new Map(unwrap(await stub.getMany(g.items.map((w) => w.id))).map((t) => [t.id, t]));
      const missing = g.items.filter((w) => !found.has(w.id));
      for (const w of missing) {
        check(
          Date.now() - idTime(w.id) >= IN_FLIGHT_MS,
          "invalid_state",
          `The first request with idempotency key "${tasks[w.j].idempotencyKey}" is still being processed; retry in a few seconds.`,
        );
        const group = tasks[w.j].groupKey;
        check(
          group === undefined || shardForKey(group, settings.shards) === g.shard,
          "invalid_state",
          `Idempotency key "${tasks[w.j].idempotencyKey}" names a task whose creation did not finish, in another group's shard; retry with the first request's groupKey.`,
        );
      }
      if (missing.length > 0) {
        const address = { tenant, queue: g.queue, shard: g.shard };
        const made = unwrap(await stub.enqueue(address, missing.map((w) => ({ ...tasks[w.j], id: w.id })), settings));
        for (const m of made) if ("task" in m) madeNow.set(m.task.id, m.created);
        for (const m of made) if ("task" in m) found.set(m.task.id, m.task);
      }
      for (const [id, task] of found) known.set(id, task);
    }),
  );
  return answers.map((a) => {
    if ("task" in a) return a;
    const task = known.get(a.elsewhere);
    if (!task) throw new Error(`task ${a.elsewhere} named by an idempotency key could not be read or made`);
    const created = madeNow.get(a.elsewhere) ?? false;
    madeNow.delete(a.elsewhere); // a key repeated in one batch: the first copy made it
    return { task, created };
  });
}
