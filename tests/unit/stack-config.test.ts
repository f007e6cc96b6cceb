// tools/stack-config.ts applies the Pulumi CLI's project-config rules before the offline plan
// runs the program (pulumi/pulumi pkg/workspace/config.go mergeConfig and
// validateStackConfigValue, sdk/go/common/workspace/project.go Project.Validate and
// ValidateConfigValue, loaders.go, resource/config/object.go). Each case writes a Pulumi.yaml
// and a Pulumi.dev.yaml and checks what the CLI would refuse, in its words, or what the program
// would receive.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { copiedStackWarnings, readStackConfig, StackConfigError, type StackConfig } from "../../tools/stack-config";

const ROOT = path.resolve(__dirname, "..", "..");
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-config-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Reads stack "dev" of project "proj" whose Pulumi.yaml has `config:` `projectConfig` (YAML lines). */
function read(projectConfig: string, stackConfig: string): StackConfig {
  const indent = (s: string) =>
    s
      .trim()
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n");
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    `name: proj\nruntime: nodejs\n${projectConfig.trim() ? `config:\n${indent(projectConfig)}\n` : ""}`,
  );
  fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), stackConfig.trim() ? `config:\n${indent(stackConfig)}\n` : "");
  return readStackConfig(dir, "dev");
}

/** The problems the CLI would report for this project and stack; fails when there are none. */
function refused(projectConfig: string, stackConfig: string): StackConfigError {
  try {
    read(projectConfig, stackConfig);
  } catch (e) {
    if (e instanceof StackConfigError) return e;
    throw e;
  }
  throw new Error("the configuration was accepted");
}

/** The one problem line naming `key`: "<key> = <value>: <CLI message>; <fix>". */
function lineOf(err: StackConfigError, key: string): string {
  const lines = err.message.split("\n").filter((l) => l.includes(`. ${key} = `));
  if (lines.length !== 1) throw new Error(`expected one problem for ${key} in:\n${err.message}`);
  return lines[0];
}

describe("required keys (config.go mergeConfig)", () => {
  it("refuses a stack without a key declared without a default, in the CLI's words", () => {
    const err = refused("domain:\n  type: string", "other: x");
    expect(lineOf(err, "proj:domain")).toMatch(
      /proj:domain = \(not set\): Stack 'dev' is missing configuration value 'domain'; set it in Pulumi.dev.yaml, or give it a default in Pulumi.yaml$/,
    );
  });

  it("lists every missing key, sorted as the CLI sorts them", () => {
    const err = refused("b:\n  type: string\na:\n  type: integer\nc:\n  description: untyped, still required", "");
    expect(err.problems.map((p) => p.cli)).toEqual(["a", "b", "c"].map((k) => `Stack 'dev' is missing configuration value '${k}'`));
  });

  it("does not require a key declared with a default, and gives the program the default", () => {
    expect(read("zone:\n  type: string\n  default: odoo.internal", "").config["proj:zone"]).toBe("odoo.internal");
  });

  it("does not require a key whose default is empty, and passes the empty value on", () => {
    const c = read(
      'a:\n  type: string\n  default: ""\nb:\n  type: array\n  items: {type: string}\n  default: []\nc:\n  type: object\n  default: {}\nd:\n  default: ""',
      "",
    );
    expect([c.config["proj:a"], c.config["proj:b"], c.config["proj:c"], c.config["proj:d"]]).toEqual(["", "[]", "{}", ""]);
  });

  it("takes a bare value as a project key's default and another namespace's value (RewriteShorthandConfigValues)", () => {
    const c = read("count: 5\naws:region: eu-west-1\nnames: [a, b]", "");
    expect(c.config).toEqual({ "proj:count": "5", "aws:region": "eu-west-1", "proj:names": '["a","b"]' });
  });

  it("requires only the project's namespace: a stack may leave another namespace's declared value to the project", () => {
    expect(read("aws:region:\n  value: eu-west-1", "").config["aws:region"]).toBe("eu-west-1");
  });

  it("prefers the stack's value over the default, and namespaces a stack key without one", () => {
    expect(read("zone:\n  type: string\n  default: a.internal", "zone: b.internal").config["proj:zone"]).toBe("b.internal");
  });
});

describe("declared types (config.go validateStackConfigValue, project.go ValidateConfigValue)", () => {
  it("hands a YAML number to a string key as its text: odooVersion: 17.0 reaches the program as 17", () => {
    expect(read("odooVersion:\n  type: string\n  default: '17.0'", "odooVersion: 17.0").config["proj:odooVersion"]).toBe("17");
  });

  it.each([
    ["string", "a: {x: 1}", "a:\n  type: string", "a: {x: 1}", { x: 1 }],
    ["string", "a: [x]", "a:\n  type: string", "a: [x]", ["x"]],
    ["integer", "a: three", "a:\n  type: integer", "a: three", "three"],
    ["integer", "a: 2.5", "a:\n  type: integer", "a: 2.5", 2.5],
    ["integer", "a: [1]", "a:\n  type: integer", "a: [1]", [1]],
    ["boolean", "a: yes", "a:\n  type: boolean", "a: yes", "yes"],
    ["boolean", "a: 1", "a:\n  type: boolean", "a: 1", 1],
    ["array<string>", "a: [x, 1]", "a:\n  type: array\n  items: {type: string}", "a: [x, 1]", ["x", 1]],
    ["array<string>", "a: x", "a:\n  type: array\n  items: {type: string}", "a: x", "x"],
    [
      "array<array<integer>>",
      "a: [[1, x]]",
      "a:\n  type: array\n  items: {type: array, items: {type: integer}}",
      "a: [[1, x]]",
      [[1, "x"]],
    ],
    ["object", "a: [x]", "a:\n  type: object", "a: [x]", ["x"]],
    ["object", "a: '{}'", "a:\n  type: object", "a: '{}'", "{}"],
  ])("type %s refuses %s", (type, _given, decl, stack, value) => {
    expect(lineOf(refused(decl, stack), "proj:a")).toBe(
      `  1. proj:a = ${JSON.stringify(value)}: Stack 'dev' with configuration key 'a' must be of type '${type}'; fix it in Pulumi.dev.yaml`,
    );
  });

  it.each([
    ["integer", "a:\n  type: integer", "a: 3", "3"],
    ["integer as text", "a:\n  type: integer", "a: '-3'", "-3"],
    ["boolean", "a:\n  type: boolean", "a: true", "true"],
    ["boolean as text", "a:\n  type: boolean", "a: 'false'", "false"],
    ["string", "a:\n  type: string", "a: true", "true"],
    ["array<array<integer>>", "a:\n  type: array\n  items: {type: array, items: {type: integer}}", "a: [[1, 2]]", "[[1,2]]"],
    ["object", "a:\n  type: object", "a: {x: [1]}", '{"x":[1]}'],
    ["an undeclared key (no check)", "", "a: {x: 1}", '{"x":1}'],
  ])("accepts %s", (_name, decl, stack, text) => {
    expect(read(decl, stack).config["proj:a"]).toBe(text);
  });

  it("reads numbers as the CLI's YAML reader does (yaml.v3): base prefixes, octal, underscores; dates stay text", () => {
    const c = read("", "a: 0x1F\nb: 017\nc: 1_000\nd: 2001-12-14\ne: .5\nf: 08");
    expect([
      c.config["proj:a"],
      c.config["proj:b"],
      c.config["proj:c"],
      c.config["proj:d"],
      c.config["proj:e"],
      c.config["proj:f"],
    ]).toEqual(["31", "15", "1000", "2001-12-14", "0.5", "8"]);
  });

  it("refuses NaN and infinity, which the CLI cannot encode", () => {
    expect(lineOf(refused("", "a: .inf"), "proj:a")).toContain("json: unsupported value");
  });
});

describe("secrets (config.go validateStackConfigValue)", () => {
  it("keeps a secure: value secret and never hands its ciphertext to the program", () => {
    const c = read("", "password:\n  secure: v1:AAAAciphertext");
    expect(c.secretKeys).toEqual(["proj:password"]);
    expect(c.config["proj:password"]).not.toContain("ciphertext");
    expect(c.config["proj:password"]).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(c.warnings).toContain(
      "proj:password is a secure value, which only the Pulumi CLI can decrypt; this plan used a value generated for the run",
    );
  });

  it("refuses a plain value for a key declared secret", () => {
    expect(lineOf(refused("token:\n  type: string\n  secret: true", "token: abc"), "proj:token")).toContain(
      "Stack 'dev' with configuration key 'token' must be encrypted as it's secret; set it with pulumi config set --secret token",
    );
  });

  it("refuses a secret key's default: the CLI stores it as plain text", () => {
    expect(lineOf(refused("token:\n  type: string\n  secret: true\n  default: abc", ""), "proj:token")).toContain(
      "must be encrypted as it's secret; a default is stored as plain text",
    );
  });

  it("accepts a secure value for a key declared secret", () => {
    expect(read("token:\n  type: string\n  secret: true", "token:\n  secure: v1:x").secretKeys).toEqual(["proj:token"]);
  });

  it("refuses a secure value for an object key: the CLI type-checks its decrypted text", () => {
    expect(lineOf(refused("o:\n  type: object", "o:\n  secure: v1:x"), "proj:o")).toContain(
      `proj:o = "[secure]": Stack 'dev' with configuration key 'o' must be of type 'object'`,
    );
  });

  it("makes a map holding a secure value secret as a whole, and type-checks the map", () => {
    const c = read("o:\n  type: object", "o:\n  user: u\n  password:\n    secure: v1:x");
    expect(c.secretKeys).toEqual(["proj:o"]);
    expect(Object.keys(JSON.parse(c.config["proj:o"]))).toEqual(["user", "password"]);
  });

  it("warns that it cannot check the type of a secure integer", () => {
    expect(read("n:\n  type: integer", "n:\n  secure: v1:x").warnings).toContain(
      "proj:n is a secure value declared integer; only the CLI can decrypt it to check its type",
    );
  });
});

describe("Pulumi.yaml's declarations (project.go Project.Validate, project.json)", () => {
  it.each([
    ["both default and value", "a:\n  default: x\n  value: y", "project config 'a' cannot have both a 'default' and 'value' attribute"],
    [
      "an array without items",
      "a:\n  type: array",
      "The configuration key 'a' declares an array but does not specify the underlying type via the 'items' attribute",
    ],
    [
      "a default of another type",
      "a:\n  type: integer\n  default: many",
      "The default value specified for configuration key 'a' is not of the expected type 'integer'",
    ],
    [
      "a list default for array<string> with a number",
      "a:\n  type: array\n  items: {type: string}\n  default: [1]",
      "is not of the expected type 'array<string>'",
    ],
    [
      "a type on another namespace",
      "aws:region:\n  type: string\n  value: x",
      "Configuration key 'aws:region' is not namespaced by the project and should not define a type",
    ],
    [
      "a default on another namespace",
      "aws:region:\n  default: x",
      "should not define a default value. Did you mean to use the 'value' attribute instead of 'default'?",
    ],
    [
      "another namespace without a value",
      "aws:region:\n  description: x",
      "Configuration key 'aws:region' is namespaced and must provide an attribute 'value'",
    ],
    [
      "a field the schema does not know (ranges live in the description)",
      "a:\n  type: integer\n  minimum: 1",
      "additional properties 'minimum' not allowed",
    ],
    ["a type the CLI does not know", "a:\n  type: number", 'value must be one of "string", "integer", "boolean", "array", "object"'],
    ["a key of three parts", "a:b:c: 1", "could not parse a:b:c as a configuration key"],
  ])("refuses %s", (_name, decl, message) => {
    const err = refused(decl, "");
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0].cli).toContain(message);
  });
});

describe("the stack file (loaders.go, config/key.go)", () => {
  it("treats a key without a value as an empty string and warns in the CLI's words (checkForEmptyConfig)", () => {
    const c = read("", "a:\nb: x");
    expect(c.config["proj:a"]).toBe("");
    expect(c.warnings).toContain(
      'No value for configuration key "a". This is currently treated as an empty string `""`, but will be treated as `null` in a future version of pulumi.\nSet the value to `""` to avoid this warning.',
    );
  });

  it("reads the old <namespace>:config:<name> form and refuses keys of other shapes (ParseKey)", () => {
    expect(read("", "aws:config:region: eu-west-1").config["aws:region"]).toBe("eu-west-1");
    expect(lineOf(refused("", "a:b:c: x"), "a:b:c")).toContain(
      "could not parse a:b:c as a configuration key (configuration keys should be of the form `<namespace>:<name>`)",
    );
  });

  it("refuses a key set twice, with and without the namespace", () => {
    expect(refused("", "a: x\nproj:a: y").problems.map((p) => p.key)).toEqual(["proj:a"]);
  });
});

describe("all problems at once", () => {
  it("reports missing keys, type errors and secrets together, numbered", () => {
    const err = refused("need:\n  type: string\nn:\n  type: integer\ntoken:\n  type: string\n  secret: true", "n: x\ntoken: plain");
    const lines = err.message.split("\n");
    expect(lines[0]).toBe('stack "dev": 3 problems; the Pulumi CLI would refuse this configuration before running the program:');
    expect(lines.slice(1).map((l) => /^ {2}(\d+)\. (\S+) = /.exec(l)?.slice(1))).toEqual([
      ["1", "proj:need"],
      ["2", "proj:n"],
      ["3", "proj:token"],
    ]);
  });
});

describe("this project", () => {
  it.each(["prod", "scale"])("Pulumi.%s.yaml passes every rule the CLI applies to it (pulumi/pulumi#21797)", (stack) => {
    const c = readStackConfig(ROOT, stack);
    expect(c.config["odoo-stack:domain"]).toBeDefined();
    expect(c.warnings).toEqual([]);
  });
});

describe("a stack file copied from another (copiedStackWarnings)", () => {
  const PROJECT = "name: proj\nruntime: nodejs\nconfig:\n  vpcCidr:\n    type: string\n    default: 10.40.0.0/16\n";
  const stackYaml = (domain: string, env: string, zone = "Z1", cidr?: string) =>
    `config:\n  proj:domain: ${domain}\n  proj:tls: {hostedZoneId: ${zone}}\n  proj:tags: {environment: ${env}}\n${cidr ? `  proj:vpcCidr: ${cidr}\n` : ""}`;
  const write = (stacks: Record<string, string>) => {
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), PROJECT);
    for (const [name, text] of Object.entries(stacks)) fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), text);
  };

  it("warns when the domain and environment tag are another stack's, naming every shared fact", () => {
    write({ prod: stackYaml("erp.acme.eu", "production"), staging: stackYaml("ERP.acme.eu", "production") });
    expect(copiedStackWarnings(dir, "staging")).toEqual([
      'Pulumi.staging.yaml shares domain "erp.acme.eu", tags.environment "production", tls.hostedZoneId "Z1", vpcCidr "10.40.0.0/16" with Pulumi.prod.yaml: copied from it? Two stacks with one domain overwrite each other\'s DNS record and certificate, and one environment tag mislabels costs and alarms; give stack staging its own domain and tags.environment',
    ]);
  });

  it("warns on the environment tag alone", () => {
    write({ prod: stackYaml("erp.acme.eu", "production"), staging: stackYaml("staging.acme.eu", "production", "Z2", "10.41.0.0/16") });
    expect(copiedStackWarnings(dir, "staging")).toEqual([
      expect.stringContaining('shares tags.environment "production" with Pulumi.prod.yaml'),
    ]);
  });

  it("stays quiet when only the hosted zone and the VPC range are shared (normal for two stacks)", () => {
    write({ prod: stackYaml("erp.acme.eu", "production"), staging: stackYaml("staging.acme.eu", "staging") });
    expect(copiedStackWarnings(dir, "staging")).toEqual([]);
  });

  it("is quiet for this project's two example stacks", () => {
    expect(copiedStackWarnings(ROOT, "prod")).toEqual([]);
    expect(copiedStackWarnings(ROOT, "scale")).toEqual([]);
  });
});
