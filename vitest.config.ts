import { generateKeyPairSync } from "node:crypto";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Signing keys for the JWT tests, made fresh for each run: the Worker gets the public
// halves as its JWKS, the tests get the private halves to sign with.
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwk = (key: { export(o: { format: "jwk" }): object }, kid: string, alg: string) => ({ ...key.export({ format: "jwk" }), kid, alg });

export default defineConfig({
  test: {
    coverage: {
      provider: "istanbul",
      include: ["worker/**/*.ts", "durable/**/*.ts", "schema/**/*.ts", "client/**/*.ts", "app/**/*.ts"],
      exclude: ["**/*.d.ts"],
      reporter: ["json"], // scripts/coverage.mjs merges it with the other tiers and prints the table
      reportsDirectory: "coverage",
      reportOnFailure: true, // the table is whole when a test fails too
    },
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      {
        test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], environment: "node" },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                // The D1 history migrations, applied by test/workerd/setup.ts as npm start applies them.
                TEST_MIGRATIONS: await readD1Migrations("./schema/migrations/d1"),
                EDGEQ_ADMIN_TOKEN: "test-admin-token",
                EDGEQ_LOG_REQUESTS: "false",
                // Tests flush history themselves (or run the alarm); a real alarm mid-test would race them.
                EDGEQ_HISTORY_FLUSH_MS: "60000",
                EDGEQ_JWT_SECRET: "test-hs256-secret-that-is-long-enough-0123456789",
                EDGEQ_JWT_ISSUER: "https://issuer.test",
                EDGEQ_JWT_AUDIENCE: "edgeq",
                EDGEQ_JWKS: JSON.stringify({
                  keys: [jwk(rsa.publicKey, "rsa-1", "RS256"), jwk(ec.publicKey, "ec-1", "ES256")],
                }),
                TEST_JWT_PRIVATE: JSON.stringify({
                  rsa: jwk(rsa.privateKey, "rsa-1", "RS256"),
                  ec: jwk(ec.privateKey, "ec-1", "ES256"),
                }),
              },
            },
          }),
        ],
        test: { name: "workerd", include: ["test/workerd/**/*.test.ts"], setupFiles: ["./test/workerd/setup.ts"] },
      },
    ],
  },
});
