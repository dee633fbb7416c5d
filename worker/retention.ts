import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { deleteStatements } from "../durable/history";
import { ulidTimePrefix } from "../durable/core/ids";
import { DAY } from "../schema/api";
import { HISTORY_DAYS_DEFAULT, tenants } from "../schema/history";

/**
 * History retention: each tenant's finished tasks leave D1 once they are
 * older than its `retentionDays` (default 30), in batches, from the cron
 * trigger (wrangler.toml `[triggers]`); so do its analytics rollups (minute
 * ones after a week at most).
 */

/** Tasks removed per D1 batch. */
const BATCH = 500;
/**
 * D1 queries one run makes at most (a Worker invocation may make 1,000 on the paid plan,
 * 50 on the free one; a batch counts each statement): the next run goes on where work is left.
 */
const QUERY_BUDGET = 45;

export async function historyDays(db: D1Database, tenant: string): Promise<number> {
  const [row] = await drizzle(db).select().from(tenants).where(eq(tenants.tenant, tenant)).limit(1);
  return row?.historyDays ?? HISTORY_DAYS_DEFAULT;
}

/** Sets the tenant's retention; null goes back to the default. */
export async function setHistoryDays(db: D1Database, tenant: string, days: number | null): Promise<void> {
  const d = drizzle(db);
  if (days === null) await d.delete(tenants).where(eq(tenants.tenant, tenant));
  else
    await d
      .insert(tenants)
      .values({ tenant, historyDays: days })
      .onConflictDoUpdate({ target: tenants.tenant, set: { historyDays: days } });
}

/** Every tenant with history (task rows or rollups), one index seek each per table (not a scan of every row). */
async function tenantsWithHistory(db: D1Database): Promise<string[]> {
  const distinct = (table: "tasks" | "rollups") =>
    drizzle(db).all<{ tenant: string }>(sql`
      WITH RECURSIVE t(tenant) AS (
        SELECT min(tenant) FROM ${sql.raw(table)}
        UNION ALL SELECT (SELECT min(tenant) FROM ${sql.raw(table)} WHERE tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL
      ) SELECT tenant FROM t WHERE tenant IS NOT NULL`);
  const [tasks, rollups] = await Promise.all([distinct("tasks"), distinct("rollups")]);
  return [...new Set([...tasks, ...rollups].map((r) => r.tenant))].sort();
}

// sweepHistory: D1, the time now, a random source. output: how many tasks left history, per tenant.
// Tenants are taken from a random place in their order, so that when one run cannot do all the
// work (QUERY_BUDGET), every tenant still gets its turn over the next runs.
export async function sweepHistory(db: D1Database, now: number, random = Math.random): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const all = await tenantsWithHistory(db);
  const start = Math.floor(random() * all.length);
  let queries = 2;
  for (const tenant of [...all.slice(start), ...all.slice(0, start)]) {
    if (queries + 2 > QUERY_BUDGET) break;
    const cutoff = now - (await historyDays(db, tenant)) * DAY;
    queries++;
    let removed = 0;
    while (queries + 4 <= QUERY_BUDGET) {
      // Ids are time-sortable: tasks made before the cutoff are one range of the primary key.
      const { results } = await db
        .prepare(
          `SELECT id FROM tasks WHERE tenant = ?1 AND id < ?2 AND status IN ('completed', 'failed', 'cancelled') AND finished_at <= ?3 ORDER BY id LIMIT ?4`,
        )
        .bind(tenant, ulidTimePrefix(cutoff), cutoff, BATCH)
        .all<{ id: string }>();
      queries++;
      if (results.length === 0) break;
      await db.batch(
        deleteStatements(
          db,
          tenant,
          results.map((r) => r.id),
        ),
      );
      queries += 3;
      removed += results.length;
      if (results.length < BATCH) break;
    }
    if (removed > 0) out[tenant] = removed;
    if (queries + ROLLUP_DELETES.length > QUERY_BUDGET) break;
    // Rollups go with the history they count: hours at the tenant's cutoff, minutes (read for a day or so) after a week.
    const minutes = Math.max(cutoff, now - MINUTE_ROLLUP_DAYS * DAY);
    await db.batch(ROLLUP_DELETES.map(([sql, res]) => db.prepare(sql).bind(tenant, res, res === "m" ? minutes : cutoff)));
    queries += ROLLUP_DELETES.length;
  }
  return out;
}

/** Minute rollups are kept this many days at most (a trend by minute spans at most ~1 day). */
const MINUTE_ROLLUP_DAYS = 7;
/** Rollup rows one statement removes at most: a backlog goes over later runs, no run holds D1 long. */
const ROLLUP_BATCH = 5_000;
const rollupDelete = (table: string, key: string) =>
  `DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table} WHERE tenant = ?1 AND res = ?2 AND at < ?3 LIMIT ${ROLLUP_BATCH})`;
const ROLLUP_DELETES: [string, "m" | "h"][] = (["m", "h"] as const).flatMap((res) => [
  [rollupDelete("rollups", "tenant, res, at, queue"), res] as [string, "m" | "h"],
  [rollupDelete("rollup_hist", "tenant, res, at, queue, kind, bin"), res] as [string, "m" | "h"],
]);
