import type { ChildProcess, StdioOptions } from "node:child_process";

/** The local API as its own process group (scripts/api-process.mjs). */
export function spawnApi(options: {
  direct?: boolean;
  host?: string;
  port: number | string;
  persistTo: string;
  vars?: Record<string, string>;
  inspectorPort?: number;
  d1?: "apart" | "shared";
  logLevel?: string;
  stdio?: StdioOptions;
}): ChildProcess;

/** The live processes of a stack's process group; `api`: the workerd serving `port`. */
export function stackProcesses(pgid: number, port: number): { pid: number; comm: string; api: boolean }[];
