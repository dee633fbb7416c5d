import type { Backoff } from "../../schema/shard";

/**
 * Delay before retry number `attempt` (1 = the retry after the first run):
 * exponential growth capped at `maxMs`, with full jitter, so a burst of
 * failures does not come back as a burst of retries.
 */
export function backoffDelay(attempt: number, policy: Backoff, random: () => number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
