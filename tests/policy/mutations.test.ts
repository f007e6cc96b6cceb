// The pack against the whole production stack, over the Analyzer gRPC protocol: index.ts runs
// under mocks with Pulumi.prod.yaml's settings (as `npm run plan` runs it), every planned
// resource goes to the pack started as the CLI starts it, and the unmutated stack has no
// finding. Then each mutation of the catalog (mutation-catalog.ts: every place the inventory in
// policy/README.md lists) breaks one checklist item in the planned resources and must be
// rejected as mandatory by the named policy, with the item's ID in the message. Resource
// policies depend on their resource alone, so a mutation re-sends Analyze for the resources it
// changed, and AnalyzeStack for the whole mutated stack when the policy is a stack policy; only
// the named policy runs for a mutation (onlyPolicy), the others' verdicts being no part of it.
import { parseSettings, type RawConfig } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { buildModel, type StackModel } from "../../lib/model";
import type { PolicyDiagnostic } from "../../tools/analyzer-client";
import { runProgram } from "../../tools/mocks";
import { PROD_MUTATIONS } from "./mutation-catalog";
import { AWSGUARD_EXCEPTIONS, AWSGUARD_OTHER_TYPES, awsguardFindings } from "./awsguard";
import { analyzeStack, mandatory, MutableStack, onlyPolicy, type Planned } from "./mutable-stack";
import { readStackConfig } from "../../tools/stack-config";
import { usePolicyPack } from "../helpers/policy-server";

jest.setTimeout(120_000);

const ROOT = `${__dirname}/../..`;
/**
 * How the engine marks an unknown value in what it sends analyzers during preview
 * (UnknownStringValue, sdk/go/common/resource/plugin/rpc.go; @pulumi/policy proxy.js).
 */
const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const STACK = "prod";
const pack = usePolicyPack();

// ---------------------------------------------------------------------------------------------
// The planned stack

/** A captured resource we may edit: inputs (what Analyze gets) and outputs (what AnalyzeStack gets). */

/** The prod stack's model, from the same config the program reads. */
function prodModel(config: Readonly<Record<string, string>>): StackModel {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (key.startsWith("odoo-stack:")) raw[key.slice("odoo-stack:".length)] = value;
  return buildModel(STACK, parseSettings(raw as RawConfig, config["aws:region"], knownInstanceType));
}

/** Plans the prod stack: index.ts under mocks with Pulumi.yaml + Pulumi.prod.yaml, as `npm run plan` does. */
async function planProd(): Promise<{ readonly resources: Planned[]; readonly model: StackModel }> {
  const config = readStackConfig(ROOT, STACK);
  const program = require("../../index") as () => Promise<Record<string, unknown>>;
  const run = await runProgram({ stack: STACK, project: config.project, config: config.config, secretKeys: config.secretKeys, program });
  return { resources: JSON.parse(JSON.stringify(run.resources)) as Planned[], model: prodModel(config.config) };
}

// Started at load, so the program runs while the pack process type-checks itself; awaited below.
const planning = planProd();
planning.catch(() => undefined); // reported by beforeAll, not as an unhandled rejection

let planned: Planned[] = [];
let model: StackModel;

beforeAll(async () => {
  ({ resources: planned, model } = await planning);
}, 120_000);

const ODOO_CONF = "/etc/odoo/odoo.conf";

const analyze = (resources: readonly Planned[], urns?: ReadonlySet<string>, withStack = true): Promise<PolicyDiagnostic[]> =>
  analyzeStack(pack().client, resources, urns, withStack);

describe("the production stack through the policy pack (gRPC)", () => {
  it("plans the whole prod stack, every host receiving its config files", () => {
    expect(planned.length).toBeGreaterThan(100);
    for (const host of model.allHosts) {
      const keys = planned.map((r) => String(r.inputs.key ?? "")).filter((k) => k.startsWith(`hosts/${host.id}/`));
      expect([host.id, keys.includes(`hosts/${host.id}/manifest.json`), keys.length > 1]).toEqual([host.id, true, true]);
    }
  });

  it("has no finding unmutated (mandatory or advisory)", async () => {
    const diagnostics = await analyze(planned);
    expect(diagnostics.map((d) => `${d.enforcementLevel} ${d.policyName}: ${d.message}`)).toEqual([]);
  });

  it("covers every checklist item marked P", () => {
    const items = new Set(PROD_MUTATIONS.map((x) => x.item));
    for (const id of [
      "NET-1",
      "NET-2",
      "NET-3",
      "NET-4",
      "NET-5",
      "NET-6",
      "PROXY-1",
      "PROXY-2",
      "PROXY-3",
      "PROXY-4",
      "PROXY-5",
      "ODOO-1",
      "ODOO-2",
      "ODOO-3",
      "ODOO-5",
      "LIMIT-1",
      "LIMIT-2",
      "LIMIT-3",
      "POOL-1",
      "POOL-2",
      "POOL-3",
      "POOL-4",
      "POOL-5",
      "AUTH-1",
      "AUTH-2",
      "TLS-1",
      "TLS-2",
      "TLS-3",
      "PG-1",
      "PG-2",
      "PG-3",
      "OBS-3",
    ]) {
      expect([id, items.has(id)]).toEqual([id, true]);
    }
  });

  it("during preview, unknown values give advisories, never a crash or a mandatory finding", async () => {
    // What a first `pulumi preview` sends: ids and everything computed from them unknown.
    const preview = new MutableStack(planned);
    const conf = preview.fileName("odoo-1", ODOO_CONF);
    preview.edit(conf, (p) => (p.content = UNKNOWN_VALUE));
    for (const r of preview.resources.filter((x) => x.custom)) {
      preview.edit(r.name, (p) => {
        for (const key of ["securityGroupId", "referencedSecurityGroupId", "bucket", "userData", "instanceId", "subnetId", "vpcId"])
          if (key in p) p[key] = UNKNOWN_VALUE;
      });
    }
    const diagnostics = await analyze(preview.resources);
    expect(mandatory(diagnostics).map((d) => `${d.policyName}: ${d.message}`)).toEqual([]);
    const advisories = diagnostics.filter((d) => d.enforcementLevel === "advisory").map((d) => d.policyName);
    // odoo.conf's own policies could not run, and said so.
    for (const policy of [
      "odoo-list-db-disabled",
      "odoo-proxy-mode-enabled",
      "odoo-exactly-one-cron-host",
      "instance-user-data-no-secrets",
    ]) {
      expect([policy, advisories.includes(policy)]).toEqual([policy, true]);
    }
    expect(diagnostics.find((d) => d.policyName === "odoo-list-db-disabled")?.message).toMatch(
      /can't run policy 'odoo-list-db-disabled' .* during preview/,
    );
  });

  it("leaves Pulumi's awsguard (0.3.1, every rule mandatory; reproduced in awsguard.ts) only its documented exceptions: detailed monitoring is on", () => {
    const findings = awsguardFindings(planned.filter((r) => r.custom).map((r) => ({ type: r.type, name: r.name, props: r.inputs })));
    expect([...new Set(findings.map((f) => f.policy))].sort()).toEqual(["ec2-volume-inuse", "s3-bucket-logging-enabled"]);
    expect(findings.filter((f) => !(f.policy in AWSGUARD_EXCEPTIONS))).toEqual([]);
    expect(planned.filter((r) => AWSGUARD_OTHER_TYPES.includes(r.type)).map((r) => r.name)).toEqual([]);
  });

  const only = onlyPolicy(pack);
  // Grouped by policy, so the pack is reconfigured once per policy.
  const byPolicy = [...PROD_MUTATIONS].sort((a, b) => (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0));
  it.each(byPolicy.map((x) => [x.id, x.title, x.item, x.policy, x] as const))(
    "%s: %s (%s) is rejected by %s",
    async (_id, _title, item, policy, mutation) => {
      const stack = new MutableStack(planned);
      mutation.mutate(stack, { model });
      const type = pack().info.policies.find((p) => p.name === policy)?.type;
      expect([policy, type]).toEqual([policy, expect.stringMatching(/^(resource|stack)$/)]);
      await only(policy);
      const findings = mandatory(await analyze(stack.resources, stack.touched, type === "stack")).filter((d) => d.policyName === policy);
      expect(findings.length).toBeGreaterThan(0);
      // The message names the checklist item (the SDK prefixes the policy's description).
      expect(findings.map((d) => d.message.split("\n").slice(1).join("\n")).join("\n")).toMatch(new RegExp(`\\b${item}\\b`));
    },
  );
});
