// Reads Pulumi.yaml and Pulumi.<stack>.yaml into the config map the CLI hands a program
// (PULUMI_CONFIG: "namespace:key" → string, objects and arrays as JSON), applying the project's
// declared defaults and checking declared types, so the offline plan runs the program with what
// `pulumi up` would give it. Problems are reported together, each with the key and the fix.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { parseSettings } from "../lib/config";
import { knownInstanceType } from "../lib/instance-types";
import { buildModel, type StackModel } from "../lib/model";

// js-yaml is @pulumi/pulumi's own YAML reader (a dependency of the SDK); no type package is installed.
const yaml = require("js-yaml") as { load(text: string, options?: { filename?: string }): unknown };

export interface StackConfig {
  readonly project: string;
  readonly stack: string;
  /** "namespace:key" → the string the program's pulumi.Config reads. */
  readonly config: Readonly<Record<string, string>>;
  /** Keys whose value is a secret (`secure:` in the stack file, `secret: true` in the project). */
  readonly secretKeys: readonly string[];
  /** Things the plan could not do as the CLI would (an ESC environment, a `secure:` value). */
  readonly warnings: readonly string[];
}

interface ProjectKeySpec {
  readonly type?: string;
  readonly default?: unknown;
  readonly secret?: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function loadYaml(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
  const parsed = yaml.load(fs.readFileSync(file, "utf8"), { filename: file });
  if (parsed === undefined || parsed === null) return {};
  if (!isRecord(parsed)) throw new Error(`${file}: expected a YAML mapping at the top level`);
  return parsed;
}

/** The CLI's string form of a config value: strings as they are, everything else as JSON. */
export const configString = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));

/** A project key in the project's namespace unless it names another ("aws:region"). */
const qualify = (project: string, key: string): string => (key.includes(":") ? key : `${project}:${key}`);

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "array":
      return Array.isArray(value);
    case "object":
      return isRecord(value);
    default:
      return true;
  }
}

/**
 * `secure:` values are encrypted with the stack's secrets provider, which needs the Pulumi CLI.
 * Offline they are replaced by a value generated for this run, kept secret, and reported.
 */
function replaceSecure(value: unknown, onSecure: () => void): unknown {
  if (isRecord(value) && Object.keys(value).length === 1 && typeof value.secure === "string") {
    onSecure();
    return crypto.randomBytes(24).toString("base64url");
  }
  if (Array.isArray(value)) return value.map((v) => replaceSecure(v, onSecure));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceSecure(v, onSecure)]));
  return value;
}

/** Reads the project in `rootDir` and its stack `stack`. */
export function readStackConfig(rootDir: string, stack: string): StackConfig {
  const projectFile = path.join(rootDir, "Pulumi.yaml");
  const stackFile = path.join(rootDir, `Pulumi.${stack}.yaml`);
  const project = loadYaml(projectFile);
  if (typeof project.name !== "string" || project.name === "") throw new Error(`${projectFile}: "name" is missing`);
  const projectName = project.name;
  if (!fs.existsSync(stackFile)) {
    const known = fs
      .readdirSync(rootDir)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter((s): s is string => s !== undefined);
    throw new Error(`stack "${stack}" has no settings file ${stackFile}; stacks here: ${known.join(", ") || "none"}`);
  }
  const stackDoc = loadYaml(stackFile);

  const specs = new Map<string, ProjectKeySpec>();
  const projectConfig = project.config ?? {};
  if (!isRecord(projectConfig)) throw new Error(`${projectFile}: "config" must be a mapping`);
  for (const [key, spec] of Object.entries(projectConfig)) {
    // A key's entry is either a schema ({type, default, secret, …}) or its default value itself.
    const isSchema = isRecord(spec) && ("type" in spec || "default" in spec || "description" in spec || "secret" in spec);
    specs.set(qualify(projectName, key), isSchema ? (spec as ProjectKeySpec) : { default: spec });
  }

  const stackConfig = stackDoc.config ?? {};
  if (!isRecord(stackConfig)) throw new Error(`${stackFile}: "config" must be a mapping`);
  const problems: string[] = [];
  const warnings: string[] = [];
  const secretKeys = new Set<string>();
  const values = new Map<string, unknown>();
  for (const [rawKey, rawValue] of Object.entries(stackConfig)) {
    const key = qualify(projectName, rawKey);
    const value = replaceSecure(rawValue, () => secretKeys.add(key));
    if (secretKeys.has(key)) {
      warnings.push(`${key} is a secure value, which only the Pulumi CLI can decrypt; this plan used a value generated for the run`);
    }
    values.set(key, value);
  }
  for (const [key, spec] of specs) {
    if (!values.has(key) && spec.default !== undefined) values.set(key, spec.default);
    if (spec.secret === true) secretKeys.add(key);
    const value = values.get(key);
    if (value !== undefined && typeof spec.type === "string" && !matchesType(value, spec.type)) {
      problems.push(`${key} = ${JSON.stringify(value)}: must be of type ${spec.type} (Pulumi.yaml declares it so); fix it in ${path.basename(stackFile)}`);
    }
  }
  if (stackDoc.environment !== undefined) {
    warnings.push(`${path.basename(stackFile)} imports an ESC environment, which the offline plan cannot open; its values are missing`);
  }
  if (problems.length > 0) {
    throw new Error(`stack "${stack}": ${problems.length} configuration problem${problems.length === 1 ? "" : "s"}:\n${problems.map((p, i) => `  ${i + 1}. ${p}`).join("\n")}`);
  }
  const config = Object.fromEntries([...values].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, configString(v)]));
  return { project: projectName, stack, config, secretKeys: [...secretKeys].sort(), warnings };
}

/**
 * The stack's model as the program builds it from this config (instance specs from the static
 * table, as under the plan's mocks): for the tools that need the stack's names without running
 * the program (the checklist's procedures, `odoo-stack rotate`).
 */
export function stackModelOf(config: StackConfig, region?: string): StackModel {
  const prefix = `${config.project}:`;
  const raw = Object.fromEntries(Object.entries(config.config).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return buildModel(config.stack, parseSettings(raw, region ?? config.config["aws:region"] ?? "", knownInstanceType), config.project);
}
