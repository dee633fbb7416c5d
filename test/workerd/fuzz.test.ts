import { describe, expect, it } from "vitest";
import { fuzzApi } from "../suites/fuzz";
import { ADMIN_TOKEN, api, freshQueue } from "./helpers";

describe("fuzz", () => {
  it(
    "10,000+ generated and hostile requests: no 5xx, every error problem+json, refused lease calls change nothing",
    { timeout: 600_000 },
    async () => {
      const sent = await fuzzApi((method, path, body, headers) => api(method, path, body, headers), {
        token: ADMIN_TOKEN,
        total: 10_000,
        queue: freshQueue("fuzz"),
      });
      expect(sent).toBeGreaterThanOrEqual(10_000);
    },
  );
});
