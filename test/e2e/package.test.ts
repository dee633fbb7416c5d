import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// The package as a user gets it: `npm pack` (of the dist/ that `npm test` built; no rebuild while
// other files run the bin), installed into an empty project.
const dir = mkdtempSync(join(tmpdir(), "edgeq-pkg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe("the published package", { timeout: 120_000 }, () => {
  it("installs with no dependencies, imports by subpath, runs its bin, and is typed without zod", () => {
    const packed = JSON.parse(run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], process.cwd()))[0] as {
      filename: string;
      files: { path: string }[];
    };
    const files = packed.files.map((f) => f.path);
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/consumer.d.ts");
    expect(files).toContain("dist/cli.js");
    expect(files.filter((f) => /^(worker|durable|schema|client)\//.test(f))).toEqual([]);

    const app = join(dir, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(dir, packed.filename)], app);
    const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as { packages: Record<string, unknown> };
    expect(Object.keys(lock.packages).sort()).toEqual(["", "node_modules/edgeq"]);

    const loaded = run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        [
          'import { EdgeqClient, EdgeqError } from "edgeq/client";',
          'import { Worker } from "edgeq/consumer";',
          "console.log(typeof EdgeqClient, typeof Worker, new EdgeqError({ type: 'urn:edgeq:error:x', title: 't', status: 400, detail: 'd' }).code);",
        ].join("\n"),
      ],
      app,
    );
    expect(loaded.trim()).toBe("function function x");
    expect(run(join(app, "node_modules/.bin/edgeq"), ["--version"], app).trim()).toBe(
      JSON.parse(readFileSync("package.json", "utf8")).version,
    );

    // Strict types under Node's own module resolution; each @ts-expect-error fails the check if the types were `any`.
    writeFileSync(
      join(app, "use.ts"),
      [
        'import { EdgeqClient, type Task, type Status } from "edgeq/client";',
        'import { Worker } from "edgeq/consumer";',
        'const edgeq = new EdgeqClient({ url: "http://127.0.0.1:8787", token: "t" });',
        "export async function use(): Promise<Status> {",
        '  const task: Task = await edgeq.queue("q").add("n", { a: 1 }, { priority: 5 });',
        "  // @ts-expect-error a status is one of the task statuses, not a number",
        "  const wrong: number = task.status;",
        "  // @ts-expect-error priority is a number",
        '  await edgeq.queue("q").add("n", null, { priority: "high" });',
        '  new Worker(edgeq, "q", async (t, { signal, leaseToken }) => [t.attempts, signal.aborted, leaseToken.length]);',
        '  return wrong === 0 ? task.status : "pending";',
        "}",
      ].join("\n"),
    );
    const tsc = resolve("node_modules/typescript/bin/tsc");
    const compilerOptions = {
      noEmit: true,
      strict: true,
      module: "nodenext",
      moduleResolution: "nodenext",
      target: "es2022",
      lib: ["es2022", "dom"],
      types: [],
    };
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["use.ts"] }));
    const args = [tsc, "-p", "."];
    let diagnostics = "";
    try {
      run(process.execPath, args, app);
    } catch (e) {
      diagnostics = String((e as { stdout?: string }).stdout) || String(e);
    }
    expect(diagnostics).toBe("");
  });
});
