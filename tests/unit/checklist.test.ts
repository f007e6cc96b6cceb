// checklist.md's evidence (tools/checklist.ts, issue 13): only what enforces an item counts — a
// policy, a rendered key, a resource input, an alarm, a deployed job, a test on this engine, a
// rendered runbook procedure — never a comment or description that cites the ID; a mandatory
// violation is a gap; RDS gets no credit for EC2's restore drill.
import * as fs from "fs";
import * as path from "path";
import type { PolicyDiagnostic } from "../../tools/analyzer-client";
import {
  collectEvidence,
  gaps,
  itemsWithGaps,
  parseChecklist,
  renderChecklist,
  TEST_EVIDENCE,
  uncitedMandatory,
  type ChecklistItem,
  type EvidenceSources,
  type HostFileText,
} from "../../tools/checklist";
import { renderedProcedures } from "../../tools/plan";
import { renderAllHosts } from "../../templates/hosts";
import { renderRunbooks } from "../../templates/runbooks";
import type { StackModel } from "../../lib/model";
import { modelWith } from "../helpers/fixtures";

const ROOT = path.join(__dirname, "..", "..");
const items: ChecklistItem[] = parseChecklist(
  [
    "## 6. Auth",
    "- AUTH-3 (C) With auth_user/auth_query: a dedicated technical role.",
    "- AUTH-4 (C,J,R) Rotation procedure.",
    "## 1. Network",
    "- NET-1 (C,P) Odoo is never reachable from the internet.",
    "## 10. Backups",
    "- BACKUP-2 (C,J) Restore tested.",
    "- BACKUP-3 (R) Maintenance plan.",
  ].join("\n"),
);
const none: EvidenceSources = { info: undefined, diagnostics: [], files: [], resources: [], procedures: [], engine: "ec2" };
const diag = (message: string, level: "mandatory" | "advisory" = "mandatory"): PolicyDiagnostic =>
  ({
    policyName: "p",
    policyPackName: "odoo-stack",
    policyPackVersion: "0.1.0",
    description: "d",
    message,
    urn: "u",
    enforcementLevel: level,
  }) as unknown as PolicyDiagnostic;

function filesOf(model: StackModel): HostFileText[] {
  return [...renderAllHosts(model)].flatMap(([host, files]) => files.map((f) => ({ host, path: f.path, content: f.content })));
}

describe("evidence is enforcement, never a citation", () => {
  it("does not count a rendered comment, a file's text or a resource's description that cites the ID", () => {
    const e = collectEvidence(items, {
      ...none,
      files: [
        { host: "pgbouncer", path: "/etc/pgbouncer/pgbouncer.ini", content: "; AUTH-3: no auth_user/auth_query\n; NET-1 BACKUP-2\n" },
        { host: "postgres", path: "/usr/local/sbin/odoo-stack-rotate", content: "# AUTH-4 rotation\n" },
      ],
      resources: [
        { name: "runbook", type: "aws:s3/bucketObjectv2:BucketObjectv2", inputs: { content: "AUTH-4 BACKUP-2 BACKUP-3 NET-1" } },
        { name: "sg", type: "aws:ec2/securityGroup:SecurityGroup", inputs: { description: "NET-1: private" } },
        // An alarm's summary that mentions an ID is prose; its declared list is the leading "ID: ".
        {
          name: "a",
          type: "aws:cloudwatch/metricAlarm:MetricAlarm",
          inputs: { name: "odoo-stack-prod-x", alarmDescription: "Watches something (BACKUP-2)." },
        },
      ],
    });
    for (const item of items) expect({ id: item.id, gaps: gaps(item, e.get(item.id)!).length > 0 }).toEqual({ id: item.id, gaps: true });
  });

  it("counts the keys, resources, alarms, jobs and procedures that enforce it", () => {
    const e = collectEvidence(items, {
      ...none,
      files: [
        { host: "pgbouncer", path: "/etc/pgbouncer/pgbouncer.ini", content: "auth_file = /etc/pgbouncer/userlist.txt\n" },
        { host: "pgbouncer", path: "/etc/pgbouncer/userlist.txt", content: '"odoo" "SCRAM-SHA-256$4096:…"\n' },
        {
          host: "postgres",
          path: "/etc/systemd/system/odoo-stack-restore-drill.timer",
          content: "[Timer]\nOnCalendar=Wed *-*-* 03:00:00 UTC\n",
        },
        {
          host: "postgres",
          path: "/etc/systemd/system/odoo-stack-restore-drill.service",
          content: "[Service]\nExecStart=/usr/local/sbin/odoo-stack-restore-drill\n",
        },
      ],
      resources: [
        { name: "odoo-1", type: "aws:ec2/instance:Instance", inputs: { associatePublicIpAddress: false } },
        {
          name: "a",
          type: "aws:cloudwatch/metricAlarm:MetricAlarm",
          inputs: { name: "odoo-stack-prod-restore-drill-stale", alarmDescription: "BACKUP-2: no successful restore drill." },
        },
      ],
      procedures: [
        { where: "runbooks/rotation.md#rotate-odoo", checklist: ["AUTH-4"] },
        { where: "runbooks/upgrades.md#upgrade-odoo", checklist: ["BACKUP-3"] },
      ],
      info: {
        name: "odoo-stack",
        version: "0.1.0",
        policies: [
          {
            name: "instance-no-public-ip",
            description: "Checks whether … (NET-1)",
            remediationSteps: "",
            enforcementLevel: "mandatory",
            type: "resource",
          },
        ],
      } as never,
    });
    expect(e.get("AUTH-3")!.renderedKeys).toEqual(["pgbouncer:/etc/pgbouncer/pgbouncer.ini:1"]);
    expect(e.get("AUTH-4")!.renderedKeys).toEqual(["pgbouncer:/etc/pgbouncer/userlist.txt:1"]);
    expect(e.get("AUTH-4")!.tests).toEqual([`tests/integration/rotation.test.ts: ${TEST_EVIDENCE[0].title}`]);
    expect(e.get("AUTH-4")!.procedures).toEqual(["runbooks/rotation.md#rotate-odoo"]);
    expect(e.get("NET-1")!.resourceKeys).toEqual(["odoo-1 (aws:ec2/instance:Instance)"]);
    expect(e.get("BACKUP-2")).toMatchObject({
      alarms: ["odoo-stack-prod-restore-drill-stale"],
      jobs: ["postgres:/etc/systemd/system/odoo-stack-restore-drill.timer:2"],
      renderedKeys: ["postgres:/etc/systemd/system/odoo-stack-restore-drill.service:2"],
    });
    expect(itemsWithGaps(items, e).map((i) => i.id)).toEqual([]);
  });

  it("gives RDS no credit for tests that ran on EC2's topology", () => {
    const ec2 = collectEvidence(items, none);
    const rds = collectEvidence(items, { ...none, engine: "rds" });
    expect(ec2.get("BACKUP-2")!.tests.length).toBe(1);
    expect(rds.get("BACKUP-2")!.tests).toEqual([]);
    expect(rds.get("AUTH-4")!.tests).toEqual([]);
  });

  it("names a test that exists: each TEST_EVIDENCE title is a test in its file", () => {
    for (const t of TEST_EVIDENCE) {
      const text = fs.readFileSync(path.join(ROOT, t.file), "utf8");
      expect({ file: t.file, title: t.title, found: text.includes(t.title) && /\bit\(/.test(text) }).toEqual({
        file: t.file,
        title: t.title,
        found: true,
      });
    }
  });
});

describe("gaps", () => {
  it("a mandatory violation is a gap even where everything else is in place, and never '0 with gaps'", () => {
    const full = { renderedKeys: ["x"], resourceKeys: [], alarms: [], jobs: [], tests: [], procedures: [], policies: ["p"] };
    const net1 = items.find((i) => i.id === "NET-1")!;
    expect(gaps(net1, { ...full, violations: [diag("instance odoo-1 must have no public IP (NET-1).", "advisory")] })).toEqual([]);
    expect(gaps(net1, { ...full, violations: [diag("instance odoo-1 must have no public IP (NET-1).")] })).toEqual([
      "1 mandatory violation",
    ]);
    const e = collectEvidence(items, {
      ...none,
      diagnostics: [diag("instance odoo-1 must have no public IP (NET-1)."), diag("something must hold, citing nothing")],
    });
    expect(itemsWithGaps(items, e).map((i) => i.id)).toContain("NET-1");
    expect(uncitedMandatory(items, [diag("something must hold, citing nothing"), diag("NET-1 …"), diag("x", "advisory")])).toHaveLength(1);
    expect(renderChecklist("prod", items, e)).toMatch(
      /\| NET-1 \| C,P \| — \| 1 mandatory, 1 total \| — \| — \| — \| 1 mandatory violation; no policy checks it; no rendered key or resource sets it \|/,
    );
  });
});

describe.each([
  ["ec2", modelWith({ odooInstances: 2 }, "prod"), []],
  ["rds", modelWith({ odooInstances: 3, availabilityZoneCount: 3, postgresEngine: "rds" }, "scale"), ["BACKUP-2"]],
] as const)("the rendered %s stack (files and runbooks, no resources)", (engine, model, withGaps) => {
  const runbooks = Object.entries(
    renderRunbooks(model, { backup: { bucket: "b", rtoTargetSeconds: 3600, snapshotRetainCount: 7, snapshotTime: "02:00" } }),
  ).map(([name, content]) => ({ name, content }));
  const e = collectEvidence(items, { ...none, engine, files: filesOf(model), procedures: renderedProcedures(model, runbooks) });

  it("proves BACKUP-3 and AUTH-4 (R) by the procedures its runbooks render", () => {
    expect(e.get("BACKUP-3")!.procedures).toEqual([
      "runbooks/upgrades.md#release-odoo",
      "runbooks/upgrades.md#upgrade-odoo",
      "runbooks/upgrades.md#upgrade-pgbouncer",
      "runbooks/upgrades.md#upgrade-postgresql",
    ]);
    expect(e.get("AUTH-4")!.procedures).toContain("runbooks/rotation.md#rotate-odoo");
  });

  it(`leaves BACKUP-2 ${withGaps.length ? "with a gap: no restore drill runs on RDS" : "proven by the restore drill's units"}`, () => {
    expect(
      itemsWithGaps(items, e)
        .map((i) => i.id)
        .filter((id) => id === "BACKUP-2"),
    ).toEqual([...withGaps]);
  });
});
