import type { ChildProcess, StdioOptions } from "node:child_process";

/** The dashboard on the local stack (scripts/dashboard.mjs). */
export function serveDashboard(options: { host?: string; port: number | string; api: string; token?: string; dir?: string; stdio?: StdioOptions }): ChildProcess;
