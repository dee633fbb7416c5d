import { groupByShard, parseTaskId, type TaskAddress } from "../durable/core/ids";
import { shardOf } from "../durable/queue-shard";
import type { Limits } from "../durable/core/rate-limit";
import { unwrap } from "../durable/outcome";
import type { QueueRecord } from "../durable/queue-registry";
import { DEFAULT_SETTINGS, type Status } from "../schema/shard";

/**
 * Routing from the API Worker to Durable Objects: the tenant's QueueRegistry,
 * a queue's shards, and the shard a task id names. Queue settings are cached
 * in the isolate for at most SETTINGS_TTL_MS, so a lease costs no registry call.
 */
export const SETTINGS_TTL_MS = 1000;
const cache = new Map<string, { record: QueueRecord | null; at: number }>();

export function registryOf(env: Env, tenant: string) {
  return env.QUEUE_REGISTRY.get(env.QUEUE_REGISTRY.idFromName(tenant));
}

export { groupByShard, shardOf };

/**
 * Whether the tenant has a queue with this shard. Checked before a task id wakes
 * a shard, so an id naming a queue or shard that does not exist costs no Durable
 * Object (and no storage). A "no" is checked again uncached: the queue may be newer
 * than this isolate's cached answer.
 */
export async function shardExists(env: Env, tenant: string, at: TaskAddress): Promise<boolean> {
  const has = (r: QueueRecord | null) => r !== null && at.shard < r.settings.shards;
  if (has(await findQueue(env, tenant, at.queue))) return true;
  forgetQueue(tenant, at.queue);
  return has(await findQueue(env, tenant, at.queue));
}

/** The stub of the shard holding task `id`, or null when no shard of the tenant's queues can hold it. */
export async function shardOfTask(env: Env, tenant: string, id: string) {
  const address = parseTaskId(id);
  return address && (await shardExists(env, tenant, address)) ? shardOf(env, tenant, address.queue, address.shard) : null;
}

/** Like `groupByShard`, leaving out the items whose id names no shard of the tenant's queues. */
export async function groupByKnownShard<T>(env: Env, tenant: string, items: T[], idOf: (item: T) => string) {
  const groups = groupByShard(items, idOf);
  const known = await Promise.all(groups.map((g) => shardExists(env, tenant, g)));
  return groups.filter((_, i) => known[i]);
}

/** At most this many queues' settings are cached per isolate: queue names come from callers. */
const CACHE_LIMIT = 1000;

/** Sets `key` in a Map used as a bounded cache: the oldest entry goes when it is full. */
function bounded<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  if (map.size >= CACHE_LIMIT) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** The queue's record, or null if it does not exist (cached). */
export async function findQueue(env: Env, tenant: string, queue: string): Promise<QueueRecord | null> {
  const key = `${tenant}:${queue}`;
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < SETTINGS_TTL_MS) return hit.record;
  const record = await registryOf(env, tenant).find(queue);
  bounded(cache, key, { record, at: Date.now() });
  return record;
}

/** The queue's record, creating the queue on first use (cached). */
export async function ensureQueue(env: Env, tenant: string, queue: string): Promise<QueueRecord> {
  const known = await findQueue(env, tenant, queue);
  if (known) return known;
  const record = await registryOf(env, tenant).ensure(queue);
  remember(tenant, record);
  return record;
}

/** Settings for a queue that may not exist yet: a consumer may start before any producer. */
export async function settingsOrDefault(env: Env, tenant: string, queue: string) {
  return (await findQueue(env, tenant, queue))?.settings ?? DEFAULT_SETTINGS;
}

const limitsCache = new Map<string, { limits: Limits | null; at: number }>();

/** The tenant's default rate limits (cached like settings, ≤ SETTINGS_TTL_MS). */
export async function tenantLimits(env: Env, tenant: string): Promise<Limits | null> {
  const hit = limitsCache.get(tenant);
  if (hit && Date.now() - hit.at < SETTINGS_TTL_MS) return hit.limits;
  const limits = await registryOf(env, tenant).limits();
  bounded(limitsCache, tenant, { limits, at: Date.now() });
  return limits;
}

export function forgetTenantLimits(tenant: string): void {
  limitsCache.delete(tenant);
}

/** Drops a cached answer about a queue (e.g. "does not exist" after something created it). */
export function forgetQueue(tenant: string, queue: string): void {
  cache.delete(`${tenant}:${queue}`);
}

export function remember(tenant: string, record: QueueRecord): void {
  bounded(cache, `${tenant}:${record.name}`, { record, at: Date.now() });
}

/** Shard numbers 0..n-1, starting at a random one, so no shard is always tried first. */
export function shardOrder(n: number): number[] {
  const start = Math.floor(Math.random() * n);
  return Array.from({ length: n }, (_, i) => (start + i) % n);
}

export const shardNumbers = (record: QueueRecord) => Array.from({ length: record.settings.shards }, (_, i) => i);

/** Every shard's counts, totals and storage figures, in shard order. */
export async function shardStats(env: Env, tenant: string, record: QueueRecord) {
  return Promise.all(
    shardNumbers(record).map(async (shard) => ({ shard, ...unwrap(await shardOf(env, tenant, record.name, shard).stats()) })),
  );
}

/** A queue's counts by status: its shards' added up. */
export function sumCounts(parts: { counts: Partial<Record<Status, number>> }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.counts)) out[k] = (out[k] ?? 0) + (v ?? 0);
  return out;
}
