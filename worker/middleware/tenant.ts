import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/**
 * Resolves the tenant a request acts for. Every call is the `default` tenant
 * for now; this is the seam where API keys and JWTs will be verified.
 * An `Authorization: Bearer` header is accepted (and not yet checked).
 */
export function tenant(): MiddlewareHandler<AppEnv> {
  return async function tenant(c, next) {
    c.set("tenant", "default");
    await next();
  };
}
