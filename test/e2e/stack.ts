import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The local stack as `npm start` runs it (wrangler dev, state on disk), on a port and state folder of its own. */
export class LocalStack {
  readonly port = 8700 + Math.floor(Math.random() * 80);
  readonly url = `http://127.0.0.1:${this.port}`;
  readonly token = `e2e-${Math.random().toString(36).slice(2)}`;
  private readonly state = mkdtempSync(join(tmpdir(), "edgeq-e2e-"));
  private child: ChildProcess | null = null;

  async start(): Promise<void> {
    const child = spawn(
      "node_modules/.bin/wrangler",
      ["dev", "--ip", "127.0.0.1", "--port", String(this.port), "--persist-to", this.state, "--log-level", "warn",
        "--var", `EDGEQ_ADMIN_TOKEN:${this.token}`, "--var", "EDGEQ_LOG_REQUESTS:false"],
      {
        detached: true,
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "1" },
      },
    );
    this.child = child;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d));
    for (let i = 0; i < 240; i++) {
      try {
        if ((await fetch(`${this.url}/health`)).ok) return;
      } catch {}
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`wrangler dev did not answer on ${this.url}: ${stderr}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    const exited = new Promise((r) => child.once("exit", r));
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {}
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.state, { recursive: true, force: true });
  }
}
