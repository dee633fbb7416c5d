/** How the `edgeq` command line prints: JSON with --json, else tables and fields for people. */
import type { Page } from "../index";
import type { Task, TimelineEvent } from "../types";
import type { Flags } from "./args";

export const out = (text: string): void => void process.stdout.write(`${text}\n`);

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n");
}

export function fields(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : v}`)
    .join("\n");
}

export function show(flags: Flags, data: unknown, human: () => string): void {
  out(flags.json ? JSON.stringify(data, null, 2) : human());
}

const TASK_COLUMNS = ["id", "name", "status", "priority", "attempts", "createdAt"];
const HISTORY_COLUMNS = ["id", "name", "queue", "status", "priority", "attempts", "createdAt", "finishedAt"];

/** A page of tasks as a table, with the cursor of the next page. */
export function showTasks(flags: Flags, page: Page<Task>, columns = TASK_COLUMNS): void {
  show(flags, page, () => [table(page.items, columns), ...(page.nextCursor ? [`\nmore: --cursor ${page.nextCursor}`] : [])].join("\n"));
}

/** A page of history search results. */
export const showHistory = (flags: Flags, page: Page<Task>) => showTasks(flags, page, HISTORY_COLUMNS);

/** A timeline: one line per event, what it said beyond its type and status in the last column. */
export function showTimeline(flags: Flags, items: TimelineEvent[]): void {
  show(flags, { items }, () => {
    const rows = items.map(({ at, type, status, ...rest }) => ({ at, type, status, detail: Object.keys(rest).length > 0 ? rest : null }));
    return table(rows, ["at", "type", "status", "detail"]);
  });
}

export function progressBar(done: number, total: number): void {
  if (!process.stderr.isTTY && done < total) return;
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  process.stderr.write(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}${done === total ? "\n" : ""}`);
}
