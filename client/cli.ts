#!/usr/bin/env node
/**
 * `edgeq`: the command line of edgeq's HTTP API. Config from flags, then the
 * environment (EDGEQ_URL, EDGEQ_TOKEN), then a JSON config file.
 */
import { int, need, parse, resolveConfig, since, UsageError } from "./cli/args";
import { enqueue, keys, limits, schedule, tail, work } from "./cli/commands";
import { report } from "./cli/report";
import { fields, out, show, showHistory, showTasks, showTimeline, table } from "./cli/output";
import { EdgeqClient, EdgeqError } from "./index";
import type { SearchFilters, Status, Task, TimelineEvent } from "./types";

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
  list <queue> [--status S] [--limit N] [--cursor C]
                                 what the queue holds now (live)
  search [--q TEXT] [--status S,S] [--queue Q]... [--since 2h|ISO] [--sort S] [--limit N] [--cursor C]
                                 task history: full text over name and payload, filters
                                 (lags the live queues by about a second)
  events <task-id>               a task's timeline
  report --fields F,F [--format csv|json|jsonl] [--group-by FIELD] [search filters] [--limit N]
                                 a report from history, streamed to stdout (progress on stderr):
                                 edgeq report --fields id,status,runMs --status failed > out.csv
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
  tail <queue> | tail --task ID  prints changes as they happen (a live WebSocket; polling every
                                 --interval MS where the runtime has none: Node 20 without "ws")

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

async function run(argv: string[]): Promise<void> {
  const { values: flags, positionals } = parse(argv);
  if (flags.version) return out(EDGEQ_VERSION);
  const [command, ...args] = positionals;
  if (flags.help || !command || command === "help") return out(HELP);
  const known = [
    "enqueue",
    "get",
    "list",
    "search",
    "events",
    "cancel",
    "retry",
    "seal",
    "children",
    "queues",
    "stats",
    "pause",
    "resume",
    "workers",
    "work",
    "tail",
    "keys",
    "limits",
    "groups",
    "schedules",
    "schedule",
    "report",
  ];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}" (see edgeq --help)`);
  const edgeq = new EdgeqClient({ ...resolveConfig(flags), retries: 2 });
  switch (command) {
    case "enqueue":
      return enqueue(edgeq, flags, args);
    case "report":
      return report(edgeq, flags);
    case "get": {
      const task = await edgeq.get(need(args[0], "<task-id>"));
      return show(flags, task, () => fields(task as unknown as Record<string, unknown>));
    }
    case "list": {
      const page = await edgeq
        .queue(need(args[0], "<queue>"))
        .list({ status: flags.status as Status | undefined, limit: int(flags, "limit"), cursor: flags.cursor });
      return showTasks(flags, page);
    }
    case "search": {
      const queues = [...(flags.queue ?? []), ...args]; // `search <queue>` reads as --queue
      const pages = edgeq.search({
        q: flags.q,
        status: flags.status?.split(",") as Status[] | undefined,
        queue: queues.length > 0 ? queues : undefined,
        createdFrom: since(flags),
        sort: flags.sort as SearchFilters["sort"],
        limit: int(flags, "limit"),
        cursor: flags.cursor,
      });
      const { value: page } = await pages.next();
      return showHistory(flags, page!);
    }
    case "events": {
      const items: TimelineEvent[] = [];
      for await (const event of edgeq.timeline(need(args[0], "<task-id>"))) items.push(event);
      return showTimeline(flags, items);
    }
    case "children": {
      const page = await edgeq.children(need(args[0], "<task-id>"), { limit: int(flags, "limit"), cursor: flags.cursor });
      return showTasks(flags, page);
    }
    case "cancel":
    case "retry":
    case "seal": {
      const task: Task = await edgeq[command](need(args[0], "<task-id>"));
      return show(
        flags,
        task,
        () => `${task.id} ${task.status}${task.cancelRequested ? " (cancel requested)" : ""}${command === "seal" ? " (sealed)" : ""}`,
      );
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
      return show(flags, stats, () =>
        fields({ name: stats.name, shards: stats.settings.shards, paused: stats.settings.paused, ...stats.counts }),
      );
    }
    case "pause":
    case "resume": {
      const info = await edgeq.queue(need(args[0], "<queue>"))[command]();
      return show(flags, info, () => `${info.name} ${info.settings.paused ? "paused" : "running"}`);
    }
    case "workers": {
      const page = await edgeq.workers({ limit: int(flags, "limit"), cursor: flags.cursor });
      const rows = page.items.map((w) => ({ ...w, running: w.currentTasks.length }));
      return show(flags, page, () =>
        table(rows, ["id", "name", "status", "queues", "concurrency", "running", "completed", "failed", "lastSeenAt"]),
      );
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
