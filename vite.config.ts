import { sveltekit } from "@sveltejs/kit/vite";
import { defineConfig } from "vite";

// The dashboard's build (vitest has its own config: vitest.config.ts).
export default defineConfig({ plugins: [sveltekit()] });
