import type { HonoJsonWebKey } from "hono/utils/jwt/jws";
import type { Limits } from "../durable/core/rate-limit";

/**
 * Deployment settings from `[vars]` in wrangler.toml and secrets (`wrangler
 * secret put`, locally `.dev.vars`). Read through one loose view of `env`,
 * since secrets may be absent and are not in the generated types then.
 */
export interface Config {
  adminToken: string | null;
  /** signs API keys (their MAC); EDGEQ_KEY_SECRET, else the admin token */
  keySecret: string | null;
  /** EDGEQ_LEGACY_KEYS=true: keys made before keys carried a MAC are still looked up (each costs a DO request) */
  legacyKeys: boolean;
  jwtSecret: string | null;
  jwks: HonoJsonWebKey[];
  jwtIssuer: string | null;
  jwtAudience: string | null;
  limits: Limits;
  corsOrigins: string[];
  /** EDGEQ_HISTORY=off: shards keep their outbox and write no history (for comparisons only) */
  history: boolean;
  /** EDGEQ_HISTORY_FLUSH_MS: the longest an event waits in a shard's outbox before it goes to D1 */
  historyFlushMs: number;
}

const cache = new WeakMap<object, Config>();

export function config(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const vars = env as unknown as Record<string, string | undefined>;
  const text = (name: string) => (vars[name] && vars[name]!.trim() !== "" ? vars[name]!.trim() : null);
  const jwks = text("EDGEQ_JWKS");
  const made: Config = {
    adminToken: text("EDGEQ_ADMIN_TOKEN"),
    keySecret: text("EDGEQ_KEY_SECRET") ?? (text("EDGEQ_ADMIN_TOKEN") ? `edgeq-keys:${text("EDGEQ_ADMIN_TOKEN")}` : null),
    legacyKeys: text("EDGEQ_LEGACY_KEYS") === "true",
    jwtSecret: text("EDGEQ_JWT_SECRET"),
    jwks: jwks ? ((JSON.parse(jwks) as { keys: HonoJsonWebKey[] }).keys ?? []) : [],
    jwtIssuer: text("EDGEQ_JWT_ISSUER"),
    jwtAudience: text("EDGEQ_JWT_AUDIENCE"),
    limits: {
      perMinute: Number(text("EDGEQ_RATE_PER_MINUTE") ?? 100),
      perHour: Number(text("EDGEQ_RATE_PER_HOUR") ?? 1000),
    },
    corsOrigins: (text("EDGEQ_CORS_ORIGINS") ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
    history: text("EDGEQ_HISTORY") !== "off",
    historyFlushMs: Number(text("EDGEQ_HISTORY_FLUSH_MS") ?? 1000),
  };
  cache.set(env, made);
  return made;
}
