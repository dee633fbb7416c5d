/**
 * A worker's heartbeat timer: a beat after a delay, then one every `every()` while `again()`;
 * brought forward when `every()` has become sooner than the beat planned (a shorter lease came).
 */
export interface HeartbeatPlan {
  /** how long until the next beat should be, ms */
  every(): number;
  beat(): Promise<void>;
  /** whether to plan another beat after this one */
  again(): boolean;
  error(e: Error): void;
}

export class HeartbeatTimer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private nextAt = Infinity;

  constructor(private readonly plan: HeartbeatPlan) {}

  /** The next beat in `ms`, in place of the one planned. */
  schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.nextAt = Infinity;
      void this.plan
        .beat()
        .catch((e) => this.plan.error(e as Error))
        .finally(() => {
          if (this.plan.again()) this.schedule(this.plan.every());
        });
    }, ms);
  }

  /** A beat sooner than the one planned, when `every()` asks for it. */
  soonEnough(): void {
    const due = this.plan.every();
    if (Date.now() + due < this.nextAt) this.schedule(due);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
