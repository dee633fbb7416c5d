import type { SettingsPatchInput } from "../../schema/api";
import { SHARD_HISTORY_MS, type QueueSettings } from "../../schema/shard";
import { check } from "./errors";

/** Applies a settings patch; the shard count may only grow, since task ids name their shard. */
export function applyPatch(current: QueueSettings, patch: SettingsPatchInput & { paused?: boolean }, now = Date.now()): QueueSettings {
  check(
    patch.shards === undefined || patch.shards >= current.shards,
    "invalid_state",
    `The queue has ${current.shards} shards; the count may only grow, so ask for ${current.shards} or more.`,
  );
  const { groupLimits, ...rest } = patch;
  const groups = current.groupLimits;
  // A Map, not an object: group keys are user strings ("__proto__" must be a group like any other).
  const overrides = new Map(Object.entries(groups.overrides));
  for (const [key, limits] of Object.entries(groupLimits?.overrides ?? {})) {
    if (limits === null) overrides.delete(key);
    else overrides.set(key, limits);
  }
  const next: QueueSettings = {
    ...current,
    ...rest,
    version: current.version + 1,
    defaults: { ...current.defaults, ...patch.defaults },
    groupLimits: {
      default: groupLimits?.default === undefined ? groups.default : groupLimits.default,
      overrides: Object.fromEntries(overrides),
    },
    // Keys claimed before a growth keep their old home: remember the old count (30 days: the longest window).
    shardHistory: [
      ...current.shardHistory.filter((h) => h.until > now - SHARD_HISTORY_MS),
      ...(patch.shards !== undefined && patch.shards > current.shards ? [{ shards: current.shards, until: now }] : []),
    ],
  };
  // A queue-wide limit is split over the shards (docs/ARCHITECTURE.md, Flow control): each needs a part of at least 1.
  const { shards } = next;
  check(
    next.concurrency == null || next.concurrency >= shards,
    "invalid_state",
    `A concurrency cap of ${next.concurrency} cannot be split over ${shards} shards; use a cap of at least ${shards}.`,
  );
  check(
    next.startLimit == null || next.startLimit.count >= shards,
    "invalid_state",
    `A start limit of ${next.startLimit?.count} cannot be split over ${shards} shards; allow at least ${shards} starts per interval.`,
  );
  // A key must not outlive its task: past retention the task is gone from the shard, and a replay would make a second one.
  const touched = patch.idempotencyWindowMs !== undefined || patch.retentionDays !== undefined;
  check(
    !touched || next.idempotencyWindowMs <= next.retentionDays * 86_400_000,
    "invalid_state",
    `An idempotency window of ${next.idempotencyWindowMs} ms is longer than the retention of ${next.retentionDays} days; shorten the window or keep tasks longer.`,
  );
  return next;
}
