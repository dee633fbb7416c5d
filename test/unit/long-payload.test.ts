import { describe, expect, it } from "vitest";
import { INLINE_PAYLOAD_MAX, longPayload } from "../../durable/task-rows";

// Which payloads leave the task's row: more than INLINE_PAYLOAD_MAX bytes of UTF-8, as SQLite stores them.
const bytes = (s: string) => new TextEncoder().encode(s).length;
const LETTERS = ["a", "é", "中", "😀"];

describe("longPayload", () => {
  it("is exact for text without surrogate pairs, at every length around the limit", () => {
    for (const letter of LETTERS.slice(0, 3)) {
      for (let n = 0; n <= INLINE_PAYLOAD_MAX + 2; n++) {
        const text = letter.repeat(n);
        expect(longPayload(text), `${n} × ${letter}`).toBe(bytes(text) > INLINE_PAYLOAD_MAX);
      }
    }
  });

  it("never keeps more than the limit in the row, whatever the text (pairs may go apart a little early)", () => {
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let k = 0; k < 2_000; k++) {
      let text = "";
      const n = Math.floor(random() * 600);
      for (let i = 0; i < n; i++) text += LETTERS[Math.floor(random() * LETTERS.length)];
      if (bytes(text) > INLINE_PAYLOAD_MAX) expect(longPayload(text), text).toBe(true);
      if (!/[\uD800-\uDFFF]/.test(text)) expect(longPayload(text), text).toBe(bytes(text) > INLINE_PAYLOAD_MAX);
    }
  });
});
