import { defineConfig } from "drizzle-kit";

/**
 * drizzle-kit for one Durable Object's tables at a time (DRIZZLE_OBJECT =
 * shard | registry | access): `npm run db:generate` writes, per object, the SQL
 * of what changed in `schema/<object>.ts` into `schema/migrations/<object>/kit`.
 * The applied history is the hand-written SQL beside it (drizzle-kit cannot
 * express WITHOUT ROWID): a generated step is reviewed, given WITHOUT ROWID
 * where a new table wants it, and listed in that folder's index.ts.
 */
const object = process.env.DRIZZLE_OBJECT ?? "shard";

export default defineConfig({
  dialect: "sqlite",
  schema: `./schema/${object}.ts`,
  out: process.env.DRIZZLE_OUT ?? `./schema/migrations/${object}/kit`,
});
