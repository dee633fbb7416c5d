import { ProblemSchema } from "../schema/api";

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

/** The error responses a route can give, for the OpenAPI document; every API route can answer 401, 403 and 429. */
export function errors(...statuses: (400 | 401 | 403 | 404 | 409 | 413 | 415 | 426)[]) {
  const text: Record<number, string> = {
    400: "invalid input (validation_failed, malformed_json)",
    401: "no valid credential (unauthorized)",
    403: "the credential's role may not do this (forbidden)",
    404: "not found",
    409: "stale lease token or a state that does not allow this",
    413: "body or payload too large",
    415: "body is not JSON",
    426: "not a WebSocket upgrade (upgrade_required)",
  };
  text[429] = "rate limit reached (rate_limited); see Retry-After";
  const all = [...new Set([...statuses, 401, 403, 429])].sort();
  return Object.fromEntries(all.map((s) => [s, problem(text[s])]));
}

export const jsonBody = <T>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const jsonResponse = <T>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
