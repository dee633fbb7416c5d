#!/usr/bin/env node
// `npm test` (after typecheck): every vitest project, then one plain closing line CI can read.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";

const out = "test-results.json";
rmSync(out, { force: true });
const run = spawnSync("vitest", ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`, ...process.argv.slice(2)], {
  stdio: "inherit",
});
let passed = 0;
let failed = 0;
if (existsSync(out)) {
  const report = JSON.parse(readFileSync(out, "utf8"));
  passed = report.numPassedTests;
  failed = report.numFailedTests + (report.numRuntimeErrorTests ?? 0);
}
const code = run.status ?? 1;
if (code !== 0 && failed === 0) failed = 1; // a run that crashed before reporting is a failure, never a pass
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(passed === 0 ? 1 : code);
