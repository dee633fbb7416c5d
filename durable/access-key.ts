import { DurableObject } from "cloudflare:workers";
import type { KeyRecord } from "../schema/access";
import { ACCESS_MIGRATIONS } from "../schema/migrations/access";
import { NO_WINDOWS, take, type Limits, type RateDecision, type Windows } from "./core/rate-limit";
import { migrate } from "./migrate";

export type Authorization =
  | { ok: true; record: KeyRecord; rate: RateDecision }
  | { ok: false; reason: "unknown" | "revoked" | "mismatch" };

interface CredentialRow extends Record<string, SqlStorageValue> {
  id: string;
  tenant: string;
  role: string;
  name: string;
  hash: string;
  limits: string | null;
  created_at: number;
  revoked_at: number | null;
  tenant_limits: string | null;
}

const hexBytes = (hex: string) => new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);

/**
 * One per credential: `key:<id>` for an API key, `jwt:<tenant>:<sub>` for a
 * JWT subject. It checks the key's hash and counts the request in one call, so
 * verification and rate limiting cost one Durable Object request, and the
 * limit is exact under any concurrency (the object is single-threaded).
 */
export class AccessKey extends DurableObject<Env> {
  /** Time source of the rate windows; tests move it forward. */
  clock = { now: () => Date.now() };
  private record: CredentialRow | null = null;
  private windows: Windows = NO_WINDOWS;

  /** whether this object's storage holds its tables (an object that never held a credential writes nothing) */
  private ready = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      const made = ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = '_migrations'").one().n > 0;
      if (made) this.prepare();
    });
  }

  /** Migrates and loads the stored state; the first write of an object that holds something. */
  private prepare(): void {
    if (this.ready) return;
    const { sql } = this.ctx.storage;
    migrate(this.ctx.storage, ACCESS_MIGRATIONS);
    this.ready = true;
    this.record = sql.exec<CredentialRow>("SELECT * FROM credential").toArray()[0] ?? null;
    const usage = sql
      .exec<{ minute_start: number; minute_count: number; hour_start: number; hour_count: number }>("SELECT * FROM usage")
      .toArray()[0];
    if (usage) {
      this.windows = {
        minuteStart: usage.minute_start,
        minuteCount: usage.minute_count,
        hourStart: usage.hour_start,
        hourCount: usage.hour_count,
      };
    }
  }

  /** Stores a new key's record and hash (and its tenant's limits); refuses to overwrite an existing key. */
  create(record: KeyRecord, hash: string, tenantLimits: Limits | null): boolean {
    this.prepare();
    if (this.record) return false;
    this.ctx.storage.sql.exec(
      "INSERT INTO credential (one, id, tenant, role, name, hash, limits, created_at, tenant_limits) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
      record.id,
      record.tenant,
      record.role,
      record.name,
      hash,
      record.limits ? JSON.stringify(record.limits) : null,
      record.createdAt,
      tenantLimits ? JSON.stringify(tenantLimits) : null,
    );
    this.record = this.ctx.storage.sql.exec<CredentialRow>("SELECT * FROM credential").toArray()[0];
    return true;
  }

  /** Keeps the tenant's current default limits, used when the key has none of its own. */
  setTenantLimits(limits: Limits | null): void {
    if (!this.record) return;
    const text = limits ? JSON.stringify(limits) : null;
    this.ctx.storage.sql.exec("UPDATE credential SET tenant_limits = ?", text);
    this.record = { ...this.record, tenant_limits: text };
  }

  /**
   * Checks the presented key's hash (in constant time) and, if it matches,
   * counts the request against the key's limits, else its tenant's, else `defaults`.
   */
  authorize(hash: string, defaults: Limits): Authorization {
    const row = this.record;
    if (!row) return { ok: false, reason: "unknown" };
    if (row.revoked_at !== null) return { ok: false, reason: "revoked" };
    const a = hexBytes(hash);
    const b = hexBytes(row.hash);
    if (a.length !== b.length || !crypto.subtle.timingSafeEqual(a, b)) return { ok: false, reason: "mismatch" };
    const record = toRecord(row);
    const tenantLimits = row.tenant_limits ? (JSON.parse(row.tenant_limits) as Limits) : null;
    return { ok: true, record, rate: this.count(record.limits ?? tenantLimits ?? defaults) };
  }

  /** Counts a request of a credential with no stored record (a JWT subject). */
  limit(limits: Limits): RateDecision {
    this.prepare();
    return this.count(limits);
  }

  /** The key's record, revoked or not (null if no key is stored here). */
  info(): (KeyRecord & { revokedAt: number | null }) | null {
    return this.record ? { ...toRecord(this.record), revokedAt: this.record.revoked_at } : null;
  }

  /** Revokes the key; every later request with it is refused. */
  revoke(): boolean {
    if (!this.record || this.record.revoked_at !== null) return false;
    const now = Date.now();
    this.ctx.storage.sql.exec("UPDATE credential SET revoked_at = ?", now);
    this.record = { ...this.record, revoked_at: now };
    return true;
  }

  private count(limits: Limits): RateDecision {
    const { decision, windows } = take(this.windows, limits, this.clock.now());
    if (decision.allowed) {
      this.windows = windows;
      this.ctx.storage.sql.exec(
        "INSERT INTO usage (one, minute_start, minute_count, hour_start, hour_count) VALUES (1, ?, ?, ?, ?) " +
          "ON CONFLICT (one) DO UPDATE SET minute_start = excluded.minute_start, minute_count = excluded.minute_count, " +
          "hour_start = excluded.hour_start, hour_count = excluded.hour_count",
        windows.minuteStart,
        windows.minuteCount,
        windows.hourStart,
        windows.hourCount,
      );
    }
    return decision;
  }
}

function toRecord(row: CredentialRow): KeyRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    role: row.role as KeyRecord["role"],
    name: row.name,
    limits: row.limits ? (JSON.parse(row.limits) as Limits) : null,
    createdAt: row.created_at,
  };
}
