import { describe, expect, it } from "vitest";
import { EdgeqClient } from "../../client/index";
import { liveMessages, type WebSocketLike } from "../../client/live";

// The SDK's live stream over a scripted socket: what the hub sends in, what the iterator hands on.
function scriptedSocket(frames: unknown[]) {
  const sent: unknown[] = [];
  class Scripted implements WebSocketLike {
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: unknown) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    constructor(readonly url: string) {
      setTimeout(() => {
        for (const f of frames) this.onmessage?.({ data: JSON.stringify(f) });
        this.onclose?.({});
      }, 0);
    }
    send(data: string) {
      sent.push(JSON.parse(data));
    }
    close() {}
  }
  return { Scripted, sent };
}

const client = new EdgeqClient({
  url: "http://h",
  token: "t",
  fetch: (async () => new Response(JSON.stringify({ token: "live", expiresAt: "x" }), { status: 201 })) as unknown as typeof fetch,
});

describe("client live stream", () => {
  it("hands each task of a `tasks` frame on as a `task` message, in order, without asking for a snapshot", async () => {
    const { Scripted, sent } = scriptedSocket([
      { type: "snapshot", seq: 1, at: "t0", queues: [], rates: {}, workers: { active: 0 } },
      {
        type: "tasks",
        seq: 2,
        at: "t1",
        tasks: [
          { id: "a", queue: "q", status: "pending", at: "ta" },
          { id: "b", queue: "q", status: "running", at: "tb" },
        ],
      },
      { type: "task", seq: 3, at: "tc", task: { id: "a", queue: "q", status: "completed" } },
    ]);
    const seen = [];
    for await (const m of liveMessages(client, { queue: "q", WebSocket: Scripted, reconnect: false })) seen.push(m);
    expect(seen).toEqual([
      { type: "snapshot", seq: 1, at: "t0", queues: [], rates: {}, workers: { active: 0 } },
      { type: "task", seq: 2, at: "ta", task: { id: "a", queue: "q", status: "pending" } },
      { type: "task", seq: 2, at: "tb", task: { id: "b", queue: "q", status: "running" } },
      { type: "task", seq: 3, at: "tc", task: { id: "a", queue: "q", status: "completed" } },
    ]);
    expect(sent).toEqual([]); // no gap seen, so no snapshot asked for
  });

  it("a gap in seq asks for a fresh snapshot", async () => {
    const { Scripted, sent } = scriptedSocket([
      { type: "snapshot", seq: 1, at: "t0", queues: [], rates: {}, workers: { active: 0 } },
      { type: "task", seq: 3, at: "t1", task: { id: "a", queue: "q", status: "pending" } },
    ]);
    for await (const _ of liveMessages(client, { WebSocket: Scripted, reconnect: false }));
    expect(sent).toEqual([{ type: "snapshot" }]);
  });
});
