import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import type { KeyRecord } from "../../schema/access";
import { KeyCreateBody, KeyCreated, KeyList, ListQuery, QueueName } from "../../schema/api";
import type { AppEnv } from "../env";
import { accessKeyOf, hashKey, newKey } from "../keys";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { registryOf } from "../shards";
import { iso } from "../view";

export const keys = new OpenAPIHono<AppEnv>();

const keyView = (r: KeyRecord) => ({ ...r, createdAt: iso(r.createdAt)! });

/** The tenant a key call acts on: the caller's own, or any for the bootstrap admin token. */
function targetTenant(principal: AppEnv["Variables"]["principal"], asked: string | undefined): string {
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
    const { id, key } = newKey();
    const record: KeyRecord = { id, tenant, role: body.role, name: body.name, limits: body.limits ?? null, createdAt: Date.now() };
    if (!(await accessKeyOf(c.env, id).create(record, await hashKey(key)))) {
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
    return c.json({ items: items.map(keyView), nextCursor: items.length === limit ? items[items.length - 1].id : null }, 200);
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
