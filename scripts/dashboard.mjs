// The dashboard on the local stack: `wrangler pages dev` serving the SvelteKit build
// (.svelte-kit/cloudflare, `npm run build:app`) on its own port, told where the API is and, for the
// local stack only, the admin token it signs in with. Pages dev reads the wrangler.toml of the project
// it runs in (the API Worker's is not a Pages project), so it runs in a folder of its own outside
// this one (the dashboard keeps no state).
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export function serveDashboard({
  host = "127.0.0.1",
  port,
  api,
  token,
  dir = join(tmpdir(), `edgeq-dashboard-${port}`),
  stdio = "inherit",
}) {
  const root = process.cwd();
  mkdirSync(dir, { recursive: true });
  const config = readFileSync("dashboard.wrangler.toml", "utf8").replace(
    /^pages_build_output_dir = .*$/m,
    `pages_build_output_dir = ${JSON.stringify(resolve(root, ".svelte-kit/cloudflare"))}`,
  );
  writeFileSync(`${dir}/wrangler.toml`, config);
  const args = ["pages", "dev", "--ip", host, "--port", String(port), "--log-level", "warn", "--binding", `EDGEQ_API_URL=${api}`];
  if (token) args.push("--binding", `EDGEQ_LOCAL_TOKEN=${token}`);
  return spawn(resolve(root, "node_modules/.bin/wrangler"), args, {
    cwd: dir,
    stdio,
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: process.env.CI ?? "1" },
  });
}
