// out/<stack>/checklist.md: for every checklist ID, the evidence this plan found that it is
// enforced. Nothing is hand-maintained: evidence is whatever cites the ID — a policy whose name,
// description or remediation steps name it, a violation message, a line of a rendered host file,
// a resource input (an alarm's description, a runbook object). The lists grow as policies,
// renderers and components land; a gap is printed as a gap.
import * as path from "path";
import { PATHS } from "../lib/model";
import { ODOO_FORCED_KEYS } from "../templates/odoo-conf";
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

export interface ResourceText {
  readonly name: string;
  readonly type: string;
  /** The resource's input strings, secrets already redacted. */
  readonly strings: readonly string[];
}

export interface Evidence {
  readonly policies: readonly string[];
  readonly violations: readonly PolicyDiagnostic[];
  /** "host:/path:line". */
  readonly fileLines: readonly string[];
  /** "name (type)". */
  readonly resources: readonly string[];
}

/**
 * Evidence by construction: the rendered line that carries a checklist key. A file need not
 * cite an ID in a comment (pgbouncer.ini and odoo.conf values cannot carry one); the key on
 * its line is the proof, and this table says which key proves which item.
 */
export interface ConstructionKey {
  readonly path: string;
  readonly line: RegExp;
  readonly ids: readonly string[];
}

const iniKey = (key: string): RegExp => new RegExp(`^${key.replace(/\./g, "\\.")}\\s*=`);
const keys = (file: string, table: Readonly<Record<string, readonly string[]>>): ConstructionKey[] =>
  Object.entries(table).map(([key, ids]) => ({ path: file, line: iniKey(key), ids }));

export const CONSTRUCTION_KEYS: readonly ConstructionKey[] = [
  ...Object.entries(ODOO_FORCED_KEYS).map(([key, k]) => ({ path: PATHS.odooConf, line: iniKey(key), ids: [k.checklist] })),
  ...keys(PATHS.pgbouncerIni, {
    pool_mode: ["POOL-1"],
    default_pool_size: ["POOL-2"],
    reserve_pool_size: ["POOL-3"],
    max_client_conn: ["POOL-4"],
    max_db_connections: ["POOL-5"],
    max_user_connections: ["POOL-5"],
    auth_type: ["AUTH-1"],
    auth_file: ["AUTH-2"],
    client_tls_sslmode: ["TLS-1"],
    server_tls_sslmode: ["TLS-1", "TLS-2"],
    log_connections: ["OBS-3"],
    log_disconnections: ["OBS-3"],
    log_pooler_errors: ["OBS-3"],
    stats_users: ["OBS-1", "OBS-2"],
  }),
  ...keys(PATHS.postgresConf, {
    max_connections: ["PG-1"],
    statement_timeout: ["PG-2"],
    lock_timeout: ["PG-2"],
    idle_in_transaction_session_timeout: ["PG-2"],
    log_lock_waits: ["PG-3"],
    log_autovacuum_min_duration: ["PG-4"],
    shared_preload_libraries: ["OBS-7"],
    password_encryption: ["AUTH-1"],
    ssl: ["TLS-1"],
    archive_command: ["BACKUP-1"],
  }),
  { path: PATHS.postgresHba, line: /^hostssl\s.*scram-sha-256/, ids: ["AUTH-1", "TLS-1", "NET-6"] },
  { path: PATHS.postgresBootstrapSql, line: /ALTER ROLE .* SET (statement_timeout|lock_timeout|idle_in_transaction_session_timeout)/, ids: ["PG-2"] },
  { path: PATHS.pgbouncerUserlist, line: /^"[^"]+" "/, ids: ["AUTH-2"] },
  { path: PATHS.nginxSite, line: /^\s*listen\s+(\S+:)?443\s+ssl/, ids: ["NET-2", "NET-3"] },
  { path: PATHS.nginxSite, line: /^\s*location \/ \{/, ids: ["PROXY-1"] },
  { path: PATHS.nginxSite, line: /^\s*location (= )?\/websocket \{/, ids: ["PROXY-2"] },
  { path: PATHS.nginxSite, line: /^\s*proxy_set_header X-Forwarded-(For|Proto|Host) /, ids: ["PROXY-3"] },
  { path: PATHS.nginxSite, line: /^\s*proxy_(read|send)_timeout /, ids: ["PROXY-5"] },
  { path: PATHS.odooLogrotate, line: /^\s*rotate \d+/, ids: ["ODOO-5"] },
];

export function collectEvidence(
  items: readonly ChecklistItem[],
  info: AnalyzerInfo | undefined,
  diagnostics: readonly PolicyDiagnostic[],
  files: readonly HostFileText[],
  resources: readonly ResourceText[],
): Map<string, Evidence> {
  const ids = new Set(items.map((i) => i.id));
  const evidence = new Map(items.map((i) => [i.id, { policies: [] as string[], violations: [] as PolicyDiagnostic[], fileLines: [] as string[], resources: [] as string[] }]));
  for (const p of info?.policies ?? []) {
    for (const id of citedIds(`${p.name} ${p.description} ${p.remediationSteps}`, ids)) evidence.get(id)?.policies.push(p.name);
  }
  for (const d of diagnostics) {
    for (const id of citedIds(d.message, ids)) evidence.get(id)?.violations.push(d);
  }
  for (const f of files) {
    const construction = CONSTRUCTION_KEYS.filter((k) => k.path === f.path);
    f.content.split("\n").forEach((line, i) => {
      const cited = new Set(citedIds(line, ids));
      for (const k of construction) if (k.line.test(line)) k.ids.forEach((id) => cited.add(id));
      for (const id of cited) if (ids.has(id)) evidence.get(id)?.fileLines.push(`${f.host}:${f.path}:${i + 1}`);
    });
  }
  for (const r of resources) {
    for (const id of citedIds(r.strings.join("\n"), ids)) evidence.get(id)?.resources.push(`${r.name} (${r.type})`);
  }
  return evidence;
}

/** What each kind of enforcement needs to show, and what this plan is missing. */
function gaps(item: ChecklistItem, e: Evidence): string[] {
  const missing: string[] = [];
  if (item.kinds.includes("P") && e.policies.length === 0) missing.push("no policy cites it");
  if (item.kinds.includes("C") && e.fileLines.length === 0 && e.resources.length === 0) missing.push("no rendered file or resource cites it");
  if ((item.kinds.includes("J") || item.kinds.includes("R")) && e.resources.length === 0 && e.fileLines.length === 0) {
    missing.push("no job, alarm or runbook cites it");
  }
  return missing;
}

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function listCell(values: readonly string[], max = 4): string {
  const unique = [...new Set(values)];
  if (unique.length === 0) return "—";
  const shown = unique.slice(0, max).map((v) => `\`${cell(v)}\``);
  return unique.length > max ? `${shown.join("<br>")}<br>(+${unique.length - max} more)` : shown.join("<br>");
}

export function renderChecklist(stack: string, items: readonly ChecklistItem[], evidence: ReadonlyMap<string, Evidence>): string {
  const lines = [
    `<!-- generated by odoo-stack — do not edit (npm run plan -- --stack ${stack}) -->`,
    `# Checklist evidence: stack ${stack}`,
    "",
    "Kinds: " + Object.entries(KIND_NAMES).map(([k, v]) => `**${k}** ${v}`).join(", ") + ". Evidence is anything that cites the ID.",
  ];
  let section = "";
  for (const item of items) {
    if (item.section !== section) {
      section = item.section;
      // The blank line before a heading also ends the previous table.
      lines.push("", `## ${section}`, "", "| ID | Kinds | Policies | Violations | Rendered lines | Resources | Gaps |", "|---|---|---|---|---|---|---|");
    }
    const e = evidence.get(item.id) as Evidence;
    const violations = e.violations.length === 0 ? "0" : `${e.violations.filter((v) => v.enforcementLevel === "mandatory").length} mandatory, ${e.violations.length} total`;
    const missing = gaps(item, e);
    lines.push(
      `| ${item.id} | ${item.kinds.join(",")} | ${listCell(e.policies)} | ${violations} | ${listCell(e.fileLines)} | ${listCell(e.resources)} | ${missing.length ? cell(missing.join("; ")) : "—"} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Items with at least one gap, for the plan's summary. */
export function itemsWithGaps(items: readonly ChecklistItem[], evidence: ReadonlyMap<string, Evidence>): ChecklistItem[] {
  return items.filter((i) => gaps(i, evidence.get(i.id) as Evidence).length > 0);
}
