// One Node and one Pulumi CLI for developers, CI and the GitHub workflow (issue 12, README
// "Running it for real"): @pulumi/pulumi 3.270 requires Node >= 22, Debian 12 (CI) ships 20.
// .node-version is the one source; package.json engines, .ci/run and the workflow must agree.
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";

const ROOT = path.join(__dirname, "..", "..");
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");
const pkg = JSON.parse(read("package.json")) as {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const sdkPkg = JSON.parse(read("node_modules/@pulumi/pulumi/package.json")) as { engines?: { node?: string } };
const nodeVersion = read(".node-version").trim();
const workflow = yaml.load(read(".github/workflows/pulumi.yml")) as {
  concurrency: { group: string; "cancel-in-progress": boolean };
  env: Record<string, string>;
  jobs: Record<string, { steps: { uses?: string; run?: string; with?: Record<string, unknown> }[] }>;
};
const minimum = (range: string | undefined): number => Number(/>=\s*(\d+)/.exec(range ?? "")?.[1] ?? NaN);

describe("toolchain", () => {
  it(".node-version pins an exact Node that satisfies package.json engines and @pulumi/pulumi's", () => {
    expect(nodeVersion).toMatch(/^\d+\.\d+\.\d+$/);
    const major = Number(nodeVersion.split(".")[0]);
    expect(major).toBeGreaterThanOrEqual(minimum(pkg.engines.node));
    expect(minimum(pkg.engines.node)).toBeGreaterThanOrEqual(minimum(sdkPkg.engines?.node));
  });

  it(".ci/run installs the .node-version build from the npm registry and runs everything with it", () => {
    const ci = read(".ci/run");
    expect(ci).toContain("node_version=$(cat .node-version)");
    expect(ci).toMatch(/npm install [^\n]*"\$node_package@\$node_version"/);
    expect(ci).toContain('export PATH="$node_prefix/node_modules/$node_package/bin:$PATH"');
    // Installed before the first npm ci, so every later step runs on it.
    expect(ci.indexOf("export PATH=")).toBeLessThan(ci.indexOf("npm ci --no-audit"));
  });

  it("CI lints and checks formatting right after the type-check, with the pinned ESLint and Prettier (issue 17)", () => {
    const ci = read(".ci/run");
    for (const tool of ["eslint", "prettier", "typescript-eslint", "@eslint/js"])
      expect([tool, pkg.devDependencies[tool]]).toEqual([tool, expect.stringMatching(/^\d+\.\d+\.\d+$/)]);
    expect(pkg.scripts).toMatchObject({ lint: "eslint .", format: "prettier --write .", "format:check": "prettier --check ." });
    const at = (command: string) => ci.indexOf(`\n${command}\n`);
    expect(at("npm run build")).toBeGreaterThan(0);
    expect(at("npm run lint")).toBeGreaterThan(at("npm run build"));
    expect(at("npm run format:check")).toBeGreaterThan(at("npm run lint"));
    expect(at("npm test")).toBeGreaterThan(at("npm run format:check"));
  });

  it("the README names the same CLI release, the Node pin and every secret and variable the workflow reads", () => {
    const readme = read("README.md");
    expect(readme).toContain(`**The Pulumi CLI ${workflow.env.PULUMI_VERSION}**`);
    expect(readme).toContain("(`.node-version`;");
    const names = new Set([...read(".github/workflows/pulumi.yml").matchAll(/\$\{\{ (?:secrets|vars)\.([A-Z_]+) \}\}/g)].map((m) => m[1]));
    expect(names.size).toBeGreaterThanOrEqual(5);
    for (const name of names) expect([name, readme.includes(`| \`${name}\` |`)]).toEqual([name, true]);
  });

  it("the workflow uses the same Node, the SDK's own CLI version, one queue per stack, and tests before preview and up", () => {
    expect(workflow.env.PULUMI_VERSION).toBe(pkg.dependencies["@pulumi/pulumi"]);
    expect(workflow.concurrency).toEqual({ group: "pulumi-${{ vars.PULUMI_STACK }}", "cancel-in-progress": false });
    expect(workflow.env.PULUMI_STACK).toBe("${{ vars.PULUMI_STACK }}");
    for (const [name, job] of Object.entries(workflow.jobs)) {
      const node = job.steps.find((s) => s.uses?.startsWith("actions/setup-node"));
      expect([name, node?.with?.["node-version-file"]]).toEqual([name, ".node-version"]);
      const pulumi = job.steps.findIndex((s) => s.uses?.startsWith("pulumi/actions"));
      expect([name, job.steps[pulumi]?.with?.["pulumi-version"]]).toEqual([name, "${{ env.PULUMI_VERSION }}"]);
      const runs = job.steps.map((s) => s.run);
      for (const command of ["npm ci", "npm run build", "npm test"]) {
        const at = runs.indexOf(command);
        expect([name, command, at >= 0 && at < pulumi]).toEqual([name, command, true]);
      }
    }
  });
});
