// The backup jobs as systemd units (BACKUP-1, BACKUP-2): goldens of every file each role
// receives, and the invariants — every timer is persistent and randomized with a calendar
// systemd accepts, every timer has its service, services never run as root, the filestore copy
// never deletes, the drill script as deployed is the one the integration test runs.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SECRET_REF } from "../../lib/model";
import {
  STANZA_CREATE_RETRY,
  BACKUP_METRIC_NAMESPACE,
  BACKUP_METRICS,
  BACKUP_SCHEDULES,
  BACKUP_TIMERS,
  backupBucketNameParameter,
  backupHostFiles,
  odooBackupHostFiles,
  postgresArchiveParameters,
  postgresBackupHostFiles,
  RESTORE_DRILL_PATH,
  restoreDrillScript,
} from "../../templates/backup-units";
import type { HostFile } from "../../templates/format";
import { PGBACKREST_CONF_PATH } from "../../templates/pgbackrest";
import { postgresConfSettingsFor, renderPostgresConf } from "../../templates/postgresql";
import { escapeSystemdWord } from "../../templates/systemd";
import { expectGolden } from "../helpers/golden";
import { databasesAt, modelWith } from "../helpers/fixtures";

const model = modelWith({ odooInstances: 2, ...databasesAt("erp", "erptest") }, "prod");
const postgresFiles = postgresBackupHostFiles(model);
const odooFiles = odooBackupHostFiles(model, model.hosts.odoo[0]);
const DRILL_SOURCE = path.resolve(__dirname, "../../templates/scripts/odoo-stack-restore-drill.sh");

const file = (files: readonly HostFile[], p: string): HostFile => {
  const found = files.find((f) => f.path === p);
  if (!found) throw new Error(`no file ${p} among ${files.map((f) => f.path).join(", ")}`);
  return found;
};
const unit = (files: readonly HostFile[], name: string): string => file(files, `/etc/systemd/system/${name}`).content;
/** Values of `key=` lines in a unit, in order. */
const values = (content: string, key: string): string[] =>
  content
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

describe("goldens (reviewed line by line)", () => {
  it.each(postgresFiles.filter((f) => f.path.startsWith("/etc/systemd/system/")).map((f) => [path.basename(f.path), f] as const))(
    "postgres host: %s",
    (name, f) => expectGolden(`backups/postgres/${name}`, f.content),
  );

  it.each(odooFiles.map((f) => [path.basename(f.path), f] as const))("odoo-1: %s", (name, f) =>
    expectGolden(`backups/odoo/${name}`, f.content),
  );
});

describe("what each role receives", () => {
  it("the PostgreSQL host: pgbackrest.conf, the drill script, and four timers with their services", () => {
    expect(postgresFiles.map((f) => f.path)).toEqual(
      [
        PGBACKREST_CONF_PATH,
        "/etc/systemd/system/odoo-stack-backup-report.service",
        "/etc/systemd/system/odoo-stack-backup-report.timer",
        "/etc/systemd/system/odoo-stack-pgbackrest-diff.service",
        "/etc/systemd/system/odoo-stack-pgbackrest-diff.timer",
        "/etc/systemd/system/odoo-stack-pgbackrest-full.service",
        "/etc/systemd/system/odoo-stack-pgbackrest-full.timer",
        "/etc/systemd/system/odoo-stack-restore-drill.service",
        "/etc/systemd/system/odoo-stack-restore-drill.timer",
        RESTORE_DRILL_PATH,
      ].sort(),
    );
  });

  it("BACKUP_TIMERS names exactly the timers delivered to each role", () => {
    const timers = (files: readonly HostFile[]) =>
      files
        .map((f) => path.basename(f.path))
        .filter((n) => n.endsWith(".timer"))
        .sort();
    expect(timers(postgresFiles)).toEqual([...BACKUP_TIMERS.postgres].sort());
    expect(timers(odooFiles)).toEqual([...BACKUP_TIMERS.odoo].sort());
  });

  it("backupHostFiles dispatches by role and gives the proxy and PgBouncer nothing", () => {
    expect(backupHostFiles(model, model.hosts.postgres)).toEqual(postgresFiles);
    expect(backupHostFiles(model, model.hosts.odoo[1])).toEqual(odooBackupHostFiles(model, model.hosts.odoo[1]));
    expect(backupHostFiles(model, model.hosts.proxy)).toEqual([]);
    expect(backupHostFiles(model, model.hosts.pgbouncer)).toEqual([]);
    expect(() => odooBackupHostFiles(model, model.hosts.postgres)).toThrow(/postgres host, not an Odoo host/);
  });

  it("pgbackrest.conf is root-owned, readable by postgres only, and carries placeholders, not secrets", () => {
    const conf = file(postgresFiles, PGBACKREST_CONF_PATH);
    expect(conf).toMatchObject({ mode: "0640", owner: "root", group: "postgres" });
    expect([...conf.content.matchAll(SECRET_REF)].map((m) => m[1]).sort()).toEqual(
      [model.parameters.backupCipherPass, backupBucketNameParameter(model)].sort(),
    );
  });

  it("the drill script is delivered byte for byte as the file shellcheck and the integration test use", () => {
    const script = file(postgresFiles, RESTORE_DRILL_PATH);
    expect(script).toMatchObject({ mode: "0755", owner: "root", group: "root" });
    expect(script.content).toBe(fs.readFileSync(DRILL_SOURCE, "utf8"));
    expect(script.content).toBe(restoreDrillScript());
  });
});

describe("timers", () => {
  const timers = [...postgresFiles, ...odooFiles].filter((f) => f.path.endsWith(".timer"));

  it.each(timers.map((t) => [path.basename(t.path), t.content] as const))(
    "%s: one calendar, randomized, persistent, enabled by timers.target",
    (_name, content) => {
      expect(values(content, "OnCalendar")).toHaveLength(1);
      expect(values(content, "RandomizedDelaySec")).toHaveLength(1);
      expect(values(content, "Persistent")).toEqual(["true"]);
      expect(values(content, "WantedBy")).toEqual(["timers.target"]);
    },
  );

  it.each(Object.entries(BACKUP_SCHEDULES))("the %s calendar is one systemd accepts", (_job, schedule) => {
    const r = spawnSync("systemd-analyze", ["calendar", schedule.onCalendar], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
  });

  it("full and differential backups never fall on the same day (they would contend for the stanza lock)", () => {
    expect(BACKUP_SCHEDULES.full.onCalendar).toMatch(/^Sun /);
    expect(BACKUP_SCHEDULES.diff.onCalendar).toMatch(/^Mon\.\.Sat /);
  });

  it("every timer has its service", () => {
    const all = [...postgresFiles, ...odooFiles].map((f) => f.path);
    for (const t of timers) expect(all).toContain(t.path.replace(/\.timer$/, ".service"));
  });
});

describe("services", () => {
  const services = [...postgresFiles, ...odooFiles].filter((f) => f.path.endsWith(".service"));

  it.each(services.map((s) => [path.basename(s.path), s.content] as const))(
    "%s: a oneshot that never runs as root, hardened",
    (_name, content) => {
      expect(values(content, "Type")).toEqual(["oneshot"]);
      expect(values(content, "User")).toHaveLength(1);
      expect(values(content, "User")[0]).not.toBe("root");
      expect(values(content, "NoNewPrivileges")).toEqual(["yes"]);
      expect(values(content, "ProtectSystem")).toEqual(["full"]);
      expect(values(content, "TimeoutStartSec")).toHaveLength(1);
    },
  );

  it.each([
    ["odoo-stack-pgbackrest-full.service", "full"],
    ["odoo-stack-pgbackrest-diff.service", "diff"],
  ])("%s creates the stanza, backs up (%s) and checks archiving, with the deployed config", (name, type) => {
    const content = unit(postgresFiles, name);
    const pgbackrest = `/usr/bin/pgbackrest --config=${PGBACKREST_CONF_PATH} --stanza=main`;
    expect(values(content, "ExecStartPre")).toEqual([STANZA_CREATE_RETRY.replace("PGBACKREST", pgbackrest)]);
    expect(values(content, "ExecStart")).toEqual([`${pgbackrest} --type=${type} backup`]);
    expect(values(content, "ExecStartPost")).toEqual([`${pgbackrest} check`]);
    expect(values(content, "User")).toEqual(["postgres"]);
  });

  it("stanza-create waits while an archive-push holds the archive lock (exit 50) and fails at once on anything else", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stanza-create-"));
    try {
      // A pgbackrest that exits with the codes listed in `codes`, one per call, and counts its calls.
      const fake = path.join(dir, "pgbackrest");
      fs.writeFileSync(
        fake,
        `#!/bin/sh\nn=$(($(cat ${dir}/calls 2>/dev/null || echo 0) + 1)); echo $n >${dir}/calls\nexit $(sed -n "\${n}p" ${dir}/codes)\n`,
        { mode: 0o755 },
      );
      // The unit's command line as systemd runs it: `$$` is a literal `$`.
      const line = STANZA_CREATE_RETRY.replace("PGBACKREST", fake)
        .replace(/\$\$/g, "$")
        .replace(/^\/bin\/sh -c '(.*)'$/, "$1");
      const run = (codes: number[]) => {
        fs.writeFileSync(path.join(dir, "codes"), codes.join("\n") + "\n");
        fs.rmSync(path.join(dir, "calls"), { force: true });
        const r = spawnSync("/bin/sh", ["-c", line], { encoding: "utf8" });
        return { status: r.status, calls: Number(fs.readFileSync(path.join(dir, "calls"), "utf8")) };
      };
      expect(run([50, 0])).toEqual({ status: 0, calls: 2 });
      expect(run([28])).toEqual({ status: 28, calls: 1 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the drill and the report run the deployed script with the stack's names", () => {
    const drill = unit(postgresFiles, "odoo-stack-restore-drill.service");
    const report = unit(postgresFiles, "odoo-stack-backup-report.service");
    expect(values(drill, "ExecStart")).toEqual([RESTORE_DRILL_PATH]);
    expect(values(report, "ExecStart")).toEqual([`${RESTORE_DRILL_PATH} --report`]);
    for (const content of [drill, report]) {
      expect(values(content, "Environment")).toEqual(
        expect.arrayContaining([
          "ODOO_STACK_NAME=prod",
          "ODOO_STACK_DATABASES=erp,erptest",
          "AWS_DEFAULT_REGION=eu-west-1",
          `ODOO_STACK_PGBACKREST_CONFIG=${PGBACKREST_CONF_PATH}`,
          `ODOO_STACK_DRILL_STALE_AFTER_SECONDS=${8 * 86400}`,
          "ODOO_STACK_DRILL_PROCESS_MAX=1",
        ]),
      );
      expect(values(content, "StateDirectory")).toEqual(["odoo-stack-restore-drill"]);
    }
  });

  it("the stale window follows drillStaleAfterDays and refuses nonsense", () => {
    const report = unit(postgresBackupHostFiles(model, { drillStaleAfterDays: 15 }), "odoo-stack-backup-report.service");
    expect(values(report, "Environment")).toContain(`ODOO_STACK_DRILL_STALE_AFTER_SECONDS=${15 * 86400}`);
    expect(() => postgresBackupHostFiles(model, { drillStaleAfterDays: 0 })).toThrow(/drillStaleAfterDays/);
  });

  it("the filestore copy syncs the whole filestore into the stack's prefix, without --delete, and reports per host", () => {
    for (const host of model.hosts.odoo) {
      const content = unit(odooBackupHostFiles(model, host), "odoo-stack-filestore-sync.service");
      const [exec] = values(content, "ExecStart");
      expect(exec).toBe(
        `/usr/bin/aws s3 sync /var/lib/odoo/filestore s3://{{ssm:${backupBucketNameParameter(model)}}}/filestore/prod/ --only-show-errors --no-progress`,
      );
      expect(content).not.toContain("--delete");
      expect(values(content, "User")).toEqual(["odoo"]);
      expect(values(content, "ReadOnlyPaths")).toEqual(["/var/lib/odoo"]);
      expect(values(content, "ExecStartPost")[0]).toContain(
        `--namespace ${BACKUP_METRIC_NAMESPACE} --metric-name ${BACKUP_METRICS.filestoreSyncSuccess} --value 1 --unit Count --dimensions Stack=prod,Host=${host.id}`,
      );
    }
  });

  it("an explicit bucket name replaces the placeholder everywhere", () => {
    const files = [
      ...postgresBackupHostFiles(model, { bucket: "real-bucket" }),
      ...odooBackupHostFiles(model, model.hosts.odoo[0], { bucket: "real-bucket" }),
    ];
    expect(files.some((f) => f.content.includes("bucket-name"))).toBe(false);
    expect(file(files, PGBACKREST_CONF_PATH).content).toContain("repo1-s3-bucket=real-bucket\n");
  });
});

describe("the drill script", () => {
  it("is shellcheck-clean", () => {
    const r = spawnSync("shellcheck", ["--severity=style", DRILL_SOURCE], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("publishes the metrics the alarms watch, in their namespace", () => {
    const script = restoreDrillScript();
    expect(script).toContain(`NAMESPACE=${BACKUP_METRIC_NAMESPACE}\n`);
    for (const metric of [BACKUP_METRICS.restoreDrillSuccess, BACKUP_METRICS.restoreDrillRtoSeconds, BACKUP_METRICS.lastBackupAgeSeconds]) {
      expect(script).toMatch(new RegExp(`put_metric ${metric} `));
    }
  });
});

describe("WAL archiving in the PostgreSQL drop-in", () => {
  it("the archive keys are accepted by the drop-in as extra parameters and rendered once each", () => {
    const conf = renderPostgresConf({ ...postgresConfSettingsFor(model), extraParameters: postgresArchiveParameters(model) });
    for (const line of [
      `archive_command = 'pgbackrest --config=${PGBACKREST_CONF_PATH} --stanza=main archive-push %p'`,
      "archive_mode = on",
      "archive_timeout = 60",
      "wal_level = 'replica'",
    ]) {
      expect(conf.split("\n").filter((l) => l === line)).toHaveLength(1);
    }
  });
});

describe("escapeSystemdWord", () => {
  it.each(["prod", "erp,erptest", "s3://{{ssm:/odoo-stack/prod/backup/bucket-name}}/filestore/prod/", "Stack=prod,Host=odoo-1"])(
    "passes %p through",
    (w) => {
      expect(escapeSystemdWord(w)).toBe(w);
    },
  );

  it.each(["two words", "100%", "quote'", 'dq"', "back\\slash", "new\nline", ""])("refuses %p", (w) => {
    expect(() => escapeSystemdWord(w)).toThrow(/systemd unit word/);
  });
});
