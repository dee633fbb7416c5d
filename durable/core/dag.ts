/**
 * Dependencies within one submission. A task may depend on tasks that exist
 * (by id) and on members of its own batch (by `ref:<name>`). A new task has an
 * id no existing task can name, so a cycle can only run through refs: checking
 * the batch's ref graph is enough to keep the whole graph acyclic.
 */

export const REF_PREFIX = "ref:";

export interface DagItem {
  ref?: string;
  dependsOn?: string[];
  parentId?: string;
}

export type DagProblem =
  | { kind: "duplicate_ref"; index: number; ref: string }
  | { kind: "unknown_ref"; index: number; ref: string }
  | { kind: "cycle"; refs: string[] };

export interface DagPlan {
  /** item indexes by depth: every item's refs are in earlier waves */
  waves: number[][];
  /** ids named by `dependsOn` / `parentId` that are not refs, deduplicated */
  external: string[];
}

const isRef = (value: string) => value.startsWith(REF_PREFIX);

/** The refs an item points at: its ref dependencies and a ref parent (which must exist first). */
function refsOf(item: DagItem): string[] {
  const named = [...(item.dependsOn ?? []), ...(item.parentId ? [item.parentId] : [])];
  return named.filter(isRef).map((r) => r.slice(REF_PREFIX.length));
}

/** Orders a batch into waves, or names what is wrong with it. */
export function planBatch(items: DagItem[]): { ok: true; plan: DagPlan } | { ok: false; problems: DagProblem[] } {
  const problems: DagProblem[] = [];
  const byRef = new Map<string, number>();
  items.forEach((item, index) => {
    if (item.ref === undefined) return;
    if (byRef.has(item.ref)) problems.push({ kind: "duplicate_ref", index, ref: item.ref });
    else byRef.set(item.ref, index);
  });
  items.forEach((item, index) => {
    for (const ref of refsOf(item)) if (!byRef.has(ref)) problems.push({ kind: "unknown_ref", index, ref });
  });
  if (problems.length > 0) return { ok: false, problems };

  // Kahn's algorithm by levels; what is never freed lies on or behind a cycle.
  const depth = new Array<number>(items.length).fill(-1);
  const waiting = items.map((item) => new Set(refsOf(item)).size);
  const dependents = new Map<number, number[]>();
  items.forEach((item, index) => {
    for (const ref of new Set(refsOf(item))) {
      const on = byRef.get(ref)!;
      dependents.set(on, [...(dependents.get(on) ?? []), index]);
    }
  });
  let wave = items.flatMap((_, i) => (waiting[i] === 0 ? [i] : []));
  const waves: number[][] = [];
  while (wave.length > 0) {
    waves.push(wave);
    const next: number[] = [];
    for (const i of wave) {
      depth[i] = waves.length - 1;
      for (const d of dependents.get(i) ?? []) if (--waiting[d] === 0) next.push(d);
    }
    wave = next;
  }
  const stuck = items.flatMap((item, i) => (depth[i] === -1 ? [item.ref ?? `#${i}`] : []));
  if (stuck.length > 0) return { ok: false, problems: [{ kind: "cycle", refs: cycleAmong(items, byRef, depth) ?? stuck }] };

  const external = new Set<string>();
  for (const item of items) {
    for (const id of [...(item.dependsOn ?? []), ...(item.parentId ? [item.parentId] : [])]) if (!isRef(id)) external.add(id);
  }
  return { ok: true, plan: { waves, external: [...external] } };
}

/** One cycle's refs, in order, found by walking ref edges from an unplaced item. */
function cycleAmong(items: DagItem[], byRef: Map<string, number>, depth: number[]): string[] | null {
  const start = depth.indexOf(-1);
  if (start === -1) return null;
  const seenAt = new Map<number, number>();
  const path: number[] = [];
  let at = start;
  while (!seenAt.has(at)) {
    seenAt.set(at, path.length);
    path.push(at);
    const next = refsOf(items[at])
      .map((r) => byRef.get(r)!)
      .find((i) => depth[i] === -1);
    if (next === undefined) return null;
    at = next;
  }
  return path.slice(seenAt.get(at)).map((i) => items[i].ref ?? `#${i}`);
}

/**
 * What a dependent does when one of its dependencies resolves. Pure: the engine
 * stores `waiting` and applies the answer.
 */
export function resolveDependency(
  waiting: string[],
  dep: string,
  ok: boolean,
  policy: "cancel" | "run",
): { waiting: string[]; action: "none" | "wait" | "release" | "cancel" } {
  if (!waiting.includes(dep)) return { waiting, action: "none" }; // a duplicate, or resolved already
  const left = waiting.filter((d) => d !== dep);
  if (!ok && policy === "cancel") return { waiting: left, action: "cancel" };
  return { waiting: left, action: left.length === 0 ? "release" : "wait" };
}
