import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/** JSON bodies of a known length below this are not worth compressing. */
const THRESHOLD = 1024;

/**
 * Asks the Workers runtime to compress JSON responses for clients that accept
 * it. On Workers the body is not compressed here: setting `Content-Encoding`
 * on a plain body makes the runtime encode it (`encodeBody: "automatic"`), and
 * compressing in JavaScript as well would encode it twice. The edge (and
 * wrangler dev) rewrites `Accept-Encoding` to "br, gzip" before the Worker
 * sees it; what the client really sent is `request.cf.clientAcceptEncoding`.
 */
export function compression(): MiddlewareHandler<AppEnv> {
  return async function compression(c, next) {
    await next();
    const cf = c.req.raw.cf as { clientAcceptEncoding?: string } | undefined;
    const accepted = (cf?.clientAcceptEncoding ?? c.req.header("accept-encoding") ?? "").toLowerCase();
    const type = c.res.headers.get("content-type") ?? "";
    const length = Number(c.res.headers.get("content-length") ?? THRESHOLD);
    if (c.res.headers.has("content-encoding") || !/json/.test(type) || length < THRESHOLD || c.req.method === "HEAD") return;
    const encoding = /\bbr\b/.test(accepted) ? "br" : /\bgzip\b/.test(accepted) ? "gzip" : null;
    if (!encoding) return;
    c.res.headers.set("content-encoding", encoding);
    c.res.headers.append("vary", "accept-encoding");
  };
}
