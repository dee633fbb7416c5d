import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { jsonResponse } from "../openapi";

export const health = new OpenAPIHono<AppEnv>();

health.openapi(
  createRoute({
    method: "get",
    path: "/health",
    tags: ["health"],
    summary: "Liveness",
    responses: { 200: jsonResponse(z.object({ status: z.literal("ok") }), "the Worker is up") },
  }),
  (c) => c.json({ status: "ok" as const }, 200),
);
