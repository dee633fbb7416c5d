import adapter from "@sveltejs/adapter-cloudflare";
import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

/**
 * The dashboard: SvelteKit in app/, built for Cloudflare Pages
 * (`npm run build:app` → .svelte-kit/cloudflare), served locally by `npm start`.
 */
export default {
  preprocess: vitePreprocess(),
  kit: {
    // `npm run deploy` builds in folders of its own (EDGEQ_DASHBOARD_CONFIG names a copy of
    // dashboard.wrangler.toml with another pages_build_output_dir; EDGEQ_APP_OUT_DIR replaces
    // .svelte-kit), leaving the local build alone: the local Pages server bundles its _worker.js
    // from .svelte-kit/output, so a build there under a running dashboard would break it.
    adapter: adapter({ config: process.env.EDGEQ_DASHBOARD_CONFIG ?? "dashboard.wrangler.toml" }),
    outDir: process.env.EDGEQ_APP_OUT_DIR ?? ".svelte-kit",
    files: {
      src: "app",
      lib: "app/lib",
      routes: "app/routes",
      params: "app/params",
      appTemplate: "app/app.html",
      errorTemplate: "app/error.html",
      hooks: { server: "app/hooks.server", client: "app/hooks.client", universal: "app/hooks" },
      serviceWorker: "app/service-worker",
      assets: "static",
    },
  },
};
