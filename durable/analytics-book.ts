/**
 * The analytics cache's side of a tenant's MetricsHub, in its storage: the
 * data version cache keys carry (a KV value, so a cache hit reads KV only),
 * and the hit and miss counts.
 *
 * Shards tell the hub after each flush that wrote history; the version moves
 * at most once a second (KV takes one write per second per key): a change
 * within a second of the last move moves it again when the second is up, by
 * the hub's alarm.
 */

/** The KV key holding a tenant's analytics data version (worker/routes/analytics.ts keys its cache with it). */
export const analyticsVersionKey = (tenant: string) => `analytics:version:${encodeURIComponent(tenant)}`;
/** The version moves at most once per this long. */
const VERSION_EVERY_MS = 1_000;

export interface CacheCounts {
  hits: number;
  misses: number;
  hitRate: number | null;
}

export class AnalyticsBook {
  /** when the version last moved, and the tenant whose move waits for the alarm */
  private lastBump = 0;
  private bumpDue: string | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly kv: () => KVNamespace,
  ) {}

  async historyChanged(tenant: string): Promise<void> {
    if (this.bumpDue !== null) return; // a move is already on its way
    const due = this.lastBump + VERSION_EVERY_MS;
    if (Date.now() >= due) return this.bump(tenant);
    this.bumpDue = tenant;
    await this.storage.put("version.tenant", tenant);
    await this.storage.setAlarm(due);
  }

  async alarm(): Promise<void> {
    const tenant = this.bumpDue ?? (await this.storage.get<string>("version.tenant"));
    this.bumpDue = null;
    if (tenant) await this.bump(tenant);
  }

  private async bump(tenant: string): Promise<void> {
    this.lastBump = Date.now();
    const version = ((await this.storage.get<number>("version")) ?? 0) + 1;
    await this.storage.put("version", version);
    try {
      await this.kv().put(analyticsVersionKey(tenant), String(version));
    } catch {
      // KV refused (e.g. a second write within the second after this object restarted): the alarm tries again.
      this.bumpDue = tenant;
      await this.storage.put("version.tenant", tenant);
      await this.storage.setAlarm(Date.now() + VERSION_EVERY_MS);
    }
  }

  async count(hit: boolean): Promise<void> {
    const key = hit ? "cache.hits" : "cache.misses";
    await this.storage.put(key, ((await this.storage.get<number>(key)) ?? 0) + 1);
  }

  async stats(): Promise<CacheCounts> {
    const got = await this.storage.get<number>(["cache.hits", "cache.misses"]);
    const hits = got.get("cache.hits") ?? 0;
    const misses = got.get("cache.misses") ?? 0;
    return { hits, misses, hitRate: hits + misses === 0 ? null : hits / (hits + misses) };
  }
}
