// workerd's CPU by part, from Linux `perf` call stacks: what the V8 profile of the Worker's isolate
// cannot see (local D1's SQL when it shares the API's process; SQLite's commits, checkpoints and journal
// writes, the kernel's share of them, workerd's own I/O). Optional: without `perf` (Debian's
// linux-perf) or the right to use it, `startPerf` answers null and the caller says so.
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stackProcesses } from "../scripts/api-process.mjs";

/** The parts, in the order a sample's stack is tested against them (the first that matches takes it). */
const PARTS = [
  // SQLite's statement journal: the pages a transaction (a savepoint) changes, saved first in case
  // it rolls back; past 64 KiB they go to a temp file.
  ["SQLite statement journals (pages saved for rollback)", (s) => s.some((f) => f.startsWith("subjournalPage"))],
  ["local D1's SQL (its object's prepared statements)", (s) => s.some((f) => f.includes("SqlStorage::Statement::"))],
  ["the shard's SQL (storage.sql exec, cursors)", (s) => s.some((f) => f.includes("SqlStorage::exec") || f.includes("SqlStorage::Cursor"))],
  [
    "SQLite commits (WAL writes, fsync)",
    (s) => s.some((f) => f === "pagerWalFrames" || f.startsWith("sqlite3PagerCommit") || f === "fsync"),
  ],
  ["SQLite checkpoints (WAL into the database file)", (s) => s.some((f) => f === "sqlite3WalCheckpoint")],
  ["WebSocket compression (permessage-deflate)", (s) => s.some((f) => f.startsWith("Cr_z_") || f.startsWith("deflate"))],
  [
    "JavaScript: the Worker, the objects, local D1's shim (GC included)",
    (s) => s.some((f) => f === "Builtins_JSEntry" || f === "v8::Function::Call" || f.includes("RunMicrotasks")),
  ],
  ["workerd's own work: HTTP, sockets, RPC, the event loop", () => true],
];
const OTHER_THREADS = "V8's background threads (optimising compiler, concurrent GC)";

/**
 * The processes of a process group (the stack's), as [pid, name]: the command's name, except that
 * with `apiPort` a workerd not serving that port (local D1's host, scripts/serve-api.mjs) is
 * "workerd (local D1)".
 */
export function groupProcesses(pgid, apiPort) {
  return stackProcesses(pgid, apiPort).map(({ pid, comm, api }) => [
    pid,
    comm === "workerd" && apiPort !== undefined && !api ? "workerd (local D1)" : comm,
  ]);
}

/** The workerd process in a process group that serves `apiPort` (any, without it), or null. */
function workerdIn(pgid, apiPort) {
  const found = groupProcesses(pgid, apiPort).find(([, comm]) => comm === "workerd");
  return found ? Number(found[0]) : null;
}

/**
 * Starts sampling the API's workerd (in process group `pgid`, serving `apiPort`) at `hz`. Resolves to null when perf cannot run
 * here; else to `stop()`, which ends the sampling and answers [part, share of samples] (largest
 * first) and the sample count.
 */
export async function startPerf(pgid, apiPort, hz = 999) {
  const pid = workerdIn(pgid, apiPort);
  if (pid === null) return null;
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
  } catch {
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "edgeq-perf-"));
  const data = join(dir, "perf.data");
  const rec = spawn("perf", ["record", "-q", "-F", String(hz), "-g", "-p", String(pid), "-o", data], { stdio: "ignore" });
  const exited = new Promise((r) => rec.on("exit", r));
  const early = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
  if (early) {
    rmSync(dir, { recursive: true, force: true });
    return null; // not allowed (perf_event_paranoid) or not supported here
  }
  return async () => {
    rec.kill("SIGINT");
    await exited;
    try {
      return await classify(data, pid);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** Each sample of `data` to a part, by its call stack. */
async function classify(data, mainTid) {
  const script = spawn("perf", ["script", "-i", data, "-F", "tid,ip,sym"], { stdio: ["ignore", "pipe", "ignore"] });
  const counts = new Map();
  let total = 0;
  let tid = null;
  let frames = [];
  const settle = () => {
    if (tid === null) return;
    total++;
    const part = tid !== mainTid ? OTHER_THREADS : PARTS.find(([, test]) => test(frames))[0];
    counts.set(part, (counts.get(part) ?? 0) + 1);
  };
  for await (const line of createInterface({ input: script.stdout })) {
    if (line === "") continue;
    if (!line.startsWith("\t")) {
      // a sample's first line, its thread id (padded with spaces to a width); its frames follow, each after a tab
      settle();
      tid = Number(line.trim());
      frames = [];
    } else frames.push(line.trim().replace(/^[0-9a-f]+ /, "")); // "<address> <symbol>"
  }
  settle();
  const parts = [...counts].map(([part, n]) => [part, n / total]).sort((a, b) => b[1] - a[1]);
  return { parts, samples: total };
}
