// One fact, two readers (issue 17): the renderers' layering tables (lib/layering.ts) name the
// checklist items each key enforces, and the policy pack (which compiles only lib/ and policy/,
// so cannot import the tables) names the item an override of that key breaks in its messages
// (policy/lib/checklist-keys.ts). Where both name a key, the pack's item must be one the table
// carries, or the pack would cite an item the rendered file does not claim to enforce.
import * as fs from "fs";
import { ODOO_OPTION_ITEMS, POSTGRES_KEY_ITEMS } from "../../policy/lib/checklist-keys";
import type { LayerTable } from "../../lib/layering";
import { ODOO_CONF } from "../../templates/odoo-conf";
import { POSTGRES_CONF } from "../../templates/postgresql";
import { CHECKLIST_FILE, parseChecklist } from "../../tools/checklist";

/** Items the checklist has the policy pack enforce ("P"); the others are the renderers' alone. */
const PACK_ITEMS = parseChecklist(fs.readFileSync(CHECKLIST_FILE, "utf8"))
  .filter((i) => i.kinds.includes("P"))
  .map((i) => i.id);

const disagreements = <S, V extends string | number | boolean>(policyItems: Readonly<Record<string, string>>, table: LayerTable<S, V>) =>
  Object.entries(policyItems).flatMap(([key, item]) => {
    const carried = table.keys[key]?.checklist;
    return carried !== undefined && !carried.includes(item)
      ? [`${key}: the pack cites ${item}, the table carries ${carried.join(", ")}`]
      : [];
  });

const unwatchedByPack = <S, V extends string | number | boolean>(policyItems: Readonly<Record<string, string>>, table: LayerTable<S, V>) =>
  Object.entries(table.keys).flatMap(([key, entry]) =>
    (entry.checklist ?? []).filter((id) => PACK_ITEMS.includes(id) && policyItems[key] === undefined).map((id) => `${key} (${id})`),
  );

describe("the policy pack's checklist items per key agree with the renderers' tables", () => {
  it.each([
    ["odoo.conf", ODOO_OPTION_ITEMS, ODOO_CONF as LayerTable<unknown, string | number | boolean>],
    ["the PostgreSQL drop-in", POSTGRES_KEY_ITEMS, POSTGRES_CONF as LayerTable<unknown, string | number | boolean>],
  ])("%s: every key both name cites an item the table carries", (_file, items, table) => {
    expect(disagreements(items, table)).toEqual([]);
  });

  it.each([
    ["odoo.conf", ODOO_OPTION_ITEMS, ODOO_CONF as LayerTable<unknown, string | number | boolean>],
    ["the PostgreSQL drop-in", POSTGRES_KEY_ITEMS, POSTGRES_CONF as LayerTable<unknown, string | number | boolean>],
  ])("%s: every key the table enforces an item of the pack's (P) with is one the pack watches for overrides", (_file, items, table) => {
    expect(unwatchedByPack(items, table)).toEqual([]);
  });

  it("finds a disagreement when there is one", () => {
    expect(disagreements({ db_port: "TLS-2" }, ODOO_CONF as LayerTable<unknown, string | number | boolean>)).toEqual([
      "db_port: the pack cites TLS-2, the table carries NET-5",
    ]);
  });
});
