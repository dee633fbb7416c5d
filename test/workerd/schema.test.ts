import { env, runInDurableObject } from "cloudflare:test";
import { Column, is, SQL } from "drizzle-orm";
import { getTableConfig, type SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { ACCESS_TABLES } from "../../schema/access";
import { HISTORY_TABLES } from "../../schema/history";
import { ANALYTICS_TABLES } from "../../schema/analytics";
import { BIN_LOWS } from "../../durable/core/bins";
import { REGISTRY_TABLES } from "../../schema/registry";
import { SHARD_TABLES } from "../../schema/shard";
import { accessKeyOf } from "../../worker/keys";
import { api, freshQueue, shardStub } from "./helpers";

type Query = (sql: string) => Promise<Record<string, unknown>[]> | Record<string, unknown>[];

/** A Durable Object's SQLite, read through the same function as D1. */
const storageQuery =
  (state: DurableObjectState): Query =>
  (sql) =>
    state.storage.sql.exec(sql).toArray();
const d1Query: Query = async (sql) => (await env.DB.prepare(sql).all()).results;

/** What the migrated database holds for one table: its columns (generated ones too) and its indexes' columns. */
async function actual(query: Query, table: string) {
  const columns = ((await query(`PRAGMA table_xinfo(${table})`)) as { name: string; notnull: number; pk: number }[])
    .map((c) => ({ name: c.name, notNull: c.notnull === 1 || c.pk > 0, pk: c.pk > 0 }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const indexes = [];
  for (const i of (await query(`PRAGMA index_list(${table})`)) as { name: string; origin: string }[]) {
    if (i.origin !== "c") continue; // made by CREATE INDEX, not by a primary key
    indexes.push({ name: i.name, columns: ((await query(`PRAGMA index_info(${i.name})`)) as { name: string }[]).map((c) => c.name) });
  }
  return { columns, indexes: indexes.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** The column an index key names: a column, or an expression such as `priority DESC` around one. */
const columnOf = (c: unknown): string => (is(c, SQL) ? (c.queryChunks.find((q) => is(q, Column)) as Column).name : (c as Column).name);

/** What drizzle declares for the same table. */
function declared(table: SQLiteTable) {
  const config = getTableConfig(table);
  const pkColumns = new Set(config.primaryKeys.flatMap((p) => p.columns.map((c) => c.name)));
  const columns = config.columns
    .map((c) => ({ name: c.name, notNull: c.notNull || c.primary || pkColumns.has(c.name), pk: c.primary || pkColumns.has(c.name) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const indexes = config.indexes
    .map((i) => ({ name: i.config.name, columns: i.config.columns.map(columnOf) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return { name: config.name, columns, indexes };
}

describe("drizzle tables are the migrated schema", () => {
  it("every shard table and index drizzle declares is exactly what the migrations made", async () => {
    const q = freshQueue("schema");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t" }); // the shard exists, migrated
    await runInDurableObject(shardStub(q), async (_i, state) => {
      for (const table of Object.values(SHARD_TABLES)) {
        const d = declared(table);
        expect(await actual(storageQuery(state), d.name), d.name).toEqual({ columns: d.columns, indexes: d.indexes });
      }
    });
  });

  it("so is every table of an API key's object", async () => {
    const made = await api("POST", "/api/v1/keys", { role: "producer", name: "schema" });
    await runInDurableObject(accessKeyOf(env, made.body.id), async (_i, state) => {
      for (const table of Object.values(ACCESS_TABLES)) {
        const d = declared(table);
        expect(await actual(storageQuery(state), d.name), d.name).toEqual({ columns: d.columns, indexes: d.indexes });
      }
    });
  });

  it("so is every table of a tenant's registry", async () => {
    await api("POST", `/api/v1/queues/${freshQueue("schema")}/tasks`, { name: "t" }); // the registry exists, migrated
    await runInDurableObject(env.QUEUE_REGISTRY.get(env.QUEUE_REGISTRY.idFromName("default")), async (_i, state) => {
      for (const table of Object.values(REGISTRY_TABLES)) {
        const d = declared(table);
        expect(await actual(storageQuery(state), d.name), d.name).toEqual({ columns: d.columns, indexes: d.indexes });
      }
    });
  });

  it("so is every D1 history table, and search has its FTS5 table", async () => {
    for (const table of Object.values(HISTORY_TABLES)) {
      const d = declared(table);
      expect(await actual(d1Query, d.name), d.name).toEqual({ columns: d.columns, indexes: d.indexes });
    }
    const fts = await env.DB.prepare("SELECT sql FROM sqlite_master WHERE name = 'task_text'").first<{ sql: string }>();
    expect(fts?.sql).toMatch(/USING fts5/i);
  });

  it("so is every analytics table, and D1's histogram bins are the ones the Worker reads percentiles with", async () => {
    for (const table of Object.values(ANALYTICS_TABLES)) {
      const d = declared(table);
      expect(await actual(d1Query, d.name), d.name).toEqual({ columns: d.columns, indexes: d.indexes });
    }
    const bins = (await env.DB.prepare("SELECT lo, bin FROM hist_bins ORDER BY lo").all<{ lo: number; bin: number }>()).results;
    expect(bins).toEqual(BIN_LOWS.map((lo, bin) => ({ lo, bin })));
  });
});
