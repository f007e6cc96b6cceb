// One source for every procedure (issue 13): the procedure table (templates/procedures.ts) is what
// the runbooks print, what odoo-stack-rotate.sh does and hints, and what `odoo-stack rotate`
// sends. These tests fail when any of them diverges — as today's rotation text did: the runbook
// said "PostgreSQL first, then PgBouncer" while the script runs PgBouncer first, and
// `odoo-stack-rotate postgres` hinted "next: odoo-stack-rotate pgbouncer".
// They also hold every runbook block to its format (laptop or host, never both), to hosts that
// exist, to flags the scripts accept and to units the named host receives.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { DB_ROLES, type StackModel } from "../../lib/model";
import { ROTATABLE_PASSWORD_NAMES } from "../../lib/rotation";
import { LISTEN_DATABASE } from "../../templates/pgbouncer";
import { renderAllHosts } from "../../templates/hosts";
import {
  ODOO_ROTATION_ORDER,
  operationalProcedures,
  POSTGRESQL_RESTART_UNIT,
  rotationProcedure,
  stepHosts,
} from "../../templates/procedures";
import { extractShellBlocks, type ShellBlock } from "../../templates/runbook-blocks";
import { operationalProcedureFile, renderRunbooks, RUNBOOK_FILES } from "../../templates/runbooks";
import { SCRIPT_PATHS, SCRIPTS_DIR, scriptText } from "../../templates/scripts";
import { importPrefix, RESTORE_DRILL_PATH, RESTORE_DRILL_SCRIPT } from "../../templates/backup-units";
import { FIRSTBOOT_UNIT, firstBootSteps, userDataInputFor } from "../../templates/cloud-init";
import { databasesAt, modelWith } from "../helpers/fixtures";

const ROOT = path.join(__dirname, "..", "..");
const backup = { bucket: "odoo-stack-prod-backups-1a2b3c", rtoTargetSeconds: 3600, snapshotRetainCount: 7, snapshotTime: "02:00" };
const STACKS: readonly [string, StackModel][] = [
  ["ec2, 2 Odoo hosts, 2 databases", modelWith({ odooInstances: 2, ...databasesAt("erp", "erptest") }, "prod")],
  ["rds, 3 Odoo hosts (shared filestore)", modelWith({ odooInstances: 3, availabilityZoneCount: 3, postgresEngine: "rds" }, "scale")],
];
const docsOf = (m: StackModel) => renderRunbooks(m, { backup });
const blocksOf = (docs: Record<string, string>): (ShellBlock & { file: string })[] =>
  Object.entries(docs).flatMap(([file, text]) => extractShellBlocks(text).map((b) => ({ ...b, file })));

describe("the rotation order: table, script, runbook, README (AUTH-4)", () => {
  const script = scriptText("rotate");

  it("odoo-stack-rotate.sh's ROTATE_STEPS is the table's order", () => {
    const array = /^readonly ROTATE_STEPS=\(([^)]*)\)$/m.exec(script)?.[1].split(/\s+/);
    expect(array).toEqual([...ODOO_ROTATION_ORDER]);
  });

  it("the script's documented steps (its usage text) are in the table's order", () => {
    const documented = [...script.matchAll(/^#\s+\d\.\s+(\w+)\s/gm)].map((m) => m[1]);
    expect(documented).toEqual([...ODOO_ROTATION_ORDER]);
  });

  it("the script's 'next:' hint after each step names the table's next step", () => {
    const hints = ODOO_ROTATION_ORDER.map((step) => {
      const r = spawnSync("bash", ["-c", `source "$1"; rotate_next "$2"`, "bash", path.join(SCRIPTS_DIR, "odoo-stack-rotate.sh"), step], {
        env: { ...process.env, ODOO_STACK_APPLY: path.join(SCRIPTS_DIR, "odoo-stack-apply.sh") },
        encoding: "utf8",
      });
      expect(r.stderr).toBe("");
      return r.stdout;
    });
    expect(hints).toEqual([
      "next: odoo-stack-rotate postgres",
      "next: odoo-stack-rotate odoo (on every Odoo host)",
      "next: odoo-stack-rotate check",
      "rotation complete",
    ]);
    expect(ODOO_ROTATION_ORDER.slice(1)).toEqual(["postgres", "odoo", "check"]);
  });

  it.each(STACKS)("the runbook of a %s stack runs the table's steps in its order, with its commands", (_name, model) => {
    const docs = docsOf(model);
    const proc = rotationProcedure(model, "odoo");
    const blocks = extractShellBlocks(docs[RUNBOOK_FILES.rotation]).filter((b) => b.procedure === proc.id);
    // One block per step and host, in the table's order, with exactly the table's commands.
    const expected = proc.steps.flatMap((s) =>
      s.where === "laptop"
        ? [{ step: s.id, host: "laptop", commands: s.commands }]
        : stepHosts(model, s).map((h) => ({ step: s.id, host: h.id, commands: s.commands })),
    );
    expect(
      blocks.map((b) => ({ step: b.step, host: b.target.kind === "laptop" ? "laptop" : b.target.hosts.join(","), commands: b.commands })),
    ).toEqual(expected);
    // The script's steps appear in the script's order.
    const scriptSteps = blocks.flatMap((b) =>
      b.commands.map((c) => new RegExp(`${SCRIPT_PATHS.rotate} (\\w+)`).exec(c)?.[1]).filter((s): s is string => s !== undefined),
    );
    const order = scriptSteps.map((s) => ODOO_ROTATION_ORDER.indexOf(s as (typeof ODOO_ROTATION_ORDER)[number]));
    expect(order.every((i, k) => i >= 0 && (k === 0 || i >= order[k - 1]))).toBe(true);
    expect(scriptSteps[0]).toBe("pgbouncer");
  });

  it.each(STACKS)('no runbook of a %s stack states another order ("X first")', (_name, model) => {
    for (const [file, text] of Object.entries(docsOf(model))) {
      for (const m of text.matchAll(/\b(PostgreSQL|PgBouncer|Odoo) first\b/g))
        expect({ file, first: m[1] }).toEqual({ file, first: "PgBouncer" });
    }
  });

  it("the README states the table's order", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    for (const m of readme.matchAll(/\b(PostgreSQL|PgBouncer|Odoo) first\b/g)) expect(m[1]).toBe("PgBouncer");
    const mentioned = [...readme.matchAll(/odoo-stack-rotate (\w+)/g)].map((m) => m[1]);
    expect(mentioned.filter((s, i) => mentioned.indexOf(s) === i)).toEqual([...ODOO_ROTATION_ORDER]);
  });

  it("every procedure the README names exists and is in the runbook the README says; the import prefix is the code's", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const [, model] = STACKS[0];
    const ids = new Set(operationalProcedures(model).map((p) => p.id));
    const named = [...readme.matchAll(/procedure\s+`([a-z-]+)`(?:\s+of\s+`out\/<stack>\/runbooks\/([a-z-]+\.md)`)?/g)];
    expect(named.map((m) => m[1])).toEqual(expect.arrayContaining(["first-install", "import-database", "release-odoo", "add-database"]));
    for (const [, id, file] of named) {
      expect(ids.has(id)).toBe(true);
      if (file) expect(operationalProcedureFile(id)).toBe(file);
    }
    expect(readme).toContain(`under \`${importPrefix("<stack>")}\``);
  });

  it("with RDS the postgres step runs on the PgBouncer host, and bootstrap.sql never changes the odoo or migration role's password after creating it", () => {
    const [, rdsModel] = STACKS[1];
    const rds = rotationProcedure(rdsModel, "odoo");
    expect(rds.steps.map((s) => `${s.id}@${s.where}`)).toEqual([
      "keeper@laptop",
      "pgbouncer@pgbouncer",
      "postgres@pgbouncer",
      "odoo@odoo",
      "check@odoo",
    ]);
    const bootstrap = renderAllHosts(rdsModel)
      .get("pgbouncer")!
      .find((f) => f.path === "/etc/odoo-stack/bootstrap.sql")!.content;
    expect(bootstrap).toContain('CREATE ROLE "odoo" PASSWORD');
    expect(bootstrap).not.toMatch(/ALTER ROLE "odoo" WITH PASSWORD/);
    // The migration role shares the verifier and the rotation's postgres step (one transaction).
    expect(bootstrap).toContain(`CREATE ROLE "${DB_ROLES.migrate}" PASSWORD`);
    expect(bootstrap).not.toMatch(new RegExp(`ALTER ROLE "${DB_ROLES.migrate}" WITH PASSWORD`));
    expect(rds.steps.find((s) => s.id === "postgres")?.commands).toEqual([
      `sudo ${SCRIPT_PATHS.rotate} postgres --role ${DB_ROLES.odoo} --role ${DB_ROLES.migrate}`,
    ]);
    // The wait's LISTEN pool is the stack's.
    expect(scriptText("rotate")).toContain(`readonly LISTEN_DATABASE=${LISTEN_DATABASE}\n`);
  });

  it("every rotatable password has a procedure whose host steps change only hosts the stack has", () => {
    for (const [, model] of STACKS) {
      for (const name of ROTATABLE_PASSWORD_NAMES) {
        const p = rotationProcedure(model, name);
        expect(p.steps[0]).toMatchObject({ id: "keeper", where: "laptop" });
        for (const s of p.steps.slice(1)) {
          expect(s.where).not.toBe("laptop");
          for (const h of stepHosts(model, s)) expect(model.allHosts).toContain(h);
        }
      }
    }
  });
});

/** Where a script is installed, and its source: every flag a runbook passes must be one it parses. */
const SCRIPTS_BY_PATH: readonly [string, string][] = [
  [SCRIPT_PATHS.rotate, scriptText("rotate")],
  [SCRIPT_PATHS.apply, scriptText("apply")],
  [RESTORE_DRILL_PATH, fs.readFileSync(path.join(SCRIPTS_DIR, RESTORE_DRILL_SCRIPT), "utf8")],
];

/** Units a Debian package installs on a role's hosts (the stack's own are in the rendered files). */
const PACKAGE_UNITS: Readonly<Record<string, readonly string[]>> = {
  proxy: ["nginx", "certbot.timer", "certbot"],
  odoo: ["odoo"],
  pgbouncer: ["pgbouncer"],
  postgres: ["postgresql@15-main"],
};

describe.each(STACKS)("every block of the %s stack's runbooks", (_name, model) => {
  const docs = docsOf(model);
  const blocks = blocksOf(docs);
  const hostIds = new Set(model.allHosts.map((h) => h.id));
  const files = renderAllHosts(model);

  it("is a marked shell block (extractShellBlocks throws on any other) — and there are many", () => {
    expect(blocks.length).toBeGreaterThan(40);
    expect(blocks.filter((b) => b.target.kind === "host").length).toBeGreaterThan(20);
  });

  it("runs either on the laptop or on hosts the stack has, never both in one block", () => {
    for (const b of blocks) {
      const where = `${b.file}:${b.line}`;
      if (b.target.kind === "laptop") {
        expect({ where, sudo: b.commands.filter((c) => /(^|[;&|]\s*)sudo /.test(c)) }).toEqual({ where, sudo: [] });
      } else {
        for (const h of b.target.hosts) expect({ where, host: h, exists: hostIds.has(h) }).toEqual({ where, host: h, exists: true });
        expect({ where, laptop: b.commands.filter((c) => /aws ssm start-session|\bpulumi |aws rds |npx tsx/.test(c)) }).toEqual({
          where,
          laptop: [],
        });
      }
    }
  });

  it("passes only flags the stack's scripts accept, and only steps odoo-stack-rotate has", () => {
    let checked = 0;
    for (const b of blocks) {
      for (const c of b.commands) {
        for (const [scriptPath, source] of SCRIPTS_BY_PATH) {
          const at = c.indexOf(`${scriptPath} `);
          if (at < 0 && !c.endsWith(scriptPath)) continue;
          const args = at < 0 ? [] : c.slice(at + scriptPath.length + 1).split(/\s+/);
          for (const flag of args.filter((a) => /^--[a-z]/.test(a)).map((a) => a.replace(/=.*$/, ""))) {
            checked++;
            const accepted = new RegExp(`(^|[\\s|(])${flag}(\\)|\\s*\\||\\s)`, "m").test(
              source
                .split("\n")
                .filter((l) => !l.trimStart().startsWith("#"))
                .join("\n"),
            );
            expect({ block: `${b.file}:${b.line}`, script: scriptPath, flag, accepted }).toEqual({
              block: `${b.file}:${b.line}`,
              script: scriptPath,
              flag,
              accepted: true,
            });
          }
          if (scriptPath === SCRIPT_PATHS.rotate && args.length > 0) expect(ODOO_ROTATION_ORDER).toContain(args[0]);
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });

  it("names only units the block's hosts receive (rendered) or their Debian packages install", () => {
    let checked = 0;
    for (const b of blocks.filter((x) => x.target.kind === "host")) {
      const hosts = (b.target as { hosts: readonly string[] }).hosts;
      for (const c of b.commands) {
        const units = [
          ...[...c.matchAll(/systemctl (?:start|stop|reload|restart|status|is-active|list-timers) ([^\s;|&]+)/g)].map((m) => m[1]),
          ...[...c.matchAll(/(?:journalctl|\s-u) ([a-z][^\s;|&]*\.(?:service|timer)|odoo-stack-[a-z-]+)/g)].map((m) => m[1]),
        ].filter((u) => !u.includes("*") && !u.startsWith("-") && u !== "sudo");
        for (const unit of units) {
          for (const hostId of hosts) {
            checked++;
            const host = model.allHosts.find((h) => h.id === hostId)!;
            const name = unit.replace(/'/g, "");
            const delivered = (files.get(hostId) ?? []).some(
              (f) => f.path === `/etc/systemd/system/${name}` || f.path === `/etc/systemd/system/${name}.service`,
            );
            const packaged = PACKAGE_UNITS[host.role].includes(name.replace(/\.service$/, ""));
            const transient = name.startsWith(POSTGRESQL_RESTART_UNIT);
            // First boot's service arrives with the user data, on every host.
            const userData = name.replace(/\.service$/, "") === FIRSTBOOT_UNIT.replace(/\.service$/, "");
            expect({
              block: `${b.file}:${b.line}`,
              host: hostId,
              unit: name,
              known: delivered || packaged || transient || userData,
            }).toEqual({ block: `${b.file}:${b.line}`, host: hostId, unit: name, known: true });
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it("renders every operational procedure, each step on the hosts the table names, in the file the index links", () => {
    for (const p of operationalProcedures(model)) {
      const file = operationalProcedureFile(p.id);
      expect(docs[file]).toContain(`<a id="${p.id}"></a>`);
      expect(docs[RUNBOOK_FILES.index]).toContain(`(${file}#${p.id})`);
      const rendered = blocks.filter((b) => b.file === file && b.procedure === p.id);
      const expected = p.steps.flatMap((s) =>
        s.where === "laptop" ? [`${s.id}@laptop`] : stepHosts(model, s).map((h) => `${s.id}@${h.id}`),
      );
      expect(rendered.map((b) => `${b.step}@${b.target.kind === "laptop" ? "laptop" : b.target.hosts.join(",")}`)).toEqual(expected);
    }
  });
});

describe("the add-database procedure (issue 16): what first boot did once, done again by hand", () => {
  const two = modelWith(databasesAt("erp", "shop"), "prod");
  const proc = (m: StackModel) => operationalProcedures(m).find((p) => p.id === "add-database")!;

  it("re-requests the certificate with the words first boot uses, every hostname in one list", () => {
    const cert = proc(two).steps.find((s) => s.id === "certificate")!;
    const proxyUserData = firstBootSteps(userDataInputFor(two, two.hosts.proxy, { configBucket: "b", region: two.settings.region }));
    const firstBoot = proxyUserData.find((w) => w[0] === "acme")!;
    expect(firstBoot[1]).toBe("erp.example.com,shop.example.com");
    expect(cert.where).toBe("proxy");
    expect(cert.commands[0]).toBe(`sudo ${SCRIPT_PATHS.bootstrap} ${firstBoot.join(" ")}`);
    for (const re of cert.expect ?? [])
      expect("X509v3 Subject Alternative Name:\n    DNS:erp.example.com, DNS:shop.example.com").toMatch(re);
    expect(cert.expect).toHaveLength(2);
  });

  it("installs the new database on the cron host with odoo-stack-odoo-init (it leaves initialized databases alone)", () => {
    const install = proc(two).steps.find((s) => s.id === "install")!;
    expect({ where: install.where, eachHost: install.eachHost, commands: install.commands }).toEqual({
      where: "odoo",
      eachHost: undefined,
      commands: [`sudo ${SCRIPT_PATHS.odooInit}`],
    });
    expect(stepHosts(two, install)).toEqual([two.cronHost]);
    expect(proc(two).steps.map((s) => s.id)).toEqual(["stack", "certificate", "install", "check"]);
    expect(proc(two).steps.find((s) => s.id === "check")!.commands).toEqual([
      "curl -sS -o /dev/null -w '%{http_code}\\n' https://erp.example.com/web/login",
      "curl -sS -o /dev/null -w '%{http_code}\\n' https://shop.example.com/web/login",
    ]);
  });

  it("with an imported certificate there is no ACME step; the note says to import one with every hostname", () => {
    const imported = modelWith(
      {
        ...databasesAt("erp", "shop"),
        tls: { mode: "imported", certificateParameter: "/certs/erp/fullchain", privateKeyParameter: "/certs/erp/key" },
      },
      "prod",
    );
    expect(proc(imported).steps.map((s) => s.id)).toEqual(["stack", "install", "check"]);
    expect(proc(imported).notes.join(" ")).toMatch(/import one that carries every hostname/);
  });

  it("is printed in the Odoo runbook", () => {
    expect(operationalProcedureFile("add-database")).toBe(RUNBOOK_FILES.odoo);
    expect(docsOf(two)[RUNBOOK_FILES.odoo]).toContain("procedure=add-database step=certificate");
  });
});
