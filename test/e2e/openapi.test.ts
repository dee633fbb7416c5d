import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, LocalStack } from "./stack";

/**
 * The API document as the Worker serves it, checked as its users check it: Redocly's
 * recommended rules, a third-party generator's types, and docs/API.md against it.
 */
const stack = new LocalStack();
const dir = mkdtempSync(join(tmpdir(), "edgeq-openapi-"));
let doc: any;

beforeAll(async () => {
  await stack.start();
  doc = await (await fetch(`${stack.url}/openapi.json`)).json();
}, 150_000);
afterAll(async () => {
  await stack.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const operations = () =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
  );

describe("the API document", () => {
  it("names every operation (unique operationId), sums it up, describes it and files it under a defined tag; it has servers and a license", () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(50);
    const tags = new Set((doc.tags as { name: string; description: string }[]).map((t) => t.name));
    for (const { method, path, op } of ops) {
      const at = `${method} ${path}`;
      expect(op.operationId, at).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.summary, at).toBeTruthy();
      expect(op.description, at).toBeTruthy();
      expect(op.tags?.length, at).toBeGreaterThan(0);
      for (const tag of op.tags) expect(tags.has(tag), `${at}: tag ${tag}`).toBe(true);
    }
    expect(new Set(ops.map((o) => o.op.operationId)).size).toBe(ops.length);
    expect(doc.servers).toEqual([{ url: stack.url, description: "this deployment" }]);
    expect(doc.info.license.name).toBe("MIT");
  });

  it("passes Redocly's recommended rules with no error or warning (npm run lint:api)", { timeout: 150_000 }, () => {
    const run = spawnSync(process.execPath, ["scripts/lint-api.mjs"], { encoding: "utf8" });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    const json = spawnSync("node_modules/.bin/redocly", ["lint", ".edgeq/openapi.json", "--format=json"], { encoding: "utf8" });
    expect(JSON.parse(json.stdout).totals).toEqual({ errors: 0, warnings: 0, ignored: 3 }); // the three in .redocly.lint-ignore.yaml
  });

  it("gives openapi-typescript types that type-check a client of it, and refuse a wrong one", { timeout: 120_000 }, async () => {
    writeFileSync(join(dir, "api.ts"), astToString(await openapiTS(doc)));
    const client = `import type { operations } from "./api";
type EnqueueBody = NonNullable<operations["enqueueTask"]["requestBody"]>["content"]["application/json"];
type Enqueued = operations["enqueueTask"]["responses"][201]["content"]["application/json"];
type Lease = operations["leaseTasks"]["responses"][200]["content"]["application/json"]["leases"][number];
type Problem = operations["getTask"]["responses"][404]["content"]["application/problem+json"];
export const body: EnqueueBody = { name: "send-email", payload: { to: "a@example.com" }, priority: 7, delayMs: 1000 };
export const status: Enqueued["status"] = "pending";
export const token: Lease["leaseToken"] = "lt_1";
export const problem: Problem = { type: "urn:edgeq:error:not_found", title: "Not found", status: 404, detail: "no such task" };
`;
    const tsc = (file: string) =>
      spawnSync(
        process.execPath,
        [
          "node_modules/typescript/bin/tsc",
          "--noEmit",
          "--strict",
          "--target",
          "es2022",
          "--module",
          "esnext",
          "--moduleResolution",
          "bundler",
          join(dir, file),
        ],
        { encoding: "utf8" },
      );
    writeFileSync(join(dir, "client.ts"), client);
    const good = tsc("client.ts");
    expect(good.status, good.stdout).toBe(0);
    // A body without the required name, and a status the API never answers: both refused.
    writeFileSync(join(dir, "wrong.ts"), client.replace('name: "send-email", ', "").replace('= "pending"', '= "exploded"'));
    const wrong = tsc("wrong.ts");
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toContain("'name' is missing");
    expect(wrong.stdout).toContain('"exploded"');
  });

  it("docs/API.md names every operation as `METHOD /path`, and every operation it names exists", () => {
    const md = readFileSync("docs/API.md", "utf8");
    const served = new Set(operations().map(({ method, path }) => `${method} ${path}`));
    for (const op of served) {
      const [method, path] = op.split(" ");
      const short = path.replace(/^\/api\/v1/, "");
      expect(md.includes(`\`${method} ${short}`) || md.includes(`\`${method} ${path}`), `API.md does not name ${op}`).toBe(true);
    }
    const open = new Set(["/health", "/health/ready", "/metrics", "/openapi.json", "/docs", "/docs/*"]);
    for (const [, method, written] of md.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`?\s]*)/g)) {
      const path = written.replace(/\{q\}/g, "{queue}");
      const full = open.has(path) || path.startsWith("/api/v1") ? path : `/api/v1${path}`;
      if (["/openapi.json", "/docs", "/docs/*"].includes(full)) continue; // served beside the API, not in it
      const match = full.endsWith("/*")
        ? [...served].some((s) => s.startsWith(`${method} ${full.slice(0, -1)}`))
        : served.has(`${method} ${full}`);
      expect(match, `API.md names ${method} ${written}, which the API does not serve`).toBe(true);
    }
  });

  it(
    "is browsable at /docs with no internet: Swagger UI from the Worker's own assets renders every operation, under a CSP that allows no inline script",
    { timeout: 120_000 },
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const elsewhere: string[] = [];
        const problems: string[] = [];
        await page.route("**/*", (route) => {
          const url = new URL(route.request().url());
          if (url.origin === stack.url) return route.continue();
          elsewhere.push(url.href); // a CDN would land here: refuse it, as a machine with no internet would
          return route.abort();
        });
        page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
        page.on("pageerror", (e) => problems.push(String(e)));
        const res = await page.goto(`${stack.url}/docs`);
        expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
        await page.locator(".swagger-ui .info .title").filter({ hasText: "edgeq" }).waitFor({ timeout: 30_000 });
        // Every operation is listed, each under its operationId.
        await page.locator("#operations-tasks-enqueueTask").waitFor();
        expect(await page.locator(".opblock").count()).toBe(operations().length);
        expect(elsewhere).toEqual([]);
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    },
  );
});
