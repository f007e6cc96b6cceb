// Every operational procedure of the stack, defined once as data (BACKUP-3, BACKUP-4, AUTH-4,
// BACKUP-2): its steps in order, where each runs (the operator's laptop or a host of a role),
// the exact commands, and what each step checks. Three readers, one table:
//   - the runbook renderer (templates/runbooks.ts, runbook-backup.ts) prints the steps as marked
//     shell blocks (templates/runbook-blocks.ts), so the fleet-boot suite runs them as written;
//   - `odoo-stack rotate <password>` (tools/odoo-stack.ts) sends the host steps through SSM Run
//     Command in this order and checks each result against `expect`;
//   - tests hold the host scripts to it: odoo-stack-rotate.sh's step order and "next:" hints, the
//     flags the commands pass, the units they name (tests/unit/procedures.test.ts).
// So the runbook cannot state an order, a flag or a unit the scripts do not have. Engine-aware:
// with RDS there is no PostgreSQL host; database work runs on the PgBouncer host through the
// master's libpq service. Pure: no Pulumi import.
import { odooPackageVersion } from "../lib/config";
import { DB_ROLES, PATHS, POSTGRES_CLUSTER, UNITS, type HostId, type HostRole, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { ROTATABLE_PASSWORDS, PASSWORD_ROTATION_KEY, type RotatablePassword } from "../lib/rotation";
import { backupBucketNameParameter, filestorePrefix, importPrefix, ODOO_FILESTORE_DIR } from "./backup-units";
import { METRICS_UNITS } from "./metrics";
import { acmeArgs, acmeCertificatePaths, acmeInputFor } from "./cloud-init";
import { ODOO_INIT_MODULES } from "./hosts";
import { odooMigrationCommand } from "./odoo-conf";
import { ODOO_RELEASE_PATHS } from "./odoo-release";
import { PGBOUNCER_DEBIAN } from "./pgbouncer";
import { createOdooDatabase } from "./postgresql";
import { PG_DATA_PATH, PGBACKREST_STANZA } from "./pgbackrest";
import { RDS_ADMIN_SERVICE, RDS_POSTGRES, rdsInstanceIdentifier } from "./rds";
import { SCRIPT_PATHS } from "./scripts";

/** Where a step runs: the operator's machine (AWS CLI, Pulumi CLI) or a host of a role. */
export type StepWhere = "laptop" | HostRole;

export interface ProcedureStep {
  /** Unique in its procedure, kebab-case; the runbook block's `step=`. */
  readonly id: string;
  readonly where: StepWhere;
  /** Every host of the role, one after another (Odoo hosts). Optional. Defaults to false: one host. */
  readonly eachHost?: boolean;
  /** What the step does, one line. */
  readonly title: string;
  /** The exact commands, in order; a host step's run as root by SSM or after `sudo` by the operator. */
  readonly commands: readonly string[];
  /** What the step checks: when it has succeeded. */
  readonly checks: string;
  /**
   * What the step's output must show (besides exit status 0), checked by `odoo-stack rotate`:
   * e.g. the apply script's "installed /etc/pgbouncer/userlist.txt" proves a new verifier arrived.
   */
  readonly expect?: readonly RegExp[];
  /** Shell variables the operator sets first (a pid, a point in time), used as "$NAME". */
  readonly params?: readonly string[];
}

export interface OperationalProcedure {
  /** kebab-case; the runbook's anchor and its blocks' `procedure=`. */
  readonly id: string;
  readonly title: string;
  readonly checklist: readonly string[];
  /** Why the steps are in this order, and what is (not) proven; rendered above the steps. */
  readonly notes: readonly string[];
  readonly steps: readonly ProcedureStep[];
}

const rotate = SCRIPT_PATHS.rotate;
const apply = SCRIPT_PATHS.apply;
/** Debian's cluster, as pg_ctlcluster and systemctl name it. */
const PG_CTLCLUSTER = `${POSTGRES_CLUSTER.version} ${POSTGRES_CLUSTER.name}`;
const PG_UNIT = UNITS.postgres.replace(/\.service$/, "");

/**
 * The proven order of the odoo role's rotation, the steps of odoo-stack-rotate: PgBouncer first
 * (measured, tests/integration/rotation.test.ts: the other order stalled the pool for
 * server_login_retry, 15 s, on PgBouncer 1.18), then PostgreSQL, every Odoo host, the check.
 * The script's ROTATE_STEPS array must equal this (tests/unit/procedures.test.ts).
 */
export const ODOO_ROTATION_ORDER = ["pgbouncer", "postgres", "odoo", "check"] as const;

/** The hosts a step runs on, in order: none for the laptop, every Odoo host for eachHost steps. */
export function stepHosts(model: StackModel, step: Pick<ProcedureStep, "where" | "eachHost">): readonly HostId[] {
  switch (step.where) {
    case "laptop":
      return [];
    case "odoo":
      return step.eachHost ? model.hosts.odoo : [model.cronHost];
    case "postgres":
      if (!model.allHosts.includes(model.hosts.postgres))
        throw new Error("procedures: a step on the PostgreSQL host in a stack without one (postgresEngine rds)");
      return [model.hosts.postgres];
    case "pgbouncer":
      return [model.hosts.pgbouncer];
    case "proxy":
      return [model.hosts.proxy];
  }
}

/** Where SQL as the database's administrator runs: the PostgreSQL host, or for RDS the PgBouncer host. */
export const databaseAdminRole = (model: StackModel): HostRole => (model.settings.postgresEngine === "rds" ? "pgbouncer" : "postgres");

/**
 * psql as the database's administrator, on databaseAdminRole's host: the superuser over the
 * Unix socket (peer), or for RDS the master user through its libpq service (verify-full; the
 * file holds the password, root only). `host` points the RDS connection at another endpoint
 * (a point-in-time copy) with the same credentials.
 */
export function adminPsql(model: StackModel, database: string, host?: string): string {
  if (model.settings.postgresEngine === "rds") {
    return `sudo env PGSERVICEFILE=${PATHS.rdsAdminServiceFile} psql -X "service=${RDS_ADMIN_SERVICE} dbname=${database}${host ? ` host=${host}` : ""}"`;
  }
  if (host) throw new Error("adminPsql: another host is an RDS copy's endpoint");
  return `sudo -u postgres psql -X -d ${database}`;
}

/** A SQL statement through adminPsql, as one shell line (statements here hold no single quote). */
export const adminSql = (model: StackModel, database: string, sql: string): string => {
  if (sql.includes("'")) throw new Error(`adminSql: quote-free SQL only: ${sql}`);
  return `${adminPsql(model, database)} -c '${sql}'`;
};

/** The admin console over PgBouncer's Unix socket, as the service's OS user: no password (BACKUP-4). */
export const pgbouncerConsole = (command: string): string =>
  `sudo -u ${PGBOUNCER_DEBIAN.serviceUser} psql -X -h ${PGBOUNCER_DEBIAN.unixSocketDir} -p ${PORTS.pgbouncer.port} -U pgbouncer pgbouncer -c '${command}'`;

/** Output lines of the apply script (templates/scripts/odoo-stack-apply.sh `log`). */
const applied = (path: string): RegExp => new RegExp(`installed ${path.replace(/[.]/g, "\\.")}`);
const ranSql = new RegExp(`running ${PATHS.postgresBootstrapSql.replace(/[.]/g, "\\.")}`);

function keeperStep(name: RotatablePassword): ProcedureStep {
  return {
    id: "keeper",
    where: "laptop",
    title: `New ${name} password in SSM: the keeper ${PASSWORD_ROTATION_KEY}.${name}, then pulumi up`,
    commands: [`pulumi config set --path '${PASSWORD_ROTATION_KEY}.${name}' "$(date -u +%F)"`, "pulumi up"],
    checks:
      "pulumi up replaced exactly this password (and its salt) and its SSM parameters, and changed nothing else: another change would re-run every host's apply association at once, in no order, and apply the new password out of turn.",
  };
}

/** The rotation of one generated password: the keeper, then the host steps in their proven order (AUTH-4). */
export function rotationProcedure(model: StackModel, name: RotatablePassword): OperationalProcedure {
  const rds = model.settings.postgresEngine === "rds";
  const db = model.settings.databases[0];
  const collectorCheck = (where: StepWhere): ProcedureStep => ({
    id: "check",
    where,
    title: "The metrics collector logs in with the new password",
    commands: [`sudo systemctl start ${METRICS_UNITS.service}`],
    checks: "The collector's run exits 0 only when every source answered, the database logins included (a failing source makes it exit 1).",
  });
  const base = { id: `rotate-${name}`, title: `Rotate the ${name} password`, checklist: ["AUTH-4"] };
  switch (name) {
    case "odoo": {
      const steps: ProcedureStep[] = [
        keeperStep(name),
        {
          id: "pgbouncer",
          where: "pgbouncer",
          title: "PgBouncer: userlist.txt with the new verifier, checked, RELOAD",
          commands: [`sudo ${rotate} pgbouncer`],
          checks:
            "The apply script re-rendered userlist.txt with the new verifier, a throwaway PgBouncer accepted it, it is installed 0600 (AUTH-2) and PgBouncer RELOADed: clients stay connected, new logins need the new password.",
          expect: [applied(PATHS.pgbouncerUserlist), /pgbouncer reload/],
        },
        {
          id: "postgres",
          where: databaseAdminRole(model),
          title: rds
            ? `PostgreSQL (RDS, from the PgBouncer host as ${DB_ROLES.rdsMaster}): ALTER ROLE ${DB_ROLES.odoo} and ${DB_ROLES.migrate} with the verifier from SSM, once PgBouncer re-opened its server connections`
            : `PostgreSQL: ALTER ROLE ${DB_ROLES.odoo} and ${DB_ROLES.migrate} with the verifier from SSM`,
          // The migration role (`odoo -u`, `odoo -i`) logs in with odoo.conf's password: same verifier (lib/model.ts DB_ROLES.migrate).
          commands: [`sudo ${rotate} postgres --role ${DB_ROLES.odoo} --role ${DB_ROLES.migrate}`],
          checks: rds
            ? "It waits until PgBouncer has re-opened every server connection the RELOAD closed (SHOW SERVERS, close_needed), then runs ALTER ROLE for both roles in one transaction through the master's libpq service; RDS does not let the master read pg_authid, so the check step's login proves the verifier."
            : "One transaction: ALTER ROLE for both roles, then each stored verifier must equal the SSM parameter's; sessions already open stay authenticated.",
          expect: [new RegExp(`role ${DB_ROLES.odoo} now has the verifier`), new RegExp(`role ${DB_ROLES.migrate} now has the verifier`)],
        },
        {
          id: "odoo",
          where: "odoo",
          eachHost: true,
          title: "Odoo: odoo.conf with the new db_password, graceful restart",
          commands: [`sudo ${rotate} odoo`],
          checks:
            "odoo.conf is re-rendered, checked and installed; Odoo restarts (it reads odoo.conf at start only); with several hosts the proxy keeps serving from the others.",
          expect: [applied(PATHS.odooConf), /odoo restart/],
        },
        {
          id: "check",
          where: "odoo",
          title: "Log in through PgBouncer with odoo.conf's credentials",
          commands: [`sudo ${rotate} check --dbname ${db}`],
          checks: "A new login as odoo through PgBouncer (verify-full) with the password odoo.conf now holds succeeds.",
          expect: [/succeeded with the password in/],
        },
      ];
      return {
        ...base,
        notes: [
          `The password of ${ROTATABLE_PASSWORDS.odoo.what}. Order: pgbouncer, then postgres${rds ? " (run on the PgBouncer host: RDS has no host of its own)" : ""}, then odoo on every Odoo host, then check. PgBouncer first: on PgBouncer 1.18 a RELOAD re-opens server connections with the SCRAM keys of the clients already logged in, which PostgreSQL must still accept; the other order stalled the pool for server_login_retry (15 s, clients dropped) under load (tests/integration/rotation.test.ts). PostgreSQL second, but not at once: the RELOAD closes PgBouncer's server connections and the new ones log in with the old keys, so the ALTER ROLE must come after they are open (14–58 ms under 24 clients here) — SSM's seconds between steps do that on EC2, and the step waits for it explicitly where it runs beside PgBouncer (RDS).`,
          "Single login role: from the PgBouncer step until each Odoo host's step, a NEW login with the old password is refused. Odoo keeps its pooled connections, but every connection to database `postgres` (bus notifications, cron triggers, LISTEN after a restart) is a new login: run the steps back to back (`odoo-stack rotate odoo` does), in a quiet hour. A fully seamless rotation needs two alternating login roles, which this stack does not have.",
          "Measured on PgBouncer 1.18 under 24 clients: the first rotation after PgBouncer started failed no transaction; a second rotation in the same PgBouncer process dropped 2–4 clients (a 9–10 s stall, server_login_retry) in 4 of 7 runs. Before rotating again, restart PgBouncer in a quiet minute (`sudo systemctl restart pgbouncer` on its host: clients reconnect once).",
        ],
        steps,
      };
    }
    case "stats":
      return {
        ...base,
        notes: [
          `The password of ${ROTATABLE_PASSWORDS.stats.what}. ${DB_ROLES.stats} exists in PgBouncer only (userlist.txt, the admin console's stats_users), not in PostgreSQL: one host, one step.`,
        ],
        steps: [
          keeperStep(name),
          {
            id: "pgbouncer",
            where: "pgbouncer",
            title: "PgBouncer: userlist.txt and the collector's password file with the new stats password, RELOAD",
            commands: [`sudo ${apply}`],
            checks:
              "The apply script installed the new userlist.txt (checked by a throwaway PgBouncer) and the collector's password file, then RELOADed PgBouncer.",
            expect: [applied(PATHS.pgbouncerUserlist)],
          },
          collectorCheck("pgbouncer"),
        ],
      };
    case "monitor": {
      const where = databaseAdminRole(model);
      return {
        ...base,
        notes: [
          `The password of ${ROTATABLE_PASSWORDS.monitor.what}. It is set by bootstrap.sql and read from the collector's ${rds ? "libpq service file" : "password file"}, both on the ${where === "postgres" ? "PostgreSQL" : "PgBouncer"} host: one apply run changes both.`,
        ],
        steps: [
          keeperStep(name),
          {
            id: "apply",
            where,
            title: `${where === "postgres" ? "PostgreSQL host" : "PgBouncer host"}: bootstrap.sql (ALTER ROLE ${DB_ROLES.monitor}) and the collector's credentials`,
            commands: [`sudo ${apply}`],
            checks:
              "The apply script re-ran bootstrap.sql with the new password (recorded only once it succeeded) and installed the collector's credentials.",
            expect: [ranSql],
          },
          collectorCheck(where),
        ],
      };
    }
    case "admin":
      return {
        ...base,
        notes: [
          `The password of ${ROTATABLE_PASSWORDS.admin.what} (ODOO-1). Odoo reads it from odoo.conf at start: each Odoo host's apply installs it and restarts Odoo.`,
        ],
        steps: [
          keeperStep(name),
          {
            id: "odoo",
            where: "odoo",
            eachHost: true,
            title: "Odoo: odoo.conf with the new admin_passwd, graceful restart",
            commands: [`sudo ${apply}`, "systemctl is-active odoo"],
            checks: "odoo.conf is re-rendered, checked, installed, and Odoo runs again.",
            expect: [applied(PATHS.odooConf)],
          },
        ],
      };
  }
}

/** The procedures the runbooks render and the fleet suite runs, by id. */
export function operationalProcedures(model: StackModel): readonly OperationalProcedure[] {
  return [
    ...(Object.keys(ROTATABLE_PASSWORDS) as RotatablePassword[]).map((n) => rotationProcedure(model, n)),
    reloadAuthFile(),
    pgbouncerQueue(),
    longTransactions(model),
    restartPostgresql(model),
    model.settings.postgresEngine === "rds" ? restoreRds(model) : restoreEc2(model),
    firstInstall(model),
    addDatabase(model),
    ...(model.settings.postgresEngine === "ec2" ? [importDatabase(model)] : []),
    upgradeOdoo(model),
    releaseOdoo(model),
    upgradePostgresql(model),
    upgradePgbouncer(),
    rotateInternalCa(model),
  ];
}

export function procedureById(model: StackModel, id: string): OperationalProcedure {
  const p = operationalProcedures(model).find((x) => x.id === id);
  if (!p)
    throw new Error(
      `no procedure ${id}; known: ${operationalProcedures(model)
        .map((x) => x.id)
        .join(", ")}`,
    );
  return p;
}

function reloadAuthFile(): OperationalProcedure {
  return {
    id: "reload-auth-file",
    title: "Reload the auth_file (userlist.txt) and PgBouncer's settings",
    checklist: ["BACKUP-4", "AUTH-4"],
    notes: [
      `${PATHS.pgbouncerUserlist} (mode 0600, AUTH-2) holds SCRAM verifiers only. It is rendered from SSM and installed by the apply script, which validates it with a throwaway PgBouncer and then reloads; by hand, RELOAD (SIGHUP) re-reads both files and disconnects no client.`,
    ],
    steps: [
      {
        id: "reload",
        where: "pgbouncer",
        title: "RELOAD through systemd (SIGHUP)",
        commands: ["sudo systemctl reload pgbouncer", pgbouncerConsole("SHOW CONFIG") + " | grep -E 'auth_file|auth_type'"],
        checks: "systemctl exits 0 and the console still answers: the files were re-read and the daemon kept running.",
      },
      {
        id: "log",
        where: "pgbouncer",
        title: "The reload in PgBouncer's log",
        commands: [`sudo tail -n 20 ${PGBOUNCER_DEBIAN.logFile}`],
        checks: '"got SIGHUP, re-reading config" and no error after it.',
      },
    ],
  };
}

function pgbouncerQueue(): OperationalProcedure {
  return {
    id: "pgbouncer-queue",
    title: "See the PgBouncer queue (SHOW POOLS)",
    checklist: ["BACKUP-4", "OBS-1"],
    notes: ["The admin console over the Unix socket, as the OS user PgBouncer runs as: no password, nothing exposed on the network."],
    steps: [
      {
        id: "show",
        where: "pgbouncer",
        title: "Pools, statistics, clients, servers",
        commands: ["SHOW POOLS", "SHOW STATS", "SHOW CLIENTS", "SHOW SERVERS"].map(pgbouncerConsole),
        checks: "cl_waiting and maxwait per pool; who the clients are; which server connection runs what.",
      },
    ],
  };
}

function longTransactions(model: StackModel): OperationalProcedure {
  const db = model.settings.databases[0];
  const where = databaseAdminRole(model);
  return {
    id: "long-transactions",
    title: "Long transactions",
    checklist: ["BACKUP-4", "OBS-7", "LIMIT-4"],
    notes: ["Oldest transactions first; cancel first (the transaction rolls back, the session stays), terminate if that does not help."],
    steps: [
      {
        id: "list",
        where,
        title: "The oldest open transactions",
        commands: [
          `${adminPsql(model, db)} <<'SQL'`,
          "SELECT pid, datname, usename, application_name, client_addr, state,",
          "       now() - xact_start AS xact_age, now() - state_change AS in_state_for,",
          "       wait_event_type, wait_event, left(query, 200) AS query",
          "FROM pg_stat_activity",
          "WHERE xact_start IS NOT NULL AND backend_type = 'client backend'",
          "ORDER BY xact_start",
          "LIMIT 20;",
          "SQL",
        ],
        checks: "The pid of the transaction to end: the oldest, or the root blocker of the lock query.",
      },
      {
        id: "cancel",
        where,
        title: "Cancel it (its transaction rolls back, the session stays)",
        params: ["PID"],
        commands: [`${adminPsql(model, db)} -At -c "SELECT pg_cancel_backend($PID)"`],
        checks: "Prints t: the signal was sent. List again: the pid's xact_age starts over or it is gone.",
      },
      {
        id: "terminate",
        where,
        title: "Terminate it if cancelling did not help",
        params: ["PID"],
        commands: [`${adminPsql(model, db)} -At -c "SELECT pg_terminate_backend($PID)"`],
        checks:
          "Prints t; the pid is gone from pg_stat_activity. Through PgBouncer the server connection is replaced; the Odoo worker whose transaction it was gets an error.",
      },
    ],
  };
}

/** The transient timer a scheduled PostgreSQL restart runs as (systemd-run --on-calendar). */
export const POSTGRESQL_RESTART_UNIT = "odoo-stack-postgresql-restart";

function restartPostgresql(model: StackModel): OperationalProcedure {
  const base = { id: "restart-pending", title: "A setting waits for a PostgreSQL restart", checklist: ["PG-1"] };
  if (model.settings.postgresEngine === "rds") {
    const id = rdsInstanceIdentifier(model);
    const region = model.settings.region;
    return {
      ...base,
      notes: [
        "RDS applies a static parameter (max_connections, shared_preload_libraries) at the next reboot only: its parameter group then shows `pending-reboot`. The stack sets applyImmediately false, so nothing restarts by itself. This stack publishes no metric for it on RDS (the collector reads pg_settings, which RDS does not use for this): check after every `pulumi up` that changed the parameter group.",
      ],
      steps: [
        {
          id: "check",
          where: "laptop",
          title: "Is a reboot pending?",
          commands: [
            `aws rds describe-db-instances --region ${region} --db-instance-identifier ${id} --query 'DBInstances[0].DBParameterGroups[].ParameterApplyStatus' --output text`,
          ],
          checks: "`pending-reboot`: a reboot applies the change; `in-sync`: nothing waits.",
        },
        {
          id: "reboot",
          where: "laptop",
          title: "Reboot in a quiet minute (Multi-AZ: a failover keeps the outage to about a minute)",
          commands: [
            `aws rds reboot-db-instance --region ${region} --db-instance-identifier ${id}${model.settings.rdsMultiAz ? " --force-failover" : ""}`,
            `aws rds wait db-instance-available --region ${region} --db-instance-identifier ${id}`,
          ],
          checks: "The instance is available again and the apply status reads in-sync.",
        },
      ],
    };
  }
  const pending = "SELECT count(*) FROM pg_settings WHERE pending_restart";
  return {
    ...base,
    notes: [
      "A setting PostgreSQL applies only at start (max_connections after a bigger Odoo host, shared_buffers) is installed and reloaded by the apply script but not restarted: the restart drops every server connection, so it is yours to schedule. The collector publishes the count of such settings every minute (alarm postgres-restart-pending). Restart now, or schedule it: PgBouncer keeps its clients, transactions in flight fail and Odoo retries or reports them.",
    ],
    steps: [
      {
        id: "check",
        where: "postgres",
        title: "Which settings wait for a restart",
        commands: [`${adminPsql(model, "postgres")} -c 'SELECT name, setting, pending_restart FROM pg_settings WHERE pending_restart'`],
        checks: "The names; none listed means nothing waits.",
      },
      {
        id: "now",
        where: "postgres",
        title: "Restart now",
        commands: [`sudo pg_ctlcluster ${PG_CTLCLUSTER} restart`, `${adminPsql(model, "postgres")} -At -c '${pending}'`],
        checks: "The restart succeeds and the count is 0.",
      },
      {
        id: "schedule",
        where: "postgres",
        title: "Or schedule it: a one-off timer (survives until it fires or the host reboots)",
        params: ["AT"],
        commands: [
          `sudo systemd-run --unit=${POSTGRESQL_RESTART_UNIT} --on-calendar="$AT" --timer-property=AccuracySec=1s /usr/bin/pg_ctlcluster ${PG_CTLCLUSTER} restart`,
          `systemctl list-timers ${POSTGRESQL_RESTART_UNIT}.timer`,
        ],
        checks: `The timer lists the next run at AT (e.g. AT='2026-05-03 03:00:00 UTC'); cancel with \`sudo systemctl stop ${POSTGRESQL_RESTART_UNIT}.timer\`. Afterwards the alarm clears within the hour.`,
      },
    ],
  };
}

function restoreEc2(model: StackModel): OperationalProcedure {
  const pgb = `sudo -u postgres pgbackrest --stanza=${PGBACKREST_STANZA}`;
  return {
    id: "restore",
    title: "Full restore (host or data volume lost)",
    checklist: ["BACKUP-2"],
    notes: [
      "`pulumi up` recreates a lost host; its bootstrap installs pgBackRest and this configuration. Nothing may write during the restore: Odoo and PgBouncer stop first and start last. The weekly restore drill measures this path's RTO (restore drill alarms).",
    ],
    steps: [
      {
        id: "stop-odoo",
        where: "odoo",
        eachHost: true,
        title: "Stop Odoo",
        commands: ["sudo systemctl stop odoo"],
        checks: "`systemctl is-active odoo` says inactive.",
      },
      {
        id: "stop-pgbouncer",
        where: "pgbouncer",
        title: "Stop PgBouncer",
        commands: ["sudo systemctl stop pgbouncer"],
        checks: "No client reaches PostgreSQL any more.",
      },
      {
        id: "restore",
        where: "postgres",
        title: "Restore the newest backup and all archived WAL, then promote",
        commands: [
          `sudo systemctl stop ${PG_UNIT}`,
          `${pgb} --delta restore`,
          `sudo systemctl start ${PG_UNIT}`,
          `until sudo -u postgres psql -XAtc 'SELECT NOT pg_is_in_recovery()' | grep -qx t; do sleep 5; done`,
          // Every database of the stack answers (issue 16: one per hostname).
          ...model.settings.databases.map((d) => `sudo -u postgres psql -X -d ${d} -Atc 'SELECT count(*) FROM res_users'`),
          `${pgb} check`,
          "sudo systemctl start odoo-stack-pgbackrest-full",
        ],
        checks: `--delta reuses files whose checksum matches (a surviving volume); an empty ${PG_DATA_PATH} works too. The server replays the WAL and promotes by itself; the database answers; archiving works on the new timeline; a fresh full backup starts.`,
      },
      {
        id: "start-pgbouncer",
        where: "pgbouncer",
        title: "Start PgBouncer",
        commands: ["sudo systemctl start pgbouncer", pgbouncerConsole("SHOW DATABASES")],
        checks: "PgBouncer answers and lists the databases.",
      },
      {
        id: "filestore",
        where: "odoo",
        eachHost: !model.settings.sharedFilestore,
        title: model.settings.sharedFilestore ? "Copy the filestore back (shared: from one host)" : "Copy the filestore back",
        commands: [
          `BUCKET=$(aws ssm get-parameter --region ${model.settings.region} --name ${backupBucketNameParameter(model)} --query Parameter.Value --output text)`,
          `sudo -u odoo aws s3 sync "s3://$BUCKET/${filestorePrefix(model.stack)}" ${ODOO_FILESTORE_DIR}/ --only-show-errors`,
        ],
        checks: "A database without its attachments is not restored: every file the restored database references is back.",
      },
      {
        id: "start-odoo",
        where: "odoo",
        eachHost: true,
        title: "Start Odoo",
        commands: ["sudo systemctl start odoo", "systemctl is-active odoo"],
        checks: "Odoo runs and serves the login page through the proxy.",
      },
    ],
  };
}

function restoreRds(model: StackModel): OperationalProcedure {
  const region = model.settings.region;
  const source = rdsInstanceIdentifier(model);
  const target = rdsInstanceIdentifier(model, "postgres-pitr");
  const db = model.settings.databases[0];
  const rds = (rest: string) => `aws rds ${rest} --region ${region}`;
  return {
    id: "restore",
    title: "Point-in-time restore into a new RDS instance, cut over through PgBouncer",
    checklist: ["BACKUP-2"],
    notes: [
      `RDS keeps automated backups with point-in-time recovery for ${model.settings.backupRetentionDays} days (BACKUP-1). A restore is a NEW instance (${target}); the running one stays untouched until the cut-over, which is PgBouncer's host setting: the SSM parameter ${model.parameters.rdsEndpoint} that pgbouncer.ini and the libpq service files resolve, then an apply run on the PgBouncer host (validated, RELOAD).`,
      "RTO: untested. This stack has no restore drill on RDS (it needs AWS); the time RDS takes to restore grows with the database and the WAL to replay. Rehearse it, measure it, and record the figure next to your RPO.",
      `Afterwards the stack still describes ${source}: a later \`pulumi up\` writes its endpoint back into the parameter. Before any \`pulumi up\`, either cut back, or make the copy the stack's instance (rename ${source} away and ${target} to ${source} with \`aws rds modify-db-instance --new-db-instance-identifier … --apply-immediately\`, then put the original endpoint back in the parameter and \`pulumi refresh\`).`,
    ],
    steps: [
      {
        id: "restore",
        where: "laptop",
        title: "Restore the instance to RESTORE_TIME into a new instance in the same subnets, security group and parameter group",
        params: ["RESTORE_TIME"],
        commands: [
          `read -r SUBNETS PARAMS SG <<<"$(${rds(`describe-db-instances --db-instance-identifier ${source}`)} --query 'DBInstances[0].[DBSubnetGroup.DBSubnetGroupName,DBParameterGroups[0].DBParameterGroupName,VpcSecurityGroups[0].VpcSecurityGroupId]' --output text)"`,
          `${rds(`restore-db-instance-to-point-in-time --source-db-instance-identifier ${source} --target-db-instance-identifier ${target}`)} --restore-time "$RESTORE_TIME" --db-subnet-group-name "$SUBNETS" --db-parameter-group-name "$PARAMS" --vpc-security-group-ids "$SG" --no-publicly-accessible --copy-tags-to-snapshot --deletion-protection --ca-certificate-identifier ${RDS_POSTGRES.caCertIdentifier} --enable-cloudwatch-logs-exports postgresql${model.settings.rdsMultiAz ? " --multi-az" : ""}`,
          `${rds(`wait db-instance-available --db-instance-identifier ${target}`)}`,
          `${rds(`describe-db-instances --db-instance-identifier ${target}`)} --query 'DBInstances[0].Endpoint.Address' --output text`,
        ],
        checks:
          "The new instance is available; its endpoint address (printed last) is NEW_ENDPOINT below. RESTORE_TIME is UTC, e.g. 2026-05-01T09:59:00Z, within the retention window.",
      },
      {
        id: "inspect",
        where: "pgbouncer",
        title: "Look at the restored data before cutting over",
        params: ["NEW_ENDPOINT"],
        commands: [`${adminPsql(model, db, "$NEW_ENDPOINT")} -Atc 'SELECT count(*) FROM res_users'`],
        checks:
          "The master user reaches the copy over verify-full (the RDS CA bundle covers it) and the data is what you expect at RESTORE_TIME.",
      },
      {
        id: "cut-over",
        where: "laptop",
        title: "Point PgBouncer's host setting at the copy",
        params: ["NEW_ENDPOINT"],
        commands: [
          `aws ssm put-parameter --region ${region} --name ${model.parameters.rdsEndpoint} --type String --value "$NEW_ENDPOINT" --overwrite`,
        ],
        checks: "The parameter holds the new address (keep the old one to cut back).",
      },
      {
        id: "apply",
        where: "pgbouncer",
        title: "Apply on the PgBouncer host: pgbouncer.ini with the new host, validated, RELOAD",
        commands: [`sudo ${apply}`, pgbouncerConsole("SHOW DATABASES")],
        checks:
          "pgbouncer.ini and the service files are re-rendered with the new endpoint and installed; RELOAD sends new server connections to the copy; SHOW DATABASES shows its address.",
        expect: [applied(PATHS.pgbouncerIni)],
      },
      {
        id: "check",
        where: "odoo",
        title: "Odoo logs in through PgBouncer",
        commands: model.settings.databases.map((d) => `sudo ${rotate} check --dbname ${d}`),
        checks: "A new login through PgBouncer reaches the restored database.",
      },
    ],
  };
}

function backupBeforeUpgrade(model: StackModel): ProcedureStep {
  if (model.settings.postgresEngine === "rds") {
    return {
      id: "backup",
      where: "laptop",
      title: "A manual snapshot first, so rolling back is a restore, not a repair",
      commands: [
        `aws rds create-db-snapshot --region ${model.settings.region} --db-instance-identifier ${rdsInstanceIdentifier(model)} --db-snapshot-identifier ${rdsInstanceIdentifier(model, "before-upgrade")}-$(date -u +%Y%m%d%H%M)`,
        `aws rds wait db-snapshot-available --region ${model.settings.region} --db-instance-identifier ${rdsInstanceIdentifier(model)}`,
      ],
      checks: "The snapshot is available.",
    };
  }
  return {
    id: "backup",
    where: "postgres",
    title: "A fresh backup first, so rolling back is a restore, not a repair",
    commands: ["sudo systemctl start odoo-stack-pgbackrest-diff", `sudo -u postgres pgbackrest --stanza=${PGBACKREST_STANZA} info`],
    checks: "The new differential backup is listed, status ok.",
  };
}

/**
 * What first boot did to the Odoo databases (odoo-stack-odoo-init on the cron host) and how to
 * log in the first time: the admin user's password is a generated parameter, never admin/admin.
 */
function firstInstall(model: StackModel): OperationalProcedure {
  const region = model.settings.region;
  return {
    id: "first-install",
    title: "First install and first login",
    checklist: ["ODOO-1"],
    notes: [
      `First boot of the cron host (${model.cronHost.id}) initializes every empty database of the stack once (${code2(SCRIPT_PATHS.odooInit)}): Odoo stopped, \`odoo -i ${ODOO_INIT_MODULES.join(",")}\`, the \`admin\` user's password set from its parameter, Odoo started. A database that is already initialized is never touched, so running it again is safe. To start from an existing database instead, use the import-database procedure.`,
    ],
    steps: [
      {
        id: "status",
        where: "odoo",
        title: "See what the first install did (and run it again: it only acts on an empty database)",
        commands: [`sudo journalctl -u odoo-stack-firstboot -o cat | grep odoo-stack-odoo-init`, `sudo ${SCRIPT_PATHS.odooInit}`],
        checks: "Each database is reported initialized (now or before); the second run says it left them untouched.",
        expect: [/initialized already; left untouched|nothing to do/],
      },
      {
        id: "admin-password",
        where: "laptop",
        title: "The admin user's password, for the first login as `admin`",
        commands: [
          `aws ssm get-parameter --region ${region} --with-decryption --name ${model.parameters.odooAdminUserPassword} --query Parameter.Value --output text`,
        ],
        checks: "Log in at /web/login as `admin` with it, then give each person an account of their own.",
      },
    ],
  };
}

/**
 * A database added to a running stack (issue 16): `pulumi up` with the new {name, domain} entry
 * reaches every host through its apply association (PostgreSQL: bootstrap.sql creates the empty
 * database; PgBouncer: its pool, reloaded in place; Odoo: db_name and the dbfilter; nginx: the
 * hostname's server) and creates the A record. What first boot did once is done again by hand:
 * the public certificate is re-requested with every hostname (certbot replaces the lineage's
 * names), and the new, empty database gets its first install (odoo-stack-odoo-init, which leaves
 * the initialized ones untouched). The commands name the stack's hostnames as planned, so they
 * are read from the plan made after editing the stack file.
 */
function addDatabase(model: StackModel): OperationalProcedure {
  const acme = acmeInputFor(model);
  const hostnames = model.settings.sites.map((site) => site.hostname);
  return {
    id: "add-database",
    title: "Add a database on its own hostname",
    checklist: ["ODOO-3", "POOL-1", "TLS-3"],
    notes: [
      `The stack's databases and hostnames as planned: ${model.settings.sites.map((site) => `${code2(site.database)} at ${code2(site.hostname)}`).join(", ")}. Add the new one to \`databases\` in the stack file in the {name, domain} form (every hostname \`<name>.<parent domain>\`, README "Several databases"), plan it (\`npm run plan\`) and follow this procedure from the new plan's runbooks: its commands name every hostname.`,
      `Odoo stops while the new database is installed (odoo-stack-odoo-init stops it for \`odoo -i\`), so every database is unavailable for that time; schedule it.`,
      ...(acme === undefined
        ? [
            "With an imported certificate, import one that carries every hostname before `pulumi up`: nginx serves it for each hostname's server.",
          ]
        : []),
    ],
    steps: [
      {
        id: "stack",
        where: "laptop",
        title: "Declare the database and its hostname, then let the associations apply it",
        commands: ["pulumi preview --diff", "pulumi up"],
        checks:
          "The preview adds the hostname's A record and changes each host's files (a new pool, db_name and dbfilter, a server block); after `pulumi up` each host's apply association has run with success.",
      },
      ...(acme === undefined
        ? []
        : [
            {
              id: "certificate",
              where: "proxy" as const,
              title: "The public certificate again, with every hostname (issued once at first boot)",
              commands: [
                `sudo ${SCRIPT_PATHS.bootstrap} ${acmeArgs(acme).join(" ")}`,
                `sudo openssl x509 -noout -ext subjectAltName -in ${acmeCertificatePaths(acme.domain).fullchain}`,
              ],
              checks: `certbot re-issued the lineage ${code2(acme.domain)} and its deploy hook reloaded nginx; the certificate names ${hostnames.join(", ")}.`,
              expect: hostnames.map((h) => new RegExp(`DNS:${h.replace(/[.]/g, "\\.")}`)),
            },
          ]),
      {
        id: "install",
        where: "odoo",
        title: "The new database's first install",
        commands: [`sudo ${SCRIPT_PATHS.odooInit}`],
        checks: "The new database is reported initialized; the others initialized already, left untouched.",
        expect: [/initialized (in|already)/],
      },
      {
        id: "check",
        where: "laptop",
        title: "Each hostname serves its own database's login page",
        commands: hostnames.map((h) => `curl -sS -o /dev/null -w '%{http_code}\\n' https://${h}/web/login`),
        checks: "200 for every hostname.",
      },
    ],
  };
}

/**
 * An existing Odoo database instead of an empty one: a pg_dump (custom format) and its
 * filestore (a tar of filestore/<db>) uploaded to the backup bucket's import prefix, restored
 * with Odoo stopped. The hosts may only read that prefix (templates/backup-iam.ts).
 */
function importDatabase(model: StackModel): OperationalProcedure {
  const region = model.settings.region;
  const prefix = importPrefix(model.stack);
  const bucket = `BUCKET=$(aws ssm get-parameter --region ${region} --name ${backupBucketNameParameter(model)} --query Parameter.Value --output text)`;
  const work = "/var/tmp/odoo-stack-import";
  return {
    id: "import-database",
    title: "Import an existing database and filestore",
    checklist: ["BACKUP-4"],
    notes: [
      `DB is one of the stack's databases (${model.settings.databases.join(", ")}). The dump is \`pg_dump -Fc\` of the source database, the filestore a tar of its \`filestore/<db>\` directory (Odoo's data_dir), both of the same Odoo series (${model.settings.odooVersion}). The database is dropped and created again as Odoo creates it, so what the first install put there is replaced. Odoo's admin password then is the source's; the \`ODOO-1\` parameter applies to fresh installs only.`,
    ],
    steps: [
      {
        id: "upload",
        where: "laptop",
        title: "Upload the dump and the filestore to the backup bucket's import prefix",
        commands: [
          `aws s3 cp "$DB.dump" "s3://$(pulumi stack output backupBucketName)/${prefix}$DB.dump"`,
          `aws s3 cp "$DB-filestore.tar.gz" "s3://$(pulumi stack output backupBucketName)/${prefix}$DB-filestore.tar.gz"`,
        ],
        checks: "Both objects are in the bucket.",
        params: ["DB"],
      },
      {
        id: "stop-odoo",
        where: "odoo",
        eachHost: true,
        title: "Stop Odoo",
        commands: ["sudo systemctl stop odoo"],
        checks: "`systemctl is-active odoo` says inactive on every host.",
      },
      {
        id: "restore",
        where: "postgres",
        title: "Drop the database, create it as Odoo does, restore the dump into it",
        commands: [
          bucket,
          `sudo install -d -o postgres -g postgres -m 0700 ${work}`,
          `sudo -u postgres aws s3 cp --region ${region} --only-show-errors "s3://$BUCKET/${prefix}$DB.dump" "${work}/$DB.dump"`,
          `sudo -u postgres psql -X -v ON_ERROR_STOP=1 -c ${inDoubleQuotes('DROP DATABASE IF EXISTS "$DB" WITH (FORCE)')} -c ${inDoubleQuotes(createOdooDatabase('"$DB"', DB_ROLES.odoo))}`,
          `sudo -u postgres pg_restore --no-owner --role=${DB_ROLES.odoo} --exit-on-error -d "$DB" "${work}/$DB.dump"`,
          `sudo -u postgres psql -X -d "$DB" -Atc 'SELECT count(*) FROM res_users'`,
          `sudo rm -rf ${work}`,
        ],
        checks: "pg_restore exits 0, every object belongs to the odoo role, and the users are there.",
        params: ["DB"],
      },
      {
        id: "filestore",
        where: "odoo",
        title: "Put the filestore in place",
        commands: [
          bucket,
          `sudo -u odoo mkdir -p "${ODOO_FILESTORE_DIR}/$DB"`,
          `aws s3 cp --region ${region} --only-show-errors "s3://$BUCKET/${prefix}$DB-filestore.tar.gz" - | sudo -u odoo tar -xz -C "${ODOO_FILESTORE_DIR}/$DB"`,
        ],
        checks: `The attachments the database references are under ${ODOO_FILESTORE_DIR}/$DB${model.settings.sharedFilestore ? " (the shared filestore: once, from one host)" : ""}.`,
        params: ["DB"],
      },
      {
        id: "start-odoo",
        where: "odoo",
        eachHost: true,
        title: "Start Odoo",
        commands: ["sudo systemctl start odoo", "systemctl is-active odoo"],
        checks: "Odoo serves the imported database's login page through the proxy.",
      },
    ],
  };
}

const code2 = (s: string): string => `\`${s}\``;
/** SQL as one double-quoted shell word: its double quotes escaped, $DB left to the shell. */
const inDoubleQuotes = (sql: string): string => `"${sql.replace(/"/g, '\\"')}"`;

function upgradeOdoo(model: StackModel): OperationalProcedure {
  const m = model.settings.sizing.postgres.migration;
  const lifted = (key: string, ms: number) => (ms === 0 ? `no ${key}` : `${key} ${ms} ms`);
  return {
    id: "upgrade-odoo",
    title: "Upgrade Odoo (minor update, same series)",
    checklist: ["BACKUP-3"],
    notes: [
      `By hand, the stack's pinned build again (odooBuild ${model.settings.odooBuild}: package ${odooPackageVersion(model.settings)}) and the module data of every database, with Odoo stopped everywhere (a short outage, in a quiet hour): e.g. after a restore. A new build or addons artifact goes through the stack instead: release-odoo. Major versions need a database migration on a restored copy (Odoo's upgrade service or OpenUpgrade), then \`odooVersion\` in the stack config and \`pulumi up\`.`,
      `The module update logs in as ${DB_ROLES.migrate}, a role that acts as ${DB_ROLES.odoo} (what it creates belongs to Odoo's role) with ${lifted("statement_timeout", m.statementTimeoutMs)} and ${lifted("idle_in_transaction_session_timeout", m.idleInTransactionSessionTimeoutMs)}, for the long rewrites of big tables, and lock_timeout ${m.lockTimeoutMs} ms (PG-2); web requests and crons keep the ${DB_ROLES.odoo} role's bounds. Per role, so they hold through PgBouncer and the DISCARD ALL Odoo sends at every cursor; PgBouncer 1.18 refuses the \`options\` that PGOPTIONS would send.`,
    ],
    steps: [
      backupBeforeUpgrade(model),
      {
        id: "package",
        where: "odoo",
        eachHost: true,
        title: `The stack's Odoo package (${odooPackageVersion(model.settings)}, held by the apt pin)`,
        // The exact build the stack pins, never "the newest nightly" (issue 12 item 7).
        commands: ["sudo apt-get update", `sudo apt-get install -y --allow-downgrades odoo=${odooPackageVersion(model.settings)}`],
        checks: `\`dpkg-query -W odoo\` shows ${odooPackageVersion(model.settings)} on every host.`,
      },
      {
        id: "stop",
        where: "odoo",
        eachHost: true,
        title: "Stop Odoo",
        commands: ["sudo systemctl stop odoo"],
        checks: "inactive on every host before the module update.",
      },
      {
        id: "modules",
        where: "odoo",
        title: "Update the module data, once per database",
        // As the migration role, with PGSSLROOTCERT (libpq 15 ignores the system CA store): templates/odoo-conf.ts.
        commands: model.settings.databases.map((d) => odooMigrationCommand(model, model.cronHost, d)),
        checks: "Each run exits 0 and its log ends without a traceback.",
      },
      {
        id: "start",
        where: "odoo",
        eachHost: true,
        title: "Start Odoo",
        commands: ["sudo systemctl start odoo", "systemctl is-active odoo"],
        checks: "active on every host; the login page answers through the proxy.",
      },
    ],
  };
}

/**
 * A new Odoo build or custom addons artifact through the stack (issue 12 item 7): the setting,
 * pulumi up, and the apply association runs templates/scripts/odoo-stack-odoo-release.sh on every
 * Odoo host; rolling back is the previous value and pulumi up again.
 */
function releaseOdoo(model: StackModel): OperationalProcedure {
  const addons = model.settings.odooAddons;
  const current = addons === undefined ? "none" : addons.sha256;
  return {
    id: "release-odoo",
    title: "Release a new Odoo build or custom addons (through the stack)",
    checklist: ["BACKUP-3"],
    notes: [
      `The stack pins the Odoo package (odooVersion ${model.settings.odooVersion} + odooBuild ${model.settings.odooBuild}: odoo=${odooPackageVersion(model.settings)}, an apt pin so no upgrade moves it) and the custom addons (odooAddons: ${addons === undefined ? "none" : `s3://${addons.bucket}/${addons.key}`}). Either change rewrites ${ODOO_RELEASE_PATHS.env} in every Odoo host's manifest, so the apply association runs again and odoo-stack-apply runs ${SCRIPT_PATHS.odooRelease} on each host.`,
      `That script first refreshes the index of Odoo's repository and checks the new build is there (a nightly published after the host's last apt-get update), downloads the artifact, checks its sha256, unpacks it to ${ODOO_RELEASE_PATHS.releases}/<sha256>, checks every __manifest__.py and compiles every file, and installs requirements.txt with pip --target into the release (from its wheels/ with --no-index when it ships them). Only then does it stop Odoo (the proxy answers 503 with Retry-After), install the package and switch ${ODOO_RELEASE_PATHS.current} (${ODOO_RELEASE_PATHS.customAddons} and PYTHONPATH go through it). On the cron host (${model.cronHost.id}) it then runs the module update of every database as ${DB_ROLES.migrate} (\`-u all\` for a new build, the artifact's addons for new addons: Odoo updates the modules installed in the database; a new addon is installed from Apps afterwards), and starts Odoo. A failure switches back to the previous package and release, starts Odoo and fails the association, naming the step.`,
      "Each host runs its association on its own: with several Odoo hosts, the others restart on the new code while the cron host updates the modules; keep releases to a quiet hour.",
    ],
    steps: [
      backupBeforeUpgrade(model),
      {
        id: "stack",
        where: "laptop",
        title: "The new build and/or artifact in the stack config, then pulumi up",
        commands: [
          'pulumi config set odooBuild "$BUILD"',
          "sha256sum addons.tar.gz",
          'aws s3 cp addons.tar.gz "$ADDONS_URI"',
          `pulumi config set --path odooAddons.s3Uri "$ADDONS_URI"`,
          `pulumi config set --path odooAddons.sha256 "$ADDONS_SHA256"`,
          "pulumi preview --diff",
          "pulumi up",
        ],
        checks: `The preview changes each Odoo host's ${ODOO_RELEASE_PATHS.env} object and its manifest (and, for a new artifact, the hosts' read grant on it) and replaces nothing; set only what changes (BUILD, or ADDONS_URI with ADDONS_SHA256).`,
        params: ["BUILD", "ADDONS_URI", "ADDONS_SHA256"],
      },
      {
        id: "verify",
        where: "odoo",
        eachHost: true,
        title: "Each host is on the release",
        commands: [
          "dpkg-query -W -f='${Version}\\n' odoo",
          `readlink ${ODOO_RELEASE_PATHS.current}`,
          "systemctl is-active odoo",
          `sudo ${SCRIPT_PATHS.odooRelease} --check`,
        ],
        checks: `The stack's package (now ${odooPackageVersion(model.settings)}), ${ODOO_RELEASE_PATHS.current} pointing at releases/<the artifact's sha256> (now ${current}), Odoo active, and the script's check (it changes nothing) saying "nothing to do". If the association failed, its output names the step, the host is back on the previous release (the check says "not on the stack's release" and what differs), and the stack still names the failing one: roll back (next step). A failure before Odoo stopped (the new build not in Odoo's repository, the download, the checksum, the addons' checks) changed nothing: fix its cause and run \`sudo ${SCRIPT_PATHS.odooRelease}\` on the host (a second run of the association finds its files installed already and does not run the release again).`,
      },
      {
        id: "rollback",
        where: "laptop",
        title: "Roll back: the previous values, pulumi up",
        commands: [
          'pulumi config set odooBuild "$PREVIOUS_BUILD"',
          `pulumi config set --path odooAddons.s3Uri "$PREVIOUS_ADDONS_URI"`,
          `pulumi config set --path odooAddons.sha256 "$PREVIOUS_ADDONS_SHA256"`,
          "pulumi up",
        ],
        checks: `After a failed release the hosts are on the previous one already (the script switched back), so their associations say "nothing to do"; after a release that worked, they switch back the same way. Either way no download: the previous release is kept under ${ODOO_RELEASE_PATHS.releases}. Then the verify step again. A module update that changed the database is not undone by older code: restore the backup of the first step (the restore procedure of the backups runbook).`,
        params: ["PREVIOUS_BUILD", "PREVIOUS_ADDONS_URI", "PREVIOUS_ADDONS_SHA256"],
      },
    ],
  };
}

function upgradePostgresql(model: StackModel): OperationalProcedure {
  const base = { id: "upgrade-postgresql", title: "Upgrade PostgreSQL (minor release)", checklist: ["BACKUP-3"] };
  if (model.settings.postgresEngine === "rds") {
    return {
      ...base,
      notes: [
        `The RDS engine version is pinned in the stack (RDS_POSTGRES.engineVersion in templates/rds.ts, now ${RDS_POSTGRES.engineVersion}; autoMinorVersionUpgrade off): a minor upgrade is a reviewed change of that constant and \`pulumi up\`. With applyImmediately off, RDS applies it in the maintenance window (${RDS_POSTGRES.maintenanceWindow} UTC); Multi-AZ keeps the outage to a failover. A major version is a migration rehearsed on a restored copy.`,
      ],
      steps: [
        backupBeforeUpgrade(model),
        {
          id: "stack",
          where: "laptop",
          title: "The new version through the stack",
          commands: ["pulumi preview --diff", "pulumi up"],
          checks: "The preview shows engineVersion changing on the RDS instance and nothing replaced.",
        },
        {
          id: "version",
          where: "pgbouncer",
          title: "After the window: the version RDS runs",
          commands: [`${adminPsql(model, model.settings.databases[0])} -Atc 'SELECT version()'`],
          checks: "The new version; PgBouncer reconnected by itself.",
        },
      ],
    };
  }
  return {
    ...base,
    notes: [
      "Minor releases (15.x) are security and bug fixes: apply them. PgBouncer keeps clients connected while PostgreSQL restarts; transactions in flight fail and Odoo retries or reports them. A major version (16, 17) changes the data directory layout and this stack's rendered paths: a change to the stack, rehearsed on a restored copy, not an operator step.",
    ],
    steps: [
      backupBeforeUpgrade(model),
      {
        id: "package",
        where: "postgres",
        title: "New packages, restart, version",
        commands: [
          "sudo apt-get update",
          `sudo apt-get install -y --only-upgrade postgresql-${POSTGRES_CLUSTER.version} postgresql-client-${POSTGRES_CLUSTER.version}`,
          `sudo systemctl restart ${PG_UNIT}`,
          `sudo -u postgres psql -X -d ${model.settings.databases[0]} -Atc 'SELECT version()'`,
        ],
        checks: "The new minor version answers.",
      },
    ],
  };
}

function upgradePgbouncer(): OperationalProcedure {
  return {
    id: "upgrade-pgbouncer",
    title: "Upgrade PgBouncer",
    checklist: ["BACKUP-3"],
    notes: [
      "A restart drops every client connection (Odoo reconnects): do it in a quiet minute. The metrics collector reads SHOW POOLS / SHOW STATS columns by name, so a release that adds or removes columns keeps working; after the upgrade check that ClientsWaiting still arrives on the dashboard.",
    ],
    steps: [
      {
        id: "package",
        where: "pgbouncer",
        title: "New package, restart, version and pools",
        commands: [
          "sudo apt-get update",
          "sudo apt-get install -y --only-upgrade pgbouncer",
          "sudo systemctl restart pgbouncer",
          pgbouncerConsole("SHOW VERSION"),
          pgbouncerConsole("SHOW POOLS"),
        ],
        checks: "SHOW VERSION names the new release; the pools are back.",
      },
      {
        id: "validate",
        where: "pgbouncer",
        title: "The apply script's validation of the new release",
        commands: [`sudo ${apply}`],
        checks: "`nothing changed` (or installed and reloaded): the rendered files still pass the new release's checks.",
      },
    ],
  };
}

/**
 * Rotating the internal CA in three `pulumi up`s, each applied on every host before the next
 * (lib/internal-ca.ts): the next CA trusted everywhere, then signing every host certificate,
 * then the old one dropped. At no step does a host serve a certificate another host cannot
 * verify, so no TLS connection fails; the apply association runs each step by itself after
 * `pulumi up`, and the host steps here run it at once and show it done.
 */
function rotateInternalCa(model: StackModel): OperationalProcedure {
  const ec2 = model.settings.postgresEngine === "ec2";
  const current = model.settings.internalCaGeneration;
  const next = current + 1;
  const applyEverywhere = (phase: string, what: string): ProcedureStep[] =>
    [...(ec2 ? (["postgres"] as const) : []), "pgbouncer" as const, "odoo" as const, "proxy" as const].map((where) => ({
      id: `${phase}-${where}`,
      where,
      eachHost: where === "odoo",
      title: `Apply on ${where === "odoo" ? "every Odoo host" : `the ${where} host`}: ${what}`,
      commands: [`sudo ${apply}`],
      checks:
        "The CA file is installed (update-ca-certificates) and the daemon reloaded; or `nothing changed` if the association applied it already.",
      expect: [new RegExp(`${applied(PATHS.caCert).source}|nothing changed`)],
    }));
  const check = (id: string): ProcedureStep => ({
    id,
    where: "odoo",
    title: "Verify-full logins through PgBouncer",
    commands: [`sudo ${rotate} check --dbname ${model.settings.databases[0]}`],
    checks: "Odoo → PgBouncer → PostgreSQL verify the chain end to end.",
  });
  return {
    id: "rotate-internal-ca",
    title: "Rotate the internal CA",
    checklist: ["TLS-2", "TLS-4"],
    notes: [
      `Host certificates renew by themselves (\`pulumi up\` in their early-renewal window, TLS-4); the CA never does, because a CA replaced in place reaches the hosts one at a time and new TLS connections between an updated and a not yet updated host would fail verify-full. Its expiry alarm asks for this procedure instead: generation ${current} to ${next} in three \`pulumi up\`s, each applied on every host before the next. No step breaks a connection, so it needs no quiet hour.`,
    ],
    steps: [
      {
        id: "trust-next",
        where: "laptop",
        title: `Create CA generation ${next} and make every host trust it beside generation ${current}`,
        commands: ["pulumi config set odoo-stack:internalCaNext trusted", "pulumi up"],
        checks: `The preview creates the CA ${next} key and certificate and updates the CA certificate parameter, nothing else.`,
      },
      ...applyEverywhere("trust", `the CA file with both generations`),
      {
        id: "issue-next",
        where: "laptop",
        title: `Re-issue every host certificate from CA generation ${next}`,
        commands: ["pulumi config set odoo-stack:internalCaNext issuing", "pulumi up"],
        checks:
          "The preview replaces every host certificate and key and updates their parameters and the CA certificate parameter (the issuing CA first), nothing else.",
      },
      ...applyEverywhere("issue", "the host's new certificate (both CAs still trusted)"),
      check("issue-check"),
      {
        id: "drop-old",
        where: "laptop",
        title: `Stop trusting CA generation ${current}`,
        commands: [
          `pulumi config set odoo-stack:internalCaGeneration ${next}`,
          "pulumi config set odoo-stack:internalCaNext none",
          "pulumi up",
        ],
        checks: `The preview deletes the CA ${current} key and certificate and updates the CA certificate parameter, nothing else.`,
      },
      ...applyEverywhere("drop", `the CA file with generation ${next} only`),
      check("drop-check"),
    ],
  };
}
