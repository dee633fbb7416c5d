import type { TaskRow } from "../../schema/shard";
import { resolveDependency } from "./dag";
import { parseShardKey } from "./ids";
import { childCounts, free, mailRetryDelay } from "./rules";
import type { ShardState } from "./state";
import { DUE_BATCH, MAIL_MAX_ATTEMPTS, type Mail, type OutgoingMail } from "./types";

/**
 * Messages between the shards of a tenant, about dependencies, parents and
 * idempotency keys. Incoming ones are applied idempotently (an edge is a set
 * member, a dependency leaves `depsWaiting` once, a child counts once); outgoing
 * ones wait in the `mail` table, written in the transaction of the change, until
 * the receiver acknowledges them.
 */
export class Mailroom {
  constructor(private readonly shard: ShardState) {}

  /** Applies messages for this shard until none is left (a cancellation can cascade). */
  drain(): void {
    const { local } = this.shard;
    for (let mail = local.shift(); mail; mail = local.shift()) this.apply(mail);
  }

  /** Messages due for delivery to other shards. */
  due(limit = DUE_BATCH): OutgoingMail[] {
    return this.shard.store.dueMail(this.shard.clock.now(), limit).map((m) => ({
      seq: m.seq,
      to: parseShardKey(m.target),
      attempts: m.attempts,
      mail: JSON.parse(m.body) as Mail,
    }));
  }

  /** The receiver acknowledged these: they are done. */
  delivered(seqs: number[]): void {
    const { store } = this.shard;
    store.transaction(() => store.deleteMail(seqs));
    this.shard.nextMail = store.nextMailAt();
  }

  /** Delivery failed: each is tried again after a growing delay, until MAIL_MAX_ATTEMPTS, then it is dead. */
  failed(mails: OutgoingMail[]): void {
    const { store } = this.shard;
    const now = this.shard.clock.now();
    store.transaction(() => {
      for (const m of mails) {
        if (m.attempts + 1 >= MAIL_MAX_ATTEMPTS) store.buryMail(m.seq, m.attempts + 1, now);
        else store.retryMail(m.seq, m.attempts + 1, now + mailRetryDelay(m.attempts));
      }
    });
    this.shard.nextMail = store.nextMailAt();
  }

  private apply(mail: Mail): void {
    const { store } = this.shard;
    switch (mail.kind) {
      case "register":
        return this.register(mail.dep, mail.dependent);
      case "resolved":
        return this.resolved(mail);
      case "child_added":
      case "child_finished":
        return this.childNews(mail);
      case "unclaim":
        return store.deleteKey(mail.key, mail.task);
      case "seal": {
        const row = store.get(mail.parent);
        if (!row || row.sealed) return;
        if (row.status === "blocked") return this.unblockIfReady(row, { sealed: 1 }, "sealed");
        this.shard.transition(row, "sealed", { sealed: 1 });
      }
    }
  }

  /** At the dependency's shard: answer at once if it has finished, else remember who waits. */
  private register(depId: string, dependent: string): void {
    const { store } = this.shard;
    const dep = store.get(depId);
    const answer = (ok: boolean, status: string) => this.shard.send(dependent, { kind: "resolved", dep: depId, dependent, ok, status });
    if (!dep) return answer(false, "missing");
    if (dep.status === "completed") return answer(true, dep.status);
    if (dep.status === "failed" || dep.status === "cancelled") return answer(false, dep.status);
    store.addDependent(dep.id, dependent);
    // The shard's own bookkeeping (no API field), so no event.
    if (!dep.hasDependents) store.update(dep.id, { hasDependents: 1 });
  }

  /** At the dependent's shard: one dependency has finished. */
  private resolved(mail: Extract<Mail, { kind: "resolved" }>): void {
    const row = this.shard.store.get(mail.dependent);
    if (!row || row.status !== "blocked") return; // cancelled meanwhile, or a duplicate
    const waiting = JSON.parse(row.depsWaiting ?? "[]") as string[];
    const next = resolveDependency(waiting, mail.dep, mail.ok, row.onDependencyFailure ?? "cancel");
    if (next.action === "none") return;
    const depsWaiting = next.waiting.length > 0 ? JSON.stringify(next.waiting) : null;
    if (next.action === "cancel") {
      const error = JSON.stringify({
        message: `Dependency ${mail.dep} ${mail.status === "missing" ? "no longer exists" : `ended ${mail.status}`}.`,
      });
      this.shard.finish(row, "cancelled", "cancelled", { depsWaiting, error });
    } else {
      this.unblockIfReady(row, { depsWaiting }, "dependency_resolved");
    }
  }

  /** At the parent's shard: a child was added or has finished. Each child counts once, whatever the order of the news. */
  private childNews(mail: Extract<Mail, { kind: "child_added" | "child_finished" }>): void {
    const { store } = this.shard;
    const parent = store.get(mail.parent);
    if (!parent) return;
    const known = store.getChild(mail.parent, mail.child);
    const counts = childCounts(parent);
    if (mail.kind === "child_added") {
      if (known) return;
      store.putChild(mail.parent, mail.child, "active", null);
      counts.total++;
    } else {
      if (known && known.status !== "active") return;
      store.putChild(mail.parent, mail.child, mail.status, mail.result);
      if (!known) counts.total++;
      if (mail.status === "completed" || mail.status === "failed" || mail.status === "cancelled") counts[mail.status]++;
    }
    const patch = { children: JSON.stringify(counts) };
    if (parent.status === "blocked") this.unblockIfReady(parent, patch, mail.kind);
    else this.shard.transition(parent, mail.kind, patch);
  }

  /** Applies `patch` to a blocked task (an event of `type`), and lets it run if nothing holds it any more. */
  private unblockIfReady(
    row: TaskRow,
    patch: Partial<TaskRow>,
    type: "sealed" | "dependency_resolved" | "child_added" | "child_finished",
  ): void {
    if (!free({ ...row, ...patch })) {
      this.shard.transition(row, type, patch);
      return;
    }
    this.shard.transition(row, "unblocked", { ...patch, ...this.shard.readyBy(row.runAt, this.shard.clock.now()) });
  }
}
