// The settings table (lib/settings.ts) is the one source of every config key: the committed
// Pulumi.yaml `config:` block and README table are what tools/settings-docs.ts renders from it,
// the CLI (as tools/stack-config.ts applies its rules) never requires a key the table calls
// optional, every default Pulumi.yaml declares resolves to what lib/config.ts resolves when the
// key is absent, and every range the table states is the range parseSettings enforces.
import * as fs from "fs";
import * as path from "path";
import { ConfigError, CONFIG_KEYS, DEFAULTS, parseSettings, type RawConfig } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { isOptionalWithoutDefault, SETTING_KEYS, SETTINGS, specOf, type SettingKey, type SettingSpec } from "../../lib/settings";
import {
  declarationOf,
  README,
  renderPulumiYamlConfig,
  renderReadmeTable,
  withPulumiYamlConfig,
  withReadmeTable,
} from "../../tools/settings-docs";
import { applyProjectConfig, loadYamlAsCli } from "../../tools/stack-config";
import { BASE_CONFIG } from "../helpers/fixtures";

const ROOT = path.resolve(__dirname, "..", "..");
const REGION = "eu-west-1";
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const parse = (raw: RawConfig) => parseSettings(raw, REGION, knownInstanceType);

function problemsOf(raw: RawConfig): string[] {
  try {
    parse(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split("\n").slice(1);
    throw e;
  }
  return [];
}
const problemFor = (raw: RawConfig, key: string): string | undefined => problemsOf(raw).find((l) => l.includes(`odoo-stack:${key} = `));

describe("generated files", () => {
  it("Pulumi.yaml's config: block is the one lib/settings.ts renders (npm run settings)", () => {
    const text = read("Pulumi.yaml");
    expect(withPulumiYamlConfig(text)).toBe(text);
    expect(text.endsWith(renderPulumiYamlConfig())).toBe(true);
  });

  it("the README's configuration reference is the table lib/settings.ts renders (npm run settings)", () => {
    const text = fs.readFileSync(README, "utf8");
    expect(withReadmeTable(text)).toBe(text);
    expect(text).toContain(renderReadmeTable());
  });

  it("a hand edit of either file is detected", () => {
    const yamlText = read("Pulumi.yaml").replace("default: 30", "default: 31");
    expect(withPulumiYamlConfig(yamlText)).not.toBe(yamlText);
    const readme = fs.readFileSync(README, "utf8").replace("| 7 to 3650 |", "| 7 to 365 |");
    expect(withReadmeTable(readme)).not.toBe(readme);
  });

  it("Pulumi.yaml declares every key of the table, in its order, and nothing else", () => {
    const project = loadYamlAsCli(read("Pulumi.yaml"), "Pulumi.yaml") as { config: Record<string, unknown> };
    expect(Object.keys(project.config)).toEqual(SETTING_KEYS);
    expect(CONFIG_KEYS).toEqual(SETTING_KEYS);
  });
});

describe("the table itself", () => {
  it.each(SETTING_KEYS)("%s is required, has a default, is derived, or says what unset means — exactly one", (key) => {
    const spec: SettingSpec = specOf(key);
    expect(
      [spec.required !== undefined, spec.default !== undefined, spec.derived !== undefined, spec.unset !== undefined].filter(Boolean),
    ).toHaveLength(1);
    expect(spec.description).toMatch(/^[A-Za-z"`].*\.$/s);
  });

  it("refuses to declare an optional secret key (the CLI would store its default as plain text and refuse it)", () => {
    expect(() => declarationOf({ kind: "string", description: "A token.", unset: "none", secret: true })).toThrow(
      "a secret key must be required",
    );
    expect(declarationOf({ kind: "string", description: "A token.", required: true, secret: true })).toEqual({
      type: "string",
      secret: true,
      description: "A token. Required.",
    });
  });

  it("declares an optional boolean or integer untyped with an empty default, which the CLI does not type-check", () => {
    expect(declarationOf({ kind: "boolean", description: "A flag.", derived: "from x" })).toEqual({
      default: "",
      description: "A flag. true or false. Optional: when unset, from x.",
    });
  });
});

// The CLI's view: the committed Pulumi.yaml with a stack that sets only what is required.
const REQUIRED_ONLY = { domain: BASE_CONFIG.domain, tls: BASE_CONFIG.tls };
function throughTheCli(stackConfig: Record<string, unknown>): RawConfig {
  const applied = applyProjectConfig(loadYamlAsCli(read("Pulumi.yaml"), "Pulumi.yaml"), { config: stackConfig }, "t");
  expect(applied.problems).toEqual([]);
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(applied.config)) if (k.startsWith("odoo-stack:")) raw[k.slice("odoo-stack:".length)] = v;
  return raw;
}

describe("Pulumi.yaml's defaults, through the CLI's rules, are lib/config.ts's defaults", () => {
  it("a stack that sets only the required keys passes the CLI and resolves to the settings of an absent-key config", () => {
    expect(parse(throughTheCli(REQUIRED_ONLY))).toEqual(parse(REQUIRED_ONLY));
  });

  it.each(SETTING_KEYS.filter((k) => !specOf(k).required))("the CLI does not require %s", (key) => {
    const applied = applyProjectConfig(loadYamlAsCli(read("Pulumi.yaml"), "Pulumi.yaml"), { config: REQUIRED_ONLY }, "t");
    expect(applied.problems.filter((p) => p.key === `odoo-stack:${key}`)).toEqual([]);
  });

  it.each(SETTING_KEYS.filter((k) => specOf(k).required))("the CLI requires %s", (key) => {
    const stack = Object.fromEntries(Object.entries(REQUIRED_ONLY).filter(([k]) => k !== key));
    const applied = applyProjectConfig(loadYamlAsCli(read("Pulumi.yaml"), "Pulumi.yaml"), { config: stack }, "t");
    expect(applied.problems.map((p) => p.cli)).toEqual([`Stack 't' is missing configuration value '${key}'`]);
  });

  it.each(SETTING_KEYS.filter((k) => isOptionalWithoutDefault(specOf(k)) && k !== "domain"))(
    "%s's declared empty default means unset",
    (key) => {
      const declared = declarationOf(specOf(key)).default;
      expect(parse({ ...BASE_CONFIG, [key]: declared })).toEqual(parse(BASE_CONFIG));
    },
  );

  it("domain's declared empty default means unset, which the object form of databases needs (issue 16)", () => {
    const objectForm: RawConfig = { tls: BASE_CONFIG.tls, databases: [{ name: "erp", domain: "erp.example.com" }] };
    expect(parse({ ...objectForm, domain: declarationOf(specOf("domain")).default })).toEqual(parse(objectForm));
    expect(parse(objectForm)).toEqual(parse(BASE_CONFIG));
  });

  it("DEFAULTS holds every static default of the table, and the instance types by role", () => {
    for (const key of SETTING_KEYS) {
      const spec: SettingSpec = specOf(key);
      if (spec.default !== undefined) expect([key, (DEFAULTS as Record<string, unknown>)[key]]).toEqual([key, spec.default]);
    }
    expect(DEFAULTS.instanceTypes).toEqual({ proxy: "t3.small", odoo: "m6i.xlarge", pgbouncer: "t3.small", postgres: "r6i.large" });
  });
});

describe("the range the table states is the range parseSettings enforces", () => {
  const integerKeys = SETTING_KEYS.filter((k) => {
    const r = specOf(k).range;
    return r !== undefined && "min" in r;
  });

  it("covers every integer key", () => {
    expect(integerKeys.sort()).toEqual(SETTING_KEYS.filter((k) => specOf(k).kind === "integer").sort());
  });

  it.each(integerKeys)("%s: min and max accepted, one below and one above refused with the range", (key) => {
    const { min, max } = specOf(key).range as { min: number; max: number };
    for (const ok of [min, max]) expect(problemFor({ ...BASE_CONFIG, [key]: ok }, key)).toBeUndefined();
    for (const bad of [min - 1, max + 1])
      expect(problemFor({ ...BASE_CONFIG, [key]: bad }, key)).toContain(`must be a whole number from ${min} to ${max}`);
  });

  const oneOfKeys = SETTING_KEYS.filter((k) => {
    const r = specOf(k).range;
    return r !== undefined && "oneOf" in r;
  });
  it.each(oneOfKeys)("%s: each listed value accepted, another refused", (key) => {
    const { oneOf } = specOf(key).range as { oneOf: readonly string[] };
    const needs: RawConfig = key === "postgresEngine" ? { backupRetentionDays: 35 } : {};
    for (const ok of oneOf) expect(problemFor({ ...BASE_CONFIG, ...needs, [key]: ok }, key)).toBeUndefined();
    expect(problemFor({ ...BASE_CONFIG, [key]: "other" }, key)).toBeDefined();
  });

  it("vpcCidr: the prefix range", () => {
    const { min, max } = SETTINGS.vpcCidr.range.prefix;
    // A /24 leaves no room for the default /20s: four /26s, two public and two private.
    const small = { publicSubnetCidrs: ["10.40.0.0/26", "10.40.0.64/26"], privateSubnetCidrs: ["10.40.0.128/26", "10.40.0.192/26"] };
    expect(problemsOf({ ...BASE_CONFIG, vpcCidr: `10.40.0.0/${min}` })).toEqual([]);
    expect(problemsOf({ ...BASE_CONFIG, vpcCidr: `10.40.0.0/${max}`, ...small })).toEqual([]);
    expect(problemFor({ ...BASE_CONFIG, vpcCidr: `10.40.0.0/${min - 1}` }, "vpcCidr")).toContain(
      `must have a prefix from /${min} to /${max}`,
    );
    expect(problemFor({ ...BASE_CONFIG, vpcCidr: `10.40.0.0/${max + 1}` }, "vpcCidr")).toContain(
      `must have a prefix from /${min} to /${max}`,
    );
  });

  it.each(["publicSubnetCidrs", "privateSubnetCidrs"] as const)("%s: each subnet at most the stated prefix", (key) => {
    const max = SETTINGS[key].range.prefix.max;
    const other = key === "publicSubnetCidrs" ? "privateSubnetCidrs" : "publicSubnetCidrs";
    const otherCidrs = key === "publicSubnetCidrs" ? ["10.40.128.0/20", "10.40.144.0/20"] : ["10.40.0.0/20", "10.40.16.0/20"];
    const base = key === "publicSubnetCidrs" ? "10.40.64" : "10.40.192";
    expect(problemsOf({ ...BASE_CONFIG, [other]: otherCidrs, [key]: [`${base}.0/${max}`, `${base}.128/${max}`] })).toEqual([]);
    expect(
      problemFor({ ...BASE_CONFIG, [other]: otherCidrs, [key]: [`${base}.0/${max + 1}`, `${base}.128/${max}`] }, `${key}[0]`),
    ).toContain(`must be /${max} or larger`);
  });

  it("tags: at most the stated number of entries", () => {
    const n = SETTINGS.tags.range.maxEntries;
    const tags = (k: number) => Object.fromEntries(Array.from({ length: k }, (_, i) => [`t${i}`, "v"]));
    expect(problemFor({ ...BASE_CONFIG, tags: tags(n) }, "tags")).toBeUndefined();
    expect(problemFor({ ...BASE_CONFIG, tags: tags(n + 1) }, "tags")).toContain(`must hold at most ${n} tags`);
  });

  it.each(["odoo", "pgbouncer", "postgres"] as const)("%s: exactly the stated keys (lib/sizing.ts's interface) are allowed", (key) => {
    const fields = SETTINGS[key].range.fields;
    expect(problemFor({ ...BASE_CONFIG, [key]: { nope: 1 } }, `${key}.nope`)).toContain(`allowed: ${[...fields].sort().join(", ")}`);
  });
});

describe("optional keys declared with the empty value of their kind", () => {
  it.each([
    ["mail", {}],
    ["bastionSecurityGroupId", ""],
    ["alarmEmail", ""],
    ["publicSubnetCidrs", []],
    ["privateSubnetCidrs", "[]"],
    ["sharedFilestore", ""],
  ] as [SettingKey, unknown][])("%s = %j is unset", (key, value) => {
    expect(parse({ ...BASE_CONFIG, [key]: value })).toEqual(parse(BASE_CONFIG));
  });

  it("a key WITH a default keeps refusing its empty value (databases: [] names no database)", () => {
    expect(problemFor({ ...BASE_CONFIG, databases: [] }, "databases")).toContain("must name at least one Odoo database");
    expect(problemFor({ ...BASE_CONFIG, domain: "" }, "domain")).toBeDefined();
  });
});
