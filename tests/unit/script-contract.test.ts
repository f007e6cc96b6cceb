// The contract between the host scripts (templates/scripts/*.sh) and the TypeScript: every fact
// both sides state — config paths, unit names, the PostgreSQL version and cluster, the CA, the
// manifest's services — is read out of the script source here and compared with the constant
// the renderers use, so the two cannot drift apart (issue 17; STYLE "one source for every fact").
// And what the manifest promises to validate (SERVICE_STEPS), the apply script's validate
// function for that service runs.
import { ODOO_RELEASE_PATHS } from "../../templates/odoo-release";
import * as fs from "fs";
import * as path from "path";
import { PATHS, POSTGRES_CLUSTER, UNITS } from "../../lib/model";
import { PORTS } from "../../lib/ports";
import { RESTORE_DRILL_PATH, RESTORE_DRILL_SCRATCH, RESTORE_DRILL_STATE_DIRECTORY } from "../../templates/backup-units";
import { APPLY_ENV_PATH, FIRSTBOOT_COMPLETE_MARKER, FIRSTBOOT_STEPS_PATH, FIRSTBOOT_UNIT } from "../../templates/cloud-init";
import { CLOUDWATCH_AGENT_CONFIG_PATH } from "../../templates/cloudwatch-agent";
import { MANIFEST_FORMAT, SERVICE_STEPS, SERVICES } from "../../templates/manifest";
import { PG_BIN_DIR, PGBACKREST_CONF_PATH } from "../../templates/pgbackrest";
import { LISTEN_DATABASE, PGBOUNCER_DEBIAN } from "../../templates/pgbouncer";
import { RDS_ADMIN_SERVICE } from "../../templates/rds";
import { SCRIPT_PATHS, SCRIPTS_DIR } from "../../templates/scripts";

const scriptFiles = fs
  .readdirSync(SCRIPTS_DIR)
  .filter((f) => f.endsWith(".sh"))
  .sort();
const source = (name: string): string => fs.readFileSync(path.join(SCRIPTS_DIR, name), "utf8");
const apply = source("odoo-stack-apply.sh");

/** Group 1 of the pattern in the text; fails the test naming the pattern when it is gone. */
function read(text: string, pattern: RegExp): string {
  const m = pattern.exec(text);
  if (!m) throw new Error(`the script no longer matches ${pattern}; update this contract with the script`);
  return m[1];
}

/** A bash function's body, from its `name() {` line to the first line that is only `}`. */
function functionBody(text: string, name: string): string {
  const m = new RegExp(`^${name}\\(\\) \\{\\n([\\s\\S]*?)^\\}$`, "m").exec(text);
  if (!m) throw new Error(`no function ${name} in the script`);
  return m[1];
}

const serviceUnit = (name: string): string => (/\.(service|timer|target)$/.test(name) ? name : `${name}.service`);

describe("odoo-stack-apply.sh states the program's facts", () => {
  it.each([
    ["the settings file cloud-init writes", /CONFIG_FILE=\$\{ODOO_STACK_CONFIG:-\$ROOT(\S+)\}$/m, APPLY_ENV_PATH],
    ["the applied manifest", /APPLIED_MANIFEST=\$ROOT(\S+)$/m, PATHS.manifest],
    ["nginx's config directory", /^\s*NGINX_CONF_DIR=(\S+)$/m, path.posix.dirname(PATHS.nginxConf)],
    ["PgBouncer's config directory", /^\s*PGBOUNCER_CONF_DIR=(\S+)$/m, path.posix.dirname(PATHS.pgbouncerIni)],
    ["PgBouncer's service user", /PGBOUNCER_USER=\$\{ODOO_STACK_PGBOUNCER_USER:-(\S+)\}$/m, PGBOUNCER_DEBIAN.serviceUser],
    ["PostgreSQL's binaries", /PG_BINDIR=\$\{ODOO_STACK_PG_BINDIR:-(\S+)\}$/m, PG_BIN_DIR],
    ["PostgreSQL's config directory", /PG_CONF_DIR=\$\{ODOO_STACK_PG_CONF_DIR:-(\S+)\}$/m, PATHS.postgresConfDir],
    ["the RDS master's service file", /^readonly RDS_ADMIN_SERVICE_FILE=(\S+)$/m, PATHS.rdsAdminServiceFile],
    ["the RDS master's service name", /^readonly RDS_ADMIN_SERVICE=(\S+)$/m, RDS_ADMIN_SERVICE],
    ["the manifest format", /^readonly MANIFEST_FORMAT=(\S+)$/m, String(MANIFEST_FORMAT)],
    ["Odoo's config directory (validate_odoo)", /F_PATH\[i\]\} == (\/\S+)\/\*\.conf/, path.posix.dirname(PATHS.odooConf)],
    [
      "the first-boot state directory",
      /STATE_DIR=\$\{ODOO_STACK_STATE_DIR:-\$ROOT(\S+)\}$/m,
      path.posix.dirname(path.posix.dirname(FIRSTBOOT_COMPLETE_MARKER)),
    ],
  ])("%s", (_what, pattern, expected) => {
    expect(read(apply, pattern)).toBe(expected);
  });

  it("drives the units the program names, and the PostgreSQL cluster by version and name", () => {
    expect(serviceUnit(read(apply, /HOOK_RELOAD_NGINX=\$\{ODOO_STACK_RELOAD_NGINX:-systemctl reload-or-restart (\S+)\}$/m))).toBe(
      UNITS.nginx,
    );
    expect(serviceUnit(read(apply, /HOOK_RELOAD_PGBOUNCER=\$\{ODOO_STACK_RELOAD_PGBOUNCER:-systemctl reload (\S+)\}$/m))).toBe(
      UNITS.pgbouncer,
    );
    expect(serviceUnit(read(apply, /HOOK_RESTART_PGBOUNCER=\$\{ODOO_STACK_RESTART_PGBOUNCER:-systemctl restart (\S+)\}$/m))).toBe(
      UNITS.pgbouncer,
    );
    expect(serviceUnit(read(apply, /HOOK_RESTART_ODOO=\$\{ODOO_STACK_RESTART_ODOO:-systemctl restart (\S+)\}$/m))).toBe(UNITS.odoo);
    for (const verb of ["reload", "restart"]) {
      expect(read(apply, new RegExp(`:-pg_ctlcluster (\\S+ \\S+) ${verb}\\}$`, "m"))).toBe(
        `${POSTGRES_CLUSTER.version} ${POSTGRES_CLUSTER.name}`,
      );
    }
  });

  it("knows exactly the manifest's services", () => {
    const known = read(apply, /^readonly SERVICES_KNOWN=" (.*) "$/m).split(" ");
    expect([...known].sort()).toEqual([...SERVICES].sort());
  });
});

describe("what the manifest promises to validate, the apply script validates (SERVICE_STEPS)", () => {
  const dispatch = functionBody(apply, "validate_service");
  /** The function validate_service calls for a service, or undefined when its branch does nothing. */
  const validatorOf = (service: string): string | undefined => {
    for (const m of dispatch.matchAll(/^\s*([a-z| -]+)\)\s*(\S*)\s*;;$/gm)) {
      if (
        m[1]
          .split("|")
          .map((s) => s.trim())
          .includes(service)
      )
        return m[2] === "" ? undefined : m[2];
    }
    throw new Error(`validate_service has no branch for ${service}`);
  };

  it.each(SERVICES.filter((s) => SERVICE_STEPS[s].validate !== undefined))(
    "%s: validate_service runs a validator that does what the manifest says",
    (service) => {
      const validate = SERVICE_STEPS[service].validate!;
      const fn = validatorOf(service);
      expect(fn).toBe(`validate_${service.replace(/-/g, "_")}`);
      expect(functionBody(apply, fn!)).toContain(validate.runs);
    },
  );

  it.each(SERVICES.filter((s) => SERVICE_STEPS[s].validate === undefined))("%s: promises no validation and gets none", (service) => {
    expect(validatorOf(service)).toBeUndefined();
  });
});

describe("every script states the program's facts", () => {
  const scripts = scriptFiles.map((name) => [name, source(name)] as const);

  it("odoo-stack-rotate.sh: the apply script, the CA, PgBouncer's socket, port and listen database", () => {
    const rotate = source("odoo-stack-rotate.sh");
    expect(read(rotate, /^readonly APPLY=\$\{ODOO_STACK_APPLY:-(\S+)\}$/m)).toBe(SCRIPT_PATHS.apply);
    expect(read(rotate, /-h (\S+) -p \d+ -U pgbouncer pgbouncer"$/m)).toBe(PGBOUNCER_DEBIAN.unixSocketDir);
    expect(Number(read(rotate, /-h \S+ -p (\d+) -U pgbouncer pgbouncer"$/m))).toBe(PORTS.pgbouncer.port);
    expect(read(rotate, /^readonly LISTEN_DATABASE=(\S+)$/m)).toBe(LISTEN_DATABASE);
    expect(rotate).toContain(PATHS.caCert);
  });

  it("odoo-stack-odoo-init.sh: the unit it stops and restarts", () => {
    const init = source("odoo-stack-odoo-init.sh");
    expect(serviceUnit(read(init, /STOP_ODOO=\$\{ODOO_STACK_STOP_ODOO:-systemctl stop (\S+)\}$/m))).toBe(UNITS.odoo);
    expect(serviceUnit(read(init, /START_ODOO=\$\{ODOO_STACK_RESTART_ODOO:-systemctl restart (\S+)\}$/m))).toBe(UNITS.odoo);
  });

  it("odoo-stack-bootstrap.sh: the step list, the EFS tunnel's config, the first-boot unit", () => {
    const bootstrap = source("odoo-stack-bootstrap.sh");
    expect(read(bootstrap, /^readonly STEPS_FILE_DEFAULT=(\S+)$/m)).toBe(FIRSTBOOT_STEPS_PATH);
    expect(`/etc/stunnel/${read(bootstrap, /^readonly EFS_STUNNEL_NAME=(\S+)$/m)}.conf`).toBe(PATHS.efsStunnelConf);
    expect(bootstrap).toContain(FIRSTBOOT_UNIT);
  });

  it("odoo-stack-restore-drill.sh: pgBackRest's config and PostgreSQL's binaries", () => {
    const drill = source("odoo-stack-restore-drill.sh");
    expect(read(drill, /PGBACKREST_CONFIG_FILE=\$\{ODOO_STACK_PGBACKREST_CONFIG:-(\S+)\}$/m)).toBe(PGBACKREST_CONF_PATH);
    const bindirs = [...drill.matchAll(/(\/usr\/lib\/postgresql\/[^/\s]+\/bin)/g)].map((m) => m[1]);
    expect(bindirs.length).toBeGreaterThan(0);
    expect(new Set(bindirs)).toEqual(new Set([PG_BIN_DIR]));
  });

  it.each(scripts)("%s: every pg_ctlcluster, PostgreSQL path and systemctl unit is the program's", (_name, text) => {
    for (const m of text.matchAll(/pg_ctlcluster (\S+) (\S+)/g))
      expect([m[1], m[2]]).toEqual([POSTGRES_CLUSTER.version, POSTGRES_CLUSTER.name]);
    for (const m of text.matchAll(/\/(?:etc|usr\/lib|var\/lib)\/postgresql\/(\d+)\//g)) expect(m[1]).toBe(POSTGRES_CLUSTER.version);
    // Units the stack itself owns or orders against; the others are the OS's (the SSM agent,
    // a stunnel instance named by the script's own variable, a timer passed as $1).
    const owned = new Set<string>([...Object.values(UNITS), FIRSTBOOT_UNIT]);
    const os = new Set(["amazon-ssm-agent.service"]);
    for (const m of text.matchAll(/systemctl (?:[a-z-]+ )+(?:--now )?("?[A-Za-z0-9@$_][A-Za-z0-9@$_.-]*"?)/g)) {
      const unit = m[1].replace(/"/g, "");
      if (unit.startsWith("$") || unit.includes("$EFS_STUNNEL_NAME")) continue;
      expect([unit, owned.has(serviceUnit(unit)) || os.has(serviceUnit(unit))]).toEqual([unit, true]);
    }
  });

  // Every absolute path a script spells is a fact the program also states (equal to one of its
  // constants, or a directory above one), or one only the script and the OS know, listed here
  // with why. A renamed file in TypeScript then fails here until the script follows.
  const facts = [
    ...Object.values(PATHS),
    ...Object.values(SCRIPT_PATHS),
    APPLY_ENV_PATH,
    FIRSTBOOT_STEPS_PATH,
    FIRSTBOOT_COMPLETE_MARKER,
    PGBACKREST_CONF_PATH,
    PG_BIN_DIR,
    RESTORE_DRILL_PATH,
    RESTORE_DRILL_SCRATCH,
    `/var/lib/${RESTORE_DRILL_STATE_DIRECTORY}/last-drill`,
    PGBOUNCER_DEBIAN.unixSocketDir,
    CLOUDWATCH_AGENT_CONFIG_PATH,
    ...Object.values(ODOO_RELEASE_PATHS),
  ];
  const SCRIPT_ONLY: Readonly<Record<string, string>> = {
    "/etc/fstab": "the OS's mount table; the bootstrap adds the data volume's line",
    "/etc/ssl/certs/ca-certificates.crt": "Debian's CA bundle (ca-certificates)",
    "/usr/sbin/nologin": "the OS's shell for system users",
    "/usr/bin/env": "the OS",
    "/run/lock/odoo-stack-apply.lock": "the apply script's own lock: only its runs share it",
    "/var/log/": "an example in a comment of the apply script",
    "/etc/apt/sources.list.d/odoo.list": "the Odoo apt source, written and read by the bootstrap alone",
    "/usr/share/keyrings/odoo-archive-keyring.gpg": "its signing key, written and read by the bootstrap alone",
    "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl": "the CloudWatch agent package's control command",
  };
  const isFact = (literal: string): boolean => {
    const glob = literal.indexOf("*");
    if (glob >= 0) return facts.some((f) => f.startsWith(literal.slice(0, glob)));
    const dir = literal.endsWith("/") ? literal : `${literal}/`;
    return facts.some((f) => f === literal || f.startsWith(dir));
  };
  const literals = (text: string): string[] =>
    [
      ...text
        .replace(/\$\{?(ODOO_STACK_)?ROOT(:-)?\}?/g, "")
        .matchAll(/(?<![\w$}.])\/(?:etc|usr|var|opt|run|srv|lib)\/[A-Za-z0-9._@+/*-]*/g),
    ].map((m) => m[0].replace(/\/?\.{3}$/, "/"));

  it.each(scripts)("%s: every absolute path is a fact of the program or listed as the script's own", (_name, text) => {
    const unknown = [...new Set(literals(text))].filter((l) => !isFact(l) && !(l in SCRIPT_ONLY));
    expect(unknown).toEqual([]);
  });

  it("lists no script-only path that no script spells", () => {
    const all = new Set(scripts.flatMap(([, text]) => literals(text)));
    expect(Object.keys(SCRIPT_ONLY).filter((p) => !all.has(p))).toEqual([]);
  });

  it("would catch a renamed file (the check can fail)", () => {
    expect(isFact(PATHS.odooConf)).toBe(true);
    expect(isFact("/etc/odoo/odoo-stack.conf")).toBe(false);
    expect(isFact("/etc/postgresql/16/main")).toBe(false);
  });
});
