import init from "./0001_init.sql";

/** AccessKey storage migrations, applied in order, each once (see durable/migrate.ts). */
export const ACCESS_MIGRATIONS: { name: string; sql: string }[] = [{ name: "0001_init", sql: init }];
