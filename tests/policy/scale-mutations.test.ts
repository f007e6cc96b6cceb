// The scale-out example (Pulumi.scale.yaml: 3 Odoo hosts on a shared EFS filestore, RDS
// Multi-AZ) through the policy pack over the Analyzer gRPC protocol, as `npm run plan -- --stack
// scale` runs it: unmutated it has no finding; each mutation of the catalog's scale list (the
// places only this shape has: RDS, EFS, several Odoo hosts) breaks one checklist item in the
// planned resources and must be rejected as mandatory by the named policy, with the item's ID
// in the message (only that policy runs for it, as in mutations.test.ts).
import type { PolicyDiagnostic } from "../../tools/analyzer-client";
import { plainValue, runProgram, type ProgramRun } from "../../tools/mocks";
import { runbookProblems } from "../helpers/runbook-walk";
import { parseSettings, type RawConfig } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { buildModel, type StackModel } from "../../lib/model";
import { SCALE_MUTATIONS } from "./mutation-catalog";
import { AWSGUARD_EXCEPTIONS, AWSGUARD_OTHER_TYPES, awsguardFindings } from "./awsguard";
import { analyzeStack, mandatory, MutableStack, onlyPolicy, type Planned } from "./mutable-stack";
import { readStackConfig } from "../../tools/stack-config";
import { usePolicyPack } from "../helpers/policy-server";

jest.setTimeout(120_000);

const ROOT = `${__dirname}/../..`;
const STACK = "scale";
const pack = usePolicyPack();

async function planScale(): Promise<{ readonly resources: Planned[]; readonly run: ProgramRun; readonly model: StackModel }> {
  const config = readStackConfig(ROOT, STACK);
  const program = require("../../index") as () => Promise<Record<string, unknown>>;
  const run = await runProgram({ stack: STACK, project: config.project, config: config.config, secretKeys: config.secretKeys, program });
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config.config)) if (key.startsWith("odoo-stack:")) raw[key.slice("odoo-stack:".length)] = value;
  const model = buildModel(STACK, parseSettings(raw as RawConfig, config.config["aws:region"], knownInstanceType));
  return { resources: JSON.parse(JSON.stringify(run.resources)) as Planned[], run, model };
}

// Started at load, so the program runs while the pack process starts; awaited below.
const planning = planScale();
planning.catch(() => undefined);
let planned: Planned[] = [];
let program: ProgramRun;
let model: StackModel;
beforeAll(async () => {
  ({ resources: planned, run: program, model } = await planning);
}, 120_000);

// Issue 13: an RDS stack's runbooks name only what exists — no PostgreSQL host, no unwritten
// backup.md, no pgBackRest output — and list exactly the alarms it creates, by their names.
describe("the scale stack's runbooks (RDS)", () => {
  it("link only to anchors that exist, and name only hosts, outputs, alarms, URNs and parameters the program plans", () => {
    const runbooks = plainValue(program.outputs.runbooks) as Record<string, string>;
    const { problems, checked } = runbookProblems(runbooks, program);
    expect(problems).toEqual([]);
    expect(checked.links).toBeGreaterThan(50);
    expect(checked.hosts).toBeGreaterThan(30);
    expect(checked.alarms).toBeGreaterThan(40);
    expect(checked.parameters).toBeGreaterThanOrEqual(1);
    expect(Object.keys(runbooks)).toContain("backup.md");
    expect(
      program.resources
        .filter((r) => r.type === "aws:ec2/instance:Instance")
        .map((r) => (plainValue(r.inputs) as any).tags["odoo-stack:host"]),
    ).not.toContain("postgres");
  });
});

const analyze = (resources: readonly Planned[], urns?: ReadonlySet<string>, withStack = true): Promise<PolicyDiagnostic[]> =>
  analyzeStack(pack().client, resources, urns, withStack);

describe("the scale stack (3 Odoo hosts, EFS, RDS) through the policy pack (gRPC)", () => {
  it("plans 3 Odoo instances on one encrypted EFS, an RDS instance and no PostgreSQL host", () => {
    const count = (type: string) => planned.filter((r) => r.type === type).length;
    const instances = planned
      .filter((r) => r.type === "aws:ec2/instance:Instance")
      .map((r) => r.inputs.tags["odoo-stack:host"])
      .sort();
    expect(instances).toEqual(["odoo-1", "odoo-2", "odoo-3", "pgbouncer", "proxy"]);
    expect([
      count("aws:efs/fileSystem:FileSystem"),
      count("aws:efs/mountTarget:MountTarget"),
      count("aws:rds/instance:Instance"),
      count("aws:ebs/volume:Volume"),
    ]).toEqual([1, 3, 1, 0]);
  });

  it("has no finding unmutated (mandatory or advisory)", async () => {
    expect((await analyze(planned)).map((d) => `${d.enforcementLevel} ${d.policyName}: ${d.message}`)).toEqual([]);
  });

  it("leaves Pulumi's awsguard (0.3.1, every rule mandatory; reproduced in awsguard.ts) only its documented exceptions: detailed monitoring is on", () => {
    const findings = awsguardFindings(planned.filter((r) => r.custom).map((r) => ({ type: r.type, name: r.name, props: r.inputs })));
    expect([...new Set(findings.map((f) => f.policy))].sort()).toEqual(["ec2-volume-inuse", "efs-encrypted", "s3-bucket-logging-enabled"]);
    expect(findings.filter((f) => !(f.policy in AWSGUARD_EXCEPTIONS))).toEqual([]);
    expect(planned.filter((r) => AWSGUARD_OTHER_TYPES.includes(r.type)).map((r) => r.name)).toEqual([]);
  });

  const only = onlyPolicy(pack);
  const byPolicy = [...SCALE_MUTATIONS].sort((a, b) => (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0));
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
      expect(findings.map((d) => d.message.split("\n").slice(1).join("\n")).join("\n")).toMatch(new RegExp(`\\b${item}\\b`));
    },
  );
});
