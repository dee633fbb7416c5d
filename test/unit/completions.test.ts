import { describe, expect, it } from "vitest";
import { CompletionBatcher } from "../../client/completions";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The SDK Worker's completion batching: successes within flushMs go out as one call; close drains them.
describe("completion batches", () => {
  it("sends the completions added within flushMs as one batch, and the next ones as another", async () => {
    const sent: number[][] = [];
    const batcher = new CompletionBatcher<number>(async (items) => void sent.push(items), 20);
    batcher.add(1);
    batcher.add(2);
    batcher.add(3);
    expect(sent).toEqual([]);
    await sleep(60);
    expect(sent).toEqual([[1, 2, 3]]);
    batcher.add(4);
    await sleep(60);
    expect(sent).toEqual([[1, 2, 3], [4]]);
  });

  it("drain sends what waits at once and resolves only when every batch has been answered", async () => {
    const answered: number[][] = [];
    const batcher = new CompletionBatcher<number>(async (items) => {
      await sleep(30);
      answered.push(items);
    }, 10_000);
    batcher.add(1);
    void batcher.flush(); // a batch on its way
    batcher.add(2);
    await batcher.drain();
    expect(answered).toEqual([[1], [2]]);
    await batcher.drain(); // nothing waits: no empty batch
    expect(answered).toEqual([[1], [2]]);
  });
});
