import { readable } from "$lib/session";

/**
 * One question at a time to the API, answered by the newest: asking again
 * aborts the question before, and an answer that still arrives after a newer
 * question is dropped (a slow search never overwrites a quick one asked later).
 * `result`, `problem` (readable) and `loading` are reactive state.
 */
export class Latest<T> {
  result = $state<T | null>(null);
  problem = $state<string | null>(null);
  loading = $state(false);
  #asked = 0;
  #stop: AbortController | null = null;

  /** Asks `ask`; the promise settles when its answer is applied or dropped (it never rejects). */
  load(ask: (signal: AbortSignal) => Promise<T>): Promise<void> {
    this.#stop?.abort();
    const stop = (this.#stop = new AbortController());
    const mine = ++this.#asked;
    this.loading = true;
    this.problem = null;
    return ask(stop.signal)
      .then((r) => {
        if (mine === this.#asked) this.result = r;
      })
      .catch((e) => {
        if (mine !== this.#asked) return;
        this.result = null;
        this.problem = readable(e);
      })
      .finally(() => {
        if (mine === this.#asked) this.loading = false;
      });
  }

  /** Aborts the question out, if any (the page is left). */
  abort(): void {
    this.#stop?.abort();
  }
}
