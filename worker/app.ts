import { OpenAPIHono } from "@hono/zod-openapi";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { QueueError } from "../durable/core/errors";
import { apiDocument } from "./api-document";
import { config } from "./config";
import type { AppEnv } from "./env";
import { auth } from "./middleware/auth";
import { compression } from "./middleware/compression";
import { limits } from "./middleware/limits";
import { observe } from "./middleware/observe";
import { onError, respond, validationError } from "./problem";
import { health } from "./routes/health";
import { analytics } from "./routes/analytics";
import { history } from "./routes/history";
import { live } from "./routes/live";
import { keys } from "./routes/keys";
import { leases } from "./routes/leases";
import { queues } from "./routes/queues";
import { reports } from "./routes/reports";
import { tasks } from "./routes/tasks";
import { schedules } from "./routes/schedules";
import { workers } from "./routes/workers";

export const API_PREFIX = "/api/v1";

/** The API reference page; its scripts and styles are static assets of this Worker. */
const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeq API</title>
<link rel="icon" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>`;

/** Only this origin's scripts (no inline script); Swagger UI sets inline styles and shows data: images. */
const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The API Worker's Hono app: middleware, the routes of each resource, the API document and the error boundary. */
export function createApp() {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });

  app.use(
    "*",
    observe(),
    secureHeaders(),
    cors({
      // Credentials are sent, so the allowed origins are listed, never `*`.
      origin: (origin, c) => (config(c.env as Env).corsOrigins.includes(origin) ? origin : null),
      credentials: true,
      allowHeaders: ["authorization", "content-type", "x-request-id"],
      allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: ["x-request-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
      maxAge: 600,
    }),
    compression(),
  );
  app.use(`${API_PREFIX}/*`, auth(), limits());
  app.route("/", health);
  for (const routes of [tasks, history, analytics, reports, live, leases, queues, schedules, keys, workers]) app.route(API_PREFIX, routes);

  // A known path with the wrong method answers 405 with Allow, not 404.
  const allowed = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    allowed.set(r.path, (allowed.get(r.path) ?? new Set()).add(r.method));
  }
  for (const [path, methods] of allowed) {
    const allow = [...methods].join(", ");
    app.all(path, (c) => respond(c, new QueueError("method_not_allowed", `${c.req.method} is not allowed here; use ${allow}.`), { allow }));
  }

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key (`eq_<id>_<secret>`), a JWT with `sub`, `tenant` and `role` claims, or the bootstrap admin token.",
  });
  // The document is the same for every request but its `servers` entry (this deployment's origin).
  app.get("/openapi.json", (c) => c.json(apiDocument(app, new URL(c.req.url).origin)));
  // Swagger UI from this Worker's own static assets (worker/public/docs), not a CDN: it works offline.
  app.get("/docs", (c) => {
    c.header("content-security-policy", DOCS_CSP);
    return c.html(DOCS_PAGE);
  });
  // Its files: the Worker runs first for every request (`run_worker_first`), so only these go to
  // the assets, and no other request pays for the assets' router (bench/idle-requests.mjs).
  app.get("/docs/*", async (c) => {
    const asset = await c.env.ASSETS.fetch(c.req.raw);
    if (asset.status === 404) return respond(c, new QueueError("not_found", `There is no file ${c.req.path}.`));
    return new Response(asset.body, asset); // its headers are immutable; the middleware adds some
  });

  app.notFound((c) => respond(c, new QueueError("not_found", `There is no route ${c.req.method} ${c.req.path}.`)));
  app.onError(onError);
  return app;
}
