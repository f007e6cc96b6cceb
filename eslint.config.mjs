// Lint for the program, the policy pack (policy/ is project code: linted from here, its
// node_modules and bin/ skipped), the tools and the tests (issue 17 item 6), run by `npm run lint`
// and .ci/run. typescript-eslint's recommended rules without type information: a type-aware run
// builds both TypeScript programs again (61 s against 17 s on 2 cores; the @pulumi/aws types
// dominate), and `npm run build` already type-checks them strictly. On top, the rules that catch
// real defects here. Formatting is Prettier's (.prettierrc.json), not ESLint's.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    // Generated, vendored or not JavaScript/TypeScript source (the same set .prettierignore skips).
    ignores: ["**/node_modules/", "out/", "policy/bin/", "tests/golden/", "tests/fixtures/", "templates/scripts/"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
    languageOptions: { globals: { ...globals.node } },
    rules: {
      eqeqeq: ["error", "always"],
      // `require` where an `import` cannot do: index.ts is `export =` and is loaded after Pulumi's
      // mocks are set, as `pulumi up` loads it; the pack's loader and the SDK's runtime store have
      // no typings, nor has s3rver (the fleet's S3). Any other require is an import written the old way.
      "@typescript-eslint/no-require-imports": [
        "error",
        { allow: ["^(\\.\\./)+index$", "/policy/compiled$", "^@pulumi/pulumi/runtime/state$", "^s3rver$"] },
      ],
      // `_name` marks a parameter or binding kept on purpose (a callback's position, a tuple's slot).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
    },
  },
  {
    // The few CommonJS files: jest.config.js, the pack's loader (policy/pack.js, compiled.js) and a fleet client.
    files: ["**/*.js"],
    languageOptions: { sourceType: "commonjs" },
    rules: {
      "@typescript-eslint/no-require-imports": "off",
      // Module scope: `const crypto = require("crypto")` shadows Node's global on purpose.
      "no-redeclare": ["error", { builtinGlobals: false }],
    },
  },
  {
    // Tests walk and mutate the plan's resource inputs, untyped JSON (Pulumi's MockResourceArgs
    // inputs are `any` too); the program, the pack and the tools stay free of `any`.
    files: ["tests/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
);
