import type { Problem } from "./types";

/** An error answered by the edgeq API, carrying its problem+json. */
export class EdgeqError extends Error {
  readonly status: number;
  readonly problem: Problem;
  constructor(problem: Problem) {
    // Some details already open with the title ("The request is not valid: {queue}: …"): say it once.
    super(problem.detail?.startsWith(problem.title) ? problem.detail : `${problem.title}: ${problem.detail}`);
    this.name = "EdgeqError";
    this.status = problem.status;
    this.problem = problem;
  }
  /** The error code, e.g. `stale_lease` (from `urn:edgeq:error:stale_lease`). */
  get code(): string {
    return this.problem.type.split(":").pop() ?? "";
  }
}

/** Thrown by a handler to fail its task without further retries. */
export class UnrecoverableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnrecoverableError";
  }
}
