import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * drizzle-kit's snapshot of each object's tables is current: generating again
 * from schema/<object>.ts writes nothing new. (The workerd project checks the
 * same tables against the migrated databases, so the three agree.)
 */
describe("drizzle-kit", () => {
  for (const object of ["d1", "shard", "registry", "access"]) {
    it(`has nothing to generate for the ${object} tables`, { timeout: 60_000 }, () => {
      const out = mkdtempSync(join(tmpdir(), `edgeq-kit-${object}-`));
      try {
        cpSync(object === "d1" ? "schema/migrations/d1" : `schema/migrations/${object}/kit`, out, { recursive: true });
        const before = readdirSync(out).sort();
        const said = execFileSync("node_modules/.bin/drizzle-kit", ["generate"], {
          env: { ...process.env, DRIZZLE_OBJECT: object, DRIZZLE_OUT: relative(process.cwd(), out) }, // it reads `out` as relative
          encoding: "utf8",
        });
        expect(said).toMatch(/No schema changes/);
        expect(readdirSync(out).sort()).toEqual(before);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }
});
