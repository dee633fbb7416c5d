// How the local API is started, in one place: `npm start`, `npm run dev`, the stack tests, the
// benchmarks and `npm run lint:api` spawn it through here. With `direct` (npm start) the deployable
// bundle on workerd's own socket, local D1 in a workerd of its own (scripts/serve-api.mjs; `d1:
// "shared"` keeps it in the API's process); otherwise under wrangler dev (npm run dev). Kept apart
// from serve-api.mjs, whose imports (wrangler, Miniflare) a caller should not load.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";

/** Starts the API as its own process group (stop it with `process.kill(-child.pid, …)`). */
export function spawnApi({
  direct = false,
  host = "127.0.0.1",
  port,
  persistTo,
  vars = {},
  inspectorPort,
  d1 = "apart",
  logLevel = "warn",
  stdio = ["ignore", "ignore", "pipe"],
}) {
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  if (direct) {
    const inspect = inspectorPort === undefined ? [] : ["--inspector-port", String(inspectorPort)];
    return spawn(
      process.execPath,
      ["scripts/serve-api.mjs", "--host", host, "--port", String(port), "--persist-to", persistTo, "--d1", d1, ...varArgs, ...inspect],
      {
        detached: true,
        stdio,
      },
    );
  }
  return spawn(
    "node_modules/.bin/wrangler",
    ["dev", "--ip", host, "--port", String(port), "--persist-to", persistTo, "--log-level", logLevel, ...varArgs],
    {
      detached: true,
      stdio,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: process.env.CI ?? "1" },
    },
  );
}

/**
 * The live processes of a stack's process group, as { pid, comm, api }: `api` is true for the
 * workerd that serves `port` (its `--socket-addr=entry=…:port`); the stack's other workerd hosts
 * local D1. Processes that have ended and await their parent are left out.
 */
export function stackProcesses(pgid, port) {
  return execFileSync("ps", ["-o", "pid=,stat=,comm=", "-g", String(pgid)])
    .toString()
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, stat]) => !stat.startsWith("Z"))
    .map(([pid, , comm]) => ({ pid: Number(pid), comm, api: comm === "workerd" && serves(pid, port) }));
}

function serves(pid, port) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .some((arg) => arg.startsWith("--socket-addr=entry=") && arg.endsWith(`:${port}`));
  } catch {
    return false; // it has ended meanwhile
  }
}
