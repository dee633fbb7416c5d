/**
 * Every error edgeq answers with has a code from this one map. The API turns a
 * QueueError into RFC 9457 problem+json in exactly one place (worker/problem.ts).
 */
export const ERROR = {
  validation_failed: { status: 400, title: "The request is not valid" },
  malformed_json: { status: 400, title: "The request body is not valid JSON" },
  unauthorized: { status: 401, title: "Authentication is required" },
  forbidden: { status: 403, title: "This credential may not do that" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  stale_lease: { status: 409, title: "The lease token is not the current one" },
  invalid_state: { status: 409, title: "The task is not in a state that allows this" },
  payload_too_large: { status: 413, title: "Too large" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  upgrade_required: { status: 426, title: "Upgrade required" },
  rate_limited: { status: 429, title: "Too many requests" },
  internal: { status: 500, title: "Internal error" },
  unavailable: { status: 503, title: "A dependency is unavailable" },
} as const;
export type ErrorCode = keyof typeof ERROR;

export interface FieldError {
  /** JSON pointer (RFC 6901) into the request, e.g. `/body/tasks/3/priority` */
  pointer: string;
  detail: string;
}

/** The plain-data form of a QueueError: what crosses a Durable Object RPC boundary. */
export interface Problem {
  code: ErrorCode;
  detail: string;
  errors?: FieldError[];
}

export class QueueError extends Error {
  readonly code: ErrorCode;
  readonly errors?: FieldError[];
  constructor(code: ErrorCode, detail: string, errors?: FieldError[]) {
    super(detail);
    this.name = "QueueError";
    this.code = code;
    this.errors = errors;
  }
  get status(): number {
    return ERROR[this.code].status;
  }
  toProblem(): Problem {
    return this.errors ? { code: this.code, detail: this.message, errors: this.errors } : { code: this.code, detail: this.message };
  }
  static from(problem: Problem): QueueError {
    return new QueueError(problem.code, problem.detail, problem.errors);
  }
}

/** Asserts a domain rule; the message is a full sentence that tells the caller what to do. */
export function check(condition: unknown, code: ErrorCode, detail: string): asserts condition {
  if (!condition) throw new QueueError(code, detail);
}
