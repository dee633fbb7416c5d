/** The `edgeq` command line's flags and config: parsing, checks, and where the URL and token come from. */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

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
  q: { type: "string" },
  since: { type: "string" },
  queue: { type: "string", multiple: true },
  sort: { type: "string" },
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
  fields: { type: "string" },
  "group-by": { type: "string" },
  format: { type: "string" },
} as const;

export type Flags = ReturnType<typeof parse>["values"];

export class UsageError extends Error {}

export function parse(argv: string[]) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

export function int(flags: Flags, name: keyof Flags): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  return n;
}

export function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing ${what} (see edgeq --help)`);
  return value;
}

export function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON: ${text.slice(0, 80)}`);
  }
}

/** Flags, then env, then the first config file found. */
export function resolveConfig(flags: Flags, env: NodeJS.ProcessEnv = process.env): { url: string; token: string } {
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

/** `--since 90m` (s, m, h, d ago) or an ISO-8601 time, as a Date. */
export function since(flags: Flags, now = Date.now()): Date | undefined {
  const raw = flags.since;
  if (raw === undefined) return undefined;
  const m = /^(\d+)([smhd])$/.exec(raw);
  if (m) return new Date(now - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s"]);
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw new UsageError(`--since takes a duration (30s, 15m, 2h, 7d) or an ISO-8601 time, got "${raw}"`);
  return new Date(t);
}
