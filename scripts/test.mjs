#!/usr/bin/env node
// `npm test` (after typecheck): every vitest project with coverage, the line coverage of every tier
// (scripts/coverage.mjs), then one plain closing line CI can read.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { measure, report } from "./coverage.mjs";

const THRESHOLD = 85; // % of lines over worker/, durable/, schema/, client/, app/
const out = "test-results.json";
const raw = resolve("test-results/coverage");
rmSync(out, { force: true });
rmSync(raw, { recursive: true, force: true });
rmSync("coverage", { recursive: true, force: true }); // a record left from an earlier run is never read as this one's
const args = process.argv.slice(2);
// files or projects named: a part of the suite, whose coverage is shown but not held to the threshold
const partial = args.some((a) => !a.startsWith("-") || a.startsWith("--project"));
const run = spawnSync("vitest", ["run", "--coverage", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`, ...args], {
  stdio: "inherit",
  env: { ...process.env, EDGEQ_COVERAGE_DIR: raw },
});
let passed = 0;
let failed = 0;
if (existsSync(out)) {
  const results = JSON.parse(readFileSync(out, "utf8"));
  passed = results.numPassedTests;
  failed = results.numFailedTests + (results.numRuntimeErrorTests ?? 0);
}
let code = run.status ?? 1;
if (code !== 0 && failed === 0) failed = 1; // a run that crashed before reporting is a failure, never a pass

// The threshold holds for the whole suite; a run of some files only reports what it covered.
const coverage = report(await measure({ raw }), THRESHOLD);
console.log(coverage.text);
if (!partial && !coverage.ok) {
  failed += 1;
  code ||= 1;
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(passed === 0 ? 1 : code);
