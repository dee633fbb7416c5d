import type { NewTask } from "../durable/core/engine";
import { QueueError } from "../durable/core/errors";
import { LIMITS, type EnqueueInput } from "../schema/api";

const encoder = new TextEncoder();

/**
 * The pointer of the first value nested deeper than `max` levels in `value`, or
 * null. Walks containers only, with an explicit stack (a hostile document cannot
 * overflow ours), and spells the pointer out only for the one it reports.
 */
export function tooDeep(value: unknown, max: number, pointer = ""): string | null {
  type Node = { v: object; depth: number; parent: Node | null; key: string };
  const stack: Node[] = value !== null && typeof value === "object" ? [{ v: value, depth: 0, parent: null, key: "" }] : [];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.depth >= max) {
      const keys: string[] = [];
      for (let n: Node | null = node; n?.parent; n = n.parent) keys.push(n.key.replaceAll("~", "~0").replaceAll("/", "~1"));
      return (
        pointer +
        keys
          .reverse()
          .map((k) => `/${k}`)
          .join("")
      );
    }
    if (Array.isArray(node.v)) {
      node.v.forEach((child, i) => {
        if (child !== null && typeof child === "object") stack.push({ v: child, depth: node.depth + 1, parent: node, key: String(i) });
      });
    } else {
      for (const k in node.v) {
        const child = (node.v as Record<string, unknown>)[k];
        if (child !== null && typeof child === "object") stack.push({ v: child, depth: node.depth + 1, parent: node, key: k });
      }
    }
  }
  return null;
}

/** JSON text of `value`: refused with 400 when nested deeper than LIMITS.jsonDepth, with 413 when larger than `limit` bytes. */
export function jsonText(value: unknown, limit: number, pointer: string): string {
  // Depth first: serialising a deep value recurses (the walk does not, and the body limit bounds it).
  const deep = tooDeep(value, LIMITS.jsonDepth, pointer);
  if (deep !== null) {
    throw new QueueError("validation_failed", `${pointer || "/"} nests deeper than ${LIMITS.jsonDepth} levels; flatten it.`, [
      { pointer: deep, detail: `nested deeper than ${LIMITS.jsonDepth} levels` },
    ]);
  }
  const text = JSON.stringify(value ?? null);
  // A UTF-16 code unit is at most 3 bytes of UTF-8: a short text is within the limit without encoding it.
  const bytes = text.length * 3 <= limit ? text.length : encoder.encode(text).length;
  if (bytes > limit) {
    throw new QueueError(
      "payload_too_large",
      `${pointer} is ${bytes} bytes; the limit is ${limit} bytes. Store large data elsewhere and pass a reference.`,
      [{ pointer, detail: `larger than ${limit} bytes` }],
    );
  }
  return text;
}

/** JSON text of an optional value (a result, a progress report); undefined stays undefined. */
export function optionalJson(value: unknown, pointer: string, limit: number = LIMITS.resultBytes): string | undefined {
  return value === undefined ? undefined : jsonText(value, limit, pointer);
}

/** A progress report: small, since each one that changes is written. */
export const progressJson = (value: unknown, pointer: string) => optionalJson(value, pointer, LIMITS.progressBytes);

/** `runAt` in ms, refused when further ahead than LIMITS.aheadMs (the cap of `delayMs` too). */
function runAtOf(runAt: string | undefined, pointer: string): number | undefined {
  if (runAt === undefined) return undefined;
  const at = Date.parse(runAt);
  if (at > Date.now() + LIMITS.aheadMs) {
    throw new QueueError("validation_failed", `runAt is more than 365 days ahead; schedule it closer (or use a schedule).`, [
      { pointer: `${pointer}/runAt`, detail: "more than 365 days ahead" },
    ]);
  }
  return at;
}

/** A validated enqueue body as the engine takes it. */
export function newTask(input: EnqueueInput, pointer = ""): NewTask {
  return {
    name: input.name,
    payload: jsonText(input.payload, LIMITS.payloadBytes, `${pointer}/payload`),
    priority: input.priority,
    delayMs: input.delayMs,
    runAt: runAtOf(input.runAt, pointer),
    maxAttempts: input.maxAttempts,
    backoff: input.backoff,
    timeoutMs: input.timeoutMs,
    parentId: input.parentId,
    idempotencyKey: input.idempotencyKey,
    groupKey: input.groupKey,
    tags: input.tags,
    dependsOn: input.dependsOn,
    onDependencyFailure: input.onDependencyFailure,
    waitForChildren: input.waitForChildren,
  };
}
