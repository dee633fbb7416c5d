/**
 * Applies a Durable Object's storage migrations in order, each exactly once,
 * recording them in `_migrations`. Called from the constructor under
 * `blockConcurrencyWhile`, so no request sees a half-migrated schema.
 */
export function migrate(storage: DurableObjectStorage, migrations: { name: string; sql: string }[]): void {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const applied = new Set(
    sql
      .exec<{ name: string }>("SELECT name FROM _migrations")
      .toArray()
      .map((r) => r.name),
  );
  for (const m of migrations) {
    if (applied.has(m.name)) continue;
    storage.transactionSync(() => {
      sql.exec(m.sql);
      sql.exec("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", m.name, Date.now());
    });
  }
}
