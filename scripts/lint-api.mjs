#!/usr/bin/env node
// `npm run lint:api`: the API document as the Worker serves it (GET /openapi.json from the local
// stack on a port and state of its own), written to .edgeq/openapi.json and linted with Redocly's
// recommended rules (redocly.yaml; the reasoned exceptions are in .redocly.lint-ignore.yaml).
// `--write-only` writes the document and stops. Exits non-zero on any error or warning.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnApi } from "./api-process.mjs";

export const DOCUMENT = ".edgeq/openapi.json";

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const state = mkdtempSync(join(tmpdir(), "edgeq-lint-"));
const server = spawnApi({
  direct: true,
  d1: "shared", // the API description needs no history: one workerd is enough
  port,
  persistTo: state,
  vars: { EDGEQ_LOG_REQUESTS: "false" },
  stdio: ["ignore", "ignore", "inherit"],
});
let doc;
try {
  for (let i = 0; i < 240 && !doc && server.exitCode === null; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/openapi.json`);
      if (res.ok) doc = await res.json();
    } catch {}
    if (!doc) await new Promise((r) => setTimeout(r, 250));
  }
} finally {
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {}
  rmSync(state, { recursive: true, force: true });
}
if (!doc) throw new Error("the Worker did not serve /openapi.json");
doc.servers = [{ url: "http://127.0.0.1:8787", description: "npm start" }]; // the document as a local user gets it
mkdirSync(".edgeq", { recursive: true });
writeFileSync(DOCUMENT, `${JSON.stringify(doc, null, 2)}\n`);
if (process.argv.includes("--write-only")) process.exit(0);
const lint = spawnSync("node_modules/.bin/redocly", ["lint", DOCUMENT, "--max-problems", "100"], {
  stdio: "inherit",
  env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
});
process.exit(lint.status ?? 1);
