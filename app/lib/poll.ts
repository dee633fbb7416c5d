/**
 * Runs `run` now and every `ms` while the tab is visible (a hidden tab asks
 * nothing; it catches up when shown again). A tick is skipped while the last
 * one is still out, so a slow or rate-limited API is never asked twice at
 * once; the signal aborts what is out when the caller stops. Returns the stop
 * function, for an `$effect` to return.
 */
export function everyVisible(ms: number, run: (signal: AbortSignal) => Promise<unknown>): () => void {
  const stop = new AbortController();
  let out = false;
  const tick = () => {
    if (out || document.hidden || stop.signal.aborted) return;
    out = true;
    run(stop.signal)
      .catch(() => {}) // each page shows its own errors
      .finally(() => (out = false));
  };
  tick();
  const timer = setInterval(tick, ms);
  document.addEventListener("visibilitychange", tick);
  return () => {
    stop.abort();
    clearInterval(timer);
    document.removeEventListener("visibilitychange", tick);
  };
}
