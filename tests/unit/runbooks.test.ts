// The generated runbooks (BACKUP-3, BACKUP-4, AUTH-4: R): every alarm of the table the Monitoring
// component builds from has its entry (backup alarms by their real names), every link resolves
// to an anchor, the commands carry the stack's names (hosts, socket, roles, scripts, log groups),
// an RDS stack names no PostgreSQL host, and goldens of the alarm, PgBouncer, PostgreSQL and
// rotation runbooks. The procedures' order and commands: tests/unit/procedures.test.ts.
import { ODOO_RELEASE_PATHS } from "../../templates/odoo-release";
import { DEFAULTS } from "../../lib/config";
import { DB_ROLES, PATHS } from "../../lib/model";
import { backupAlarmEntries, monitoringAlarms, PROCEDURES } from "../../templates/alarms";
import { LOG_SOURCE_NAMES, logGroupName } from "../../templates/cloudwatch-agent";
import { GENERATED } from "../../templates/format";
import { odooMigrationCommand } from "../../templates/odoo-conf";
import { PGBOUNCER_DEBIAN } from "../../templates/pgbouncer";
import { extractShellBlocks } from "../../templates/runbook-blocks";
import { PROCEDURE_LOCATION, renderRunbooks, RUNBOOK_FILES, sessionCommand } from "../../templates/runbooks";
import { SCRIPT_PATHS } from "../../templates/scripts";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { expectGolden } from "../helpers/golden";

const model = modelWith({ odooInstances: 2, ...databasesAt("erp", "erptest"), alarmEmail: "ops@example.com" }, "prod");
const backup = { bucket: "odoo-stack-prod-backups-1a2b3c", rtoTargetSeconds: 3600, snapshotRetainCount: 7, snapshotTime: "02:00" };
const docs = renderRunbooks(model, { backup });
const rdsModel = modelWith({ odooInstances: 3, availabilityZoneCount: 3, postgresEngine: "rds" }, "scale");
const rdsDocs = renderRunbooks(rdsModel, { backup });

describe("renderRunbooks", () => {
  it("writes the index, PgBouncer, rotation, PostgreSQL, Odoo, hosts, alarms, upgrades and backup runbooks, each marked generated", () => {
    expect(Object.keys(docs)).toEqual(Object.values(RUNBOOK_FILES).sort());
    expect(Object.keys(rdsDocs)).toEqual(Object.values(RUNBOOK_FILES).sort());
    for (const text of [...Object.values(docs), ...Object.values(rdsDocs)]) expect(text.split("\n")[0]).toBe(`<!-- ${GENERATED} -->`);
    expect(Object.keys(renderRunbooks(model))).not.toContain(RUNBOOK_FILES.backup);
  });

  it("sends lock waits to RDS's exported log on RDS stacks, and to the Debian log file otherwise (PG-3)", () => {
    expect(rdsDocs[RUNBOOK_FILES.postgresql]).toContain(
      "to PostgreSQL's log, which RDS exports to the log group `/aws/rds/instance/odoo-stack-scale-postgres/postgresql`.",
    );
    expect(rdsDocs[RUNBOOK_FILES.postgresql]).not.toContain("/var/log/postgresql/");
    expect(docs[RUNBOOK_FILES.postgresql]).toContain(
      "to `/var/log/postgresql/postgresql-15-main.log` (log group `/odoo-stack/prod/postgresql`).",
    );
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
    expect(text.match(/^### /gm)?.length).toBe(alarms.length + backupAlarmEntries(model).length);
    // Alarms passed in are the ones documented (thresholds as the component resolved them).
    const custom = monitoringAlarms(model, { maxWaitSeconds: 7 });
    expect(renderRunbooks(model, { alarms: custom })[RUNBOOK_FILES.alarms]).toContain("more than 7 s (maxwait)");
  });

  it("lists the backup alarms by the names BackupPlan gives them, only those the engine has (BACKUP-1, BACKUP-2)", () => {
    const names = (d: Record<string, string>) =>
      [...d[RUNBOOK_FILES.alarms].split("## Backup alarms")[1].matchAll(/^### (\S+)$/gm)].map((m) => m[1]);
    expect(names(docs)).toEqual([
      "odoo-stack-prod-restore-drill-stale",
      "odoo-stack-prod-restore-drill-rto",
      "odoo-stack-prod-backup-age",
      "odoo-stack-prod-filestore-sync-odoo-1",
      "odoo-stack-prod-filestore-sync-odoo-2",
    ]);
    expect(names(rdsDocs)).toEqual([
      "odoo-stack-scale-filestore-sync-odoo-1",
      "odoo-stack-scale-filestore-sync-odoo-2",
      "odoo-stack-scale-filestore-sync-odoo-3",
    ]);
    for (const text of Object.values(rdsDocs)) expect(text).not.toMatch(/restore-drill|pgbackrest|postgresDataVolumeId/);
  });

  it.each([
    ["ec2", docs],
    ["rds", rdsDocs],
  ] as const)("resolves every link of the %s runbooks to an anchor in the named file", (_engine, d) => {
    let links = 0;
    for (const [file, text] of Object.entries(d)) {
      for (const [, target, id] of text.matchAll(/\]\(([a-zA-Z.]*)#([a-z0-9-]+)\)/g)) {
        links++;
        const doc = target === "" ? text : d[target];
        expect({ file, target, id, found: doc?.includes(`<a id="${id}"></a>`) }).toEqual({ file, target, id, found: true });
      }
    }
    expect(links).toBeGreaterThan(50);
    for (const p of PROCEDURES) expect(d[PROCEDURE_LOCATION[p].file]).toContain(`<a id="${p}"></a>`);
  });

  it("names no PostgreSQL host on RDS: database work runs on the PgBouncer host through the master's service file", () => {
    for (const [file, text] of Object.entries(rdsDocs)) {
      for (const b of extractShellBlocks(text))
        if (b.target.kind === "host") expect({ file, hosts: b.target.hosts.includes("postgres") }).toEqual({ file, hosts: false });
      expect({ file, session: text.includes("Values=postgres ") }).toEqual({ file, session: false });
    }
    expect(rdsDocs[RUNBOOK_FILES.postgresql]).toContain(
      `sudo env PGSERVICEFILE=${PATHS.rdsAdminServiceFile} psql -X "service=odoo-stack-rds-admin dbname=erp" <<'SQL'`,
    );
    expect(rdsDocs[RUNBOOK_FILES.backup]).toContain("restore-db-instance-to-point-in-time");
    expect(rdsDocs[RUNBOOK_FILES.backup]).toContain("RTO: untested.");
    expect(rdsDocs[RUNBOOK_FILES.backup]).toContain(
      `--name ${rdsModel.parameters.rdsEndpoint} --type String --value "$NEW_ENDPOINT" --overwrite`,
    );
  });

  it("shows the PgBouncer queue through the Unix socket and reloads without a password (OBS-1, BACKUP-4)", () => {
    const text = docs[RUNBOOK_FILES.pgbouncer];
    const console = `sudo -u postgres psql -X -h ${PGBOUNCER_DEBIAN.unixSocketDir} -p 6432 -U pgbouncer pgbouncer -c`;
    for (const cmd of ["SHOW POOLS", "SHOW STATS", "SHOW SERVERS"]) expect(text).toContain(`${console} '${cmd}'`);
    expect(text).toContain("```sh host=pgbouncer procedure=reload-auth-file step=reload\nsudo systemctl reload pgbouncer\n");
    expect(docs[RUNBOOK_FILES.hosts]).toContain(
      `<a id="shell-pgbouncer"></a>\n### pgbouncer (\`pgbouncer.odoo.internal\`)\n\n\`\`\`sh laptop\n${sessionCommand(model, model.hosts.pgbouncer)}\n\`\`\``,
    );
    expect(text).toContain(PATHS.pgbouncerUserlist);
  });

  it("rotates with one laptop command per password, and by hand with the rotation script (AUTH-4)", () => {
    const text = docs[RUNBOOK_FILES.rotation];
    expect(text).toContain("```sh laptop procedure=rotate\nnpx tsx tools/odoo-stack.ts rotate odoo --stack prod --region eu-west-1\n");
    // The migration role shares the Odoo role's verifier: the postgres step sets both, in one transaction.
    expect(text).toContain(`sudo ${SCRIPT_PATHS.rotate} postgres --role ${DB_ROLES.odoo} --role ${DB_ROLES.migrate}`);
    expect(text).toContain("pulumi config set --path 'passwordRotation.odoo' \"$(date -u +%F)\"");
    // The stats user is PgBouncer's only: never an ALTER ROLE on PostgreSQL (today's runbook said so).
    expect(text).not.toContain(`--role ${DB_ROLES.stats}`);
  });

  it("handles locks and long transactions with pg_stat_activity, pg_blocking_pids, cancel then terminate (OBS-7, BACKUP-4)", () => {
    const text = docs[RUNBOOK_FILES.postgresql];
    for (const s of [
      "pg_stat_activity",
      "xact_start",
      "pg_blocking_pids(w.pid)",
      "pg_cancel_backend($PID)",
      "pg_terminate_backend($PID)",
      "pg_stat_statements",
      "age(datfrozenxid)",
      "n_dead_tup",
    ]) {
      expect(text).toContain(s);
    }
    expect(text.indexOf("pg_cancel_backend")).toBeLessThan(text.indexOf("pg_terminate_backend"));
    expect(text).toContain(`lock_timeout\` ${model.settings.sizing.postgres.lockTimeoutMs} ms`);
  });

  it("schedules a pending PostgreSQL restart on EC2, and checks RDS's apply status on RDS (PG-1)", () => {
    expect(docs[RUNBOOK_FILES.postgresql]).toContain(
      'sudo systemd-run --unit=odoo-stack-postgresql-restart --on-calendar="$AT" --timer-property=AccuracySec=1s /usr/bin/pg_ctlcluster 15 main restart',
    );
    expect(docs[RUNBOOK_FILES.alarms]).toContain("[A setting waits for a PostgreSQL restart](postgresql.md#restart-pending)");
    expect(rdsDocs[RUNBOOK_FILES.postgresql]).toContain("ParameterApplyStatus");
    expect(rdsDocs[RUNBOOK_FILES.alarms]).not.toContain("restart-pending");
  });

  it("covers upgrades of Odoo (host by host), PostgreSQL and PgBouncer, backup first (BACKUP-3)", () => {
    const text = docs[RUNBOOK_FILES.upgrades];
    for (const s of [
      "Upgrade Odoo",
      "Upgrade PostgreSQL",
      "Upgrade PgBouncer",
      `apt-get install -y --allow-downgrades odoo=17.0.${DEFAULTS.odooBuild}`,
      "postgresql-15",
      "SHOW VERSION",
    ])
      expect(text).toContain(s);
    // The module update runs on the cron host as the migration role, with the service's CA for verify-full (one source: odooMigrationCommand).
    const migrations = model.settings.databases.map((db) => odooMigrationCommand(model, model.cronHost, db));
    expect(text).toContain(`\`\`\`sh host=${model.cronHost.id} procedure=upgrade-odoo step=modules\n${migrations.join("\n")}\n\`\`\``);
    expect(migrations).toEqual(
      model.settings.databases.map(
        (db) =>
          `sudo -u odoo env PGSSLROOTCERT=${PATHS.caCert} PYTHONPATH=${ODOO_RELEASE_PATHS.python} odoo -c ${PATHS.odooConf} --db_user ${DB_ROLES.migrate} -d ${db} -u all --stop-after-init --no-http`,
      ),
    );
    expect(text.indexOf("pgbackrest-diff")).toBeLessThan(text.indexOf(`odoo=17.0.${DEFAULTS.odooBuild}`));
    for (const h of model.hosts.odoo) expect(text).toContain(`\`\`\`sh host=${h.id} procedure=upgrade-odoo step=package\n`);
    expect(rdsDocs[RUNBOOK_FILES.upgrades]).toContain("aws rds create-db-snapshot");
  });

  it("names the stack's log groups and never a resolved secret", () => {
    for (const s of LOG_SOURCE_NAMES) expect(docs[RUNBOOK_FILES.index]).toContain(logGroupName(model, s));
    for (const text of Object.values(docs)) expect(text).not.toMatch(/\{\{ssm:/);
  });

  it("renders the alarm, PgBouncer, rotation and PostgreSQL runbooks of a fixture stack (golden)", () => {
    expectGolden("observability/runbooks/alarms.md", docs[RUNBOOK_FILES.alarms]);
    expectGolden("observability/runbooks/pgbouncer.md", docs[RUNBOOK_FILES.pgbouncer]);
    expectGolden("observability/runbooks/rotation.md", docs[RUNBOOK_FILES.rotation]);
    expectGolden("observability/runbooks/postgresql.md", docs[RUNBOOK_FILES.postgresql]);
    expectGolden("observability/runbooks/rds-backup.md", rdsDocs[RUNBOOK_FILES.backup]);
  });
});
