import { chunksBySize } from "./core/chunks";

/**
 * The rows of a JSON array bound as a statement parameter, as a table `r(k, v)` for statements
 * (D1's and the shard's) that take a whole batch in one parameter: `k` is the element's index,
 * `v` its JSON text.
 *
 * MATERIALIZED renders each element once. Read straight from `json_each`, `value` is rendered
 * again at every reference, so a statement reading 30 columns of a row with `value ->> i` rendered
 * and parsed the row 30 times; from `r`, SQLite parses `v` once and finds it in its JSON cache for
 * the other 29 (inserting 500 rows of 30 columns: ~11 ms of SQL to ~4 ms on the local stack).
 */
export const jsonRows = (param: string) => `WITH r(k, v) AS MATERIALIZED (SELECT key, value FROM json_each(${param}))`;

/** Characters of row JSON per parameter: DO SQLite and D1 take values up to 2,000,000 bytes, and a character is at most 3 bytes of UTF-8. */
const PARAM_MAX = 600 * 1024;

/** JSON arrays of at most PARAM_MAX characters each, holding every item (JSON text) once, with how many each holds. */
export const jsonArrays = (items: string[]) =>
  chunksBySize(items, (t) => t.length + 1, PARAM_MAX).map((part) => ({ json: `[${part.join(",")}]`, count: part.length }));
