// out/<stack>/checklist.md: for every checklist ID, the evidence this plan found that it is
// ENFORCED on this stack's engine. Only enforcement counts (issue 13): a policy of the pack that
// checks it, a rendered key or resource input that sets it (the tables below say which key
// proves which item), an alarm that watches it, a deployed job (a timer), a test that proves it
// on this engine (TEST_EVIDENCE, each held to an existing test), or a runbook procedure of the
// procedure table rendered as runnable blocks. A comment or a description that merely cites the
// ID is never evidence. An item with a mandatory violation has a gap, whatever else it has.
import * as path from "path";
import { PATHS } from "../lib/model";
import { CLOUDWATCH_AGENT_CONFIG_PATH } from "../templates/cloudwatch-agent";
import { METRICS_CONFIG_PATH } from "../templates/metrics";
import { checklistKeys } from "../lib/layering";
import { ODOO_CONF } from "../templates/odoo-conf";
import { PGBACKREST_CONF_PATH, PGBACKREST_GLOBAL } from "../templates/pgbackrest";
import { PGBOUNCER_INI } from "../templates/pgbouncer";
import type { AnalyzerInfo, PolicyDiagnostic } from "./analyzer-client";

/** The checklist beside the clone (CI checks it out as ../shared), the spec every ID comes from. */
export const CHECKLIST_FILE = path.resolve(__dirname, "..", "..", "shared", "CHECKLIST.md");

export type EnforcementKind = "C" | "P" | "J" | "R";

const KIND_NAMES: Readonly<Record<EnforcementKind, string>> = {
  C: "by construction",
  P: "policy pack",
  J: "job or alarm",
  R: "runbook",
};

export interface ChecklistItem {
  readonly id: string;
  readonly kinds: readonly EnforcementKind[];
  readonly section: string;
  readonly text: string;
}

/** Items are lines "- NET-1 (C,P) text" under "## n. Section" headings. */
export function parseChecklist(markdown: string): ChecklistItem[] {
  const items: ChecklistItem[] = [];
  let section = "";
  for (const line of markdown.split("\n")) {
    const heading = /^##\s+(.*)$/.exec(line);
    if (heading) section = heading[1].trim();
    const item = /^-\s+([A-Z]+-\d+)\s+\(([CPJR](?:,[CPJR])*)\)\s+(.*)$/.exec(line);
    if (item) items.push({ id: item[1], kinds: item[2].split(",") as EnforcementKind[], section, text: item[3].trim() });
  }
  return items;
}

/** Every checklist ID a text cites, e.g. "(NET-2, NET-3)" → NET-2, NET-3. */
export function citedIds(text: string, ids: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\b([A-Z]+-\d+)\b/g)) if (ids.has(m[1])) found.add(m[1]);
  return [...found];
}

export interface HostFileText {
  readonly host: string;
  readonly path: string;
  readonly content: string;
}

/** A planned resource: its type, name and inputs (secrets already redacted). */
export interface PlannedResource {
  readonly name: string;
  readonly type: string;
  readonly inputs: Readonly<Record<string, unknown>>;
}

/** A runbook procedure of the procedure table, rendered: where, and the items it declares. */
export interface RenderedProcedure {
  /** "runbooks/<file>#<procedure id>". */
  readonly where: string;
  readonly checklist: readonly string[];
}

export interface Evidence {
  readonly policies: readonly string[];
  readonly violations: readonly PolicyDiagnostic[];
  /** Lines CONSTRUCTION_KEYS says enforce the item: "host:/path:line". */
  readonly renderedKeys: readonly string[];
  /** Resource inputs RESOURCE_KEYS says enforce the item: "name (type)". */
  readonly resourceKeys: readonly string[];
  /** Alarms whose declared checklist names the item: the alarm resource's name. */
  readonly alarms: readonly string[];
  /** Deployed jobs (timers) that verify or produce it: "host:/path:line". */
  readonly jobs: readonly string[];
  /** Tests that prove it on this engine: "file: title". */
  readonly tests: readonly string[];
  /** Runbook procedures that cover it: "runbooks/<file>#<id>". */
  readonly procedures: readonly string[];
}

/**
 * A rendered line that enforces an item. A file need not cite an ID (pgbouncer.ini and odoo.conf
 * values cannot carry one); the key on its line is the proof, and this table says which key
 * proves which item. `job`: the line schedules a deployed job (J), not a setting (C).
 */
export interface ConstructionKey {
  readonly path: string;
  readonly line: RegExp;
  readonly ids: readonly string[];
  readonly job?: boolean;
}

const iniKey = (key: string): RegExp => new RegExp(`^${key.replace(/\./g, "\\.")}\\s*=`);
const keys = (file: string, table: Readonly<Record<string, readonly string[]>>): ConstructionKey[] =>
  Object.entries(table).map(([key, ids]) => ({ path: file, line: iniKey(key), ids }));
const jsonKey = (file: string, key: string, ids: readonly string[]): ConstructionKey => ({
  path: file,
  line: new RegExp(`^\\s*"${key}": [{[]`),
  ids,
});
const timer = (unit: string, ids: readonly string[]): ConstructionKey => ({
  path: `/etc/systemd/system/${unit}.timer`,
  line: /^OnCalendar=/,
  ids,
  job: true,
});

/** PostgreSQL settings that enforce an item: postgresql.conf's keys, and the same names in an RDS parameter group. */
export const POSTGRES_KEYS: Readonly<Record<string, readonly string[]>> = {
  max_connections: ["PG-1"],
  statement_timeout: ["PG-2"],
  lock_timeout: ["PG-2"],
  idle_in_transaction_session_timeout: ["PG-2"],
  log_lock_waits: ["PG-3"],
  log_autovacuum_min_duration: ["PG-4"],
  shared_preload_libraries: ["OBS-7"],
  password_encryption: ["AUTH-1"],
  ssl: ["TLS-1"],
  "rds.force_ssl": ["TLS-1"],
  archive_command: ["BACKUP-1"],
};

export const CONSTRUCTION_KEYS: readonly ConstructionKey[] = [
  ...keys(PATHS.odooConf, checklistKeys(ODOO_CONF)),
  ...keys(PATHS.pgbouncerIni, checklistKeys(PGBOUNCER_INI)),
  ...keys(PATHS.postgresConf, POSTGRES_KEYS),
  { path: PATHS.postgresHba, line: /^hostssl\s.*scram-sha-256/, ids: ["AUTH-1", "TLS-1", "NET-6"] },
  {
    path: PATHS.postgresBootstrapSql,
    line: /ALTER ROLE .* SET (statement_timeout|lock_timeout|idle_in_transaction_session_timeout)/,
    ids: ["PG-2"],
  },
  { path: PATHS.postgresBootstrapSql, line: /CONNECTION LIMIT/, ids: ["PG-1"] },
  // AUTH-4: the userlist PgBouncer reloads holds the verifiers the rotation changes.
  { path: PATHS.pgbouncerUserlist, line: /^"[^"]+" "/, ids: ["AUTH-2", "AUTH-4"] },
  { path: PATHS.nginxSite, line: /^\s*listen\s+(\S+:)?443\s+ssl/, ids: ["NET-2", "NET-3"] },
  { path: PATHS.nginxSite, line: /^\s*location \/ \{/, ids: ["PROXY-1"] },
  { path: PATHS.nginxSite, line: /^\s*location (= )?\/websocket \{/, ids: ["PROXY-2"] },
  { path: PATHS.nginxSite, line: /^\s*proxy_set_header X-Forwarded-(For|Proto|Host) /, ids: ["PROXY-3"] },
  { path: PATHS.nginxSite, line: /^\s*proxy_(read|send)_timeout /, ids: ["PROXY-5"] },
  { path: PATHS.nginxConf, line: /^\s*log_format odoo_json .*request_time/, ids: ["OBS-4"] },
  { path: PATHS.odooLogrotate, line: /^\s*rotate \d+/, ids: ["ODOO-5"] },
  ...keys(PGBACKREST_CONF_PATH, checklistKeys(PGBACKREST_GLOBAL)),
  // The restore drill (BACKUP-2) is a unit the PostgreSQL host runs: restore, check, measure the RTO.
  { path: "/etc/systemd/system/odoo-stack-restore-drill.service", line: /^ExecStart=/, ids: ["BACKUP-2"] },
  // What the metrics collector reads, per host (templates/metrics.ts).
  jsonKey(METRICS_CONFIG_PATH, "pgbouncer", ["OBS-1", "OBS-2"]),
  jsonKey(METRICS_CONFIG_PATH, "postgres", ["OBS-7", "PG-4"]),
  jsonKey(METRICS_CONFIG_PATH, "accessLog", ["OBS-4", "OBS-5"]),
  jsonKey(METRICS_CONFIG_PATH, "events", ["OBS-5"]),
  jsonKey(METRICS_CONFIG_PATH, "cron", ["OBS-6", "LIMIT-4"]),
  jsonKey(METRICS_CONFIG_PATH, "certificates", ["TLS-4"]),
  jsonKey(CLOUDWATCH_AGENT_CONFIG_PATH, "mem", ["OBS-8"]),
  jsonKey(CLOUDWATCH_AGENT_CONFIG_PATH, "diskio", ["OBS-8"]),
  jsonKey(CLOUDWATCH_AGENT_CONFIG_PATH, "netstat", ["OBS-8"]),
  // Deployed jobs (J).
  timer("odoo-stack-pgbackrest-full", ["BACKUP-1"]),
  timer("odoo-stack-pgbackrest-diff", ["BACKUP-1"]),
  timer("odoo-stack-backup-report", ["BACKUP-1", "BACKUP-2"]),
  timer("odoo-stack-filestore-sync", ["BACKUP-1"]),
  timer("odoo-stack-restore-drill", ["BACKUP-2"]),
  timer("odoo-stack-metrics", ["OBS-1", "OBS-2", "OBS-4", "OBS-5", "OBS-6", "OBS-7", "OBS-8", "PG-4", "TLS-4", "LIMIT-4"]),
];

/** A resource input that enforces an item: the predicate over its inputs, and the items. */
export interface ResourceKey {
  readonly type: string;
  readonly ids: (inputs: Readonly<Record<string, unknown>>) => readonly string[];
}

const PORT_ITEMS: Readonly<Record<number, readonly string[]>> = {
  443: ["NET-2", "NET-3"],
  8069: ["NET-4"],
  8072: ["NET-4"],
  6432: ["NET-5"],
  5432: ["NET-6"],
};

export const RESOURCE_KEYS: readonly ResourceKey[] = [
  // The one rule per port that admits a source: what NET-2..6 constrain (the pack checks the sources).
  { type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", ids: (i) => PORT_ITEMS[Number(i.fromPort)] ?? [] },
  { type: "aws:ec2/instance:Instance", ids: (i) => (i.associatePublicIpAddress === false ? ["NET-1"] : []) },
  { type: "tls:index/certRequest:CertRequest", ids: (i) => (Array.isArray(i.dnsNames) && i.dnsNames.length > 0 ? ["TLS-3"] : []) },
  { type: "tls:index/locallySignedCert:LocallySignedCert", ids: (i) => (Number(i.earlyRenewalHours) > 0 ? ["TLS-4"] : []) },
  {
    type: "aws:rds/parameterGroup:ParameterGroup",
    ids: (i) => (Array.isArray(i.parameters) ? i.parameters.flatMap((p: { name?: string }) => POSTGRES_KEYS[p.name ?? ""] ?? []) : []),
  },
  {
    type: "aws:rds/instance:Instance",
    ids: (i) => (Number(i.backupRetentionPeriod) > 0 && i.storageEncrypted === true ? ["BACKUP-1"] : []),
  },
];

/**
 * Tests that prove an item on the real daemons, and the engines they cover (tests/unit/checklist
 * holds each to a test of that title in that file). RDS needs AWS: nothing here covers it.
 */
export const TEST_EVIDENCE: readonly {
  readonly id: string;
  readonly engines: readonly ("ec2" | "rds")[];
  readonly file: string;
  readonly title: string;
}[] = [
  {
    id: "AUTH-4",
    engines: ["ec2"],
    file: "tests/integration/rotation.test.ts",
    title: "rotates the odoo role's password with odoo-stack-rotate in its documented order",
  },
  {
    id: "BACKUP-2",
    engines: ["ec2"],
    file: "tests/integration/backup-restore.test.ts",
    title: "restores the latest backup + WAL, checks, reports RTO and success, and cleans up",
  },
];

/** The leading "ID, ID: " of an alarm's description: the checklist it declares (templates/alarms.ts). */
const declaredIds = (description: unknown, ids: ReadonlySet<string>): string[] => {
  const m = typeof description === "string" ? /^([A-Z]+-\d+(?:, [A-Z]+-\d+)*): /.exec(description) : null;
  return m ? m[1].split(", ").filter((id) => ids.has(id)) : [];
};

export interface EvidenceSources {
  readonly info: AnalyzerInfo | undefined;
  readonly diagnostics: readonly PolicyDiagnostic[];
  readonly files: readonly HostFileText[];
  readonly resources: readonly PlannedResource[];
  readonly procedures: readonly RenderedProcedure[];
  readonly engine: "ec2" | "rds";
}

export function collectEvidence(items: readonly ChecklistItem[], src: EvidenceSources): Map<string, Evidence> {
  const ids = new Set(items.map((i) => i.id));
  const empty = (): { [K in keyof Evidence]: Evidence[K] extends readonly (infer T)[] ? T[] : never } => ({
    policies: [],
    violations: [],
    renderedKeys: [],
    resourceKeys: [],
    alarms: [],
    jobs: [],
    tests: [],
    procedures: [],
  });
  const evidence = new Map(items.map((i) => [i.id, empty()]));
  const add = <K extends keyof Evidence>(id: string, key: K, value: ReturnType<typeof empty>[K][number]) => {
    if (ids.has(id)) (evidence.get(id)?.[key] as unknown[]).push(value);
  };
  for (const p of src.info?.policies ?? []) {
    for (const id of citedIds(`${p.name} ${p.description} ${p.remediationSteps}`, ids)) add(id, "policies", p.name);
  }
  for (const d of src.diagnostics) for (const id of citedIds(d.message, ids)) add(id, "violations", d);
  for (const f of src.files) {
    const construction = CONSTRUCTION_KEYS.filter((k) => k.path === f.path);
    if (construction.length === 0) continue;
    f.content.split("\n").forEach((line, i) => {
      for (const k of construction)
        if (k.line.test(line)) for (const id of k.ids) add(id, k.job ? "jobs" : "renderedKeys", `${f.host}:${f.path}:${i + 1}`);
    });
  }
  for (const r of src.resources) {
    if (r.type === "aws:cloudwatch/metricAlarm:MetricAlarm")
      for (const id of declaredIds(r.inputs.alarmDescription, ids)) add(id, "alarms", String(r.inputs.name ?? r.name));
    for (const k of RESOURCE_KEYS.filter((x) => x.type === r.type))
      for (const id of k.ids(r.inputs)) add(id, "resourceKeys", `${r.name} (${r.type})`);
  }
  for (const t of TEST_EVIDENCE) if (t.engines.includes(src.engine)) add(t.id, "tests", `${t.file}: ${t.title}`);
  for (const p of src.procedures) for (const id of p.checklist) add(id, "procedures", p.where);
  return evidence;
}

/** What each kind of enforcement needs to show, and what this plan is missing. */
export function gaps(item: ChecklistItem, e: Evidence): string[] {
  const missing: string[] = [];
  const mandatory = e.violations.filter((v) => v.enforcementLevel === "mandatory").length;
  if (mandatory > 0) missing.push(`${mandatory} mandatory violation${mandatory === 1 ? "" : "s"}`);
  if (item.kinds.includes("P") && e.policies.length === 0) missing.push("no policy checks it");
  if (item.kinds.includes("C") && e.renderedKeys.length === 0 && e.resourceKeys.length === 0)
    missing.push("no rendered key or resource sets it");
  if (item.kinds.includes("J") && e.alarms.length === 0 && e.jobs.length === 0 && e.tests.length === 0)
    missing.push("no alarm, job or test on this engine proves it");
  if (item.kinds.includes("R") && e.procedures.length === 0) missing.push("no runbook procedure covers it");
  return missing;
}

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function listCell(values: readonly string[], max = 4): string {
  const unique = [...new Set(values)];
  if (unique.length === 0) return "—";
  const shown = unique.slice(0, max).map((v) => `\`${cell(v)}\``);
  return unique.length > max ? `${shown.join("<br>")}<br>(+${unique.length - max} more)` : shown.join("<br>");
}

export function renderChecklist(
  stack: string,
  items: readonly ChecklistItem[],
  evidence: ReadonlyMap<string, Evidence>,
  engine?: string,
): string {
  const lines = [
    `<!-- generated by odoo-stack — do not edit (npm run plan -- --stack ${stack}) -->`,
    `# Checklist evidence: stack ${stack}${engine ? ` (PostgreSQL on ${engine})` : ""}`,
    "",
    "Kinds: " +
      Object.entries(KIND_NAMES)
        .map(([k, v]) => `**${k}** ${v}`)
        .join(", ") +
      ".",
    "Evidence is only what enforces an item on this engine: a policy that checks it, a rendered key or resource input that sets it, an alarm that watches it, a deployed job, a test that proves it, a runbook procedure that runs (tables in tools/checklist.ts). A comment citing the ID is not evidence; a mandatory violation is a gap.",
  ];
  let section = "";
  for (const item of items) {
    if (item.section !== section) {
      section = item.section;
      // The blank line before a heading also ends the previous table.
      lines.push(
        "",
        `## ${section}`,
        "",
        "| ID | Kinds | Policies | Violations | Rendered keys, resources | Alarms, jobs, tests | Runbook procedures | Gaps |",
        "|---|---|---|---|---|---|---|---|",
      );
    }
    const e = evidence.get(item.id) as Evidence;
    const violations =
      e.violations.length === 0
        ? "0"
        : `${e.violations.filter((v) => v.enforcementLevel === "mandatory").length} mandatory, ${e.violations.length} total`;
    const missing = gaps(item, e);
    lines.push(
      `| ${item.id} | ${item.kinds.join(",")} | ${listCell(e.policies)} | ${violations} | ${listCell([...e.renderedKeys, ...e.resourceKeys])} | ${listCell([...e.alarms, ...e.jobs, ...e.tests])} | ${listCell(e.procedures)} | ${missing.length ? cell(missing.join("; ")) : "—"} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Items with at least one gap, for the plan's summary. */
export function itemsWithGaps(items: readonly ChecklistItem[], evidence: ReadonlyMap<string, Evidence>): ChecklistItem[] {
  return items.filter((i) => gaps(i, evidence.get(i.id) as Evidence).length > 0);
}

/** Mandatory violations that name no checklist item: the summary reports them beside the gaps. */
export function uncitedMandatory(items: readonly ChecklistItem[], diagnostics: readonly PolicyDiagnostic[]): PolicyDiagnostic[] {
  const ids = new Set(items.map((i) => i.id));
  return diagnostics.filter((d) => d.enforcementLevel === "mandatory" && citedIds(d.message, ids).length === 0);
}
