/**
 * The batch calls a worker makes about the leases it holds (complete, fail,
 * heartbeat, release): split per shard, each shard's part over its consumer
 * socket where one is open (granting that socket's credit in the same frame),
 * else over HTTP; a socket that closes before answering is asked again over
 * HTTP (the calls are idempotent for the same token).
 */
import { SocketClosed, type ShardSocket } from "./consumer-socket";
import { EdgeqError } from "./errors";
import type { EdgeqClient } from "./index";
import type { ShardSockets } from "./shard-sockets";
import type { BatchResults } from "./types";

export type LeaseCallKind = "complete" | "fail" | "heartbeat" | "release";

type Result = BatchResults["results"][number];

/** Items per batch request at most, and characters (frames and bodies stay well under the server's limits). */
const PART_ITEMS = 500;
const PART_CHARS = 512 * 1024;

/** Splits a batch (its item numbers) into requests of at most PART_ITEMS items and about PART_CHARS characters. */
function parts(at: number[], item: (i: number) => unknown): number[][] {
  const out: number[][] = [];
  let size = 0;
  for (const i of at) {
    const chars = JSON.stringify(item(i)).length;
    const last = out.at(-1);
    if (!last || last.length >= PART_ITEMS || size + chars > PART_CHARS) {
      out.push([i]);
      size = chars;
    } else {
      last.push(i);
      size += chars;
    }
  }
  return out;
}

/** An item's result when its request failed: the API's problem, or the network's. */
function failedItem(id: string, e: unknown): Result {
  const problem =
    e instanceof EdgeqError
      ? e.problem
      : { type: "urn:edgeq:error:network", title: "Network error", status: 0, detail: e instanceof Error ? e.message : String(e) };
  return { id, ok: false, problem };
}

// leaseCall: the client, the worker's sockets (null: HTTP only), what to do, the items.
// output: a result per item, in item order; the tasks completed, failed or released are let go of by the sockets.
// errors: a heartbeat part that fails throws (it says nothing about the leases); any other failed part fails only its own items.
export async function leaseCall<T extends { id: string }>(
  client: EdgeqClient,
  sockets: ShardSockets | null,
  kind: LeaseCallKind,
  items: T[],
): Promise<Result[]> {
  const failed = (id: string, e: unknown): Result => {
    if (kind === "heartbeat") throw e;
    return failedItem(id, e);
  };
  const results = new Array<Result>(items.length);
  const groups = new Map<ShardSocket | null, number[]>();
  items.forEach((item, i) => {
    const key = sockets?.socketOf(item.id) ?? null;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  await Promise.all(
    [...groups].map(async ([socket, at]) => {
      for (const part of parts(at, (i) => items[i])) {
        const body = part.map((i) => items[i]);
        let out: Result[] | null = null;
        if (socket) {
          try {
            out = await socket.request<Result>(kind, body, kind === "heartbeat" ? 0 : sockets!.creditFor(socket));
          } catch (e) {
            if (!(e instanceof SocketClosed)) out = body.map((item) => failed(item.id, e)); // refused whole (e.g. a result too large)
          }
        }
        try {
          out ??= (await client.call<BatchResults>("POST", `/leases/${kind}`, { items: body })).results;
        } catch (e) {
          out = body.map((item) => failed(item.id, e)); // this part only: the others stand
        }
        out.forEach((r, j) => (results[part[j]] = r));
      }
    }),
  );
  if (kind !== "heartbeat") for (const item of items) sockets?.forget(item.id);
  return results;
}
