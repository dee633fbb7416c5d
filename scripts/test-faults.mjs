#!/usr/bin/env node
// `npm run test:faults`: the fault suite. workerd SIGKILLed under enqueue and completion load and
// restarted from its state (test/e2e/fault-workerd.test.ts), consumer processes SIGKILLed mid-task
// (test/e2e/fault.test.ts), D1 down under load (test/workerd/history-flush.test.ts). Each test
// prints its tally as an `edgeq-faults {…}` line; this sums them into one closing line,
// "N faults injected, N lost, N duplicated", and fails on any failed test, loss or duplicate.
import { spawnSync } from "node:child_process";

const runs = [
  ["--project", "e2e", "test/e2e/fault-workerd.test.ts", "test/e2e/fault.test.ts"],
  ["--project", "workerd", "test/workerd/history-flush.test.ts", "-t", "D1 down"],
];
const tallies = [];
let failed = false;
for (const args of runs) {
  const run = spawnSync("node_modules/.bin/vitest", ["run", ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  process.stdout.write(run.stdout);
  process.stderr.write(run.stderr);
  if (run.status !== 0) failed = true;
  for (const [, json] of `${run.stdout}`.matchAll(/edgeq-faults (\{.*\})/g)) tallies.push(JSON.parse(json));
}
const sum = (k) => tallies.reduce((n, t) => n + t[k], 0);
for (const t of tallies)
  console.log(`  ${t.name}: ${t.injected} injected, ${t.checked} tasks checked, ${t.lost} lost, ${t.duplicated} duplicated`);
console.log(`\n${sum("injected")} faults injected, ${sum("lost")} lost, ${sum("duplicated")} duplicated`);
process.exit(failed || tallies.length < 3 || sum("lost") > 0 || sum("duplicated") > 0 ? 1 : 0);
