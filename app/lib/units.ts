/** Numbers as the dashboard's tables show them (pure). */

/** A share 0–1 as a percentage; null (nothing to divide by) as a dash. */
export const percent = (r: number | null | undefined, digits = 1): string => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(digits)} %`);

/** A duration in ms in the unit a person reads it in. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(ms < 600_000 ? 1 : 0)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** A rate per second, to one decimal (or more when small). */
export const perSecond = (n: number): string => `${n >= 10 ? n.toFixed(0) : n >= 0.1 ? n.toFixed(1) : n === 0 ? "0" : n.toFixed(2)}/s`;
