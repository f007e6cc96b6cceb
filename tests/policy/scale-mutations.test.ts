// The scale-out example (Pulumi.scale.yaml: 3 Odoo hosts on a shared EFS filestore, RDS
// Multi-AZ) through the policy pack over the Analyzer gRPC protocol, as `npm run plan -- --stack
// scale` runs it: unmutated it has no mandatory finding; each mutation specific to issue 8 breaks
// one checklist item in the planned resources and must be rejected as mandatory by the named
// policy, with the item's ID in the message.
import type { PolicyDiagnostic } from "../../tools/analyzer-client";
import { plainValue, runProgram, type ProgramRun } from "../../tools/mocks";
import { runbookProblems } from "../helpers/runbook-walk";
import { analyzeStack, mandatory, MutableStack, type Planned } from "./mutable-stack";
import { readStackConfig } from "../../tools/stack-config";
import { usePolicyPack } from "../helpers/policy-server";

jest.setTimeout(120_000);

const ROOT = `${__dirname}/../..`;
const STACK = "scale";
const pack = usePolicyPack();

async function planScale(): Promise<{ planned: Planned[]; run: ProgramRun }> {
  const config = readStackConfig(ROOT, STACK);
  const program = require("../../index") as () => Promise<Record<string, unknown>>;
  const run = await runProgram({ stack: STACK, project: config.project, config: config.config, secretKeys: config.secretKeys, program });
  return { planned: JSON.parse(JSON.stringify(run.resources)) as Planned[], run };
}

// Started at load, so the program runs while the pack process starts; awaited below.
const planning = planScale();
planning.catch(() => undefined);
let planned: Planned[] = [];
let program: ProgramRun;
beforeAll(async () => {
  ({ planned, run: program } = await planning);
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
    expect(program.resources.filter((r) => r.type === "aws:ec2/instance:Instance").map((r) => (plainValue(r.inputs) as any).tags["odoo-stack:host"])).not.toContain("postgres");
  });
});


const withoutParameter = (name: string) => (p: Record<string, any>) => {
  const before = p.parameters.length;
  p.parameters = p.parameters.filter((x: { name: string }) => x.name !== name);
  if (p.parameters.length === before) throw new Error(`the parameter group has no ${name}`);
};
const setParameter = (name: string, value: string) => (p: Record<string, any>) => {
  const found = p.parameters.find((x: { name: string }) => x.name === name);
  if (!found) throw new Error(`the parameter group has no ${name}`);
  found.value = value;
};

/** [title, checklist item, policy that must reject it, the mutation]. */
type Mutation = readonly [string, string, string, (s: MutableStack) => void];

const MUTATIONS: readonly Mutation[] = [
  // The four the issue names.
  ["two cron hosts", "LIMIT-2", "odoo-exactly-one-cron-host", (s) => s.line("odoo-2", "/etc/odoo/odoo.conf", "max_cron_threads", "max_cron_threads = 1")],
  ["EFS unencrypted", "BACKUP-1", "efs-file-system-encrypted", (s) => s.edit("odoo-filestore-fs", (p) => (p.encrypted = false))],
  ["RDS publicly accessible", "NET-6", "rds-instance-not-public", (s) => s.edit("postgres-rds", (p) => (p.publiclyAccessible = true))],
  ["parameter group without statement_timeout", "PG-2", "rds-parameter-group-checklist", (s) => s.edit("postgres-parameters", withoutParameter("statement_timeout"))],
  // The rest of issue 8's guarantees.
  ["RDS storage unencrypted", "BACKUP-1", "rds-instance-storage-encrypted", (s) => s.edit("postgres-rds", (p) => (p.storageEncrypted = false))],
  ["RDS without deletion protection", "BACKUP-1", "rds-instance-deletion-protection", (s) => s.edit("postgres-rds", (p) => (p.deletionProtection = false))],
  ["RDS backups kept 1 day", "BACKUP-1", "rds-instance-backup-retention", (s) => s.edit("postgres-rds", (p) => (p.backupRetentionPeriod = 1))],
  ["RDS single-AZ in production", "BACKUP-1", "rds-instance-multi-az", (s) => s.edit("postgres-rds", (p) => (p.multiAz = false))],
  ["rds.force_ssl = 0", "TLS-1", "rds-parameter-group-checklist", (s) => s.edit("postgres-parameters", setParameter("rds.force_ssl", "0"))],
  ["log_lock_waits = 0", "PG-3", "rds-parameter-group-checklist", (s) => s.edit("postgres-parameters", setParameter("log_lock_waits", "0"))],
  ["max_connections below PgBouncer's pools", "PG-1", "rds-max-connections-cover-pgbouncer", (s) => s.edit("postgres-parameters", setParameter("max_connections", "20"))],
  ["EFS mount targets open to the whole VPC", "NET-1", "efs-mount-targets-only-from-odoo", (s) =>
    s.edit("network-efs-in-2049-odoo", (p) => {
      delete p.referencedSecurityGroupId;
      p.cidrIpv4 = "10.42.0.0/16";
    })],
  ["EFS accepts plain NFS", "NET-1", "efs-file-system-requires-tls", (s) =>
    s.edit("odoo-filestore-policy", (p) => {
      const doc = JSON.parse(p.policy);
      p.policy = JSON.stringify({ ...doc, Statement: doc.Statement.filter((x: { Effect: string }) => x.Effect !== "Deny") });
    })],
];

const analyze = (resources: readonly Planned[], urns?: ReadonlySet<string>, withStack = true): Promise<PolicyDiagnostic[]> =>
  analyzeStack(pack().client, resources, urns, withStack);

describe("the scale stack (3 Odoo hosts, EFS, RDS) through the policy pack (gRPC)", () => {
  it("plans 3 Odoo instances on one encrypted EFS, an RDS instance and no PostgreSQL host", () => {
    const count = (type: string) => planned.filter((r) => r.type === type).length;
    const instances = planned.filter((r) => r.type === "aws:ec2/instance:Instance").map((r) => r.inputs.tags["odoo-stack:host"]).sort();
    expect(instances).toEqual(["odoo-1", "odoo-2", "odoo-3", "pgbouncer", "proxy"]);
    expect([count("aws:efs/fileSystem:FileSystem"), count("aws:efs/mountTarget:MountTarget"), count("aws:rds/instance:Instance"), count("aws:ebs/volume:Volume")]).toEqual([1, 3, 1, 0]);
  });

  it("has no mandatory finding unmutated", async () => {
    expect(mandatory(await analyze(planned)).map((d) => `${d.policyName}: ${d.message}`)).toEqual([]);
  });

  it.each(MUTATIONS)("%s (%s) is rejected by %s", async (_title, item, policy, mutate) => {
    const stack = new MutableStack(planned);
    mutate(stack);
    const type = pack().info.policies.find((p) => p.name === policy)?.type;
    expect([policy, type]).toEqual([policy, expect.stringMatching(/^(resource|stack)$/)]);
    const findings = mandatory(await analyze(stack.resources, stack.touched, type === "stack")).filter((d) => d.policyName === policy);
    expect(findings.length).toBeGreaterThan(0);
    expect(findings.map((d) => d.message.split("\n").slice(1).join("\n")).join("\n")).toMatch(new RegExp(`\\b${item}\\b`));
  });
});
