import adapter from "@sveltejs/adapter-cloudflare";
import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

/**
 * The dashboard: SvelteKit in app/, built for Cloudflare Pages
 * (`npm run build:app` → .svelte-kit/cloudflare), served locally by `npm start`.
 */
export default {
  preprocess: vitePreprocess(),
  kit: {
    adapter: adapter({ config: "dashboard.wrangler.toml" }),
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
