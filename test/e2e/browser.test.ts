import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, normalize } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, launchChromium, LocalStack } from "./stack";

/**
 * The SDK in a real browser (Debian's Chromium; .ci/run installs it): a page on
 * another origin loads the built SDK and follows a task over the live socket,
 * with the browser's own fetch and WebSocket.
 */

/** The page: loads the SDK as a module, as an app would, and hands the client class to the test. */
const HTML =
  '<!doctype html><link rel="icon" href="data:,"><title>edgeq</title><script type="module">import { EdgeqClient } from "/index.js"; window.EdgeqClient = EdgeqClient;</script>';
let page: Server;
let pageUrl = "";
let stack: LocalStack;
let browser: Browser;

beforeAll(async () => {
  const port = await freePort();
  pageUrl = `http://127.0.0.1:${port}`;
  // The page's origin: an empty page and the built SDK (dist/, as `npm run build` leaves it).
  page = createServer((req, res) => {
    const path = normalize(new URL(req.url ?? "/", pageUrl).pathname);
    if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(HTML);
    const file = join("dist", path);
    if (!file.startsWith("dist/") || !existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(file));
  }).listen(port, "127.0.0.1");
  stack = new LocalStack({ EDGEQ_CORS_ORIGINS: pageUrl });
  await stack.start();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  page?.close();
});

describe("the SDK in a browser", () => {
  it("live: a snapshot, the task's pending → running → completed, and task(id).events(); the socket URL carries a live token, never the key", async () => {
    const tab = await browser.newPage();
    const sockets: string[] = [];
    tab.on("websocket", (ws) => sockets.push(ws.url()));
    await tab.goto(pageUrl);
    await tab.waitForFunction(() => "EdgeqClient" in globalThis);
    const out = await tab.evaluate(
      async ({ url, token }) => {
        const edgeq = new (globalThis as unknown as { EdgeqClient: typeof import("../../client/index").EdgeqClient }).EdgeqClient({
          url,
          token,
        });
        const stop = new AbortController();
        const heard: string[] = [];
        const stream = (async () => {
          for await (const m of edgeq.live({ queue: "browser", signal: stop.signal })) {
            heard.push(m.type === "task" ? m.task.status : m.type);
            if (m.type === "task" && m.task.status === "completed") stop.abort();
          }
        })();
        await new Promise((r) => setTimeout(r, 300));
        const task = await edgeq.queue("browser").add("hello", { n: 1 });
        const events = (async () => {
          const seen: string[] = [];
          for await (const e of edgeq.task(task.id).events()) seen.push(e.status);
          return seen;
        })();
        await new Promise((r) => setTimeout(r, 200));
        const { leases } = await edgeq.call<{ leases: { leaseToken: string }[] }>("POST", "/queues/browser/leases", {
          workerId: "w",
          max: 1,
        });
        await edgeq.call("POST", `/tasks/${task.id}/complete`, { leaseToken: leases[0].leaseToken });
        await stream;
        return { heard, events: await events };
      },
      { url: stack.url, token: stack.token },
    );
    expect(out.heard[0]).toBe("snapshot");
    expect(out.heard).toContain("pending");
    expect(out.heard.at(-1)).toBe("completed");
    expect(out.events).toEqual(["pending", "running", "completed"]);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    for (const s of sockets) {
      expect(s).toMatch(/[?&]token=/);
      expect(s).not.toContain(stack.token);
    }
    await tab.close();
  }, 60_000);
});
