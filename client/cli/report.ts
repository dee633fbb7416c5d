/** `edgeq report`: a report from history, streamed to stdout, with a progress line on stderr. */
import type { EdgeqClient } from "../index";
import type { ReportRequest, Status } from "../types";
import { int, since, UsageError, type Flags } from "./args";

/** Rows a chunk holds: one per line (CSV rows' line breaks inside quotes are counted too: a progress line, not a count). */
const lines = (chunk: Uint8Array) => chunk.reduce((n, b) => n + (b === 10 ? 1 : 0), 0);

export async function report(
  edgeq: EdgeqClient,
  flags: Flags,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  if (!flags.fields && !flags["group-by"]) throw new UsageError("report needs --fields a,b,c (or --group-by FIELD)");
  const format = (flags.format ?? "csv") as ReportRequest["format"];
  const body: ReportRequest = {
    fields: flags.fields?.split(",").map((f) => f.trim()),
    filters: {
      q: flags.q,
      status: flags.status?.split(",") as Status[] | undefined,
      queue: flags.queue,
      createdFrom: since(flags)?.toISOString(),
    },
    groupBy: flags["group-by"] as ReportRequest["groupBy"],
    sort: flags.sort as ReportRequest["sort"],
    format,
    limit: int(flags, "limit"),
  };
  const tty = (err as { isTTY?: boolean }).isTTY === true;
  let rows = 0;
  let shown = 0;
  const started = Date.now();
  const progress = (done: boolean) => {
    const line = `${rows.toLocaleString("en-US")} rows, ${((Date.now() - started) / 1000).toFixed(1)} s${done ? "\n" : ""}`;
    err.write(tty ? `\r${line}` : done ? line : "");
  };
  for await (const chunk of edgeq.reports.export(body)) {
    rows += lines(chunk);
    if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
    if (rows - shown >= 1000) {
      shown = rows;
      progress(false);
    }
  }
  if (format === "csv") rows = Math.max(0, rows - 1); // the header
  if (format === "json") rows = Math.max(0, rows - 2); // a line break before each row, two around the closing "]"
  progress(true);
}
