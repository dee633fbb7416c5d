// Line coverage of edgeq's sources (worker/, durable/, schema/, client/, app/) over every test tier,
// for `npm test`. Three records are merged line by line:
//  - vitest's Istanbul map (coverage/coverage-final.json): the unit tests, the workerd tests and the
//    stack tests' in-process SDK;
//  - V8 coverage of the processes the stack tests start from the built package (the `edgeq` CLI),
//    written by Node under NODE_V8_COVERAGE into <raw>/node;
//  - Chromium's V8 coverage of the dashboard in the browser tests, written into <raw>/browser.
// V8's records are mapped back to the sources through the builds' source maps. A line of TypeScript
// counts when a statement starts on it (vitest's map, which lists every file, loaded or not); a line
// of a Svelte component counts when it compiles to client code. It is covered when any tier ran it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "svelte/compiler";
import { eachMapping, TraceMap } from "@jridgewell/trace-mapping";

export const AREAS = ["worker", "durable", "schema", "client", "app"];
const ROOT = resolve(".");
const APP_CLIENT = ".svelte-kit/output/client";

const inScope = (file) => AREAS.includes(file.split("/")[0]) && !file.endsWith(".d.ts");

/** file → { lines: Set of counted line numbers, hit: Set of covered ones } */
function sheet() {
  const files = new Map();
  const entry = (file) => {
    let e = files.get(file);
    if (!e) files.set(file, (e = { lines: new Set(), hit: new Set() }));
    return e;
  };
  return { files, entry };
}

/** Counts an Istanbul file record's statement lines, and marks those that ran. */
function addIstanbul(s, path, record) {
  const file = relative(ROOT, path);
  if (!inScope(file)) return;
  const e = s.entry(file);
  for (const [id, loc] of Object.entries(record.statementMap)) {
    e.lines.add(loc.start.line);
    if (record.s[id] > 0) e.hit.add(loc.start.line);
  }
}

/**
 * Marks the lines a script's V8 record says ran: a line ran when some code the source map ties to
 * it lies in a block that ran (the innermost V8 range around it has a count). Lines no code maps
 * to, and code in blocks that never ran, count as not run. Only lines counted already (vitest's
 * statements, a component's compiled lines) are marked.
 */
function addV8(s, scriptPath, functions, map) {
  const source = readFileSync(scriptPath, "utf8");
  const lineStarts = [0];
  for (let i = source.indexOf("\n"); i !== -1; i = source.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const segments = [];
  eachMapping(new TraceMap(map), (m) => {
    if (m.source === null || m.originalLine === null) return;
    segments.push({ at: lineStarts[m.generatedLine - 1] + m.generatedColumn, source: m.source, line: m.originalLine });
  });
  segments.sort((a, b) => a.at - b.at);
  // V8's ranges nest (functions, then blocks in them): swept in start order with a stack whose top,
  // once the ranges ended before this segment are off it, is the innermost range around it
  const ranges = functions.flatMap((f) => f.ranges).sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
  const open = [];
  let next = 0;
  const root = dirname(scriptPath);
  for (const seg of segments) {
    while (next < ranges.length && ranges[next].startOffset <= seg.at) open.push(ranges[next++]);
    while (open.length > 0 && open[open.length - 1].endOffset <= seg.at) open.pop();
    if (open.length === 0 || open[open.length - 1].count === 0) continue;
    const file = relative(ROOT, resolve(root, seg.source)); // trace-mapping has joined any sourceRoot
    s.files.get(file)?.hit.add(seg.line);
  }
}

const jsonFiles = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")) : []).map((f) => join(dir, f));

/** The lines of a Svelte component that compile to client code (what its line coverage counts). */
function svelteLines(file) {
  const { js } = compile(readFileSync(file, "utf8"), { filename: file, generate: "client" });
  const lines = new Set();
  eachMapping(new TraceMap(js.map), (m) => {
    if (m.originalLine !== null) lines.add(m.originalLine);
  });
  return lines;
}

/** Merges the three records; returns per-file and per-area line counts. */
export async function measure({ istanbul = "coverage/coverage-final.json", raw }) {
  const s = sheet();
  const missing = !existsSync(istanbul);
  if (!missing) for (const [path, record] of Object.entries(JSON.parse(readFileSync(istanbul, "utf8")))) addIstanbul(s, path, record);
  for (const name of readdirSync("app", { recursive: true }))
    if (name.endsWith(".svelte")) s.entry(join("app", name)).lines = svelteLines(join("app", name));

  for (const dump of jsonFiles(join(raw, "node")))
    for (const script of JSON.parse(readFileSync(dump, "utf8")).result ?? []) {
      if (!script.url.startsWith("file://")) continue;
      const path = fileURLToPath(script.url);
      if (relative(ROOT, path).startsWith("dist/") && existsSync(`${path}.map`))
        addV8(s, path, script.functions, JSON.parse(readFileSync(`${path}.map`, "utf8")));
    }

  // the dashboard's scripts that ran with and without a source map beside them (a few tiny chunks,
  // re-exports and bundler helpers, have none; none with one means a build without EDGEQ_APP_SOURCEMAP)
  const unmapped = new Set();
  const mapped = new Set();
  for (const dump of jsonFiles(join(raw, "browser")))
    for (const script of JSON.parse(readFileSync(dump, "utf8"))) {
      const path = join(APP_CLIENT, new URL(script.url).pathname);
      if (!existsSync(`${path}.map`)) {
        unmapped.add(path);
        continue;
      }
      mapped.add(path);
      addV8(s, resolve(path), script.functions, JSON.parse(readFileSync(`${path}.map`, "utf8")));
    }

  const areas = Object.fromEntries(AREAS.map((a) => [a, { lines: 0, hit: 0 }]));
  const files = [];
  for (const [file, e] of s.files) {
    const hit = [...e.hit].filter((l) => e.lines.has(l)).length;
    const area = areas[file.split("/")[0]];
    area.lines += e.lines.size;
    area.hit += hit;
    files.push({ file, lines: e.lines.size, hit });
  }
  const total = Object.values(areas).reduce((t, a) => ({ lines: t.lines + a.lines, hit: t.hit + a.hit }), { lines: 0, hit: 0 });
  return { areas, files, total, missing: missing ? istanbul : null, unmapped: mapped.size === 0 ? unmapped.size : 0 };
}

const pct = (a) => (a.lines === 0 ? 100 : (100 * a.hit) / a.lines);

/** The table `npm test` prints: each area, the total, and the files with the most lines not run. */
export function report({ areas, files, total, missing, unmapped }, threshold) {
  const rows = [...AREAS.map((a) => [`${a}/`, areas[a]]), ["all", total]];
  const lines = ["", "Line coverage (unit, workerd, stack and browser tests):"];
  for (const [name, a] of rows)
    lines.push(`  ${name.padEnd(10)} ${pct(a).toFixed(1).padStart(5)} %  ${String(a.hit).padStart(6)} / ${a.lines}`);
  const gaps = files
    .filter((f) => f.lines > f.hit)
    .sort((x, y) => y.lines - y.hit - (x.lines - x.hit))
    .slice(0, 8);
  lines.push(`  most lines not run: ${gaps.map((f) => `${f.file} (${f.lines - f.hit})`).join(", ")}`);
  if (unmapped > 0)
    lines.push(
      `  ${unmapped} of the dashboard's scripts ran without a source map (built without EDGEQ_APP_SOURCEMAP=1?): their lines count as not run`,
    );
  const ok = !missing && pct(total) >= threshold;
  if (missing) lines.push(`  vitest wrote no coverage (${missing}): the TypeScript tiers are not counted`);
  else lines.push(ok ? `  ${pct(total).toFixed(1)} % ≥ ${threshold} %` : `  coverage ${pct(total).toFixed(1)} % is below ${threshold} %`);
  return { text: lines.join("\n"), ok, percent: pct(total) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await measure({ raw: process.argv[2] ?? "test-results/coverage" });
  console.log(report(result, 85).text);
}
