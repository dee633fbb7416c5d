/**
 * Runs `run` now and every `ms` while the tab is visible (a hidden tab asks
 * nothing; it catches up when shown again). Returns the stop function, for an
 * `$effect` to return.
 */
export function everyVisible(ms: number, run: () => void): () => void {
  run();
  const timer = setInterval(() => {
    if (!document.hidden) run();
  }, ms);
  const shown = () => {
    if (!document.hidden) run();
  };
  document.addEventListener("visibilitychange", shown);
  return () => {
    clearInterval(timer);
    document.removeEventListener("visibilitychange", shown);
  };
}
