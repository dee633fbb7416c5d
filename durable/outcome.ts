import { QueueError, type Problem } from "./core/errors";

/**
 * What a Durable Object RPC method returns. Errors are values, not throws:
 * a thrown error crosses RPC as a bare message, a Problem keeps its code.
 */
export type Outcome<T> = { ok: true; value: T } | { ok: false; problem: Problem };

export function outcome<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof QueueError) return { ok: false, problem: e.toProblem() };
    throw e;
  }
}

/** `outcome` for work that awaits (e.g. a call to another Durable Object). */
export async function outcomeAsync<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (e instanceof QueueError) return { ok: false, problem: e.toProblem() };
    throw e;
  }
}

/** The caller's side: the value, or the QueueError the callee answered with. */
export function unwrap<T>(result: Outcome<T>): T {
  if (result.ok) return result.value;
  throw QueueError.from(result.problem);
}
