// `npm run lint`: ESLint's and typescript-eslint's recommended rules over the TypeScript and
// JavaScript, eslint-plugin-svelte's over the dashboard's components, then Prettier's check of the
// TypeScript and JavaScript (.prettierrc.json; `npm run format` applies both).
import js from "@eslint/js";
import svelte from "eslint-plugin-svelte";
import globals from "globals";
import ts from "typescript-eslint";

export default ts.config(
  {
    ignores: [
      "node_modules/",
      "dist/",
      ".svelte-kit/",
      ".wrangler/",
      ".edgeq/",
      "test-results/",
      "worker/public/docs/",
      "worker-configuration.d.ts",
    ],
  },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      // `_`-prefixed names are deliberately unused (a parameter a signature needs).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "@typescript-eslint/no-unused-expressions": ["error", { allowShortCircuit: true, allowTernary: true }],
      // `catch {}`: a failure that is expected and needs nothing done (say why beside it).
      "no-empty": ["error", { allowEmptyCatch: true }],
      "prefer-const": ["error", { destructuring: "all" }],
      // The dashboard is served at its origin's root (no `paths.base`), so plain hrefs are right.
      "svelte/no-navigation-without-resolve": "off",
    },
  },
  {
    // TypeScript checks names itself (and knows the DOM's and the runtime's types).
    files: ["**/*.ts", "**/*.svelte"],
    rules: { "no-undef": "off" },
  },
  {
    // Tests read JSON answers loosely and parse CSV tersely.
    files: ["test/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off", "@typescript-eslint/no-unused-expressions": "off" },
  },
  {
    files: ["**/*.svelte", "**/*.svelte.ts"],
    languageOptions: { parserOptions: { parser: ts.parser, extraFileExtensions: [".svelte"] } },
    // `let { … } = $props()` is Svelte's own form; svelte/prefer-const checks the rest.
    rules: { "prefer-const": "off" },
  },
);
