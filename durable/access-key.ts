import { DurableObject } from "cloudflare:workers";
import { drizzle, type DrizzleSqliteDODatabase } from "drizzle-orm/durable-sqlite";
import { credential, usage, type CredentialRow, type KeyRecord } from "../schema/access";
import { ACCESS_MIGRATIONS } from "../schema/migrations/access";
import { NO_WINDOWS, take, type Limits, type RateDecision, type Windows } from "./core/rate-limit";
import { migrate } from "./migrate";

export type Authorization = { ok: true; record: KeyRecord; rate: RateDecision } | { ok: false; reason: "unknown" | "revoked" | "mismatch" };

const hexBytes = (hex: string) => new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);

/**
 * One per credential: `key:<id>` for an API key, `jwt:<tenant>:<sub>` for a
 * JWT subject. It checks the key's hash and counts the request in one call, so
 * verification and rate limiting cost one Durable Object request, and the
 * limit is exact under any concurrency (the object is single-threaded). Its
 * storage goes through drizzle's query builder (cold and tiny: one row each).
 */
export class AccessKey extends DurableObject<Env> {
  /** Time source of the rate windows; tests move it forward. */
  clock = { now: () => Date.now() };
  private record: CredentialRow | null = null;
  private windows: Windows = NO_WINDOWS;
  private readonly db: DrizzleSqliteDODatabase;
  /** whether this object's storage holds its tables (an object that never held a credential writes nothing) */
  private ready = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = drizzle(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => {
      const made = ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = '_migrations'").one().n > 0;
      if (made) this.prepare();
    });
  }

  /** Migrates and loads the stored state; the first write of an object that holds something. */
  private prepare(): void {
    if (this.ready) return;
    migrate(this.ctx.storage, ACCESS_MIGRATIONS);
    this.ready = true;
    this.record = this.db.select().from(credential).get() ?? null;
    const stored = this.db.select().from(usage).get();
    if (stored) {
      const { one: _one, ...windows } = stored;
      this.windows = windows;
    }
  }

  /** Stores a new key's record and hash (and its tenant's limits); refuses to overwrite an existing key. */
  create(record: KeyRecord, hash: string, tenantLimits: Limits | null): boolean {
    this.prepare();
    if (this.record) return false;
    this.record = this.db
      .insert(credential)
      .values({
        one: 1,
        id: record.id,
        tenant: record.tenant,
        role: record.role,
        name: record.name,
        hash,
        limits: record.limits ? JSON.stringify(record.limits) : null,
        createdAt: record.createdAt,
        tenantLimits: tenantLimits ? JSON.stringify(tenantLimits) : null,
      })
      .returning()
      .get();
    return true;
  }

  /** Keeps the tenant's current default limits, used when the key has none of its own. */
  setTenantLimits(limits: Limits | null): void {
    if (!this.record) return;
    const text = limits ? JSON.stringify(limits) : null;
    this.db.update(credential).set({ tenantLimits: text }).run();
    this.record = { ...this.record, tenantLimits: text };
  }

  /**
   * Checks the presented key's hash (in constant time) and, if it matches,
   * counts the request against the key's limits, else its tenant's, else `defaults`.
   */
  authorize(hash: string, defaults: Limits): Authorization {
    const row = this.record;
    if (!row) return { ok: false, reason: "unknown" };
    if (row.revokedAt !== null) return { ok: false, reason: "revoked" };
    const a = hexBytes(hash);
    const b = hexBytes(row.hash);
    if (a.length !== b.length || !crypto.subtle.timingSafeEqual(a, b)) return { ok: false, reason: "mismatch" };
    const record = toRecord(row);
    const tenantLimits = row.tenantLimits ? (JSON.parse(row.tenantLimits) as Limits) : null;
    return { ok: true, record, rate: this.count(record.limits ?? tenantLimits ?? defaults) };
  }

  /** Counts a request of a credential with no stored record (a JWT subject). */
  limit(limits: Limits): RateDecision {
    this.prepare();
    return this.count(limits);
  }

  /** The key's record, revoked or not (null if no key is stored here). */
  info(): (KeyRecord & { revokedAt: number | null }) | null {
    return this.record ? { ...toRecord(this.record), revokedAt: this.record.revokedAt } : null;
  }

  /** Revokes the key; every later request with it is refused. */
  revoke(): boolean {
    if (!this.record || this.record.revokedAt !== null) return false;
    const now = Date.now();
    this.db.update(credential).set({ revokedAt: now }).run();
    this.record = { ...this.record, revokedAt: now };
    return true;
  }

  private count(limits: Limits): RateDecision {
    const { decision, windows } = take(this.windows, limits, this.clock.now());
    if (decision.allowed) {
      this.windows = windows;
      this.db
        .insert(usage)
        .values({ one: 1, ...windows })
        .onConflictDoUpdate({ target: usage.one, set: windows })
        .run();
    }
    return decision;
  }
}

function toRecord(row: CredentialRow): KeyRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    role: row.role,
    name: row.name,
    limits: row.limits ? (JSON.parse(row.limits) as Limits) : null,
    createdAt: row.createdAt,
  };
}
