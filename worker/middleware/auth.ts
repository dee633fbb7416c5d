import type { Context, MiddlewareHandler } from "hono";
import { decode, verify, verifyWithJwks } from "hono/jwt";
import { QueueError } from "../../durable/core/errors";
import { QUEUE_NAME } from "../../durable/core/ids";
import type { RateDecision } from "../../durable/core/rate-limit";
import { PERMISSIONS, ROLES, type Permission, type Principal, type Role } from "../../schema/access";
import { config } from "../config";
import type { AppEnv } from "../env";
import { accessKeyOf, accessObject, hashKey, madeHere, parseKey, sameSecret, socketTokenTenant, type SocketScope } from "../keys";
import { tenantLimits } from "../shards";

const unauthorized = (detail: string) => new QueueError("unauthorized", detail);

/** The WebSocket routes a socket token opens, and which token each takes. */
function socketScope(path: string): SocketScope | null {
  if (path === "/api/v1/live") return "live";
  return /^\/api\/v1\/queues\/[^/]+\/consume$/.test(path) ? "consume" : null;
}

/**
 * Authenticates `Authorization: Bearer <credential>`: the bootstrap admin
 * token, an API key (`eq_<id>_<secret>`), or a JWT. Sets the principal and its
 * tenant, counts the request against the credential's rate limits (the
 * bootstrap token is not limited) and sets the RateLimit headers.
 */
export function auth(): MiddlewareHandler<AppEnv> {
  return async function auth(c, next) {
    const header = c.req.header("authorization") ?? "";
    const token = c.req.query("token");
    const scope = socketScope(c.req.path);
    if (!header && token !== undefined && scope !== null) {
      // A WebSocket opened with a short-lived token in the URL (POST /live/tokens, POST /consume/tokens).
      const secret = config(c.env).keySecret;
      const tenant = secret === null ? null : await socketTokenTenant(secret, scope, token);
      if (tenant === null)
        throw unauthorized(`This ${scope} token is not valid or has expired; get a new one from POST /api/v1/${scope}/tokens.`);
      const role = scope === "live" ? "read-only" : "consumer";
      c.set("principal", { tenant, role, subject: `${scope}-token`, bootstrap: false });
      c.set("tenant", tenant);
      return next();
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized("Send a credential as `Authorization: Bearer <API key or JWT>`.");
    const { principal, rate } = await authenticate(c, match[1]);
    c.set("principal", principal);
    c.set("tenant", principal.tenant);
    if (rate) {
      setRateHeaders(c, rate);
      if (!rate.allowed) {
        const seconds = Math.max(1, Math.ceil(rate.retryAfterMs / 1000));
        c.header("retry-after", String(seconds));
        throw new QueueError("rate_limited", `This credential has used its ${rate.limit} requests for now; retry in ${seconds} s.`);
      }
    }
    await next();
  };
}

async function authenticate(c: Context<AppEnv>, token: string): Promise<{ principal: Principal; rate: RateDecision | null }> {
  const cfg = config(c.env);
  if (cfg.adminToken && sameSecret(token, cfg.adminToken)) {
    return { principal: { tenant: "default", role: "admin", subject: "bootstrap", bootstrap: true }, rate: null };
  }
  const key = parseKey(token);
  if (key) {
    // A key this deployment did not make is refused here, before any Durable Object is woken
    // (unless keys from before MACs are allowed, for the time it takes to re-issue them).
    const signed = cfg.keySecret !== null && (await madeHere(cfg.keySecret, key));
    if (!signed && !cfg.legacyKeys) throw unauthorized("This API key is not valid: it is unknown or was revoked.");
    const result = await accessKeyOf(c.env, key.id).authorize(await hashKey(token), cfg.limits);
    if (!result.ok) throw unauthorized("This API key is not valid: it is unknown or was revoked.");
    const { record } = result;
    return {
      principal: { tenant: record.tenant, role: record.role, subject: `key:${record.id}`, bootstrap: false },
      rate: result.rate,
    };
  }
  if (token.split(".").length === 3 && (cfg.jwtSecret || cfg.jwks.length > 0)) {
    const claims = await verifyJwt(c, token);
    const limits = (await tenantLimits(c.env, claims.tenant)) ?? cfg.limits;
    const rate = await accessObject(c.env, `jwt:${claims.tenant}:${claims.sub}`).limit(limits);
    return { principal: { tenant: claims.tenant, role: claims.role, subject: `jwt:${claims.sub}`, bootstrap: false }, rate };
  }
  throw unauthorized("The bearer credential is not a valid API key, JWT or admin token.");
}

/** Verifies signature, exp/nbf, issuer and audience; requires `sub`, `tenant` and `role` claims. */
async function verifyJwt(c: Context<AppEnv>, token: string): Promise<{ sub: string; tenant: string; role: Role }> {
  const cfg = config(c.env);
  const verification = {
    ...(cfg.jwtIssuer ? { iss: cfg.jwtIssuer } : {}),
    ...(cfg.jwtAudience ? { aud: cfg.jwtAudience } : {}),
  };
  let payload: Record<string, unknown>;
  try {
    const alg = decode(token).header.alg;
    if (alg === "HS256" && cfg.jwtSecret) {
      payload = await verify(token, cfg.jwtSecret, { alg: "HS256", ...verification });
    } else if ((alg === "RS256" || alg === "ES256") && cfg.jwks.length > 0) {
      payload = await verifyWithJwks(token, { keys: cfg.jwks, allowedAlgorithms: ["RS256", "ES256"], verification });
    } else {
      throw new Error(`algorithm ${String(alg)} is not accepted`);
    }
  } catch (e) {
    throw unauthorized(`The JWT was refused (${e instanceof Error ? e.message : "invalid"}).`);
  }
  const { sub, tenant, role } = payload;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 200) throw unauthorized("The JWT needs a `sub` claim.");
  if (typeof tenant !== "string" || !QUEUE_NAME.test(tenant)) throw unauthorized("The JWT needs a valid `tenant` claim.");
  if (!ROLES.includes(role as Role)) throw unauthorized(`The JWT's \`role\` claim must be one of ${ROLES.join(", ")}.`);
  return { sub, tenant, role: role as Role };
}

function setRateHeaders(c: Context<AppEnv>, rate: RateDecision): void {
  c.header("ratelimit-limit", String(rate.limit));
  c.header("ratelimit-remaining", String(Math.max(0, rate.remaining)));
  c.header("ratelimit-reset", String(Math.ceil(rate.resetMs / 1000)));
}

/** Lets the request through only if the principal's role has `permission`. */
export function permit(permission: Permission): MiddlewareHandler<AppEnv> {
  return async function permitted(c, next) {
    const { role } = c.var.principal;
    if (!(PERMISSIONS[permission] as readonly Role[]).includes(role)) {
      throw new QueueError("forbidden", `The ${role} role may not do this (it needs the ${permission} permission).`);
    }
    await next();
  };
}
