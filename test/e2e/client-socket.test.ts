import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
// @ts-expect-error: `ws` ships no types; this file uses the few members typed below
import { WebSocket as WsSocket, WebSocketServer as WsServer } from "ws";
import { EdgeqClient } from "../../client/index";
import { ShardSocket } from "../../client/consumer-socket";
import type { WebSocketConstructor } from "../../client/live";

const WebSocketServer = WsServer as new (options: object) => {
  on(event: "connection", listener: (ws: { close(code: number, reason: string): void }, req: IncomingMessage) => void): void;
  close(done: () => void): void;
};
const WebSocket = WsSocket as new (url: string) => { on(event: "close", listener: () => void): void };

// A consumer socket's opening handshake, seen by a real `ws` server on loopback that would deflate frames if asked.
async function server() {
  const offered: (string | undefined)[] = [];
  const http = createServer((_req, res) => {
    res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ token: "consume", expiresAt: "x" }));
  });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: true });
  wss.on("connection", (ws, req) => {
    offered.push(req.headers["sec-websocket-extensions"]);
    ws.close(1000, "seen");
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return { url, offered, close: () => new Promise((resolve) => wss.close(() => http.close(resolve))) };
}

describe("consumer sockets", () => {
  it("do not offer permessage-deflate through `ws` (plain `ws` does)", async () => {
    const s = await server();
    try {
      const socket = new ShardSocket(0, { leases: () => {}, closed: () => {}, error: () => {} });
      await socket.connect(new EdgeqClient({ url: s.url, token: "t" }), "q", "w1", WsSocket as WebSocketConstructor);
      const plain = new WebSocket(`${s.url.replace("http", "ws")}/plain`);
      await new Promise<void>((resolve) => plain.on("close", () => resolve()));
      expect(s.offered).toHaveLength(2);
      expect(s.offered[0]).toBeUndefined();
      expect(s.offered[1]).toMatch(/permessage-deflate/);
    } finally {
      await s.close();
    }
  });
});
