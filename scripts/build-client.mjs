#!/usr/bin/env node
// Builds the SDK and CLI into dist/: `edgeq/client`, `edgeq/consumer` and the `edgeq` bin.
// JavaScript by esbuild (one shared chunk, so `instanceof EdgeqError` holds across
// subpaths); declarations by tsc, with the API types expanded into plain object
// types so that users of the package need neither zod nor the server's sources.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import ts from "typescript";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
rmSync("dist", { recursive: true, force: true });

await build({
  entryPoints: { index: "client/index.ts", consumer: "client/consumer.ts", cli: "client/cli.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunks/[name]-[hash]",
  define: { EDGEQ_VERSION: JSON.stringify(pkg.version) },
  logLevel: "warning",
  // linked maps with the sources inside: stack traces under --enable-source-maps, and the coverage of the CLI in `npm test`
  sourcemap: "linked",
});

const config = ts.getParsedCommandLineOfConfigFile(
  "client/tsconfig.json",
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  },
);
const sdk = ["client/index.ts", "client/consumer.ts"];
const program = ts.createProgram(sdk, { ...config.options, noEmit: false, declaration: true, emitDeclarationOnly: true });
const problems = ts.getPreEmitDiagnostics(program);
if (problems.length > 0) {
  console.error(
    ts.formatDiagnostics(problems, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => "\n" }),
  );
  process.exit(1);
}

// Relative specifiers get their `.js`, which Node's ESM resolution (and TypeScript's node16 mode) needs.
const withExtensions = (text) => text.replace(/(from\s+"\.\/[\w-]+)"/g, '$1.js"');
mkdirSync("dist", { recursive: true });
program.emit(
  undefined,
  (file, text) => {
    const name = file.replace(/\\/g, "/").match(/(?:^|\/)client\/([\w-]+\.d\.ts)$/)?.[1];
    if (name && name !== "types.d.ts") writeFileSync(`dist/${name}`, withExtensions(text));
  },
  undefined,
  true,
);

// client/types.ts, with every alias written out in full.
const checker = program.getTypeChecker();
const source = program.getSourceFile("client/types.ts");
const printer = ts.createPrinter();
const flags = ts.NodeBuilderFlags.NoTruncation | ts.NodeBuilderFlags.InTypeAlias | ts.NodeBuilderFlags.MultilineObjectLiterals;
let types = "// The shapes of edgeq's HTTP API (generated from its schemas by scripts/build-client.mjs).\n\n";
for (const symbol of checker.getExportsOfModule(checker.getSymbolAtLocation(source))) {
  const node = checker.typeToTypeNode(checker.getDeclaredTypeOfSymbol(symbol), source, flags);
  const text = printer.printNode(ts.EmitHint.Unspecified, node, source);
  if (/\bimport\(/.test(text)) throw new Error(`${symbol.name} still refers to another module: ${text.slice(0, 200)}`);
  types += `export type ${symbol.name} = ${text};\n\n`;
}
writeFileSync("dist/types.d.ts", types);
