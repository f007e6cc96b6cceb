// lib/layering.ts, the one layering of config keys (issue 17 item 2): precedence default <
// override < forced, refusals named with their checklist IDs and all at once, and the four
// renderers' tables checked against the checklist itself.
import * as fs from "fs";
import {
  checklistKeys,
  fixedKeys,
  forcedEntries,
  layer,
  overridableKeys,
  staticForced,
  tableProblems,
  type LayerTable,
} from "../../lib/layering";
import { problemsMessage } from "../../lib/problems";
import { ODOO_CONF } from "../../templates/odoo-conf";
import { PGBACKREST_GLOBAL } from "../../templates/pgbackrest";
import { PGBOUNCER_INI } from "../../templates/pgbouncer";
import { POSTGRES_CONF } from "../../templates/postgresql";
import { CHECKLIST_FILE, parseChecklist } from "../../tools/checklist";

interface Settings {
  readonly port: number;
  readonly filter?: string;
}

/** A small file: one default per kind of fact, one forced per kind, one owned, one checked value. */
const TABLE: LayerTable<Settings, string | number | boolean> = {
  overrideName: "a test override",
  allowedName: (s) => `a key of the port-${s.port} file`,
  setElsewhere: (key) => (key === "pool_size" ? "comes from sizing; set pool.size in the stack config" : undefined),
  checkValue: (key, value) => (typeof value === "string" && value.includes("\n") ? `${key}: must be a single line` : undefined),
  keys: {
    timeout: { default: 30, overridable: true },
    level: {
      default: "info",
      overridable: true,
      check: (v) => (["info", "debug"].includes(String(v)) ? undefined : `level = ${JSON.stringify(v)}: must be info or debug`),
    },
    comment: { overridable: true },
    only_on_high_ports: { overridable: (s) => s.port > 1024 },
    derived_default: { default: (s) => s.port * 2 },
    mode: { forced: "transaction", checklist: ["POOL-1"], rule: "must be transaction" },
    port: { forced: (s) => s.port, checklist: ["NET-5"], rule: "must be the stack's port" },
    filter: { forced: (s) => s.filter, checklist: ["ODOO-3"], rule: "must restrict the databases" },
    user: { owned: "odoo" },
    optional_owned: { owned: (s) => (s.filter === undefined ? undefined : "yes") },
  },
};

const S: Settings = { port: 6432 };

describe("layer: precedence", () => {
  it("writes the defaults, static and from the settings, when nothing overrides them", () => {
    const { main, fixed, values, problems } = layer(TABLE, S);
    expect(main).toEqual({ timeout: 30, level: "info", derived_default: 12864 });
    expect(fixed).toEqual({ mode: "transaction", port: 6432, user: "odoo" });
    expect(values).toEqual({ ...main, ...fixed });
    expect(problems).toEqual([]);
  });

  it("an override beats its default and adds an allowlisted key with none", () => {
    const { main, problems } = layer(TABLE, S, { timeout: 5, comment: "x", only_on_high_ports: true });
    expect(problems).toEqual([]);
    expect(main).toMatchObject({ timeout: 5, comment: "x", only_on_high_ports: true, level: "info" });
  });

  it("a forced key beats an override: the override is refused, named with its checklist ID and rule, and the forced value is written", () => {
    const { values, problems } = layer(TABLE, S, { mode: "session", port: 5432 });
    expect(values.mode).toBe("transaction");
    expect(values.port).toBe(6432);
    expect(problems).toEqual([
      "mode: is fixed by odoo-stack (POOL-1: must be transaction) and cannot be set as a test override",
      "port: is fixed by odoo-stack (NET-5: must be the stack's port) and cannot be set as a test override",
    ]);
  });

  it("a forced key left out for these settings is still refused, and stays out", () => {
    const { values, problems } = layer(TABLE, S, { filter: ".*" });
    expect(values).not.toHaveProperty("filter");
    expect(problems).toEqual(["filter: is fixed by odoo-stack (ODOO-3: must restrict the databases) and cannot be set as a test override"]);
    expect(layer(TABLE, { port: 1, filter: "^a$" }).values.filter).toBe("^a$");
  });

  it("an owned key is refused while the stack writes it, and open to the allowlist when it does not", () => {
    expect(layer(TABLE, S, { user: "root" }).problems).toEqual(["user: is fixed by odoo-stack and cannot be set as a test override"]);
    // Not written for these settings and not allowlisted: refused as unknown, not as owned.
    expect(layer(TABLE, S, { optional_owned: "x" }).problems).toEqual([
      expect.stringMatching(/^optional_owned: is not a key of the port-6432 file; allowed: /),
    ]);
  });

  it("sends a key set elsewhere to where it is set, before any other reason", () => {
    expect(layer(TABLE, S, { pool_size: 5 }).problems).toEqual(["pool_size: comes from sizing; set pool.size in the stack config"]);
  });

  it("lists every unknown key at once, sorted, each with the allowed keys for these settings", () => {
    const { main, problems } = layer(TABLE, { port: 80 }, { zeta: 1, alpha: 2, only_on_high_ports: true });
    expect(problems).toEqual([
      "alpha: is not a key of the port-80 file; allowed: comment, level, timeout",
      "only_on_high_ports: is not a key of the port-80 file; allowed: comment, level, timeout",
      "zeta: is not a key of the port-80 file; allowed: comment, level, timeout",
    ]);
    expect(main).not.toHaveProperty("alpha");
    expect(overridableKeys(TABLE, S)).toEqual(["comment", "level", "only_on_high_ports", "timeout"]);
  });

  it("checks an override's value with its entry's check and the table's", () => {
    const { main, problems } = layer(TABLE, S, { level: "verbose", comment: "a\nmode = session" });
    expect(problems).toEqual(["comment: must be a single line", 'level = "verbose": must be info or debug']);
    expect(main.level).toBe("info");
    expect(main).not.toHaveProperty("comment");
  });

  it("gives every problem of one call in one numbered message (lib/problems.ts)", () => {
    const { problems } = layer(TABLE, S, { mode: "session", bogus: 1, level: "x" });
    expect(problemsMessage("test.conf", problems)).toMatch(
      /^test\.conf: 3 problems:\n {2}1\. bogus: .*\n {2}2\. level = "x": .*\n {2}3\. mode: is fixed by odoo-stack \(POOL-1: /,
    );
  });
});

describe("layer: table helpers", () => {
  it("names the fixed keys, the forced ones and the checklist IDs of the table", () => {
    expect(fixedKeys(TABLE)).toEqual(["filter", "mode", "optional_owned", "port", "user"]);
    expect(forcedEntries(TABLE).map(([k]) => k)).toEqual(["mode", "port", "filter"]);
    expect(checklistKeys(TABLE)).toEqual({ mode: ["POOL-1"], port: ["NET-5"], filter: ["ODOO-3"] });
  });

  it("gives a forced value the same for every file, and refuses one that depends on the settings", () => {
    expect(staticForced(TABLE, "mode")).toBe("transaction");
    expect(() => staticForced(TABLE, "port")).toThrow(/port has no forced value independent of the settings/);
    expect(() => staticForced(TABLE, "timeout")).toThrow(/timeout has no forced value/);
  });

  it("finds a badly declared table", () => {
    const bad: LayerTable<Settings, string> = {
      overrideName: "x",
      allowedName: "x",
      keys: {
        no_id: { forced: "a", rule: "r" },
        no_rule: { forced: "a", checklist: ["POOL-1"] },
        unknown_id: { forced: "a", checklist: ["POOL-99"], rule: "r" },
        both: { forced: "a", owned: "b", checklist: ["POOL-1"], rule: "r", overridable: true },
      },
    };
    expect(tableProblems(bad, new Set(["POOL-1"]))).toEqual([
      "no_id: is forced without a checklist ID",
      "no_rule: is forced without a rule in words",
      "unknown_id: cites POOL-99, which CHECKLIST.md does not define",
      "both: is both forced and owned; a key has one source",
      "both: is forced and overridable at once",
    ]);
  });
});

describe("the renderers' tables", () => {
  const ids = new Set(parseChecklist(fs.readFileSync(CHECKLIST_FILE, "utf8")).map((i) => i.id));
  const tables = [
    ["odoo.conf", ODOO_CONF],
    ["pgbouncer.ini", PGBOUNCER_INI],
    ["postgresql.conf drop-in", POSTGRES_CONF],
    ["pgbackrest.conf [global]", PGBACKREST_GLOBAL],
  ] as [string, LayerTable<never, string | number | boolean>][];

  it("the checklist parses into IDs", () => {
    expect(ids.size).toBeGreaterThan(40);
    expect(ids.has("POOL-1")).toBe(true);
  });

  it.each(tables)("%s: every forced key carries checklist IDs CHECKLIST.md defines and a rule; every cited ID exists", (_name, table) => {
    expect(forcedEntries(table).length).toBeGreaterThan(0);
    expect(tableProblems(table, ids)).toEqual([]);
  });
});
