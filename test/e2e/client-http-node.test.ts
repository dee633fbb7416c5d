import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { EdgeqError } from "../../client/errors";
import { request } from "../../client/http";

// The SDK's HTTP on Node (node:http with kept-alive connections, when no `fetch` is given),
// against a real node:http server; the retry policy itself is in test/unit/client-http.test.ts.

/** A node:http server answering a script, one answer per request; records what it was sent. */
type Scripted = { status: number; body?: string; headers?: Record<string, string>; delayMs?: number; dropAfterHeaders?: boolean };
async function server(answers: Scripted[]) {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string; socket: number }[] = [];
  const sockets: unknown[] = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (!sockets.includes(req.socket)) sockets.push(req.socket);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, socket: sockets.indexOf(req.socket) });
      const next = answers.shift() ?? { status: 500 };
      setTimeout(() => {
        res.writeHead(next.status, { "content-type": "application/json", ...next.headers });
        if (next.dropAfterHeaders) {
          res.write('{"partial":');
          setTimeout(() => req.socket.destroy(), 20); // the connection drops mid-body
        } else res.end(next.body ?? "");
      }, next.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => srv.close(r)) };
}

describe("client/http request on Node (node:http, no fetch given)", () => {
  it("sends the credential and the JSON body, retries 503, keeps the connection, and parses the answer", async () => {
    const s = await server([{ status: 503, body: "{}" }, { status: 201, body: '{"id":"t1"}' }, { status: 204 }]);
    try {
      const body = await request<{ id: string }>({ url: s.url, token: "tok" }, "POST", "/api/v1/x", { a: "ü" });
      expect(body).toEqual({ id: "t1" });
      expect(await request({ url: s.url, token: "tok" }, "DELETE", "/api/v1/y")).toBeUndefined();
      expect(s.seen).toHaveLength(3);
      expect(s.seen[0]).toMatchObject({ method: "POST", url: "/api/v1/x", body: '{"a":"ü"}' });
      expect(s.seen[0].headers).toMatchObject({ authorization: "Bearer tok", "content-type": "application/json", "content-length": "10" });
      expect(s.seen[2].headers["content-type"]).toBeUndefined();
      expect(new Set(s.seen.map((r) => r.socket)).size).toBe(1); // one kept-alive connection
    } finally {
      await s.close();
    }
  });

  it("throws a client error as EdgeqError with its problem, and honours Retry-After", async () => {
    const problemBody = JSON.stringify({ type: "urn:edgeq:error:stale_lease", title: "T", status: 409, detail: "D" });
    const s = await server([
      { status: 429, body: "{}", headers: { "retry-after": "1" } },
      { status: 409, body: problemBody },
    ]);
    try {
      const started = Date.now();
      const error = await request({ url: s.url, token: "t" }, "POST", "/x", {}).catch((e) => e);
      expect(Date.now() - started).toBeGreaterThanOrEqual(990);
      expect(error).toBeInstanceOf(EdgeqError);
      expect(error).toMatchObject({ status: 409, code: "stale_lease" });
      expect(s.seen).toHaveLength(2);
    } finally {
      await s.close();
    }
  });

  it("a server that cannot be reached is told as fetch tells it (TypeError 'fetch failed', the cause attached), after the retries", async () => {
    const s = await server([]);
    await s.close(); // nothing listens on its port now
    const error = (await request({ url: s.url, token: "t", retries: 1 }, "GET", "/x").catch((e: unknown) => e)) as TypeError;
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe("fetch failed");
    expect(error.cause).toMatchObject({ code: "ECONNREFUSED" });
  });

  it("an abort while the answer is awaited rejects with the abort's reason at once, and is not retried", async () => {
    const s = await server([{ status: 200, body: "{}", delayMs: 1000 }]);
    try {
      const controller = new AbortController();
      const reason = new Error("page left");
      setTimeout(() => controller.abort(reason), 50);
      const started = Date.now();
      const error = await request({ url: s.url, token: "t" }, "GET", "/x", undefined, controller.signal).catch((e: unknown) => e);
      expect(error).toBe(reason);
      expect(Date.now() - started).toBeLessThan(500);
      expect(s.seen).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it("a connection dropped mid-answer fails as fetch fails (TypeError 'fetch failed'), and is retried", async () => {
    const s = await server([
      { status: 200, dropAfterHeaders: true },
      { status: 200, body: '{"ok":true}' },
    ]);
    try {
      expect(await request({ url: s.url, token: "t" }, "GET", "/x")).toEqual({ ok: true });
      expect(s.seen).toHaveLength(2);
      const once = await server([{ status: 200, dropAfterHeaders: true }]);
      const error = (await request({ url: once.url, token: "t", retries: 0 }, "GET", "/x").catch((e: unknown) => e)) as TypeError;
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe("fetch failed");
      await once.close();
    } finally {
      await s.close();
    }
  });

  it("follows a redirect as fetch does (a proxy in front of the API), keeping the method and body of a 307", async () => {
    const seen: string[] = [];
    const srv = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push(`${req.method} ${req.url} ${body}`);
        if (req.url === "/x") res.writeHead(307, { location: "/moved" }).end();
        else res.writeHead(201, { "content-type": "application/json" }).end('{"id":"t2"}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      expect(await request({ url, token: "t" }, "POST", "/x", { a: 1 })).toEqual({ id: "t2" });
      expect(seen.at(-1)).toBe('POST /moved {"a":1}');
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it("an aborted signal ends the call", async () => {
    const s = await server([{ status: 200, body: "{}" }]);
    try {
      const controller = new AbortController();
      controller.abort(new Error("left"));
      await expect(request({ url: s.url, token: "t" }, "GET", "/x", undefined, controller.signal)).rejects.toThrow();
    } finally {
      await s.close();
    }
  });
});
