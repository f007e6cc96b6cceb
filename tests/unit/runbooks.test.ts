// The generated runbooks (BACKUP-3, BACKUP-4, AUTH-4: R): every alarm of the table the Monitoring
// component builds from has its entry, every procedure link resolves to an anchor, the commands
// carry the stack's real names (hosts, socket, roles, scripts, log groups), the rotation order
// is the rotation script's, and a golden of the alarm and PgBouncer runbooks.
import * as fs from "fs";
import * as path from "path";
import { DB_ROLES, PATHS } from "../../lib/model";
import { monitoringAlarms, PROCEDURES } from "../../templates/alarms";
import { LOG_SOURCE_NAMES, logGroupName } from "../../templates/cloudwatch-agent";
import { GENERATED } from "../../templates/format";
import { odooMigrationCommand } from "../../templates/odoo-conf";
import { PGBOUNCER_DEBIAN } from "../../templates/pgbouncer";
import { PROCEDURE_LOCATION, renderRunbooks, RUNBOOK_FILES, sessionCommand } from "../../templates/runbooks";
import { SCRIPT_PATHS } from "../../templates/scripts";
import { modelWith } from "../helpers/fixtures";
import { expectGolden } from "../helpers/golden";

const model = modelWith({ odooInstances: 2, databases: ["erp", "erp_test"], alarmEmail: "ops@example.com" }, "prod");
const backup = { bucket: "odoo-stack-prod-backups-1a2b3c", rtoTargetSeconds: 3600, snapshotRetainCount: 7, snapshotTime: "02:00" };
const docs = renderRunbooks(model, { backup });

describe("renderRunbooks", () => {
  it("writes the index, PgBouncer, PostgreSQL, Odoo, hosts, alarms, upgrades and backup runbooks, each marked generated", () => {
    expect(Object.keys(docs)).toEqual(Object.values(RUNBOOK_FILES).sort());
    for (const text of Object.values(docs)) expect(text.split("\n")[0]).toBe(`<!-- ${GENERATED} -->`);
    expect(Object.keys(renderRunbooks(model))).not.toContain(RUNBOOK_FILES.backup);
  });

  it("sends lock waits to RDS's exported log on RDS stacks, and to the Debian log file otherwise (PG-3)", () => {
    const rds = modelWith({ databases: ["erp"], postgresEngine: "rds" }, "prod");
    const text = renderRunbooks(rds)[RUNBOOK_FILES.postgresql];
    expect(text).toContain("to PostgreSQL's log, which RDS exports to the log group `/aws/rds/instance/odoo-stack-prod-postgres/postgresql`.");
    expect(text).not.toContain("/var/log/postgresql/");
    expect(docs[RUNBOOK_FILES.postgresql]).toContain("to `/var/log/postgresql/postgresql-15-main.log` (log group `/odoo-stack/prod/postgresql`).");
  });

  it("has an entry, with its metric, threshold and response, for every alarm Monitoring creates", () => {
    const alarms = monitoringAlarms(model);
    const text = docs[RUNBOOK_FILES.alarms];
    for (const a of alarms) {
      expect(text).toContain(`<a id="${a.name}"></a>\n### ${a.name}\n`);
      expect(text).toContain(`| [${a.name}](#${a.name}) |`);
      const entry = text.slice(text.indexOf(`### ${a.name}\n`)).split("\n### ")[0];
      expect(entry).toContain(`${a.namespace} ${a.metricName}`);
      expect(entry).toContain(` ${a.threshold} in ${a.datapointsToAlarm} of ${a.evaluationPeriods} periods of ${a.period} s`);
      expect(entry).toContain(a.response);
    }
    expect(text.match(/^### /gm)?.length).toBe(alarms.length);
    // Alarms passed in are the ones documented (thresholds as the component resolved them).
    const custom = monitoringAlarms(model, { maxWaitSeconds: 7 });
    expect(renderRunbooks(model, { alarms: custom })[RUNBOOK_FILES.alarms]).toContain("more than 7 s (maxwait)");
  });

  it("resolves every procedure link to an anchor in the named file", () => {
    for (const [file, text] of Object.entries(docs)) {
      for (const [, target, id] of text.matchAll(/\]\(([a-z.]*)#([a-z0-9-]+)\)/g)) {
        const doc = target === "" ? text : docs[target];
        expect({ file, target, id, found: doc?.includes(`<a id="${id}"></a>`) }).toEqual({ file, target, id, found: true });
      }
    }
    for (const p of PROCEDURES) expect(docs[PROCEDURE_LOCATION[p].file]).toContain(`<a id="${p}"></a>`);
  });

  it("shows the PgBouncer queue through the Unix socket and reloads without a password (OBS-1, BACKUP-4)", () => {
    const text = docs[RUNBOOK_FILES.pgbouncer];
    const console = `sudo -u postgres psql -X -h ${PGBOUNCER_DEBIAN.unixSocketDir} -p 6432 -U pgbouncer pgbouncer -c`;
    for (const cmd of ["SHOW POOLS", "SHOW STATS", "SHOW SERVERS", "RELOAD"]) expect(text).toContain(`${console} '${cmd}'`);
    expect(text).toContain("sudo systemctl reload pgbouncer");
    expect(text).toContain(sessionCommand(model, model.hosts.pgbouncer));
    expect(text).toContain(PATHS.pgbouncerUserlist);
  });

  it("rotates a password in the rotation script's order: postgres, pgbouncer, every Odoo host, check (AUTH-4)", () => {
    const text = docs[RUNBOOK_FILES.pgbouncer];
    const steps = [...text.matchAll(new RegExp(`sudo ${SCRIPT_PATHS.rotate} (\\w+)`, "g"))].map((m) => m[1]);
    // The migration role shares the Odoo role's verifier, so step 1 sets it on both.
    expect(steps).toEqual(["postgres", "postgres", "pgbouncer", "odoo", "odoo", "check"]);
    expect(text).toContain(`--role ${DB_ROLES.odoo}`);
    expect(text).toContain(`--role ${DB_ROLES.migrate}`);
    expect(text).toContain(model.parameters.odooDbScramVerifier);
    // Each Odoo host's step runs after a session on that very host.
    for (const h of model.hosts.odoo) expect(text).toContain(`${sessionCommand(model, h)}\nsudo ${SCRIPT_PATHS.rotate} odoo`);
  });

  it("handles locks and long transactions with pg_stat_activity, pg_blocking_pids, cancel then terminate (OBS-7, BACKUP-4)", () => {
    const text = docs[RUNBOOK_FILES.postgresql];
    for (const s of ["pg_stat_activity", "xact_start", "pg_blocking_pids(w.pid)", "pg_cancel_backend(<pid>)", "pg_terminate_backend(<pid>)", "pg_stat_statements", "age(datfrozenxid)", "n_dead_tup"]) {
      expect(text).toContain(s);
    }
    expect(text.indexOf("pg_cancel_backend")).toBeLessThan(text.indexOf("pg_terminate_backend"));
    expect(text).toContain(`lock_timeout\` ${model.settings.sizing.postgres.lockTimeoutMs} ms`);
  });

  it("covers upgrades of Odoo (host by host), PostgreSQL and PgBouncer, backup first (BACKUP-3)", () => {
    const text = docs[RUNBOOK_FILES.upgrades];
    for (const s of ["## Odoo", "## PostgreSQL", "## PgBouncer", "apt-get install --only-upgrade odoo", "postgresql-15", "pgbouncer", "SHOW VERSION", "create-snapshot"]) expect(text).toContain(s);
    for (const db of model.settings.databases) {
      // The module update runs as the migration role, with the service's CA for verify-full (one source: odooMigrationCommand).
      expect(text).toContain(odooMigrationCommand(model, model.hosts.odoo[0], db));
      expect(odooMigrationCommand(model, model.hosts.odoo[0], db)).toBe(
        `sudo -u odoo env PGSSLROOTCERT=${PATHS.caCert} odoo -c ${PATHS.odooConf} --db_user ${DB_ROLES.migrate} -d ${db} -u all --stop-after-init --no-http`,
      );
    }
    expect(text.indexOf("pgbackrest-diff")).toBeLessThan(text.indexOf("## Odoo"));
    for (const h of model.hosts.odoo) expect(text).toContain(`# ${h.id}\n${sessionCommand(model, h)}`);
  });

  it("names the stack's log groups and never a resolved secret", () => {
    for (const s of LOG_SOURCE_NAMES) expect(docs[RUNBOOK_FILES.index]).toContain(logGroupName(model, s));
    for (const text of Object.values(docs)) expect(text).not.toMatch(/\{\{ssm:/);
  });

  it("renders the alarm and PgBouncer runbooks of a fixture stack (golden)", () => {
    expectGolden("observability/runbooks/alarms.md", docs[RUNBOOK_FILES.alarms]);
    expectGolden("observability/runbooks/pgbouncer.md", docs[RUNBOOK_FILES.pgbouncer]);
    expectGolden("observability/runbooks/postgresql.md", docs[RUNBOOK_FILES.postgresql]);
    expect(fs.existsSync(path.join(__dirname, "../golden/observability/runbooks/alarms.md"))).toBe(true);
  });
});
