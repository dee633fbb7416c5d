import { sveltekit } from "@sveltejs/kit/vite";
import { defineConfig } from "vite";

// The dashboard's build (vitest has its own config: vitest.config.ts). `npm test` builds it with
// source maps beside the scripts (not referenced from them) to map the browser tests' coverage back.
export default defineConfig({
  plugins: [sveltekit()],
  build: { sourcemap: process.env.EDGEQ_APP_SOURCEMAP === "1" ? "hidden" : false },
});
