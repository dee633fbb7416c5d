// Enqueues image jobs: a few urgent ones, a batch of ordinary ones, and one for later.
//   node examples/producer.mjs
import { EdgeqClient } from "edgeq/client";
import { config } from "./config.mjs";

const edgeq = new EdgeqClient(config);
const images = edgeq.queue("images");

const urgent = await images.add("thumbnail", { image: "hero.png", width: 320 }, { priority: 10 });
console.log(`urgent     ${urgent.id}`);

const batch = Array.from({ length: 20 }, (_, i) => ({
  name: "thumbnail",
  payload: { image: `photo-${i}.jpg`, width: 160 },
  priority: 5,
  maxAttempts: 3,
}));
const made = await images.addBulk(batch, { onProgress: (done, total) => console.log(`batch      ${done}/${total}`) });

const later = await images.add("cleanup", { older: "7d" }, { delayMs: 10_000, idempotencyKey: "cleanup-daily" });
console.log(`in 10 s    ${later.id} (status ${later.status})`);

const stats = await images.stats();
console.log(`queue "images": ${JSON.stringify(stats.counts)} (${made.length + 2} tasks added)`);
