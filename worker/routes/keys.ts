import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import type { KeyRecord } from "../../schema/access";
import { KeyCreateBody, KeyCreated, KeyList, LimitsSchema, ListQuery, QueueName } from "../../schema/api";
import { config } from "../config";
import type { AppEnv } from "../env";
import { accessKeyOf, hashKey, newKey } from "../keys";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { forgetTenantLimits, registryOf } from "../shards";
import { iso, nextCursor } from "../view";

export const keys = new OpenAPIHono<AppEnv>();

const keyView = (r: KeyRecord) => ({ ...r, createdAt: iso(r.createdAt)! });

/** The tenant a key call acts on: the caller's own, or any for the bootstrap admin token. */
export function targetTenant(principal: AppEnv["Variables"]["principal"], asked: string | undefined): string {
  if (asked === undefined || asked === principal.tenant) return principal.tenant;
  if (!principal.bootstrap) throw new QueueError("forbidden", "Only the bootstrap admin token may manage another tenant's keys.");
  return asked;
}

keys.openapi(
  createRoute({
    method: "post",
    path: "/keys",
    tags: ["keys"],
    summary: "Create an API key",
    description: "The key is in this response only; edgeq keeps its SHA-256.",
    middleware: [permit("manage")] as const,
    request: { body: jsonBody(KeyCreateBody) },
    responses: { 201: jsonResponse(KeyCreated, "the new key"), ...errors(400, 401, 403, 415) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const tenant = targetTenant(c.var.principal, body.tenant);
    const secret = config(c.env).keySecret;
    if (!secret) throw new QueueError("unavailable", "API keys need a signing secret: set EDGEQ_KEY_SECRET (or EDGEQ_ADMIN_TOKEN).");
    const { id, key } = await newKey(secret);
    const record: KeyRecord = { id, tenant, role: body.role, name: body.name, limits: body.limits ?? null, createdAt: Date.now() };
    const tenantLimits = await registryOf(c.env, tenant).limits();
    if (!(await accessKeyOf(c.env, id).create(record, await hashKey(key), tenantLimits))) {
      throw new QueueError("internal", "A key id collided; try again.");
    }
    await registryOf(c.env, tenant).addKey(record);
    return c.json({ ...keyView(record), key }, 201);
  },
);

keys.openapi(
  createRoute({
    method: "get",
    path: "/keys",
    tags: ["keys"],
    summary: "List API keys (never the keys themselves)",
    middleware: [permit("manage")] as const,
    request: { query: z.object({ tenant: QueueName.optional(), limit: ListQuery.shape.limit, cursor: ListQuery.shape.cursor }) },
    responses: { 200: jsonResponse(KeyList, "keys"), ...errors(400, 401, 403) },
  }),
  async (c) => {
    const { tenant: asked, limit, cursor } = c.req.valid("query");
    const tenant = targetTenant(c.var.principal, asked);
    const items = await registryOf(c.env, tenant).listKeys(tenant, cursor, limit);
    return c.json({ items: items.map(keyView), nextCursor: nextCursor(items, limit, (k) => k.id) }, 200);
  },
);

keys.openapi(
  createRoute({
    method: "delete",
    path: "/keys/{id}",
    tags: ["keys"],
    summary: "Revoke an API key",
    description: "Takes effect on the next request made with the key.",
    middleware: [permit("manage")] as const,
    request: { params: z.object({ id: z.string().regex(/^[0-9a-f]{16}$/, "A key id is 16 hex digits.") }) },
    responses: { 204: { description: "revoked" }, ...errors(401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const object = accessKeyOf(c.env, id);
    const info = await object.info();
    // Another tenant's key is not found, not forbidden: no existence leak.
    if (!info || info.revokedAt !== null || (info.tenant !== c.var.tenant && !c.var.principal.bootstrap)) {
      throw new QueueError("not_found", `Key ${id} does not exist.`);
    }
    await object.revoke();
    await registryOf(c.env, info.tenant).removeKey(id);
    return c.body(null, 204);
  },
);

const TenantLimits = z
  .object({
    tenant: z.string(),
    limits: LimitsSchema.nullable().openapi({ description: "the tenant's own defaults; null uses the deployment's" }),
    effective: LimitsSchema.openapi({ description: "what a credential without limits of its own gets" }),
  })
  .openapi("TenantLimits");
/** `?tenant=`: the bootstrap admin acting on another tenant's settings. */
export const TenantQuery = z.object({ tenant: QueueName.optional() });

async function tenantLimitsView(env: Env, tenant: string) {
  const limits = await registryOf(env, tenant).limits();
  return { tenant, limits, effective: limits ?? config(env).limits };
}

keys.openapi(
  createRoute({
    method: "get",
    path: "/tenant/limits",
    tags: ["keys"],
    summary: "The tenant's default rate limits",
    middleware: [permit("manage")] as const,
    request: { query: TenantQuery },
    responses: { 200: jsonResponse(TenantLimits, "the limits"), ...errors(400) },
  }),
  async (c) => c.json(await tenantLimitsView(c.env, targetTenant(c.var.principal, c.req.valid("query").tenant)), 200),
);

keys.openapi(
  createRoute({
    method: "put",
    path: "/tenant/limits",
    tags: ["keys"],
    summary: "Set the tenant's default rate limits",
    description:
      "Applies to the tenant's API keys made without limits of their own, and to its JWT subjects. `{\"limits\": null}` goes back to the deployment's defaults.",
    middleware: [permit("manage")] as const,
    request: { query: TenantQuery, body: jsonBody(z.object({ limits: LimitsSchema.nullable() }).strict()) },
    responses: { 200: jsonResponse(TenantLimits, "the limits now"), ...errors(400, 415) },
  }),
  async (c) => {
    const tenant = targetTenant(c.var.principal, c.req.valid("query").tenant);
    const { limits } = c.req.valid("json");
    const keyIds = await registryOf(c.env, tenant).setLimits(limits);
    // Each key holds a copy so that a request still costs one Durable Object call; PUT again to repair a partial update.
    await Promise.all(keyIds.map((id) => accessKeyOf(c.env, id).setTenantLimits(limits)));
    forgetTenantLimits(tenant);
    return c.json(await tenantLimitsView(c.env, tenant), 200);
  },
);
