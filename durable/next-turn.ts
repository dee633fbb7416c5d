/**
 * Work held for the next turn of the event loop and run there all at once, in the order it came.
 * workerd commits a turn's writes together, so what runs in one turn shares one commit (one write
 * to disk) instead of one each; each piece keeps its own transaction and its own outcome. Whoever
 * comes before that turn calls `runNow` first, so everything still runs in the order it arrived.
 * The shard holds consumer frames here while more than one consumer socket is open.
 */
export class NextTurn {
  private held: (() => void)[] = [];

  get empty(): boolean {
    return this.held.length === 0;
  }

  /** Runs `run` at the next turn (`setTimeout(0)`, ~40 µs in workerd), with all that is held meanwhile; settles as it does. */
  hold(run: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.held.push(() => {
        try {
          run();
          resolve();
        } catch (e) {
          reject(e);
        }
      });
      if (this.held.length === 1) setTimeout(() => this.runNow(), 0);
    });
  }

  /** Runs what is held, now. */
  runNow(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const run of held) run();
  }
}
