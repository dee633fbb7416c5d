import type { NewTask } from "../durable/core/engine";
import { QueueError } from "../durable/core/errors";
import { LIMITS, type EnqueueInput } from "../schema/api";

const encoder = new TextEncoder();

/** JSON text of `value`, refused with 413 when larger than `limit` bytes. */
export function jsonText(value: unknown, limit: number, pointer: string): string {
  const text = JSON.stringify(value ?? null);
  const bytes = encoder.encode(text).length;
  if (bytes > limit) {
    throw new QueueError("payload_too_large", `${pointer} is ${bytes} bytes; the limit is ${limit} bytes. Store large data elsewhere and pass a reference.`, [
      { pointer, detail: `larger than ${limit} bytes` },
    ]);
  }
  return text;
}

/** JSON text of an optional value (a result, a progress report); undefined stays undefined. */
export function optionalJson(value: unknown, pointer: string): string | undefined {
  return value === undefined ? undefined : jsonText(value, LIMITS.resultBytes, pointer);
}

/** A validated enqueue body as the engine takes it. */
export function newTask(input: EnqueueInput, pointer = ""): NewTask {
  return {
    name: input.name,
    payload: jsonText(input.payload, LIMITS.payloadBytes, `${pointer}/payload`),
    priority: input.priority,
    delayMs: input.delayMs,
    runAt: input.runAt === undefined ? undefined : Date.parse(input.runAt),
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
