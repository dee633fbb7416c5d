// Where the API is: EDGEQ_URL / EDGEQ_TOKEN, else the .edgeq/config.json that `npm start` writes.
import { existsSync, readFileSync } from "node:fs";

const file = existsSync(".edgeq/config.json") ? JSON.parse(readFileSync(".edgeq/config.json", "utf8")) : {};
export const config = {
  url: process.env.EDGEQ_URL ?? file.url ?? "http://127.0.0.1:8787",
  token: process.env.EDGEQ_TOKEN ?? file.token,
};
if (!config.token) throw new Error("set EDGEQ_TOKEN, or run `npm start` once to write .edgeq/config.json");
