// Reads Pulumi.yaml and Pulumi.<stack>.yaml into the config map the CLI hands a program
// (PULUMI_CONFIG: "namespace:key" → string, objects and arrays as JSON), applying the Pulumi
// CLI's project-config rules as the CLI does before it runs a program, so the offline plan
// refuses what `pulumi preview`/`pulumi up` would refuse and runs the program with what they
// would give it. Every rule cites the CLI source it mirrors (pulumi/pulumi v3.259.0, commit
// 1b5949891b; the config rules moved from sdk/go/common/workspace/config.go to
// pkg/workspace/config.go in pulumi/pulumi#23978, unchanged):
//   - loading Pulumi.yaml: sdk/go/common/workspace/loaders.go LoadProjectBytes → ValidateProject
//     (the JSON schema sdk/go/common/workspace/project.json), RewriteShorthandConfigValues and
//     Project.Validate (project.go);
//   - loading Pulumi.<stack>.yaml: loaders.go LoadProjectStackBytes (stackConfigNamespacedWithProject,
//     checkForEmptyConfig), sdk/go/common/resource/config/key.go ParseKey, value.go/object.go (how
//     a YAML value becomes a config value: scalars as text, maps and lists as JSON, `secure:`);
//   - before the program runs: pkg/cmd/pulumi/operations/up.go and preview.go call
//     pkg/workspace/config.go ValidateStackConfigAndApplyProjectConfig → mergeConfig (required
//     keys, defaults) and validateStackConfigValues/validateStackConfigValue (`secret: true`,
//     declared types via project.go ValidateConfigValue).
// The CLI stops at the first failing stage (and the first type error); this reports every
// problem at once, each in the CLI's words with the key, the value and the fix.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as jsyaml from "js-yaml";
import { parseSettings } from "../lib/config";
import { knownInstanceType } from "../lib/instance-types";
import { buildModel, type StackModel } from "../lib/model";
import { problemsMessage } from "../lib/problems";

export interface StackConfig {
  readonly project: string;
  readonly stack: string;
  /** "namespace:key" → the string the program's pulumi.Config reads. */
  readonly config: Readonly<Record<string, string>>;
  /** Keys whose value is a secret (`secure:` in the stack file). */
  readonly secretKeys: readonly string[];
  /** What the CLI warns about, and what the plan could not do as the CLI would (an ESC environment, a `secure:` value). */
  readonly warnings: readonly string[];
}

/** One thing the CLI would refuse. */
export interface CliConfigProblem {
  /** The config key ("odoo-stack:domain", "aws:region"), or the file for a file-level problem. */
  readonly key: string;
  /** The value as the CLI sees it; undefined when not set. */
  readonly value: unknown;
  /** The CLI's own message for it. */
  readonly cli: string;
  readonly fix: string;
}

export class StackConfigError extends Error {
  constructor(
    readonly stack: string,
    readonly problems: readonly CliConfigProblem[],
  ) {
    super(formatCliProblems(stack, problems));
    this.name = "StackConfigError";
  }
}

const SECURE_SHOWN = "[secure]";

export function formatCliProblems(stack: string, problems: readonly CliConfigProblem[]): string {
  const shown = (v: unknown) => (v === undefined ? "(not set)" : JSON.stringify(v));
  const lines = problems.map((p) => `${p.key} = ${shown(p.value)}: ${p.cli}; ${p.fix}`);
  return problemsMessage(`stack "${stack}"`, lines, { note: "the Pulumi CLI would refuse this configuration before running the program" });
}

// ---------------------------------------------------------------------------------------------
// YAML as the CLI reads it (gopkg.in/yaml.v3 into `any`, sdk/go/common/encoding/marshal.go):
// YAML 1.2 core booleans and nulls, merge keys, no timestamps (yaml.v3 keeps a timestamp-looking
// scalar a string when decoding into `any`), and yaml.v3's own number rules (resolve.go):
// underscores dropped, Go's base prefixes (0x, 0o, 0b, and 0777 as octal), and floats such as
// `17.0` — the number 17.

const GO_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const GO_INT = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;

/**
 * yaml.v3 resolve(): the number a plain scalar is, or undefined when it stays text. Int or float
 * matters not here: both become JSON numbers (object.go MarshalString).
 */
export function goYamlNumber(text: string): number | undefined {
  // Hint '.': strconv.ParseFloat.
  if (text.startsWith(".")) return /^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(text) ? Number(text) : undefined;
  // Hints 'D' and 'S' (a digit or a sign); anything else is text.
  if (!/^[-+0-9]/.test(text)) return undefined;
  // A timestamp is tried first, and into `any` yaml.v3 keeps it as text.
  if (/^[0-9]{4}-/.test(text)) return undefined;
  const plain = text.replace(/_/g, "");
  // strconv.ParseInt(plain, 0, 64): Go's base prefixes, a leading 0 meaning octal.
  const int = GO_INT.exec(plain);
  if (int) {
    const d = int[2];
    const n = /^0[xX]/.test(d)
      ? parseInt(d.slice(2), 16)
      : /^0[oO]/.test(d)
        ? parseInt(d.slice(2), 8)
        : /^0[bB]/.test(d)
          ? parseInt(d.slice(2), 2)
          : d.length > 1 && d.startsWith("0")
            ? parseInt(d.slice(1), 8)
            : Number(d);
    return int[1] === "-" ? -n : n;
  }
  return GO_FLOAT.test(plain) ? Number(plain) : undefined;
}

const INFINITIES: Readonly<Record<string, number>> = {
  ".inf": Infinity,
  ".Inf": Infinity,
  ".INF": Infinity,
  "+.inf": Infinity,
  "+.Inf": Infinity,
  "+.INF": Infinity,
  "-.inf": -Infinity,
  "-.Inf": -Infinity,
  "-.INF": -Infinity,
  ".nan": NaN,
  ".NaN": NaN,
  ".NAN": NaN,
};
const goNumberType = (tag: string) =>
  new jsyaml.Type(tag, {
    kind: "scalar",
    resolve: (data: string | null) => data !== null && (data in INFINITIES || goYamlNumber(data) !== undefined),
    construct: (data: string) => (data in INFINITIES ? INFINITIES[data] : goYamlNumber(data)),
  });
// js-yaml 4 exports its built-in types; @types/js-yaml does not declare them.
const YAML_TYPES = (jsyaml as unknown as { types: Readonly<Record<"null" | "bool" | "merge", jsyaml.Type>> }).types;
/** The schema yaml.v3 reads config with: core null and bool, Go numbers, merge keys. */
export const CLI_YAML_SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    YAML_TYPES.null,
    YAML_TYPES.bool,
    goNumberType("tag:yaml.org,2002:int"),
    goNumberType("tag:yaml.org,2002:float"),
    YAML_TYPES.merge,
  ],
});

export function loadYamlAsCli(text: string, file: string): unknown {
  return jsyaml.load(text, { filename: file, schema: CLI_YAML_SCHEMA });
}

// ---------------------------------------------------------------------------------------------
// Config values as the CLI holds them (sdk/go/common/resource/config/object.go)

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** object.go isSecureValue: a map of exactly one key, `secure`, whose value is a string. */
const isSecure = (v: unknown): v is { secure: string } => isRecord(v) && Object.keys(v).length === 1 && typeof v.secure === "string";

/** object.go Secure(): the value is, or holds, a `secure:` value. */
const holdsSecure = (v: unknown): boolean =>
  isSecure(v) || (Array.isArray(v) ? v.some(holdsSecure) : isRecord(v) && Object.values(v).some(holdsSecure));

/** A stack value: its text (what PULUMI_CONFIG carries) and whether the CLI holds it as an object (JSON). */
interface CliValue {
  readonly raw: unknown;
  /** object.go MarshalString: scalars as text (booleans and numbers as JSON), maps and lists as JSON. */
  readonly object: boolean;
  readonly secure: boolean;
}

const cliValueOf = (raw: unknown): CliValue => ({
  raw,
  object: !isSecure(raw) && (Array.isArray(raw) || isRecord(raw)),
  secure: holdsSecure(raw),
});

/** The CLI's string form of a config value: strings as they are, everything else as JSON. */
export const configString = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));

/** Go's encoding/json refuses NaN and ±Inf (json: unsupported value), so the CLI cannot hold them. */
const hasNonFinite = (v: unknown): boolean =>
  typeof v === "number"
    ? !Number.isFinite(v)
    : Array.isArray(v)
      ? v.some(hasNonFinite)
      : isRecord(v) && Object.values(v).some(hasNonFinite);

// ---------------------------------------------------------------------------------------------
// Types (sdk/go/common/workspace/project.go ValidateConfigValue, InferFullTypeName)

const CONFIG_TYPES = ["string", "integer", "boolean", "array", "object"] as const;

interface ItemsType {
  readonly type: string;
  readonly items?: ItemsType;
}

/** "array<string>" for an array of strings, the type's name otherwise. */
export const fullTypeName = (type: string, items?: ItemsType): string => (items ? `array<${fullTypeName(items.type, items.items)}>` : type);

const GO_INT_MIN = -(2n ** 63n);
const GO_INT_MAX = 2n ** 63n - 1n;
/** strconv.Atoi: an optional sign and decimal digits, within int64. */
const atoiOk = (s: string): boolean => /^[-+]?[0-9]+$/.test(s) && BigInt(s) >= GO_INT_MIN && BigInt(s) <= GO_INT_MAX;

/**
 * ValidateConfigValue: does `value` (a string for a scalar stack value, parsed JSON for an
 * object value, the YAML value for a default) have the declared type? Undefined when a
 * `secure:` value decides it, which only the CLI can decrypt.
 */
export function matchesConfigType(type: string, items: ItemsType | undefined, value: unknown): boolean | undefined {
  if (isSecure(value)) return type === "string" ? true : type === "integer" || type === "boolean" ? undefined : false;
  switch (type) {
    case "string":
      return typeof value === "string";
    case "integer":
      // Go's YAML gives whole numbers as int, JSON as float64 (accepted when whole), and text that strconv.Atoi parses.
      return (typeof value === "number" && Number.isInteger(value)) || (typeof value === "string" && atoiOk(value));
    case "boolean":
      return typeof value === "boolean" || value === "true" || value === "false";
    case "object":
      return isRecord(value);
    default: {
      // "array", or anything else: only a list whose items have the items type passes.
      if (!Array.isArray(value) || items === undefined) return false;
      let unknown = false;
      for (const item of value) {
        const ok = matchesConfigType(items.type, items.items, item);
        if (ok === false) return false;
        if (ok === undefined) unknown = true;
      }
      return unknown ? undefined : true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pulumi.yaml's `config:` block

interface Declaration {
  readonly type?: string;
  readonly items?: ItemsType;
  readonly default?: unknown;
  readonly value?: unknown;
  readonly secret?: boolean;
  readonly description?: string;
}

const DECLARATION_FIELDS = ["type", "items", "description", "secret", "default", "value"];

/** config/key.go ParseKey: `<namespace>:<name>`, or the old `<namespace>:config:<name>`. */
export function parseConfigKey(key: string): { readonly namespace: string; readonly name: string } | undefined {
  const parts = key.split(":");
  if (parts.length === 2) return { namespace: parts[0], name: parts[1] };
  if (parts.length === 3 && parts[1] === "config" && parts[0] !== "" && parts[2] !== "") return { namespace: parts[0], name: parts[2] };
  return undefined;
}

const keyParseError = (key: string) =>
  `could not parse ${key} as a configuration key (configuration keys should be of the form \`<namespace>:<name>\`)`;

/** project.json configItemsType: {type, items?}, type a simple type (or itself an items type), items required for arrays. */
function itemsProblem(items: unknown): string | undefined {
  if (!isRecord(items) || !("type" in items)) return "'items' must be a map with a 'type'";
  const t = items.type;
  if (isRecord(t)) return itemsProblem(t);
  if (typeof t !== "string" || !(CONFIG_TYPES as readonly string[]).includes(t))
    return `'items.type' must be one of ${CONFIG_TYPES.join(", ")}`;
  if (t === "array" && items.items === undefined) return "'items' of type array must have 'items'";
  return items.items === undefined ? undefined : itemsProblem(items.items);
}

interface ProjectReading {
  readonly name: string;
  readonly declarations: ReadonlyMap<string, Declaration>;
  readonly problems: readonly CliConfigProblem[];
}

/** Pulumi.yaml as LoadProjectBytes reads it: schema, shorthand rewrite, Project.Validate. */
export function readProject(doc: unknown, file = "Pulumi.yaml"): ProjectReading {
  const problems: CliConfigProblem[] = [];
  const declarations = new Map<string, Declaration>();
  const problem = (key: string, value: unknown, cli: string, fix: string) => problems.push({ key, value, cli, fix });
  if (!isRecord(doc)) {
    problem(
      file,
      doc,
      `expected project to be an object, was '${Array.isArray(doc) ? "[]interface {}" : typeof doc}'`,
      `make ${file} a YAML mapping`,
    );
    return { name: "", declarations, problems };
  }
  if (!("name" in doc)) problem(`${file} name`, undefined, "project is missing a 'name' attribute", `add name: to ${file}`);
  else if (typeof doc.name !== "string" || doc.name === "")
    problem(`${file} name`, doc.name, "project is missing a non-empty string 'name' attribute", `set name: in ${file}`);
  const name = typeof doc.name === "string" ? doc.name : "";
  const config = doc.config;
  // A string here is the deprecated stack config directory (RewriteConfigPathIntoStackConfigDir).
  if (config === undefined || config === null || typeof config === "string") return { name, declarations, problems };
  if (!isRecord(config)) {
    problem(`${file} config`, config, "config: expected object, string or null", "write config: as a map of key → declaration");
    return { name, declarations, problems };
  }
  const namespacedByProject = (key: string) => !key.includes(":") || key.startsWith(`${name}:`);
  for (const [key, entry] of Object.entries(config)) {
    const where = `${file} config.${key}`;
    // The schema: a key literally named "secret" must be a boolean; every other entry a string,
    // integer, boolean, list, or a declaration map of known fields.
    if (key === "secret" && typeof entry !== "boolean") {
      problem(where, entry, "config.secret: expected boolean", "rename the key: project.json reserves config.secret");
      continue;
    }
    const shorthand =
      typeof entry === "string" ||
      typeof entry === "boolean" ||
      (typeof entry === "number" && Number.isInteger(entry)) ||
      Array.isArray(entry);
    if (!shorthand && !isRecord(entry)) {
      problem(
        where,
        entry,
        `config.${key}: expected string, integer, boolean, array or a declaration`,
        "give the key a declaration {type, default, description, …} or a default value",
      );
      continue;
    }
    let decl: Declaration;
    if (shorthand) {
      // RewriteShorthandConfigValues: a bare value is a default for a project key, a value for another namespace.
      decl = namespacedByProject(key) ? { default: entry } : { value: entry };
    } else {
      const record = entry as Record<string, unknown>;
      const unknownFields = Object.keys(record).filter((f) => !DECLARATION_FIELDS.includes(f));
      if (unknownFields.length > 0) {
        problem(
          where,
          entry,
          `config.${key}: additional properties ${unknownFields.map((f) => `'${f}'`).join(", ")} not allowed`,
          `a declaration takes only ${DECLARATION_FIELDS.join(", ")}; state ranges in the description`,
        );
        continue;
      }
      if (record.type !== undefined && (typeof record.type !== "string" || !(CONFIG_TYPES as readonly string[]).includes(record.type))) {
        problem(
          where,
          record.type,
          `config.${key}.type: value must be one of ${CONFIG_TYPES.map((t) => `"${t}"`).join(", ")}`,
          "use one of the CLI's config types",
        );
        continue;
      }
      const itemsIssue = record.items === undefined ? undefined : itemsProblem(record.items);
      if (itemsIssue) {
        problem(where, record.items, `config.${key}: ${itemsIssue}`, "declare items as {type: string} (or another config type)");
        continue;
      }
      if (record.description !== undefined && typeof record.description !== "string") {
        problem(where, record.description, `config.${key}.description: expected string`, "write the description as text");
        continue;
      }
      if (record.secret !== undefined && typeof record.secret !== "boolean") {
        problem(where, record.secret, `config.${key}.secret: expected boolean`, "write secret: true or false");
        continue;
      }
      decl = record as Declaration;
    }
    if (key.includes(":") && parseConfigKey(key) === undefined) {
      problem(where, entry, keyParseError(key), "name the key <name> (this project) or <namespace>:<name>");
      continue;
    }
    // Project.Validate.
    if (decl.default !== undefined && decl.value !== undefined) {
      problem(where, entry, `project config '${key}' cannot have both a 'default' and 'value' attribute`, "keep one of them");
      continue;
    }
    if (namespacedByProject(key)) {
      if (decl.type === "array" && decl.items === undefined) {
        problem(
          where,
          entry,
          `The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`,
          "add items: {type: string} (or another type)",
        );
        continue;
      }
      if (
        decl.type !== undefined &&
        decl.default !== undefined &&
        decl.default !== null &&
        matchesConfigType(decl.type, decl.items, decl.default) === false
      ) {
        problem(
          where,
          decl.default,
          `The default value specified for configuration key '${key}' is not of the expected type '${fullTypeName(decl.type, decl.items)}'`,
          "make the default match the declared type",
        );
        continue;
      }
    } else {
      if (decl.type !== undefined) {
        problem(
          where,
          entry,
          `Configuration key '${key}' is not namespaced by the project and should not define a type`,
          `drop the type, or name the key without a namespace to make it a setting of ${name}`,
        );
        continue;
      }
      if (decl.default !== undefined) {
        problem(
          where,
          entry,
          `Configuration key '${key}' is not namespaced by the project and should not define a default value. Did you mean to use the 'value' attribute instead of 'default'?`,
          "use value:",
        );
        continue;
      }
      if (decl.value === undefined || decl.value === null) {
        problem(
          where,
          entry,
          `Configuration key '${key}' is namespaced and must provide an attribute 'value'`,
          "give it value: (the value every stack gets unless it sets its own)",
        );
        continue;
      }
    }
    declarations.set(key, decl);
  }
  return { name, declarations, problems };
}

// ---------------------------------------------------------------------------------------------
// The stack: what the program receives

export interface AppliedConfig extends StackConfig {
  readonly problems: readonly CliConfigProblem[];
}

/**
 * Applies the CLI's rules to a project and a stack document (both as read by loadYamlAsCli).
 * `stackFile` names the stack file in messages. Pure; readStackConfig reads the files.
 */
export function applyProjectConfig(
  projectDoc: unknown,
  stackDoc: unknown,
  stack: string,
  stackFile = `Pulumi.${stack}.yaml`,
): AppliedConfig {
  const project = readProject(projectDoc);
  const problems: CliConfigProblem[] = [...project.problems];
  const warnings: string[] = [];
  const projectName = project.name;
  const problem = (key: string, value: unknown, cli: string, fix: string) => problems.push({ key, value, cli, fix });

  // LoadProjectStackBytes.
  const values = new Map<string, CliValue>();
  let environment = false;
  if (stackDoc !== undefined && stackDoc !== null) {
    if (!isRecord(stackDoc)) {
      problem(stackFile, stackDoc, "expected project to be an object", `make ${stackFile} a YAML mapping with a config: map`);
    } else {
      environment = stackDoc.environment !== undefined;
      const config = stackDoc.config ?? {};
      if (!isRecord(config)) {
        problem(`${stackFile} config`, config, "config: expected a map of key → value", "write config: as a map");
      } else {
        const empty: string[] = [];
        for (const [rawKey, rawValue] of Object.entries(config)) {
          // stackConfigNamespacedWithProject: a key without a namespace is the project's.
          const key = rawKey.includes(":") ? rawKey : `${projectName}:${rawKey}`;
          const parsed = parseConfigKey(key);
          if (!parsed) {
            problem(rawKey, rawValue, keyParseError(key), "name it <name> (this project's) or <namespace>:<name>");
            continue;
          }
          const canonical = `${parsed.namespace}:${parsed.name}`;
          if (values.has(canonical)) {
            problem(
              canonical,
              rawValue,
              `configuration key '${canonical}' is set twice (as ${rawKey} and with or without its namespace)`,
              `keep one in ${stackFile}`,
            );
            continue;
          }
          if (rawValue === null) {
            // checkForEmptyConfig warns; yaml.v3 leaves the zero value, an empty string.
            empty.push(rawKey);
            values.set(canonical, cliValueOf(""));
            continue;
          }
          if (hasNonFinite(rawValue)) {
            problem(
              canonical,
              String(rawValue),
              "json: unsupported value (the CLI cannot hold NaN or infinity)",
              "write a finite number, or quote it",
            );
            continue;
          }
          values.set(canonical, cliValueOf(rawValue));
        }
        if (empty.length > 0) {
          const keys = empty.map((k) => `"${k}"`);
          const plural = empty.length === 1 ? "" : "s";
          warnings.push(
            `No value for configuration key${plural} ${keys.length === 2 ? keys.join(" and ") : keys.join(", ")}. This is currently treated as an empty string \`""\`, but will be treated as \`null\` in a future version of pulumi.\nSet the value${plural} to \`""\` to avoid this warning.`,
          );
        }
      }
    }
  }
  if (environment) warnings.push(`${stackFile} imports an ESC environment, which the offline plan cannot open; its values are missing`);

  // mergeConfig: required keys and defaults, project keys in sorted order.
  // parseConfigKey (config.go): a declared key without a namespace is the project's.
  const declaredKey = (key: string): string => {
    const parsed = parseConfigKey(key.includes(":") ? key : `${projectName}:${key}`);
    return parsed ? `${parsed.namespace}:${parsed.name}` : key;
  };
  const sorted = [...project.declarations.keys()].sort();
  const missing: string[] = [];
  const defaulted = new Set<string>();
  for (const key of sorted) {
    const decl = project.declarations.get(key)!;
    const full = declaredKey(key);
    const hasDefault = decl.default !== undefined && decl.default !== null;
    const hasValue = decl.value !== undefined && decl.value !== null;
    if (values.has(full)) continue;
    if (!hasDefault && !hasValue) {
      if (full.startsWith(`${projectName}:`)) missing.push(key);
      continue;
    }
    values.set(full, cliValueOf(hasDefault ? decl.default : decl.value));
    defaulted.add(full);
  }
  for (const key of missing) {
    problem(
      declaredKey(key),
      undefined,
      `Stack '${stack}' is missing configuration value '${key}'`,
      `set it in ${stackFile}, or give it a default in Pulumi.yaml`,
    );
  }

  // validateStackConfigValues / validateStackConfigValue: explicitly typed keys only.
  for (const key of sorted) {
    const decl = project.declarations.get(key)!;
    const full = declaredKey(key);
    const v = values.get(full);
    if (v === undefined) continue; // reported missing above; the CLI stops there
    const shown = v.secure ? SECURE_SHOWN : v.raw;
    if (decl.secret === true && !v.secure) {
      problem(
        full,
        shown,
        `Stack '${stack}' with configuration key '${key}' must be encrypted as it's secret`,
        defaulted.has(full)
          ? "a default is stored as plain text: drop the default from Pulumi.yaml and set it with pulumi config set --secret"
          : `set it with pulumi config set --secret ${key} (a secure: value in ${stackFile})`,
      );
      continue;
    }
    if (decl.type === undefined) continue;
    // A scalar reaches the type check as its text; a map or list as parsed JSON.
    const content = v.object ? v.raw : isSecure(v.raw) ? v.raw : configString(v.raw);
    const ok = matchesConfigType(decl.type, decl.items, content);
    if (ok === undefined) {
      warnings.push(
        `${full} is a secure value declared ${fullTypeName(decl.type, decl.items)}; only the CLI can decrypt it to check its type`,
      );
    } else if (!ok) {
      problem(
        full,
        shown,
        `Stack '${stack}' with configuration key '${key}' must be of type '${fullTypeName(decl.type, decl.items)}'`,
        `fix it in ${stackFile}`,
      );
    }
  }

  const secretKeys = [...values]
    .filter(([, v]) => v.secure)
    .map(([k]) => k)
    .sort();
  for (const key of secretKeys) {
    warnings.push(`${key} is a secure value, which only the Pulumi CLI can decrypt; this plan used a value generated for the run`);
  }
  // `secure:` values are encrypted with the stack's secrets provider, which needs the CLI:
  // offline they are replaced by a value generated for this run, kept secret.
  const decrypted = (raw: unknown): unknown =>
    isSecure(raw)
      ? crypto.randomBytes(24).toString("base64url")
      : Array.isArray(raw)
        ? raw.map(decrypted)
        : isRecord(raw)
          ? Object.fromEntries(Object.entries(raw).map(([k, x]) => [k, decrypted(x)]))
          : raw;
  const config = Object.fromEntries(
    [...values].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, configString(decrypted(v.raw))]),
  );
  return { project: projectName, stack, config, secretKeys, warnings, problems };
}

/** The stack names of the Pulumi.<stack>.yaml files in `dir`. */
export function stackNames(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/** Where the stack files live: stackConfigDir, or a string `config:` (deprecated), else beside Pulumi.yaml. */
function stackConfigDir(rootDir: string, projectDoc: unknown): string {
  const dir = isRecord(projectDoc)
    ? typeof projectDoc.stackConfigDir === "string"
      ? projectDoc.stackConfigDir
      : typeof projectDoc.config === "string"
        ? projectDoc.config
        : undefined
    : undefined;
  return dir === undefined ? rootDir : path.resolve(rootDir, dir);
}

function readYamlFile(file: string): unknown {
  // loaders.go readFileStripUTF8BOM.
  return loadYamlAsCli(fs.readFileSync(file, "utf8").replace(/^\uFEFF/, ""), file);
}

/** The stack file of `stack` in the project at `rootDir`, and the project document. */
export function stackFiles(rootDir: string, stack: string): { readonly projectDoc: unknown; readonly stackFile: string } {
  const projectFile = path.join(rootDir, "Pulumi.yaml");
  if (!fs.existsSync(projectFile)) throw new Error(`${projectFile} does not exist`);
  const projectDoc = readYamlFile(projectFile);
  const dir = stackConfigDir(rootDir, projectDoc);
  const stackFile = [".yaml", ".yml"].map((ext) => path.join(dir, `Pulumi.${stack}${ext}`)).find((f) => fs.existsSync(f));
  if (stackFile === undefined) {
    throw new Error(
      `stack "${stack}" has no settings file ${path.join(dir, `Pulumi.${stack}.yaml`)}; stacks here: ${stackNames(dir).join(", ") || "none"}`,
    );
  }
  return { projectDoc, stackFile };
}

/** Reads the project in `rootDir` and its stack `stack`; throws StackConfigError listing what the CLI would refuse. */
export function readStackConfig(rootDir: string, stack: string): StackConfig {
  const { projectDoc, stackFile } = stackFiles(rootDir, stack);
  const applied = applyProjectConfig(projectDoc, readYamlFile(stackFile), stack, path.basename(stackFile));
  if (applied.problems.length > 0) throw new StackConfigError(stack, applied.problems);
  const { problems: _problems, ...config } = applied;
  return config;
}

// ---------------------------------------------------------------------------------------------
// A stack file copied from another one

/** What identifies a deployment; two stacks sharing the domain or the environment tag are suspect. */
const STACK_FACTS = [
  { name: "domain", decisive: true, of: (c: Readonly<Record<string, unknown>>) => c.domain },
  {
    name: "tags.environment",
    decisive: true,
    of: (c: Readonly<Record<string, unknown>>) => (isRecord(c.tags) ? c.tags.environment : undefined),
  },
  {
    name: "tls.hostedZoneId",
    decisive: false,
    of: (c: Readonly<Record<string, unknown>>) => (isRecord(c.tls) ? c.tls.hostedZoneId : undefined),
  },
  { name: "vpcCidr", decisive: false, of: (c: Readonly<Record<string, unknown>>) => c.vpcCidr },
] as const;

/** The project's keys of an applied config, objects parsed. */
function projectValues(applied: StackConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(applied.config)) {
    if (!k.startsWith(`${applied.project}:`)) continue;
    let value: unknown = v;
    try {
      value = /^\s*[[{]/.test(v) ? JSON.parse(v) : v;
    } catch {
      // kept as text
    }
    out[k.slice(applied.project.length + 1)] = typeof value === "string" ? value.trim().toLowerCase() : value;
  }
  return out;
}

/**
 * Warnings for a stack file that looks copied from another stack of the project: it shares the
 * domain or the `environment` tag with it (two stacks with one domain overwrite each other's DNS
 * record and certificate; one environment tag mislabels costs and alarms). The hosted zone and
 * the VPC range are named too when shared, but alone they are normal (stacks share a zone; VPCs
 * that never peer may share a range). The CLI does not check this; the offline plan does.
 */
export function copiedStackWarnings(rootDir: string, stack: string): string[] {
  const { projectDoc, stackFile } = stackFiles(rootDir, stack);
  const dir = path.dirname(stackFile);
  const factsOf = (name: string, file: string) =>
    projectValues(applyProjectConfig(projectDoc, readYamlFile(file), name, path.basename(file)));
  const mine = factsOf(stack, stackFile);
  const warnings: string[] = [];
  for (const other of stackNames(dir).filter((s) => s !== stack)) {
    const otherFile = [".yaml", ".yml"].map((ext) => path.join(dir, `Pulumi.${other}${ext}`)).find((f) => fs.existsSync(f))!;
    const theirs = factsOf(other, otherFile);
    const shared = STACK_FACTS.filter(
      (f) => f.of(mine) !== undefined && f.of(mine) !== "" && JSON.stringify(f.of(mine)) === JSON.stringify(f.of(theirs)),
    );
    if (!shared.some((f) => f.decisive)) continue;
    const list = shared.map((f) => `${f.name} ${JSON.stringify(f.of(mine))}`);
    warnings.push(
      `${path.basename(stackFile)} shares ${list.join(", ")} with ${path.basename(otherFile)}: copied from it? Two stacks with one domain overwrite each other's DNS record and certificate, and one environment tag mislabels costs and alarms; give stack ${stack} its own ${shared
        .filter((f) => f.decisive)
        .map((f) => f.name)
        .join(" and ")}`,
    );
  }
  return warnings;
}

/**
 * The stack's model as the program builds it from this config (instance specs from the static
 * table, as under the plan's mocks): for the tools that need the stack's names without running
 * the program (the checklist's procedures, `odoo-stack rotate`).
 */
export function stackModelOf(config: StackConfig, region?: string): StackModel {
  const prefix = `${config.project}:`;
  const raw = Object.fromEntries(
    Object.entries(config.config)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
  return buildModel(config.stack, parseSettings(raw, region ?? config.config["aws:region"] ?? "", knownInstanceType), config.project);
}
