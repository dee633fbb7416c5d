// The platform's own bound for a batch enqueue on this machine: a Worker and a bare SQLite Durable
// Object on the same workerd, through Miniflare's API, as `npm start` serves edgeq (its own socket,
// state on disk, so each commit is fsynced). One table with a partial ready index, the batch
// inserted by one `INSERT … SELECT` over `json_each` in one transaction, the ids answered: no
// validation, placement, idempotency, fencing, outbox, history or task views. What edgeq adds to a
// call is what its figure stands below this one. bench:compare runs it beside BullMQ.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Log, LogLevel, Miniflare } from "miniflare";

const SCRIPT = `
import { DurableObject } from "cloudflare:workers";

export class Bare extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec(\`CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, name TEXT NOT NULL, payload TEXT NOT NULL,
      priority INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID\`);
    ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (priority DESC, created_at) WHERE status = 'pending'");
  }

  enqueue(tasks) {
    const now = Date.now();
    const rows = tasks.map((t) => [crypto.randomUUID(), t.name, JSON.stringify(t.payload ?? null), t.priority ?? 5]);
    this.ctx.storage.transactionSync(() =>
      this.ctx.storage.sql.exec(
        "INSERT INTO tasks (id, name, payload, priority, status, created_at) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, 'pending', ? FROM json_each(?)",
        now,
        JSON.stringify(rows),
      ),
    );
    return rows.map((r) => r[0]);
  }
}

export default {
  async fetch(request, env) {
    const { tasks } = await request.json();
    const ids = await env.BARE.get(env.BARE.idFromName("q")).enqueue(tasks);
    return Response.json({ ids }, { status: 201 });
  },
};
`;

/** Starts the bare Worker and object on a free loopback port; resolves to its base URL and `stop()`. */
export async function startBareShard() {
  const state = mkdtempSync(join(tmpdir(), "edgeq-bare-"));
  const mf = new Miniflare({
    name: "bare",
    modules: true,
    script: SCRIPT,
    compatibilityDate: "2025-04-01",
    durableObjects: { BARE: { className: "Bare", useSQLite: true } },
    durableObjectsPersist: state,
    host: "127.0.0.1",
    port: 0,
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    cf: false,
    log: new Log(LogLevel.WARN),
  });
  const url = await mf.unsafeGetDirectURL("bare");
  return {
    base: url.href.replace(/\/$/, ""),
    stop: async () => {
      await mf.dispose();
      rmSync(state, { recursive: true, force: true });
    },
  };
}
