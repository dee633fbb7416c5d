import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { ERROR, QueueError, type ErrorCode, type FieldError } from "../durable/core/errors";

/**
 * The one place errors become responses: RFC 9457 problem+json with a `type`
 * from the ERROR map, and for validation a field-level `errors` list.
 */
export function problemBody(err: QueueError, instance?: string) {
  return {
    type: `urn:edgeq:error:${err.code}`,
    title: ERROR[err.code].title,
    status: err.status,
    detail: err.message,
    ...(instance ? { instance } : {}),
    ...(err.errors ? { errors: err.errors } : {}),
  };
}

const HTTP_CODES: Record<number, ErrorCode> = {
  400: "malformed_json",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
};

const HTTP_DETAILS: Partial<Record<ErrorCode, string>> = {
  malformed_json: "The request body is not valid JSON. Send a JSON document with Content-Type: application/json.",
  unsupported_media_type: "Send the request body as JSON with Content-Type: application/json.",
};

/** Maps anything thrown while handling a request to a QueueError; the unexpected become `internal`. */
export function toQueueError(err: unknown): QueueError {
  if (err instanceof QueueError) return err;
  if (err instanceof HTTPException) {
    const code = HTTP_CODES[err.status];
    if (code) return new QueueError(code, HTTP_DETAILS[code] ?? err.message);
  }
  return new QueueError("internal", "The server failed to handle this request; it has been logged.");
}

/** A JSON pointer or parameter name for each zod issue, with its message. */
export function validationError(error: ZodError, target: string): QueueError {
  const errors: FieldError[] = error.issues.map((issue) => ({
    pointer: pointerFor(target, issue.path as PropertyKey[]),
    detail: issue.message,
  }));
  const detail = errors.map((e) => `${e.pointer}: ${e.detail}`).join("; ");
  return new QueueError("validation_failed", `The request is not valid: ${detail}`, errors);
}

function pointerFor(target: string, path: PropertyKey[]): string {
  const escaped = path.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1"));
  if (target === "json") return `/${escaped.join("/")}`;
  if (target === "query") return `?${escaped.join(".")}`;
  if (target === "param") return `{${escaped.join(".")}}`;
  return `${target}:${escaped.join(".")}`;
}

/** A problem+json response that keeps the headers already set on the context (rate limits, Retry-After, request id). */
export function respond(c: Context, err: QueueError, headers: Record<string, string> = {}): Response {
  return c.newResponse(JSON.stringify(problemBody(err, c.req.path)), err.status as ContentfulStatusCode, {
    ...headers,
    "content-type": "application/problem+json",
  });
}

/** The app's error handler: the unexpected are logged and answered as `internal`. */
export function onError(err: unknown, c: Context): Response {
  const qe = toQueueError(err);
  if (qe.code === "internal") {
    console.error(JSON.stringify({ level: "error", path: c.req.path, error: String(err), stack: (err as Error)?.stack }));
  }
  return respond(c, qe);
}
