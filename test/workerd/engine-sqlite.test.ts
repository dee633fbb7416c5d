import { env } from "cloudflare:test";
import { runInDurableObject } from "cloudflare:test";
import { SqlStore } from "../../durable/sql-store";
import { engineSuite } from "../suites/engine-suite";
import { makeHarness } from "../suites/harness";

// The same contract as the unit project, on a real Durable Object's SQLite storage.
engineSuite("durable object sqlite", async (body, options) => {
  const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`engine-${crypto.randomUUID()}`));
  await runInDurableObject(stub, (_instance, state) => {
    body(makeHarness(new SqlStore(state.storage), options?.seed, options?.settings));
  });
});
