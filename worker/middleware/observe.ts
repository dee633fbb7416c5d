import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../env";
import { observeRequest } from "../metrics";

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Gives every request an id (the caller's `X-Request-Id` if it is sane, else a
 * new one), echoes it, counts the request by route and status, and writes one
 * structured JSON log line per request unless EDGEQ_LOG_REQUESTS is "false".
 */
export function observe(): MiddlewareHandler<AppEnv> {
  return async function observe(c, next) {
    const started = Date.now();
    const given = c.req.header("x-request-id");
    const requestId = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    c.set("requestId", requestId);
    c.header("x-request-id", requestId);
    await next();
    const ms = Date.now() - started;
    const route = routePath(c, -1);
    observeRequest(c.req.method, route, c.res.status, ms);
    if ((c.env as unknown as Record<string, string | undefined>).EDGEQ_LOG_REQUESTS !== "false") {
      console.log(
        JSON.stringify({
          level: c.res.status >= 500 ? "error" : "info",
          requestId,
          method: c.req.method,
          route,
          status: c.res.status,
          ms,
          tenant: c.var.tenant,
        }),
      );
    }
  };
}
