import { describe, expect, it } from "vitest";
import { EdgeqError } from "../../client/errors";
import { request } from "../../client/http";

// The SDK's retry policy, with a scripted fetch: which answers are retried, how long it waits.
function scripted(answers: (Response | Error)[]) {
  const calls: { url: string; init: RequestInit; at: number }[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    calls.push({ url, init, at: Date.now() });
    const next = answers.shift();
    if (!next) throw new Error("no more answers");
    if (next instanceof Error) throw next;
    return next;
  }) as unknown as typeof globalThis.fetch;
  return { calls, fetch };
}

const problem = (status: number, code = "x") =>
  new Response(JSON.stringify({ type: `urn:edgeq:error:${code}`, title: "T", status, detail: "D" }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });

describe("client/http request", () => {
  it("retries network errors and 502–504, then returns the body", async () => {
    const { calls, fetch } = scripted([new TypeError("fetch failed"), problem(503), problem(502), new Response('{"ok":1}')]);
    const body = await request<{ ok: number }>({ url: "http://h/", token: "t", fetch }, "POST", "/api/v1/x", { a: 1 });
    expect(body).toEqual({ ok: 1 });
    expect(calls).toHaveLength(4);
    expect(calls[0].url).toBe("http://h/api/v1/x");
    expect(calls[0].init.headers).toMatchObject({ authorization: "Bearer t", "content-type": "application/json" });
    expect(calls[0].init.body).toBe('{"a":1}');
  });

  it("waits as long as a 429's Retry-After says", async () => {
    const limited = new Response("{}", { status: 429, headers: { "retry-after": "1" } });
    const { calls, fetch } = scripted([limited, new Response(null, { status: 204 })]);
    expect(await request({ url: "http://h", token: "t", fetch }, "DELETE", "/x")).toBeUndefined();
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(990);
  });

  it("a 429 that says to wait over a minute (an hourly limit spent) is answered with the error, not waited out", async () => {
    const limited = new Response(JSON.stringify({ type: "urn:edgeq:error:rate_limited", title: "T", status: 429, detail: "D" }), {
      status: 429,
      headers: { "retry-after": "3600" },
    });
    const { calls, fetch } = scripted([limited, new Response("{}")]);
    const started = Date.now();
    const error = await request({ url: "http://h", token: "t", fetch }, "GET", "/x").catch((e) => e);
    expect(error).toMatchObject({ status: 429, code: "rate_limited" });
    expect(calls).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it("an abort during the wait before a retry ends the call at once", async () => {
    const controller = new AbortController();
    const { calls, fetch } = scripted([new Response("{}", { status: 429, headers: { "retry-after": "30" } }), new Response("{}")]);
    const started = Date.now();
    setTimeout(() => controller.abort(new Error("page left")), 50);
    await expect(request({ url: "http://h", token: "t", fetch }, "GET", "/x", undefined, controller.signal)).rejects.toThrow("page left");
    expect(calls).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("does not retry a client error, and throws it as EdgeqError with its problem", async () => {
    const { calls, fetch } = scripted([problem(409, "stale_lease"), new Response("{}")]);
    const error = await request({ url: "http://h", token: "t", fetch }, "POST", "/x").catch((e) => e);
    expect(error).toBeInstanceOf(EdgeqError);
    expect(error).toMatchObject({ status: 409, code: "stale_lease", problem: { detail: "D" } });
    expect(calls).toHaveLength(1);
  });

  it("gives up after `retries`, with the last answer; a non-JSON error body still becomes a problem", async () => {
    const { calls, fetch } = scripted([problem(503), new Response("upstream down", { status: 504, statusText: "Gateway Timeout" })]);
    const error = await request({ url: "http://h", token: "t", fetch, retries: 1 }, "GET", "/x").catch((e) => e);
    expect(calls).toHaveLength(2);
    expect(error).toMatchObject({ status: 504, problem: { title: "Gateway Timeout", detail: "upstream down" } });
  });

  it("an aborted signal stops retrying at once", async () => {
    const controller = new AbortController();
    controller.abort();
    const { calls, fetch } = scripted([new DOMException("aborted", "AbortError"), new Response("{}")]);
    await expect(request({ url: "http://h", token: "t", fetch }, "GET", "/x", undefined, controller.signal)).rejects.toThrow("aborted");
    expect(calls).toHaveLength(1);
  });
});

describe("EdgeqError", () => {
  it("says the title once, also when the detail already opens with it", () => {
    const base = { type: "urn:edgeq:error:validation_failed", status: 400 };
    expect(new EdgeqError({ ...base, title: "Bad", detail: "Bad: {queue}: too long" }).message).toBe("Bad: {queue}: too long");
    expect(new EdgeqError({ ...base, title: "Bad", detail: "{queue}: too long" }).message).toBe("Bad: {queue}: too long");
    expect(new EdgeqError({ ...base, title: "Bad", detail: "{queue}: too long" }).code).toBe("validation_failed");
  });
});
