import type { ChildProcess, StdioOptions } from "node:child_process";

/** The local API as its own process group (scripts/api-process.mjs). */
export function spawnApi(options: {
  direct?: boolean;
  host?: string;
  port: number | string;
  persistTo: string;
  vars?: Record<string, string>;
  inspectorPort?: number;
  logLevel?: string;
  stdio?: StdioOptions;
}): ChildProcess;
