#!/usr/bin/env node
// The API Worker's static assets (wrangler.toml [assets], worker/public): Swagger UI for GET /docs,
// copied from the pinned swagger-ui-dist package so the page needs no CDN and works offline.
// Runs on `npm install` (prepare); the copies are not committed.
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("worker/public/docs", { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"]) {
  copyFileSync(`node_modules/swagger-ui-dist/${file}`, `worker/public/docs/${file}`);
}
