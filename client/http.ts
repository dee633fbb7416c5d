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

/** JSON over HTTP with retries of transient failures (exponential backoff with jitter, Retry-After honoured). */
export async function request<T>(options: ClientOptions, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await send(options, method, path, body, signal);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** The same, answering the successful response itself (its body unread: a stream). */
export async function send(options: ClientOptions, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const attempts = (options.retries ?? 5) + 1;
  const doFetch = options.fetch ?? fetch;
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await doFetch(`${options.url.replace(/\/$/, "")}${path}`, {
        method,
        headers: { authorization: `Bearer ${options.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (attempt >= attempts || signal?.aborted) throw e;
      await pause(backoff(attempt), signal);
      continue;
    }
    if (res.ok) return res;
    const text = await res.text();
    const retryAfter = Number(res.headers.get("retry-after"));
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

function backoff(attempt: number): number {
  return Math.random() * Math.min(5000, 100 * 2 ** attempt);
}
