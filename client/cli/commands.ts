/** The `edgeq` commands that do more than one call: enqueue, work, tail, keys, limits, schedule. */
import { spawn } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { Worker, type Handler } from "../consumer";
import { EdgeqClient } from "../index";
import { webSocketClass } from "../live";
import type { EnqueueTask } from "../types";
import { int, json, need, UsageError, type Flags } from "./args";
import { fields, out, progressBar, show, table } from "./output";

async function readJsonLines(path: string): Promise<EnqueueTask[]> {
  if (!existsSync(path)) throw new UsageError(`--file ${path} does not exist`);
  const tasks: EnqueueTask[] = [];
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    n++;
    if (line.trim() === "") continue;
    const task = json(line, `${path} line ${n}`);
    if (typeof task !== "object" || task === null || typeof (task as { name?: unknown }).name !== "string")
      throw new UsageError(`${path} line ${n}: each line must be an object with a "name"`);
    tasks.push(task as EnqueueTask);
  }
  return tasks;
}

export async function enqueue(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const queue = edgeq.queue(need(args[0], "<queue>"));
  if (flags.file) {
    const tasks = await readJsonLines(flags.file);
    const made = await queue.addBulk(tasks, { chunkSize: int(flags, "chunk"), onProgress: progressBar });
    return show(flags, { tasks: made }, () => `enqueued ${made.length} tasks on ${queue.name}`);
  }
  const task = await queue.add(need(args[1], "<name>"), flags.payload === undefined ? undefined : json(flags.payload, "--payload"), {
    priority: int(flags, "priority"),
    delayMs: int(flags, "delay"),
    maxAttempts: int(flags, "max-attempts"),
    timeoutMs: int(flags, "timeout"),
    idempotencyKey: flags["idempotency-key"],
    groupKey: flags.group,
    tags: flags.tag,
    dependsOn: flags["depends-on"],
    onDependencyFailure: flags["on-dependency-failure"] as "cancel" | "run" | undefined,
    parentId: flags.parent,
    waitForChildren: flags["wait-for-children"],
  });
  show(flags, task, () => task.id);
}

/** A shell command as a handler: payload on stdin, task facts in the environment. */
function commandHandler(command: string[], queue: string): Handler {
  return (task, { signal, leaseToken }) =>
    new Promise((resolvePromise, reject) => {
      const child = spawn(command[0], command.slice(1), {
        stdio: ["pipe", "pipe", "pipe"],
        signal,
        env: {
          ...process.env,
          EDGEQ_QUEUE: queue,
          EDGEQ_TASK_ID: task.id,
          EDGEQ_TASK_NAME: task.name,
          EDGEQ_TASK_ATTEMPT: String(task.attempts),
          EDGEQ_LEASE_TOKEN: leaseToken,
        },
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on("data", (b: Buffer) => stdout.push(b));
      child.stderr.on("data", (b: Buffer) => {
        stderr.push(b);
        process.stderr.write(b);
      });
      child.stdin.on("error", () => undefined); // a command that ignores stdin
      child.stdin.end(JSON.stringify(task.payload ?? null));
      child.on("error", reject);
      child.on("close", (code, sig) => {
        const text = Buffer.concat(stdout).toString("utf8").trim();
        if (code === 0) {
          if (text === "") return resolvePromise(null);
          try {
            return resolvePromise(JSON.parse(text));
          } catch {
            return resolvePromise({ stdout: text.slice(-65_536) });
          }
        }
        const why = Buffer.concat(stderr).toString("utf8").trim().slice(-2000);
        reject(new Error(`${command[0]} exited with ${sig ?? `code ${code}`}${why ? `: ${why}` : ""}`));
      });
    });
}

export async function work(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const queue = need(args[0], "<queue>");
  const command = args.slice(1);
  if (!flags.module && command.length === 0) throw new UsageError("work needs --module FILE or -- COMMAND");
  let handler: Handler;
  if (flags.module) {
    const path = resolve(flags.module);
    if (!existsSync(path)) throw new UsageError(`--module ${flags.module} does not exist`);
    const mod = (await import(pathToFileURL(path).href)) as { default?: Handler; handler?: Handler };
    const fn = mod.default ?? mod.handler;
    if (typeof fn !== "function") throw new UsageError(`${flags.module} exports no default function`);
    handler = fn;
  } else {
    handler = commandHandler(command, queue);
  }
  const worker = new Worker(edgeq, queue, handler, { concurrency: int(flags, "concurrency") ?? 1, name: `edgeq-cli ${queue}` });
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  worker.on("completed", (task) => log(`completed ${task.id} ${task.name}`));
  worker.on("failed", (task, error) => log(`failed    ${task.id} ${task.name}: ${error.message}`));
  worker.on("error", (error) => log(`error     ${error.message}`));
  let signals = 0;
  const stop = () => {
    // The first signal finishes (or hands back) what is running; a second one quits at once.
    if (++signals > 1) process.exit(130);
    log("closing: finishing running tasks (signal again to quit at once)");
    void worker.close();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  log(`worker ${await worker.id} on ${queue}, concurrency ${int(flags, "concurrency") ?? 1}`);
  await worker.run();
  await worker.close();
}

/** `status attempts=N progress=…`: how tail shows a task's state. */
const taskState = (t: { status: string; attempts?: number; progress?: unknown }) =>
  `${t.status} attempts=${t.attempts ?? 0}${t.progress === null || t.progress === undefined ? "" : ` progress=${JSON.stringify(t.progress)}`}`;

/** `pending=3 (+1) running=2`: counts, with what changed. */
const countsLine = (counts: Record<string, number>, changes: Record<string, number> = {}) =>
  Object.entries(counts)
    .map(([k, v]) => `${k}=${v}${changes[k] ? ` (${changes[k] > 0 ? "+" : ""}${changes[k]})` : ""}`)
    .join(" ");

export async function tail(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const stop = new AbortController();
  process.on("SIGINT", () => stop.abort());
  process.on("SIGTERM", () => stop.abort());
  const queue = flags.task ? undefined : need(args[0], "<queue> or --task ID");
  const WebSocket = await webSocketClass().catch(() => null);
  if (WebSocket === null) {
    process.stderr.write("edgeq: no WebSocket in this runtime (Node 20 without the `ws` package): polling instead\n");
    return pollTail(edgeq, flags, queue, stop.signal);
  }
  const stamp = () => new Date().toISOString();
  let last = "";
  type Shown = { status: string; attempts?: number; progress?: unknown };
  const seen: { task: Shown | null } = { task: null };
  for await (const m of edgeq.live({ queue, task: flags.task, WebSocket, signal: stop.signal })) {
    if (flags.json) out(JSON.stringify(m));
    if (flags.task) {
      if (m.type === "snapshot")
        seen.task = await edgeq.get(flags.task); // after each (re)connect: nothing falls between
      else if (m.type === "task" && m.task.id === flags.task)
        seen.task = { ...seen.task, ...m.task, attempts: m.task.attempts ?? seen.task?.attempts };
      const task = seen.task;
      if (task === null) continue;
      const now = taskState(task);
      if (now !== last && !flags.json) out(`${stamp()} ${flags.task} ${now}`);
      last = now;
      if (["completed", "failed", "cancelled"].includes(task.status)) return;
    } else if (!flags.json) {
      if (m.type === "snapshot") for (const q of m.queues) out(`${m.at} ${q.name} ${countsLine(q.counts as Record<string, number>)}`);
      if (m.type === "delta")
        out(`${m.at} ${m.queue} ${countsLine(m.counts as Record<string, number>, m.changes as Record<string, number>)}`);
    }
  }
}

/** tail by polling (no WebSocket): the task, or the queue's counts, every --interval ms. */
async function pollTail(edgeq: EdgeqClient, flags: Flags, queueName: string | undefined, signal: AbortSignal): Promise<void> {
  const every = int(flags, "interval") ?? 1000;
  const stamp = () => new Date().toISOString();
  if (flags.task) {
    let last = "";
    while (!signal.aborted) {
      const task = await edgeq.get(flags.task);
      const now = taskState(task);
      if (now !== last) out(flags.json ? JSON.stringify({ at: stamp(), task }) : `${stamp()} ${task.id} ${now}`);
      last = now;
      if (["completed", "failed", "cancelled"].includes(task.status)) return;
      await new Promise((r) => setTimeout(r, every));
    }
    return;
  }
  const queue = edgeq.queue(queueName!);
  let last: Record<string, number> | null = null;
  while (!signal.aborted) {
    const counts = (await queue.stats()).counts;
    if (last === null || Object.keys(counts).some((k) => counts[k] !== last![k])) {
      const changes = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, last === null ? 0 : v - (last[k] ?? 0)]));
      out(
        flags.json ? JSON.stringify({ at: stamp(), queue: queue.name, counts }) : `${stamp()} ${queue.name} ${countsLine(counts, changes)}`,
      );
      last = counts;
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

export async function keys(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const [action, id] = args;
  if (action === "create") {
    const perMinute = int(flags, "per-minute");
    const perHour = int(flags, "per-hour");
    if ((perMinute === undefined) !== (perHour === undefined)) throw new UsageError("--per-minute and --per-hour go together");
    const role = need(flags.role, "--role") as "admin" | "producer" | "consumer" | "read-only";
    const key = await edgeq.keys.create({
      role,
      name: need(flags.name, "--name"),
      tenant: flags.tenant,
      limits: perMinute === undefined ? undefined : { perMinute, perHour: perHour! },
    });
    return show(flags, key, () => `${fields({ ...key, key: undefined })}\n\nkey (shown once): ${key.key}`);
  }
  if (action === "list") {
    const page = await edgeq.keys.list({ tenant: flags.tenant, limit: int(flags, "limit"), cursor: flags.cursor });
    return show(flags, page, () => table(page.items, ["id", "tenant", "role", "name", "limits", "createdAt"]));
  }
  if (action === "revoke") {
    await edgeq.keys.revoke(need(id, "<key-id>"));
    return show(flags, { revoked: id }, () => `revoked ${id}`);
  }
  throw new UsageError("keys needs create, list or revoke");
}

/** `N`, or `off` for null. */
function limitOrOff(raw: string | undefined, what: string): number | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === "off") return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what} must be a whole number ≥ 1 or "off", got "${raw}"`);
  return n;
}

export async function limits(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const queue = edgeq.queue(need(args[0], "<queue>"));
  let startLimit: { count: number; perMs: number } | null | undefined;
  if (flags["start-limit"] === "off") startLimit = null;
  else if (flags["start-limit"] !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(flags["start-limit"]);
    if (!m) throw new UsageError(`--start-limit is COUNT/MS (e.g. 50/1000) or "off", got "${flags["start-limit"]}"`);
    startLimit = { count: Number(m[1]), perMs: Number(m[2]) };
  }
  const overrides: Record<string, { concurrency: number } | null> = {};
  for (const item of flags["group-override"] ?? []) {
    const cut = item.lastIndexOf("=");
    if (cut <= 0) throw new UsageError(`--group-override is KEY=N or KEY=off, got "${item}"`);
    const n = limitOrOff(item.slice(cut + 1), "--group-override");
    overrides[item.slice(0, cut)] = n === null || n === undefined ? null : { concurrency: n };
  }
  const groupConcurrency = limitOrOff(flags["group-concurrency"], "--group-concurrency");
  const info = await queue.update({
    concurrency: limitOrOff(flags.concurrency, "--concurrency"),
    startLimit,
    ...(groupConcurrency !== undefined || Object.keys(overrides).length > 0
      ? {
          groupLimits: {
            ...(groupConcurrency === undefined ? {} : { default: groupConcurrency === null ? null : { concurrency: groupConcurrency } }),
            overrides,
          },
        }
      : {}),
  });
  const s = info.settings;
  show(flags, info, () =>
    fields({
      concurrency: s.concurrency ?? "off",
      startLimit: s.startLimit ? `${s.startLimit.count}/${s.startLimit.perMs}ms` : "off",
      groupDefault: s.groupLimits.default ?? "off",
      groupOverrides: s.groupLimits.overrides,
    }),
  );
}

export async function schedule(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const [action, queueName, id] = args;
  const queue = edgeq.queue(need(queueName, "<queue>"));
  const scheduleId = need(id, "<id>");
  if (action === "add") {
    const made = await queue.schedules.put({
      id: scheduleId,
      cron: need(flags.cron, "--cron"),
      timezone: flags.timezone,
      overlap: flags.overlap as "skip" | "allow" | undefined,
      task: {
        name: need(flags.name, "--name"),
        payload: flags.payload === undefined ? undefined : json(flags.payload, "--payload"),
        priority: int(flags, "priority"),
      },
    });
    return show(flags, made, () => `${made.id}: next runs\n${made.nextRuns.map((t) => `  ${t}`).join("\n")}`);
  }
  if (action === "rm") {
    await queue.schedules.remove(scheduleId);
    return show(flags, { removed: scheduleId }, () => `removed ${scheduleId}`);
  }
  if (action === "run") {
    const task = await queue.schedules.run(scheduleId);
    return show(flags, task, () => task.id);
  }
  if (action === "pause" || action === "resume") {
    const s = await queue.schedules[action](scheduleId);
    return show(flags, s, () => `${s.id} ${s.paused ? "paused" : `resumed, next ${s.nextRuns[0] ?? "-"}`}`);
  }
  throw new UsageError("schedule needs add, pause, resume, run or rm");
}
