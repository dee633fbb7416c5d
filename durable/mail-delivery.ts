import type { OutgoingMail, ShardEngine } from "./core/engine";
import { shardKey } from "./core/ids";
import type { QueueShard } from "./queue-shard";

/**
 * Delivers a shard's due messages to the shards they name (dependencies, parents and children
 * across shards), one RPC per receiving shard. Acknowledged ones are deleted; the rest are
 * retried with backoff by a later alarm, so a message is delivered at least once and applied
 * once (the receiver is idempotent).
 */
export async function deliverMail(
  engine: ShardEngine,
  shardAt: (tenant: string, queue: string, shard: number) => DurableObjectStub<QueueShard>,
): Promise<void> {
  const tenant = engine.tenant;
  if (tenant === undefined) return; // no call has named this shard's tenant yet, so it has sent nothing
  // First tries go together, one RPC per receiving shard; a message that failed before goes
  // alone, so one that always fails (a poison message) holds up no other.
  const byTarget = new Map<string, OutgoingMail[]>();
  for (const m of engine.mailDue()) {
    const key = m.attempts === 0 ? shardKey(m.to) : `retry:${m.seq}`;
    const list = byTarget.get(key);
    if (list) list.push(m);
    else byTarget.set(key, [m]);
  }
  await Promise.all(
    [...byTarget.values()].map(async (mails) => {
      const { queue, shard } = mails[0].to;
      try {
        const answer = await shardAt(tenant, queue, shard).receive(
          { tenant, queue, shard },
          mails.map((m) => m.mail),
        );
        if (!answer.ok) throw new Error(answer.problem.detail);
        engine.mailDelivered(mails.map((m) => m.seq));
      } catch {
        engine.mailFailed(mails);
      }
    }),
  );
}
