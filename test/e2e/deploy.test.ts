import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminCall, LocalStack } from "./stack";

/** `npm run deploy` as a user runs it, with no Cloudflare account and no network: what it can check, it checks. */
const home = mkdtempSync(join(tmpdir(), "edgeq-deploy-home-")); // no stored wrangler login
const deploy = (args: string[], env: Record<string, string> = {}) => {
  const run = spawnSync(process.execPath, ["scripts/deploy.mjs", ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH!, HOME: home, ...env },
    timeout: 120_000,
  });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
};

const stack = new LocalStack();
beforeAll(() => stack.start(), 150_000);
afterAll(async () => {
  await stack.dispose();
  rmSync(home, { recursive: true, force: true });
});

describe("npm run deploy", () => {
  it("--dry-run builds and validates each environment offline and changes nothing", { timeout: 240_000 }, () => {
    for (const env of ["staging", "production"]) {
      const { status, out } = deploy(["--env", env, "--dry-run"]);
      expect(status, out).toBe(0);
      expect(out).toContain(`✓ environment ${env} is in wrangler.toml`);
      expect(out).toMatch(/✓ the Worker bundles \(.*KiB.*\), bindings and vars valid for/);
      expect(out).toMatch(/✓ \d+ D1 migrations: 0000_history\.sql/);
      expect(out).toContain(`✓ the dashboard builds for Pages (`);
      expect(out).toContain(`dry run for ${env}: nothing was changed`);
    }
  });

  it("stops with a clear reason and a non-zero exit: an unknown environment, no Cloudflare credentials", { timeout: 120_000 }, () => {
    const unknown = deploy(["--env", "moon", "--dry-run"]);
    expect(unknown.status).toBe(1);
    expect(unknown.out).toContain('✗ no environment "moon" in wrangler.toml');
    const signedOut = deploy(["--env", "staging"]);
    expect(signedOut.status).toBe(1);
    expect(signedOut.out).toContain("✗ not signed in to Cloudflare: set CLOUDFLARE_API_TOKEN or run npx wrangler login");
    expect(signedOut.out).not.toContain("build and validate"); // nothing past the failed check ran
  });

  it(
    "--verify-only checks a running deployment: ready, and a task's whole life with a deploy key that is revoked after",
    { timeout: 120_000 },
    async () => {
      const before = (await adminCall(stack, "GET", "/keys")).items.length;
      // What an interrupted earlier check left waiting must not stand in the way of this one.
      await adminCall(stack, "POST", "/queues/edgeq-deploy-smoke/tasks", { name: "left over" });
      const good = deploy(["--verify-only", "--url", stack.url], { EDGEQ_ADMIN_TOKEN: stack.token });
      expect(good.status, good.out).toBe(0);
      expect(good.out).toMatch(/✓ .*\/health\/ready: .*d1.*answer/);
      expect(good.out).toMatch(/✓ smoke task \S+ enqueued → leased → completed with a deploy key/);
      expect(good.out).toContain("deployment verified");
      const keys = (await adminCall(stack, "GET", "/keys")).items as { name: string; revokedAt?: string | null }[];
      expect(keys.filter((k) => k.name.startsWith("deploy-smoke-") && !k.revokedAt)).toEqual([]);
      expect(keys.length).toBeLessThanOrEqual(before + 1);
      const tasks = await adminCall(stack, "GET", "/queues/edgeq-deploy-smoke");
      expect(tasks.counts).toEqual({ completed: 1, cancelled: 1 });

      const wrong = deploy(["--verify-only", "--url", stack.url], { EDGEQ_ADMIN_TOKEN: "not-the-token" });
      expect(wrong.status).toBe(1);
      expect(wrong.out).toContain("✗ GET /health/ready answered 401");
    },
  );
});
