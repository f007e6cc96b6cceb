// templates/scripts/odoo-stack-odoo-init.sh, run with stand-ins for psql, odoo and the service
// hooks: the databases' first install (`odoo -i`) logs in as the migration role exactly as the
// module update does (templates/odoo-conf.ts odooMigrationCommand: `--db_user`, PGSSLROOTCERT),
// with the role handed in by the rendered odoo-init.env, and refuses an env file without it.
import { spawnSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DB_ROLES, PATHS } from "../../lib/model";
import { resolveSecretRefs } from "../../lib/secret-ref";
import { renderAllHosts } from "../../templates/hosts";
import { odooMigrationCommand } from "../../templates/odoo-conf";
import { SCRIPT_PATHS, SCRIPTS_DIR } from "../../templates/scripts";
import { databasesAt, modelWith } from "../helpers/fixtures";

const SCRIPT = path.join(SCRIPTS_DIR, "odoo-stack-odoo-init.sh");
const model = modelWith({ ...databasesAt("erp", "erptest"), odooInstances: 2 }, "prod");
const cronFiles = renderAllHosts(model).get(model.cronHost.id) ?? [];
const renderedEnv = cronFiles.find((f) => f.path === PATHS.odooInitEnv)?.content ?? "";

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** One line per `odoo` invocation: PGSSLROOTCERT, then the arguments. */
  readonly odooCalls: string[];
}

/** Runs the script in a scratch directory with the env file `env` (placeholders resolved). */
function runInit(env: string): Run {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-init-"));
  try {
    const ca = path.join(dir, "ca.crt");
    fs.writeFileSync(ca, "-----BEGIN CERTIFICATE-----\n");
    const envFile = path.join(dir, "odoo-init.env");
    // The apply script resolves {{ssm:…}} placeholders on the host; a per-run value stands in.
    fs.writeFileSync(
      envFile,
      resolveSecretRefs(env, () => randomBytes(12).toString("hex")).replace(`ODOO_STACK_CA=${PATHS.caCert}`, `ODOO_STACK_CA=${ca}`),
    );
    const conf = path.join(dir, "odoo.conf");
    fs.writeFileSync(
      conf,
      `[options]\ndb_host = ${model.hosts.pgbouncer.fqdn}\ndb_port = 6432\ndb_user = ${DB_ROLES.odoo}\ndb_password = ${randomBytes(12).toString("hex")}\ndb_sslmode = verify-full\n`,
    );
    const calls = path.join(dir, "odoo-calls");
    // psql: every database is empty (no ir_module_module yet).
    const psql = path.join(dir, "psql");
    fs.writeFileSync(psql, "#!/bin/bash\ncat >/dev/null\necho f\n", { mode: 0o755 });
    // odoo: records how it was called, then fails, so the script stops before hashing the admin password.
    const odoo = path.join(dir, "odoo");
    fs.writeFileSync(odoo, `#!/bin/bash\nprintf '%s %s\\n' "PGSSLROOTCERT=$PGSSLROOTCERT" "$*" >>${calls}\nexit 1\n`, { mode: 0o755 });
    const r = spawnSync("bash", [SCRIPT], {
      env: {
        PATH: process.env.PATH,
        ODOO_STACK_ODOO_INIT_ENV: envFile,
        ODOO_STACK_ODOO_CONF: conf,
        ODOO_STACK_ODOO: odoo,
        ODOO_STACK_PSQL: psql,
        ODOO_STACK_STOP_ODOO: "true",
        ODOO_STACK_RESTART_ODOO: "true",
        ODOO_STACK_RUN_AS_ODOO: "env",
      },
      encoding: "utf8",
    });
    return {
      status: r.status,
      stdout: r.stdout,
      stderr: r.stderr,
      odooCalls: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trimEnd().split("\n") : [],
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("odoo-stack-odoo-init (the databases' first install)", () => {
  it("is delivered to the cron host with the migration role in its env file", () => {
    expect(cronFiles.map((f) => f.path)).toContain(SCRIPT_PATHS.odooInit);
    expect(renderedEnv.split("\n")).toContain(`ODOO_STACK_MIGRATION_ROLE=${DB_ROLES.migrate}`);
  });

  it("runs `odoo -i` as the role and with the CA the module update uses (odooMigrationCommand)", () => {
    const r = runInit(renderedEnv);
    // The stand-in odoo fails: the script says so and stops at the first database.
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("erp: odoo -i base,web failed");
    expect(r.stdout).toContain(`erp: odoo -i base,web as ${DB_ROLES.migrate}`);
    expect(r.odooCalls).toHaveLength(1);
    const [cert, ...args] = r.odooCalls[0].split(" ");
    const migration = odooMigrationCommand(model, model.cronHost, "erp");
    // Same identity: the migration command's --db_user.
    expect(args.slice(args.indexOf("--db_user"), args.indexOf("--db_user") + 2)).toEqual([
      "--db_user",
      /--db_user (\S+)/.exec(migration)?.[1],
    ]);
    expect(args).toEqual([
      "-c",
      expect.stringMatching(/odoo\.conf$/),
      "--db_user",
      DB_ROLES.migrate,
      "-d",
      "erp",
      "-i",
      "base,web",
      "--without-demo=all",
      "--stop-after-init",
      "--no-http",
    ]);
    expect(cert).toMatch(/^PGSSLROOTCERT=.*ca\.crt$/);
    expect(migration).toContain(`PGSSLROOTCERT=${PATHS.caCert}`);
  });

  it("refuses an env file without the migration role, before touching Odoo", () => {
    const r = runInit(renderedEnv.replace(/^ODOO_STACK_MIGRATION_ROLE=.*\n/m, ""));
    expect({ status: r.status, stderr: r.stderr.trim(), calls: r.odooCalls }).toEqual({
      status: 1,
      stderr: "odoo-stack-odoo-init: ERROR: ODOO_STACK_MIGRATION_ROLE: invalid ''",
      calls: [],
    });
  });
});
