import { EdgeqError } from "./errors";
import type { Problem } from "./types";

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:8787` */
  url: string;
  /** an API key, a JWT or the admin token */
  token: string;
  /** tries for a request that failed transiently (network, 429, 502–504); default 5 */
  retries?: number;
  fetch?: typeof fetch;
}

const TRANSIENT = new Set([429, 502, 503, 504]);
/** A Retry-After longer than this (e.g. an hourly rate limit spent) is answered with the error, not waited out. */
const WAIT_MAX_MS = 60_000;

/** Waits `ms`, or rejects as soon as `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    };
    const abort = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort);
  });
}

/** What the retry policy needs of one HTTP exchange's answer, whichever client made it. */
interface Answer {
  /** a 3xx with a Location: the caller follows it */
  redirect?: boolean;
  status: number;
  statusText: string;
  retryAfter: string | null;
  text(): Promise<string>;
}

/**
 * JSON over HTTP with retries of transient failures (exponential backoff with jitter, Retry-After
 * honoured). On Node, without a `fetch` of the caller's, over node:http with kept-alive
 * connections: Node's `fetch` costs about a millisecond more per call (bench:idle's
 * hello-world rows), which is most of what separates an SDK call from a raw one when idle.
 */
export async function request<T>(options: ClientOptions, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const node = options.fetch ? null : await nodeExchange();
  if (!node) {
    const res = await send(options, method, path, body, signal);
    return (res.status === 204 ? undefined : await res.json()) as T;
  }
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const res = await retrying(options, signal, () => node(urlOf(options, path), method, headersOf(options, body), payload, signal));
  if (res.status >= 300) {
    // A redirect (a proxy in front of the API): `fetch` follows it as browsers do; this path does not.
    const followed = await send(options, method, path, body, signal);
    return (followed.status === 204 ? undefined : await followed.json()) as T;
  }
  const text = await res.text();
  return (res.status === 204 ? undefined : JSON.parse(text)) as T;
}

/** The same over `fetch`, answering the successful response itself (its body unread: a stream). */
export async function send(options: ClientOptions, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  const answer = await retrying(options, signal, async () => {
    const response = await doFetch(urlOf(options, path), {
      method,
      headers: headersOf(options, body),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    return {
      response,
      status: response.status,
      statusText: response.statusText,
      retryAfter: response.headers.get("retry-after"),
      text: () => response.text(),
    };
  });
  return answer.response;
}

const urlOf = (options: ClientOptions, path: string) => `${options.url.replace(/\/$/, "")}${path}`;
const headersOf = (options: ClientOptions, body: unknown): Record<string, string> => ({
  authorization: `Bearer ${options.token}`,
  ...(body === undefined ? {} : { "content-type": "application/json" }),
});

/** Runs `once` until it answers 2xx, retrying what is transient; anything else is thrown as an EdgeqError. */
async function retrying<A extends Answer>(options: ClientOptions, signal: AbortSignal | undefined, once: () => Promise<A>): Promise<A> {
  const attempts = (options.retries ?? 5) + 1;
  for (let attempt = 1; ; attempt++) {
    let res: A;
    try {
      res = await once();
    } catch (e) {
      if (attempt >= attempts || signal?.aborted) throw e;
      await pause(backoff(attempt), signal);
      continue;
    }
    if ((res.status >= 200 && res.status < 300) || (res.redirect && res.status >= 300 && res.status < 400)) return res;
    const text = await res.text();
    const retryAfter = Number(res.retryAfter);
    const wait = retryAfter > 0 ? retryAfter * 1000 : backoff(attempt);
    if (TRANSIENT.has(res.status) && attempt < attempts && wait <= WAIT_MAX_MS) {
      await pause(wait, signal);
      continue;
    }
    let problem: Problem;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = { type: "urn:edgeq:error:http", title: res.statusText, status: res.status, detail: text.slice(0, 500) };
    }
    throw new EdgeqError(problem);
  }
}

/** What is used of node:http and node:https (typed here: the SDK is also checked without Node's types). */
interface NodeHttp {
  Agent: new (options: { keepAlive: boolean; timeout: number }) => unknown;
  request(
    url: URL,
    options: object,
    callback: (res: NodeResponse) => void,
  ): { on(event: "error", f: (e: unknown) => void): void; end(body?: Uint8Array): void; destroy(error: Error): void };
}
interface NodeResponse {
  statusCode?: number;
  statusMessage?: string;
  headers: Record<string, string | string[] | undefined>;
  on(event: "data" | "end" | "error", f: (value?: unknown) => void): void;
}

type Exchange = (
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal?: AbortSignal,
) => Promise<Answer>;
let nodeClient: Promise<Exchange | null> | undefined;
/** The longest a call over node:http waits for its whole answer (undici's own limit for `fetch`). */
const ANSWER_MS = 300_000;

/** An exchange over node:http / node:https with kept-alive connections, on Node only (null elsewhere: Bun's and Deno's `fetch` are fast). */
function nodeExchange(): Promise<Exchange | null> {
  nodeClient ??= (async () => {
    const runtime = (globalThis as { process?: { versions?: Record<string, string | undefined> } }).process?.versions;
    if (!runtime?.node || runtime.bun || "Deno" in globalThis) return null;
    // Named at run time, so no bundler for the browser tries to resolve them.
    const [http, https] = (await Promise.all(["node:http", "node:https"].map((name) => import(name)))) as [NodeHttp, NodeHttp];
    // An idle connection is closed after 4 s, as undici does, before a server or proxy that closes idle ones
    // without saying so can close it under the next call. (The agent's timeout ends only idle sockets.)
    const keep = { keepAlive: true, timeout: 4_000 };
    const agents = { "http:": new http.Agent(keep), "https:": new https.Agent(keep) };
    const exchange: Exchange = (url, method, headers, body, signal) =>
      new Promise<Answer>((resolve, reject) => {
        // A failure is told as `fetch` tells it: the abort's reason, or TypeError "fetch failed" with the cause attached.
        const fail = (e: unknown) => {
          clearTimeout(timer);
          reject(signal?.aborted ? signal.reason : new TypeError("fetch failed", { cause: e }));
        };
        // No answer within ANSWER_MS (a server or a half-open connection that never answers) fails the call, as undici's timeouts do.
        const timer = setTimeout(() => req.destroy(new Error(`no answer within ${ANSWER_MS / 1000} s`)), ANSWER_MS);
        const target = new URL(url);
        const secure = target.protocol === "https:";
        const bytes = body === undefined ? undefined : new TextEncoder().encode(body);
        const req = (secure ? https : http).request(
          target,
          {
            method,
            headers: bytes ? { ...headers, "content-length": String(bytes.length) } : headers,
            agent: agents[secure ? "https:" : "http:"],
            signal,
          },
          (res) => {
            const chunks: Uint8Array[] = [];
            res.on("data", (chunk) => chunks.push(chunk as Uint8Array));
            res.on("error", fail);
            res.on("end", () => {
              clearTimeout(timer);
              const text = new TextDecoder().decode(concat(chunks));
              const retryAfter = res.headers["retry-after"];
              const status = res.statusCode ?? 0;
              resolve({
                redirect: status >= 300 && status < 400 && typeof res.headers.location === "string",
                status,
                statusText: res.statusMessage ?? "",
                retryAfter: typeof retryAfter === "string" ? retryAfter : null,
                text: async () => text,
              });
            });
          },
        );
        req.on("error", fail);
        req.end(bytes);
      });
    return exchange;
  })().catch(() => null);
  return nodeClient;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function backoff(attempt: number): number {
  return Math.random() * Math.min(5000, 100 * 2 ** attempt);
}
