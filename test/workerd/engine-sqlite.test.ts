import { env, runInDurableObject } from "cloudflare:test";
import { SqlStore } from "../../durable/sql-store";
import { engineSuite } from "../suites/engine-suite";
import { makeHarness, type WithHarness } from "../suites/harness";
import { propertySuite } from "../suites/property-suite";

// The same contract as the unit project, on a real Durable Object's SQLite storage.
const withSqlite: WithHarness = async (body, options) => {
  const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`engine-${crypto.randomUUID()}`));
  await runInDurableObject(stub, (_instance, state) => {
    body(makeHarness(new SqlStore(state.storage), options?.seed, options?.settings));
  });
};

engineSuite("durable object sqlite", withSqlite);
propertySuite("durable object sqlite", withSqlite, 40);
