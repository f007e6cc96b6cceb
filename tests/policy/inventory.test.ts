// The inventory in policy/README.md ("Where each item can be broken") and the mutation catalog
// the two mutation suites run are the same list: every row names a mutation of the catalog with
// the same checklist item and policy (the suites prove that policy rejects it, citing the item),
// every mutation is a row, and every checklist item marked P — and every alarm-backed item the
// pack checks — has rows. A place added to the table without a mutation, or a mutation without
// its row, fails here.
import * as fs from "fs";
import * as path from "path";
import { CHECKLIST_FILE, parseChecklist } from "../../tools/checklist";
import { PROD_MUTATIONS, SCALE_MUTATIONS, type Mutation } from "./mutation-catalog";

const README = path.resolve(__dirname, "..", "..", "policy", "README.md");
const POLICY_DIR = path.resolve(__dirname, "..", "..", "policy");
const HEADING = "## Where each item can be broken";

interface Row {
  readonly line: number;
  readonly item: string;
  readonly place: string;
  readonly policy: string;
  readonly mutation: string;
}

/** The rows of the table under HEADING: `| item | place | \`policy\` | \`mutation\` |`. */
function inventoryRows(markdown: string): Row[] {
  const lines = markdown.split("\n");
  const start = lines.indexOf(HEADING);
  if (start < 0) throw new Error(`policy/README.md has no "${HEADING}" section`);
  const rows: Row[] = [];
  let inTable = false;
  for (let i = start + 1; i < lines.length && !lines[i].startsWith("## "); i++) {
    const line = lines[i];
    if (!line.startsWith("|")) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells[0] === "item" || /^-+$/.test(cells[0])) continue;
    if (cells.length !== 4) throw new Error(`policy/README.md line ${i + 1}: expected 4 cells, got ${cells.length}: ${line}`);
    const code = (c: string) => /^`([^`]+)`$/.exec(c)?.[1] ?? `(not in backticks: ${c})`;
    rows.push({ line: i + 1, item: cells[0], place: cells[1], policy: code(cells[2]), mutation: code(cells[3]) });
  }
  return rows;
}

const rows = inventoryRows(fs.readFileSync(README, "utf8"));
const checklist = parseChecklist(fs.readFileSync(CHECKLIST_FILE, "utf8"));
const catalog: readonly Mutation[] = [...PROD_MUTATIONS, ...SCALE_MUTATIONS];
const byId = new Map(catalog.map((m) => [m.id, m]));
/** Every policy name the pack declares (`name: "…"` in policy/*.ts). */
const policyNames = new Set(
  fs
    .readdirSync(POLICY_DIR)
    .filter((f) => f.endsWith(".ts"))
    .flatMap((f) => [...fs.readFileSync(path.join(POLICY_DIR, f), "utf8").matchAll(/^\s+name: "([a-z0-9-]+)",$/gm)].map((m) => m[1])),
);

describe("the inventory of places (policy/README.md) and the mutation catalog", () => {
  it("reads a table of at least one row per mutation suite's worth", () => {
    expect(rows.length).toBeGreaterThanOrEqual(catalog.length);
    expect(policyNames.size).toBeGreaterThan(50);
  });

  it("gives every row a checklist item, a place, a policy of the pack and a mutation of the catalog with the same item and policy", () => {
    const ids = new Set(checklist.map((i) => i.id));
    const problems = rows.flatMap((r) => {
      const m = byId.get(r.mutation);
      return [
        ...(ids.has(r.item) ? [] : [`line ${r.line}: ${r.item} is not a checklist item`]),
        ...(r.place !== "" ? [] : [`line ${r.line}: no place`]),
        ...(policyNames.has(r.policy) ? [] : [`line ${r.line}: ${r.policy} is not a policy of the pack`]),
        ...(m ? [] : [`line ${r.line}: ${r.mutation} is not a mutation of mutation-catalog.ts`]),
        ...(m && m.item !== r.item ? [`line ${r.line}: ${r.mutation} breaks ${m.item}, the row says ${r.item}`] : []),
        ...(m && m.policy !== r.policy ? [`line ${r.line}: ${r.mutation} is rejected by ${m.policy}, the row says ${r.policy}`] : []),
      ];
    });
    expect(problems).toEqual([]);
  });

  it("lists every mutation once, and no mutation id twice across the suites", () => {
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(r.mutation, (counts.get(r.mutation) ?? 0) + 1);
    expect(catalog.filter((m) => counts.get(m.id) !== 1).map((m) => `${m.id}: ${counts.get(m.id) ?? 0} rows`)).toEqual([]);
    expect(catalog.length).toBe(byId.size);
  });

  it("has rows for every checklist item marked P, and for the alarm-backed items the pack checks", () => {
    const covered = new Set(rows.map((r) => r.item));
    const policyItems = checklist.filter((i) => i.kinds.includes("P")).map((i) => i.id);
    expect(policyItems.length).toBeGreaterThan(25);
    const alarmItems = ["OBS-1", "OBS-4", "OBS-5", "OBS-6", "OBS-7", "OBS-8", "PG-4", "TLS-4"];
    expect([...policyItems, ...alarmItems].filter((id) => !covered.has(id))).toEqual([]);
  });

  it("lists for each P item more than the key that carries it: an override, an AWS neighbour or an absence", () => {
    // A lone row is an item checked where it was first rendered only (what issue 14 found).
    const thin = checklist.filter((i) => i.kinds.includes("P") && rows.filter((r) => r.item === i.id).length < 2).map((i) => i.id);
    expect(thin).toEqual([]);
  });
});
