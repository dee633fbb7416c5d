import { createApp } from "./app";

export { QueueShard } from "../durable/queue-shard";
export { QueueRegistry } from "../durable/queue-registry";
export { AccessKey } from "../durable/access-key";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
