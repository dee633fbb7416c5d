import { planBatch, REF_PREFIX, type DagProblem } from "../durable/core/dag";
import type { Enqueued, Mail, NewTask } from "../durable/core/engine";
import { QueueError, type FieldError } from "../durable/core/errors";
import { unwrap } from "../durable/outcome";
import type { QueueSettings, Status } from "../schema/shard";
import { enqueueWave } from "./placement";
import { groupByKnownShard, groupByShard, shardOf } from "./shards";

/** A task to enqueue, with the batch-local name others may depend on. */
export type Submission = NewTask & { ref?: string };

function refused(problems: DagProblem[], pointer: (i: number) => string): QueueError {
  const errors: FieldError[] = problems.map((p) =>
    p.kind === "cycle"
      ? {
          pointer: pointer(0).replace(/\/\d+$/, "") || "/",
          detail: `dependency cycle through ${p.refs.map((r) => `ref:${r}`).join(" → ")}`,
        }
      : p.kind === "duplicate_ref"
        ? { pointer: `${pointer(p.index)}/ref`, detail: `ref "${p.ref}" is used by an earlier task of the batch` }
        : { pointer: `${pointer(p.index)}/dependsOn`, detail: `no task of this batch has ref "${p.ref}"` },
  );
  return new QueueError("validation_failed", errors.map((e) => e.detail).join("; "), errors);
}

/** The status of each existing task named, by asking the shards that hold them (one call per shard). */
async function peek(env: Env, tenant: string, ids: string[]): Promise<Map<string, Status | null>> {
  const out = new Map<string, Status | null>(ids.map((id) => [id, null]));
  await Promise.all(
    (await groupByKnownShard(env, tenant, ids, (id) => id)).map(async (g) => {
      const statuses = unwrap(await shardOf(env, tenant, g.queue, g.shard).peek(g.items));
      g.items.forEach((id, i) => out.set(id, statuses[i]));
    }),
  );
  return out;
}

/**
 * Enqueues tasks that may depend on existing tasks and on each other (`ref:`).
 * Everything is checked before anything is written: refs, cycles, and that every
 * named task exists in this tenant (a 400 names the ones that do not). Tasks are
 * then written in waves, each after the ones it names, so their ids are known.
 */
export async function submit(
  env: Env,
  tenant: string,
  queue: string,
  settings: QueueSettings,
  inputs: Submission[],
  pointer: (i: number) => string,
): Promise<Enqueued[]> {
  const planned = planBatch(inputs);
  if (!planned.ok) throw refused(planned.problems, pointer);
  const { waves, external } = planned.plan;

  const known = external.length > 0 ? await peek(env, tenant, external) : new Map<string, Status | null>();
  const unknown: FieldError[] = [];
  const missing = (id: string) => !id.startsWith(REF_PREFIX) && known.get(id) === null;
  inputs.forEach((t, i) => {
    t.dependsOn?.forEach((id, j) => {
      if (missing(id)) unknown.push({ pointer: `${pointer(i)}/dependsOn/${j}`, detail: `task ${id} does not exist` });
    });
    if (t.parentId && missing(t.parentId)) unknown.push({ pointer: `${pointer(i)}/parentId`, detail: `task ${t.parentId} does not exist` });
  });
  if (unknown.length > 0) {
    const ids = [...new Set(unknown.map((u) => u.detail.split(" ")[1]))];
    throw new QueueError(
      "validation_failed",
      `Unknown tasks: ${ids.join(", ")}. A task can name (as dependency or parent) only existing tasks of its tenant, or members of its batch by ref.`,
      unknown,
    );
  }

  const out = new Array<Enqueued>(inputs.length);
  const idOfRef = new Map<string, string>();
  for (const wave of waves) {
    const tasks = wave.map((i): NewTask => {
      const { ref: _ref, ...task } = inputs[i];
      if (task.parentId?.startsWith(REF_PREFIX)) task.parentId = idOfRef.get(task.parentId.slice(REF_PREFIX.length))!;
      if (!task.dependsOn?.length) return task;
      const dependsOn = task.dependsOn.map((d) => (d.startsWith(REF_PREFIX) ? idOfRef.get(d.slice(REF_PREFIX.length))! : d));
      return {
        ...task,
        dependsOn,
        satisfied: dependsOn.filter((d) => known.get(d) === "completed"),
        broken: dependsOn.filter((d) => known.get(d) === "failed" || known.get(d) === "cancelled"),
      };
    });
    const made = await enqueueWave(env, tenant, queue, settings, tasks);
    made.forEach((m, k) => (out[wave[k]] = m));
    for (const i of wave) if (inputs[i].ref !== undefined) idOfRef.set(inputs[i].ref!, out[i].task.id);
  }
  await registerChildren(env, tenant, inputs, out);
  return out;
}

/**
 * Tells each parent about its new children before the enqueue is answered, so a
 * client that seals a parent after its children's 201s cannot seal too early.
 * (Each child's shard also sends the news through its mail: if this call fails,
 * the answer is 503 and the news still arrives.) A parent whose children came in
 * its own batch is sealed here, after they are all registered.
 */
async function registerChildren(env: Env, tenant: string, inputs: Submission[], made: Enqueued[]): Promise<void> {
  const news: { to: string; mail: Mail }[] = [];
  const sealed = new Set<string>();
  made.forEach((m, i) => {
    const parent = m.task.parentId;
    if (!parent || !m.created) return;
    news.push({ to: parent, mail: { kind: "child_added", parent, child: m.task.id } });
    if (inputs[i].parentId?.startsWith(REF_PREFIX)) sealed.add(parent);
  });
  for (const parent of sealed) news.push({ to: parent, mail: { kind: "seal", parent } });
  try {
    await Promise.all(
      groupByShard(news, (n) => n.to).map(async (g) => {
        const address = { tenant, queue: g.queue, shard: g.shard };
        unwrap(
          await shardOf(env, tenant, g.queue, g.shard).receive(
            address,
            g.items.map((n) => n.mail),
          ),
        );
      }),
    );
  } catch (e) {
    if (e instanceof QueueError) throw e;
    throw new QueueError(
      "unavailable",
      "The tasks were created, but their parents could not be told yet (they will be shortly). Wait before sealing a parent.",
    );
  }
}
