import { defineConfig } from "drizzle-kit";

/**
 * drizzle-kit for one database's tables at a time (DRIZZLE_OBJECT =
 * d1 | shard | registry | access): `npm run db:generate` writes the SQL of what
 * changed in the schema file.
 *
 * - d1 (`schema/history.ts`): straight into `schema/migrations/d1`, the folder
 *   wrangler applies (`npm start` and the tests apply it on their own). A new
 *   table that wants `WITHOUT ROWID` gets it in the generated file by hand.
 * - Durable Objects: into `schema/migrations/<object>/kit`; the applied history
 *   is the hand-written SQL beside it (drizzle-kit cannot express WITHOUT
 *   ROWID): a generated step is reviewed, given WITHOUT ROWID where a new table
 *   wants it, and listed in that folder's index.ts.
 */
const object = process.env.DRIZZLE_OBJECT ?? "shard";
const d1 = object === "d1";

export default defineConfig({
  dialect: "sqlite",
  schema: d1 ? ["./schema/history.ts", "./schema/analytics.ts"] : `./schema/${object}.ts`,
  out: process.env.DRIZZLE_OUT ?? (d1 ? "./schema/migrations/d1" : `./schema/migrations/${object}/kit`),
});
