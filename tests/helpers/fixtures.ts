// Test settings and models built through the real validator, so fixtures cannot drift from
// what a user's stack file produces.
import { parseSettings, type RawConfig, type StackSettings } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { buildModel, type StackModel } from "../../lib/model";

export const BASE_CONFIG: RawConfig = {
  domain: "erp.example.com",
  tls: { mode: "acme", email: "ops@example.com", hostedZoneId: "Z04417412S8KXAMPLE1" },
  databases: ["erp"],
};

/** Several databases, each at <name>.example.com (issue 16: the object form of `databases`). */
export function databasesAt(...names: readonly string[]): RawConfig {
  return { domain: "", databases: names.map((name) => ({ name, domain: `${name}.example.com` })) };
}

export function settingsWith(overrides: RawConfig = {}): StackSettings {
  return parseSettings({ ...BASE_CONFIG, ...overrides }, "eu-west-1", knownInstanceType);
}

export function modelWith(overrides: RawConfig = {}, stack = "test"): StackModel {
  return buildModel(stack, settingsWith(overrides));
}
