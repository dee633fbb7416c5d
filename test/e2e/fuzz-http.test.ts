import { afterAll, beforeAll, expect, it } from "vitest";
import { fuzzApi } from "../suites/fuzz";
import { fresh, LocalStack } from "./stack";

/** The fuzz suite again, over real HTTP through `wrangler dev` (its proxy, real sockets, real body limits). */
const stack = new LocalStack();
beforeAll(() => stack.start(), 120_000);
afterAll(() => stack.dispose());

it("2,000+ generated and hostile requests over HTTP: no 5xx, every error problem+json", { timeout: 300_000 }, async () => {
  const sent = await fuzzApi(
    async (method, path, body, headers = {}) => {
      const res = await fetch(`${stack.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${stack.token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON: checked as such */
      }
      return { status: res.status, headers: res.headers, body: json };
    },
    { token: stack.token, total: 2_000, queue: fresh("fuzz") },
  );
  expect(sent).toBeGreaterThanOrEqual(2_000);
});
