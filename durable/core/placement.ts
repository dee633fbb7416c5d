import { shardCounts, shardsAt, type QueueSettings, type TaskRow } from "../../schema/shard";
import { check } from "./errors";
import { groupByShard, idTime, shardForKey } from "./ids";
import type { Claim, Elsewhere, Enqueued, NewTask } from "./types";

/**
 * Where tasks go and how an idempotency key stays one task per queue.
 *
 * A task with a `groupKey` lives in its group's shard (`hash(groupKey) % shards`),
 * so the group's limits hold exactly there; else in its key's shard; else
 * anywhere (round robin). A key is always held by its home shard
 * (`hash(key) % shards`): when the task goes elsewhere (its group's shard), the
 * home shard first claims the key for a new id in that shard, and the task is
 * then made there with that id. A replay meets the claim and gets the first task.
 *
 * Pure over `ShardCalls`: the Worker passes Durable Object stubs, tests pass engines.
 */

/** What placement needs from the shards of one queue. */
export interface ShardCalls {
  claim(shard: number, items: { key: string; shard: number }[]): Promise<Claim[]>;
  /** the task id each key names at that shard (keys claimed there before the queue grew) */
  lookup(shard: number, keys: string[]): Promise<(string | null)[]>;
  enqueue(shard: number, tasks: NewTask[]): Promise<(Enqueued | Elsewhere)[]>;
  getMany(shard: number, ids: string[]): Promise<TaskRow[]>;
  now(): number;
}

/**
 * Every shard an idempotency key's home may be: under the current shard count,
 * or an earlier one if the queue grew since the key was claimed.
 */
export function keyHomes(key: string, settings: QueueSettings, now: number): number[] {
  return [...new Set(shardCounts(settings, now).map((n) => shardForKey(key, n)))];
}

/** A claimed id younger than this whose task is not there yet is a creation still on its way. */
export const IN_FLIGHT_MS = 10_000;

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
export async function place(calls: ShardCalls, settings: QueueSettings, inputs: NewTask[]): Promise<Enqueued[]> {
  const shards = placement(inputs, settings.shards);
  const tasks = inputs.map((t) => ({ ...t }));
  const answers = new Array<Enqueued | Elsewhere>(tasks.length);
  await oldHomes(calls, settings, tasks, answers);

  // Keys whose task goes to another shard than the key's home: claim them there first.
  const claims = new Map<number, number[]>();
  tasks.forEach((t, j) => {
    if (t.idempotencyKey === undefined || answers[j] !== undefined) return;
    const home = shardForKey(t.idempotencyKey, settings.shards);
    if (home !== shards[j]) claims.set(home, [...(claims.get(home) ?? []), j]);
  });
  await Promise.all(
    [...claims].map(async ([home, members]) => {
      const claimed = await calls.claim(
        home,
        members.map((j) => ({ key: tasks[j].idempotencyKey!, shard: shards[j] })),
      );
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
      const made = await calls.enqueue(
        shard,
        members.map((j) => tasks[j]),
      );
      made.forEach((m, k) => (answers[members[k]] = m));
    }),
  );
  return resolve(calls, settings, tasks, answers);
}

/**
 * After the queue grew, a key claimed before may live at its old home
 * (`hash(key) % old count`): those homes are asked first, for as long as such a
 * claim can be inside its window. A key found there answers its task.
 */
async function oldHomes(calls: ShardCalls, settings: QueueSettings, tasks: NewTask[], answers: (Enqueued | Elsewhere)[]): Promise<void> {
  // Padded by a second: a Worker may place by settings cached up to that long before the growth.
  const since = calls.now() - settings.idempotencyWindowMs - 1000;
  const counts = [...new Set(settings.shardHistory.filter((h) => h.until > since).map((h) => h.shards))];
  if (counts.length === 0) return;
  const asks = new Map<number, number[]>();
  tasks.forEach((t, j) => {
    const key = t.idempotencyKey;
    if (key === undefined) return;
    const home = shardForKey(key, settings.shards);
    for (const old of new Set(counts.map((n) => shardForKey(key, n)))) {
      if (old !== home) asks.set(old, [...(asks.get(old) ?? []), j]);
    }
  });
  await Promise.all(
    [...asks].map(async ([shard, members]) => {
      const named = await calls.lookup(
        shard,
        members.map((j) => tasks[j].idempotencyKey!),
      );
      named.forEach((id, k) => {
        if (id !== null) answers[members[k]] ??= { created: false, elsewhere: id };
      });
    }),
  );
}

/**
 * Turns each "the key names task X" into task X itself: from this call's answers,
 * else from X's shard. A claimed X that does not exist yet is either a creation
 * still on its way (younger than IN_FLIGHT_MS: 409, retry) or one that was cut
 * short (its caller saw an error): that one is made now, with X's id, from this
 * input — if this input's group lives on X's shard, so group limits stay exact.
 */
async function resolve(
  calls: ShardCalls,
  settings: QueueSettings,
  tasks: NewTask[],
  answers: (Enqueued | Elsewhere)[],
): Promise<Enqueued[]> {
  const known = new Map(answers.flatMap((a) => ("task" in a ? [[a.task.id, a.task] as const] : [])));
  /** tasks this call made while resolving (a cut-short creation finished): they answer `created` */
  const madeNow = new Map<string, boolean>();
  const away = answers.flatMap((a, j) => ("elsewhere" in a && !known.has(a.elsewhere) ? [{ j, id: a.elsewhere }] : []));
  await Promise.all(
    groupByShard(away, (w) => w.id).map(async (g) => {
      const found = new Map(
        (
          await calls.getMany(
            g.shard,
            g.items.map((w) => w.id),
          )
        ).map((t) => [t.id, t]),
      );
      const missing = g.items.filter((w) => !found.has(w.id));
      for (const w of missing) {
        check(
          calls.now() - idTime(w.id) >= IN_FLIGHT_MS,
          "invalid_state",
          `The first request with idempotency key "${tasks[w.j].idempotencyKey}" is still being processed; retry in a few seconds.`,
        );
        const group = tasks[w.j].groupKey;
        // The count the claim was made with (a second either side: clocks of different machines).
        const claimedWith = [-1000, 1000].map((d) => shardsAt(settings, idTime(w.id) + d));
        check(
          group === undefined || claimedWith.some((n) => shardForKey(group, n) === g.shard),
          "invalid_state",
          `Idempotency key "${tasks[w.j].idempotencyKey}" names a task whose creation did not finish, in another group's shard; retry with the first request's groupKey.`,
        );
      }
      if (missing.length > 0) {
        const made = await calls.enqueue(
          g.shard,
          missing.map((w) => ({ ...tasks[w.j], id: w.id })),
        );
        // By position: a key held here from before home shards answers its own (older) task for the claimed id.
        made.forEach((m, k) => {
          if (!("task" in m)) return;
          madeNow.set(missing[k].id, m.created);
          found.set(missing[k].id, m.task);
        });
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
