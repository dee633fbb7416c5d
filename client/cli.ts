#!/usr/bin/env node
/**
 * `edgeq`: the command line of edgeq's HTTP API. Config from flags, then the
 * environment (EDGEQ_URL, EDGEQ_TOKEN), then a JSON config file.
 */
import { spawn } from "node:child_process";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Worker, type Handler } from "./consumer";
import { EdgeqClient, EdgeqError, type Page } from "./index";
import type { EnqueueTask, Status, Task } from "./types";

/** set by the build from package.json */
declare const EDGEQ_VERSION: string;

const HELP = `edgeq — a task queue on Cloudflare Workers

Usage: edgeq <command> [arguments] [options]

Tasks
  enqueue <queue> <name> [--payload JSON] [--priority 1-10] [--delay MS]
          [--max-attempts N] [--timeout MS] [--idempotency-key K] [--group K] [--tag T]...
          [--depends-on ID]... [--on-dependency-failure cancel|run]
          [--parent ID] [--wait-for-children]
  enqueue <queue> --file tasks.jsonl [--chunk N]
                                 one task per line: {"name": ..., "payload": ..., ...}
  get <task-id>
  search <queue> [--status S] [--limit N] [--cursor C]
  cancel <task-id>
  retry <task-id>
  children <task-id> [--limit N] [--cursor C]
  seal <task-id>                 no more children will come

Queues and workers
  queues
  stats <queue>
  pause <queue> | resume <queue>
  workers
  limits <queue> [--concurrency N|off] [--start-limit COUNT/MS|off]
                 [--group-concurrency N|off] [--group-override KEY=N|KEY=off]...
                                 flow control: a cap on running tasks, starts per interval, per group
  groups <queue>                 groups (tasks sharing a --group key) with their depth
  work <queue> --module FILE [--concurrency N]
                                 FILE's default export runs each task: (task, {signal, progress, leaseToken})
  work <queue> [--concurrency N] -- COMMAND [ARGS...]
                                 runs COMMAND per task: payload JSON on stdin, EDGEQ_TASK_* in the
                                 environment; exit 0 completes (stdout, JSON or text, is the result),
                                 any other exit fails the attempt
  tail <queue> [--task ID] [--interval MS]
                                 prints changes as they happen (polling)

Schedules
  schedules <queue>
  schedule add <queue> <id> --cron EXPR --name TASK [--payload JSON] [--timezone TZ]
               [--overlap skip|allow] [--priority N]
  schedule pause|resume|run|rm <queue> <id>

API keys
  keys create --role admin|producer|consumer|read-only --name NAME [--tenant T]
              [--per-minute N --per-hour N]
  keys list [--tenant T]
  keys revoke <key-id>

Options
  --url URL        API address (env EDGEQ_URL; default http://127.0.0.1:8787)
  --token TOKEN    API key, JWT or admin token (env EDGEQ_TOKEN)
  --config FILE    JSON file with {"url", "token"} (env EDGEQ_CONFIG; else ./.edgeq/config.json,
                   then ~/.config/edgeq/config.json)
  --json           print the API's JSON instead of a table
  -h, --help       this help
  -v, --version    the version

Exit codes: 0 ok · 1 the API answered with an error · 2 bad usage or config · 3 API unreachable
`;

const options = {
  url: { type: "string" },
  token: { type: "string" },
  config: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
  payload: { type: "string" },
  priority: { type: "string" },
  delay: { type: "string" },
  "max-attempts": { type: "string" },
  timeout: { type: "string" },
  "idempotency-key": { type: "string" },
  group: { type: "string" },
  tag: { type: "string", multiple: true },
  "depends-on": { type: "string", multiple: true },
  "on-dependency-failure": { type: "string" },
  parent: { type: "string" },
  "wait-for-children": { type: "boolean" },
  file: { type: "string" },
  chunk: { type: "string" },
  status: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  role: { type: "string" },
  name: { type: "string" },
  tenant: { type: "string" },
  "per-minute": { type: "string" },
  "per-hour": { type: "string" },
  module: { type: "string" },
  concurrency: { type: "string" },
  task: { type: "string" },
  interval: { type: "string" },
  "start-limit": { type: "string" },
  "group-concurrency": { type: "string" },
  "group-override": { type: "string", multiple: true },
  cron: { type: "string" },
  timezone: { type: "string" },
  overlap: { type: "string" },
} as const;

type Flags = ReturnType<typeof parse>["values"];

class UsageError extends Error {}

function parse(argv: string[]) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

function int(flags: Flags, name: keyof Flags): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  return n;
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing ${what} (see edgeq --help)`);
  return value;
}

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON: ${text.slice(0, 80)}`);
  }
}

/** Flags, then env, then the first config file found. */
function resolveConfig(flags: Flags, env: NodeJS.ProcessEnv = process.env): { url: string; token: string } {
  const explicit = flags.config ?? env.EDGEQ_CONFIG;
  const candidates = explicit ? [explicit] : [join(".edgeq", "config.json"), join(homedir(), ".config", "edgeq", "config.json")];
  let file: { url?: string; token?: string } = {};
  for (const path of candidates) {
    if (!existsSync(path)) {
      if (explicit) throw new UsageError(`config file ${path} does not exist`);
      continue;
    }
    file = json(readFileSync(path, "utf8"), `config file ${path}`) as typeof file;
    break;
  }
  const url = flags.url ?? env.EDGEQ_URL ?? file.url ?? "http://127.0.0.1:8787";
  const token = flags.token ?? env.EDGEQ_TOKEN ?? file.token;
  if (!token) throw new UsageError("no token: pass --token, set EDGEQ_TOKEN, or write it to a config file");
  return { url, token };
}

// ---------------------------------------------------------------- output

const out = (text: string): void => void process.stdout.write(`${text}\n`);

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n");
}

function fields(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : v}`)
    .join("\n");
}

function show(flags: Flags, data: unknown, human: () => string): void {
  out(flags.json ? JSON.stringify(data, null, 2) : human());
}

const TASK_COLUMNS = ["id", "name", "status", "priority", "attempts", "createdAt"];

/** A page of tasks as a table, with the cursor of the next page. */
function showTasks(flags: Flags, page: Page<Task>): void {
  show(flags, page, () => [table(page.items, TASK_COLUMNS), ...(page.nextCursor ? [`\nmore: --cursor ${page.nextCursor}`] : [])].join("\n"));
}

function progressBar(done: number, total: number): void {
  if (!process.stderr.isTTY && done < total) return;
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  process.stderr.write(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}${done === total ? "\n" : ""}`);
}

// ---------------------------------------------------------------- commands

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

async function enqueue(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
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

async function work(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
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

async function tail(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
  const every = int(flags, "interval") ?? 1000;
  const stamp = () => new Date().toISOString();
  let stopped = false;
  process.on("SIGINT", () => (stopped = true));
  process.on("SIGTERM", () => (stopped = true));
  if (flags.task) {
    let last = "";
    while (!stopped) {
      const task = await edgeq.get(flags.task);
      const now = `${task.status} attempts=${task.attempts}${task.progress === null ? "" : ` progress=${JSON.stringify(task.progress)}`}`;
      if (now !== last) out(flags.json ? JSON.stringify({ at: stamp(), task }) : `${stamp()} ${task.id} ${now}`);
      last = now;
      if (["completed", "failed", "cancelled"].includes(task.status)) return;
      await new Promise((r) => setTimeout(r, every));
    }
    return;
  }
  const queue = edgeq.queue(need(args[0], "<queue> or --task ID"));
  let last: Record<string, number> | null = null;
  while (!stopped) {
    const stats = await queue.stats();
    const counts = stats.counts;
    if (last === null || Object.keys(counts).some((k) => counts[k] !== last![k])) {
      if (flags.json) out(JSON.stringify({ at: stamp(), queue: queue.name, counts }));
      else {
        const parts = Object.entries(counts).map(([k, v]) => {
          const delta = last === null ? 0 : v - (last[k] ?? 0);
          return `${k}=${v}${delta === 0 ? "" : ` (${delta > 0 ? "+" : ""}${delta})`}`;
        });
        out(`${stamp()} ${queue.name} ${parts.join(" ")}`);
      }
      last = counts;
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

async function keys(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
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

async function limits(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
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
      ? { groupLimits: { ...(groupConcurrency === undefined ? {} : { default: groupConcurrency === null ? null : { concurrency: groupConcurrency } }), overrides } }
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

async function schedule(edgeq: EdgeqClient, flags: Flags, args: string[]): Promise<void> {
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

async function run(argv: string[]): Promise<void> {
  const { values: flags, positionals } = parse(argv);
  if (flags.version) return out(EDGEQ_VERSION);
  const [command, ...args] = positionals;
  if (flags.help || !command || command === "help") return out(HELP);
  const known = ["enqueue", "get", "search", "cancel", "retry", "seal", "children", "queues", "stats", "pause", "resume", "workers", "work", "tail", "keys", "limits", "groups", "schedules", "schedule"];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}" (see edgeq --help)`);
  const edgeq = new EdgeqClient({ ...resolveConfig(flags), retries: 2 });
  switch (command) {
    case "enqueue":
      return enqueue(edgeq, flags, args);
    case "get": {
      const task = await edgeq.get(need(args[0], "<task-id>"));
      return show(flags, task, () => fields(task as unknown as Record<string, unknown>));
    }
    case "search": {
      const page = await edgeq
        .queue(need(args[0], "<queue>"))
        .search({ status: flags.status as Status | undefined, limit: int(flags, "limit"), cursor: flags.cursor });
      return showTasks(flags, page);
    }
    case "children": {
      const page = await edgeq.children(need(args[0], "<task-id>"), { limit: int(flags, "limit"), cursor: flags.cursor });
      return showTasks(flags, page);
    }
    case "cancel":
    case "retry":
    case "seal": {
      const task: Task = await edgeq[command](need(args[0], "<task-id>"));
      return show(flags, task, () => `${task.id} ${task.status}${task.cancelRequested ? " (cancel requested)" : ""}${command === "seal" ? " (sealed)" : ""}`);
    }
    case "queues": {
      const page = await edgeq.queues();
      const statuses = ["pending", "running", "scheduled", "completed", "failed"];
      const rows = page.items.map((q) => ({
        name: q.name,
        shards: q.settings.shards,
        paused: q.settings.paused,
        ...Object.fromEntries(statuses.map((s) => [s, q.counts[s] ?? 0])),
      }));
      return show(flags, page, () => table(rows, ["name", "shards", "paused", ...statuses]));
    }
    case "stats": {
      const stats = await edgeq.queue(need(args[0], "<queue>")).stats();
      return show(flags, stats, () => fields({ name: stats.name, shards: stats.settings.shards, paused: stats.settings.paused, ...stats.counts }));
    }
    case "pause":
    case "resume": {
      const info = await edgeq.queue(need(args[0], "<queue>"))[command]();
      return show(flags, info, () => `${info.name} ${info.settings.paused ? "paused" : "running"}`);
    }
    case "workers": {
      const page = await edgeq.workers({ limit: int(flags, "limit"), cursor: flags.cursor });
      const rows = page.items.map((w) => ({ ...w, running: w.currentTasks.length }));
      return show(flags, page, () => table(rows, ["id", "name", "status", "queues", "concurrency", "running", "completed", "failed", "lastSeenAt"]));
    }
    case "work":
      return work(edgeq, flags, args);
    case "tail":
      return tail(edgeq, flags, args);
    case "keys":
      return keys(edgeq, flags, args);
    case "limits":
      return limits(edgeq, flags, args);
    case "groups": {
      const items = await edgeq.queue(need(args[0], "<queue>")).groups();
      return show(flags, { items }, () => table(items, ["group", "pending", "running"]));
    }
    case "schedules": {
      const items = await edgeq.queue(need(args[0], "<queue>")).schedules.list();
      const rows = items.map((s) => ({ ...s, task: s.task.name, next: s.nextRuns[0] ?? null }));
      return show(flags, { items }, () => table(rows, ["id", "cron", "timezone", "task", "overlap", "paused", "next", "fired", "skipped"]));
    }
    case "schedule":
      return schedule(edgeq, flags, args);
  }
}

function main(): void {
  run(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      if (e instanceof EdgeqError) {
        process.stderr.write(`edgeq: ${e.problem.title} (${e.status}): ${e.problem.detail}\n`);
        for (const item of e.problem.errors ?? []) process.stderr.write(`  ${item.pointer}: ${item.detail}\n`);
        process.exit(1);
      }
      if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
        process.stderr.write(`edgeq: ${(e as Error).message}\n`);
        process.exit(2);
      }
      if (e instanceof TypeError && e.message === "fetch failed") {
        const cause = e.cause as { code?: string; message?: string } | undefined;
        process.stderr.write(`edgeq: cannot reach the API (${cause?.code ?? cause?.message}); is it running? (--url / EDGEQ_URL)\n`);
        process.exit(3);
      }
      process.stderr.write(`edgeq: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}

main();
