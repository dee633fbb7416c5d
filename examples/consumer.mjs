// Runs the image jobs, four at a time, until Ctrl-C (which lets running jobs finish).
//   node examples/consumer.mjs
import { EdgeqClient, UnrecoverableError } from "edgeq/client";
import { Worker } from "edgeq/consumer";
import { config } from "./config.mjs";

const edgeq = new EdgeqClient(config);
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => clearTimeout(timer));
  });

const worker = new Worker(
  edgeq,
  "images",
  async (task, { signal, progress }) => {
    if (task.name === "cleanup") return { removed: 0 };
    if (!task.payload?.image) throw new UnrecoverableError("no image given"); // no retries for bad input
    progress(50);
    await sleep(200 + Math.random() * 300, signal); // the work
    signal.throwIfAborted(); // cancelled while running
    return { thumbnail: task.payload.image.replace(/\.\w+$/, `-${task.payload.width}.webp`) };
  },
  { concurrency: 4, name: "example-consumer" },
);

worker.on("completed", (task, result) => console.log(`done   ${task.id} ${JSON.stringify(result)}`));
worker.on("failed", (task, error) => console.log(`failed ${task.id} ${error.message}`));
worker.on("error", (error) => console.error(`error  ${error.message}`));
process.once("SIGINT", () => worker.close());
process.once("SIGTERM", () => worker.close());

console.log(`consuming "images" on ${config.url} (Ctrl-C to stop)`);
await worker.run();
console.log("stopped");
