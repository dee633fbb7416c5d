// How the local API is started, in one place: `npm start`, `npm run dev`, the stack tests, the
// benchmarks and `npm run lint:api` spawn it through here. With `direct` (npm start) the deployable
// bundle on workerd's own socket, local D1 in a workerd of its own (scripts/serve-api.mjs; `d1:
// "shared"` keeps it in the API's process); otherwise under wrangler dev (npm run dev). Kept apart
// from serve-api.mjs, whose imports (wrangler, Miniflare) a caller should not load.
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

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
 * workerd that listens on `port`; the stack's other workerd hosts local D1. Processes that have
 * ended and await their parent are left out.
 */
export function stackProcesses(pgid, port) {
  const listening = listeningSockets(port);
  return execFileSync("ps", ["-o", "pid=,stat=,comm=", "-g", String(pgid)])
    .toString()
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, stat]) => !stat.startsWith("Z"))
    .map(([pid, , comm]) => ({ pid: Number(pid), comm, api: comm === "workerd" && holds(pid, listening) }));
}

/** The inodes of the TCP sockets listening on `port` (from /proc/net; none without a port). */
function listeningSockets(port) {
  if (port === undefined) return new Set();
  const hexPort = Number(port).toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue; // no IPv6 here
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address "ADDR:PORT" in hex, state 0A is LISTEN, the socket's inode in field 9
      if (f.length > 9 && f[1].endsWith(`:${hexPort}`) && f[3] === "0A") inodes.add(f[9]);
    }
  }
  return inodes;
}

/** Whether process `pid` holds one of the sockets `inodes`. */
function holds(pid, inodes) {
  if (inodes.size === 0) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]);
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return false; // it has ended meanwhile
  }
}
