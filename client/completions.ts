/**
 * A worker's handler successes, gathered for `flushMs` and sent as one batch call, so a busy
 * worker completes many tasks per request. `send` reports its own failures (it never rejects).
 */
export class CompletionBatcher<T> {
  private pending: T[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** batches sent and not yet answered */
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly flushMs: number,
  ) {}

  /** Adds a completion; a batch goes out at most `flushMs` after the first one waiting. */
  add(item: T): void {
    this.pending.push(item);
    this.timer ??= setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.flushMs);
  }

  /** Sends what waits now, in one call. */
  flush(): Promise<void> {
    const items = this.pending;
    this.pending = [];
    if (items.length === 0) return Promise.resolve();
    const sent = this.send(items).finally(() => this.sending.delete(sent));
    this.sending.add(sent);
    return sent;
  }

  /** Sends what waits, at once, and resolves when every batch sent has been answered. */
  async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
    await Promise.all(this.sending);
  }
}
