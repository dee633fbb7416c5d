import { OpenAPIHono } from "@hono/zod-openapi";
import { QueueError } from "../durable/core/errors";
import type { AppEnv } from "./env";
import { limits } from "./middleware/limits";
import { auth } from "./middleware/auth";
import { onError, problemJson, validationError } from "./problem";
import { health } from "./routes/health";
import { leases } from "./routes/leases";
import { queues } from "./routes/queues";
import { keys } from "./routes/keys";
import { tasks } from "./routes/tasks";

export const API_PREFIX = "/api/v1";

/** The API Worker's Hono app: middleware, the routes of each resource, and the error boundary. */
export function createApp() {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });

  app.use(`${API_PREFIX}/*`, auth(), limits());
  app.route("/", health);
  for (const routes of [tasks, leases, queues, keys]) app.route(API_PREFIX, routes);

  // A known path with the wrong method answers 405 with Allow, not 404.
  const allowed = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    allowed.set(r.path, (allowed.get(r.path) ?? new Set()).add(r.method));
  }
  for (const [path, methods] of allowed) {
    const allow = [...methods].join(", ");
    app.all(path, (c) =>
      problemJson(new QueueError("method_not_allowed", `${c.req.method} is not allowed here; use ${allow}.`), c.req.path, {
        allow,
      }),
    );
  }

  app.notFound((c) => problemJson(new QueueError("not_found", `There is no route ${c.req.method} ${c.req.path}.`), c.req.path));
  app.onError(onError);
  return app;
}
