// The whole stack booted from its own user data (issue 18): the prod plan's four hosts as Debian 12
// system containers, first boot exactly as on EC2, AWS and the public archives at the edges only,
// then the running system checked from the outside. Each check prints a measured line.
// Runs as root (`npm run test:fleet`); see tests/fleet/README.md for what stands in for what.
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { DB_ROLES, PATHS } from "../../lib/model";
import { FIRSTBOOT_COMPLETE_MARKER, FIRSTBOOT_UNIT } from "../../templates/cloud-init";
import { applyCommandLine } from "../../templates/hosts";
import { PGBACKREST_STANZA } from "../../templates/pgbackrest";
import { ROOT } from "../../tools/plan";
import { EIP_ASSOCIATION_DELAY_SECONDS, Fleet, NEWER_ODOO_BUILD, type BootReport } from "./lib/fleet";
import { fleetPrerequisites } from "./lib/image";
import { CLIENT_IP } from "./lib/network";
import { createCa, issue, type Ca } from "./lib/pki";
import { internalCaBundle, internalCaGenerations, type InternalCaNext } from "../../lib/internal-ca";
import { pgbouncerConsole } from "../../templates/procedures";
import { describeOutcomes, runProcedure } from "./lib/runbooks";
import { freshVerifier, randomPassword } from "../integration/helpers/secrets";
import { backupBucketNameParameter, importPrefix, ODOO_FILESTORE_DIR } from "../../templates/backup-units";
import { odooPackageVersion } from "../../lib/config";
import { odooMigrationCommand } from "../../templates/odoo-conf";
import { ODOO_RELEASE_PATHS } from "../../templates/odoo-release";
import { makeArtifact, type Artifact } from "../helpers/odoo-artifact";
import { deliveredFiles, type PlanFacts } from "./lib/plan-facts";

const missing = fleetPrerequisites();
// CI sets ODOO_STACK_FLEET_REQUIRED: there a machine that cannot boot the fleet is a failure.
if (missing.length > 0 && process.env.ODOO_STACK_FLEET_REQUIRED)
  throw new Error(`fleet: required, and this machine lacks: ${missing.join(", ")}`);
const describeFleet = missing.length === 0 ? describe : describe.skip;
if (missing.length > 0) process.stderr.write(`fleet: skipped, this machine lacks: ${missing.join(", ")}\n`);

/** A measured line, printed as it happens (jest buffers console.log until the file ends). */
const measured = (line: string) => process.stderr.write(`fleet: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MINUTE = 60_000;

describeFleet("the prod stack booted from its user data (issue 18)", () => {
  let fleet: Fleet;
  /** SHOW POOLS as the metrics collector reads it (the stats user, verify-full), one line per pool with the awk fields asked for. */
  const showPools = (fields: string): string[] =>
    fleet
      .machine("pgbouncer")
      .shOk(
        `PGPASSFILE=/etc/odoo-stack/metrics.pgpass psql -X -At -F ' ' "host=${fleet.model.hosts.pgbouncer.fqdn} port=6432 dbname=pgbouncer user=pgbouncer_stats sslmode=verify-full sslrootcert=${PATHS.caCert}" -c "SHOW POOLS" | awk '{print ${fields}}'`,
      )
      .trim()
      .split("\n");
  let boots: BootReport[] = [];
  let domain: string;
  let publicIp: string;

  beforeAll(async () => {
    const started = Date.now();
    fleet = await Fleet.up({ log: measured, odooDeb: process.env.ODOO_STACK_FLEET_ODOO_DEB });
    domain = fleet.model.settings.domain;
    publicIp = fleet.facts.proxyEip?.publicIp as string;
    try {
      boots = await fleet.waitForFirstBoot();
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${fleet.evidence()}`);
    }
    measured(
      `fleet up in ${Math.round((Date.now() - started) / 1000)} s (image ${fleet.imageBuildSeconds ? `built in ${fleet.imageBuildSeconds} s` : "cached"})`,
    );
  }, 25 * MINUTE);

  afterAll(async () => {
    await fleet?.destroy();
  }, 5 * MINUTE);

  /** curl from "the internet": the suite's client address, the domain on the proxy's public address. */
  const curl = (urlPath: string, extra: readonly string[] = []) =>
    fleet.client("curl", [
      "-sS",
      "--max-time",
      "30",
      "--interface",
      CLIENT_IP,
      "--cacert",
      fleet.publicCa.certFile,
      "--resolve",
      `${domain}:443:${publicIp}`,
      "-o",
      "/dev/stderr",
      "-w",
      "%{http_code}",
      ...extra,
      `https://${domain}${urlPath}`,
    ]);
  const httpStatus = (urlPath: string) => {
    try {
      return curl(urlPath);
    } catch (e) {
      return String((e as { stdout?: string }).stdout ?? e);
    }
  };

  it("every host finishes first boot: cloud-init done without error, systemd running, first boot complete", () => {
    for (const b of boots) measured(`${b.host}: first boot ${b.seconds} s, cloud-init ${b.cloudInit}, system ${b.systemState}`);
    for (const b of boots) {
      expect({ host: b.host, cloudInit: b.cloudInit, system: b.systemState, failed: b.failedUnits }).toEqual({
        host: b.host,
        cloudInit: "done",
        system: "running",
        failed: [],
      });
      expect(fleet.machine(b.host).sh(`test -f ${FIRSTBOOT_COMPLETE_MARKER}`).code).toBe(0);
    }
  });

  it("the proxy's first boot waits for its Elastic IP before anything that needs the internet", () => {
    const journal = fleet
      .machine("proxy")
      .shOk(`journalctl -u ${FIRSTBOOT_UNIT} --no-pager -o cat | grep -E 'step |Elastic IP|public address'`);
    const lines = journal.trim().split("\n");
    const address = lines.findIndex((l) => l.includes(`public address ${publicIp} after`));
    const packages = lines.findIndex((l) => /step \d+-packages: packages/.test(l));
    expect(lines.some((l) => l.includes("waiting for the Elastic IP"))).toBe(true);
    expect(address).toBeGreaterThan(-1);
    expect(address).toBeLessThan(packages);
    measured(
      `proxy: ${lines[address].replace(/^.*odoo-stack-bootstrap: /, "")} (associated ${EIP_ASSOCIATION_DELAY_SECONDS} s after boot), before any package download`,
    );
  });

  it("the apply association's first run, before first boot installed the apply script, is a clean no-op", () => {
    const host = fleet.facts.hosts[0];
    // The script hidden by an empty tmpfs in a mount namespace of its own: the host as it is when
    // the SSM agent registers, before the fetch-apply step.
    const r = fleet
      .machine(host.id)
      .sh(`unshare -m sh -c 'mount -t tmpfs none ${path.dirname(PATHS.applyScript)} && ${host.associationCommand.replace(/'/g, `'\\''`)}'`);
    expect({ code: r.code, out: r.stdout.trim() }).toEqual({
      code: 0,
      out: "odoo-stack: first boot in progress; odoo-stack-firstboot.service applies this configuration",
    });
  });

  it("serves Odoo's login page through the proxy's public address over TLS, and refuses the database manager", () => {
    const started = Date.now();
    expect(httpStatus("/web/login")).toBe("200");
    measured(`GET https://${domain}/web/login → 200 in ${Date.now() - started} ms`);
    for (const p of ["/web/database/manager", "/web/database/selector", "/web/database/list"]) expect(httpStatus(p)).toBe("404");
    // Port 80 only redirects to https (NET-3's exception), whatever the path.
    const redirect = fleet.client("curl", [
      "-sS",
      "--max-time",
      "10",
      "--interface",
      CLIENT_IP,
      "--resolve",
      `${domain}:80:${publicIp}`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{redirect_url}",
      `http://${domain}/web/login?x=1`,
    ]);
    expect(redirect).toBe(`301 https://${domain}/web/login?x=1`);
    const log = fleet.machine(fleet.model.cronHost.id).shOk(`grep -F 'GET /web/login' ${PATHS.odooLogFile} | tail -n 1`);
    // proxy_mode: Odoo logs the client's address from X-Forwarded-For, not the proxy's.
    expect(log).toContain(`${CLIENT_IP} - - `);
    measured(`Odoo logged the client address ${CLIENT_IP} (X-Forwarded-For): ${log.trim().slice(0, 120)}`);
  });

  it(
    "a WebSocket on /websocket upgrades (101) and receives a bus notification sent on the server side",
    async () => {
      const channel = `fleet-${Date.now()}`;
      const child = spawn(
        "nsenter",
        [
          `--net=${fleet.network?.path}`,
          process.execPath,
          path.join(__dirname, "clients", "websocket-client.js"),
          `wss://${domain}/websocket`,
          fleet.publicCa.certFile,
          publicIp,
          CLIENT_IP,
          channel,
          "60",
        ],
        { env: { ...process.env, NODE_PATH: path.join(ROOT, "node_modules") }, stdio: ["ignore", "pipe", "pipe"] },
      );
      const events: { event: string; at: number; status?: number; data?: unknown }[] = [];
      let buffer = "";
      child.stdout.on("data", (d: Buffer) => {
        buffer += d.toString("utf8");
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          events.push(JSON.parse(buffer.slice(0, nl)));
          buffer = buffer.slice(nl + 1);
        }
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      for (let i = 0; i < 100 && !events.some((e) => e.event === "subscribed"); i++) await sleep(100);
      // Give the gevent worker's bus its LISTEN (it starts with the first subscription).
      await sleep(2000);
      const db = fleet.model.settings.databases[0];
      // What addons/bus/models/bus.py _sendmany does: a bus_bus row, then NOTIFY imbus on `postgres`.
      const sentAt = Date.now();
      fleet
        .machine("postgres")
        .shOk(
          `runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d ${db} -c "INSERT INTO bus_bus (channel, message, create_date) VALUES ('[\\"${db}\\",\\"${channel}\\"]', '{\\"type\\":\\"fleet.ping\\",\\"payload\\":{\\"n\\":1}}', now() at time zone 'utc')" && ` +
            `runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "NOTIFY imbus, '[[\\"${db}\\",\\"${channel}\\"]]'"`,
        );
      const code = await exited;
      const upgrade = events.find((e) => e.event === "upgrade");
      const message = events.find((e) => e.event === "message");
      expect({ code, upgrade: upgrade?.status }).toEqual({ code: 0, upgrade: 101 });
      expect(message?.data).toEqual([expect.objectContaining({ message: { type: "fleet.ping", payload: { n: 1 } } })]);
      measured(`WebSocket 101 through the proxy; bus notification arrived ${(message?.at ?? 0) - sentAt} ms after NOTIFY`);
    },
    2 * MINUTE,
  );

  it("PgBouncer pools the Odoo database in transaction mode and the LISTEN sessions in the postgres session pool", () => {
    const pools = showPools("$1, $2, $3, $NF");
    const row = (db: string) => pools.find((l) => l.startsWith(`${db} `))?.split(" ");
    const db = fleet.model.settings.databases[0];
    expect(row(db)?.[3]).toBe("transaction");
    expect(row("postgres")?.[3]).toBe("session");
    // The cron worker's LISTEN cron_trigger and the bus's LISTEN imbus (gevent worker).
    expect(Number(row("postgres")?.[2])).toBeGreaterThanOrEqual(2);
    measured(`SHOW POOLS: ${pools.join(" | ")}`);
    const sessions = fleet
      .machine("postgres")
      .shOk(
        `runuser -u postgres -- psql -X -At -F ' ' -c "SELECT datname, usename, host(client_addr), ssl FROM pg_stat_activity JOIN pg_stat_ssl USING (pid) WHERE usename = 'odoo'"`,
      )
      .trim()
      .split("\n");
    expect(sessions.length).toBeGreaterThanOrEqual(3);
    // The cluster postgresql-15's postinst created on the data volume: UTF8, checksums on.
    const cluster = fleet
      .machine("postgres")
      .shOk(
        `runuser -u postgres -- psql -X -At -F ' ' -c "SELECT current_setting('server_encoding'), current_setting('data_checksums'), datcollate FROM pg_database WHERE datname = 'template1'"`,
      )
      .trim();
    expect(cluster).toBe("UTF8 on C.UTF-8");
    for (const s of sessions)
      expect(s).toMatch(new RegExp(`^(${db}|postgres) odoo ${fleet.model.hosts.pgbouncer.privateIp.replace(/\./g, "\\.")} t$`));
    measured(`pg_stat_activity: ${sessions.length} Odoo sessions, all from PgBouncer (${fleet.model.hosts.pgbouncer.privateIp}) over SSL`);
  });

  it(
    "backups: the stanza exists and WAL is archived from first boot; a full backup and the restore drill run by their units and publish their metrics",
    async () => {
      const pg = fleet.machine("postgres");
      const info = JSON.parse(pg.shOk(`runuser -u postgres -- pgbackrest --stanza=${PGBACKREST_STANZA} --output=json info`)) as {
        status: { code: number };
      }[];
      expect(info[0].status.code).toBe(info[0].status.code === 2 ? 2 : 0); // 2 = no backup yet, 0 = ok
      const archiver = pg
        .shOk(`runuser -u postgres -- psql -X -At -F ' ' -c "SELECT archived_count, failed_count FROM pg_stat_archiver"`)
        .trim()
        .split(" ")
        .map(Number);
      expect(archiver[0]).toBeGreaterThan(0);
      expect(archiver[1]).toBe(0);
      measured(`pgBackRest stanza ${PGBACKREST_STANZA} created at first boot; ${archiver[0]} WAL segments archived, ${archiver[1]} failed`);
      for (const unit of ["odoo-stack-pgbackrest-full.service", "odoo-stack-restore-drill.service", "odoo-stack-backup-report.service"]) {
        const started = Date.now();
        const r = pg.sh(`systemctl start ${unit}; systemctl show -p Result --value ${unit}`, { timeoutMs: 10 * MINUTE });
        expect({ unit, result: r.stdout.trim() }).toEqual({ unit, result: "success" });
        measured(`${unit}: success in ${Math.round((Date.now() - started) / 1000)} s`);
      }
      const metrics = (await fleet.metrics()).filter((m) => m.namespace === "OdooStack/Backups");
      const names = new Set(metrics.map((m) => m.name));
      for (const name of ["RestoreDrillRtoSeconds", "RestoreDrillSuccess", "LastBackupAgeSeconds"]) expect(names).toContain(name);
      const rto = metrics.filter((m) => m.name === "RestoreDrillRtoSeconds").pop();
      measured(`restore drill published RTO ${rto?.value} s to CloudWatch (stand-in)`);
    },
    20 * MINUTE,
  );

  it(
    "the metrics collector publishes PgBouncer and PostgreSQL metrics with exactly the dimensions the alarms use",
    async () => {
      type Resource = { type: string; name: string; inputs: Record<string, unknown> };
      const doc = JSON.parse(fs.readFileSync(path.join(fleet.facts.stackDir, "resources.json"), "utf8")) as
        Resource[] | { resources: Resource[] };
      const resources = Array.isArray(doc) ? doc : doc.resources;
      const alarms = resources
        .filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm")
        .map((r) => ({
          name: r.name,
          namespace: String(r.inputs.namespace),
          metric: String(r.inputs.metricName),
          dimensions: (r.inputs.dimensions ?? {}) as Record<string, string>,
        }))
        .filter((a) => ["OdooStack/PgBouncer", "OdooStack/PostgreSQL", "OdooStack/Collector"].includes(a.namespace));
      expect(alarms.length).toBeGreaterThan(10);
      const key = (ns: string, name: string, dims: Record<string, string>) =>
        `${ns} ${name} ${JSON.stringify(Object.entries(dims).sort())}`;
      // The collector's timer fires every minute and has been running since first boot; a metric
      // published only at some rounds gets up to three more.
      let metrics = await fleet.metrics();
      let unmatched: string[] = [];
      for (const deadline = Date.now() + 3 * MINUTE; ; await sleep(10_000)) {
        metrics = await fleet.metrics();
        const published = new Set(metrics.map((m) => key(m.namespace, m.name, m.dimensions)));
        unmatched = alarms.filter((a) => !published.has(key(a.namespace, a.metric, a.dimensions))).map((a) => a.name);
        if (unmatched.length === 0 || Date.now() > deadline) break;
      }
      expect(unmatched).toEqual([]);
      measured(
        `${alarms.length} PgBouncer/PostgreSQL/collector alarms each see a published metric with their dimensions (${metrics.length} data points so far)`,
      );
    },
    5 * MINUTE,
  );

  it(
    "a re-issued certificate reaches its host when the association runs again: PgBouncer serves it after a reload, same pid",
    async () => {
      const pgb = fleet.machine("pgbouncer");
      const fqdn = fleet.model.hosts.pgbouncer.fqdn;
      const served = () =>
        pgb
          .shOk(
            `openssl s_client -starttls postgres -connect ${fqdn}:6432 -servername ${fqdn} -CAfile ${PATHS.caCert} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial`,
          )
          .trim();
      const pid = () => pgb.shOk("systemctl show -p MainPID --value pgbouncer").trim();
      const before = { serial: served(), pid: pid() };
      // What `pulumi up` does when the certificate is re-issued: new parameter values (new versions,
      // so a new --parameters-sha256 on the association's command, which AWS then runs).
      const names = fleet.facts.certificateNames.pgbouncer;
      const cert = issue(fleet.internalCa, path.join(fleet.runDir, "pki", "reissued"), "pgbouncer", names.dnsNames, names.ipAddresses);
      const p = fleet.model.parameters;
      await fleet.setParameter(p.hostCert("pgbouncer"), cert.certPem);
      await fleet.setParameter(p.hostKey("pgbouncer"), cert.keyPem);
      const host = fleet.facts.hosts.find((h) => h.id === "pgbouncer")!;
      const r = pgb.sh(host.associationCommand, { timeoutMs: 5 * MINUTE });
      expect(r.code).toBe(0);
      const after = { serial: served(), pid: pid() };
      expect(after.pid).toBe(before.pid);
      expect(after.serial).not.toBe(before.serial);
      expect(after.serial).toBe(execFileSync("openssl", ["x509", "-noout", "-serial", "-in", cert.certFile], { encoding: "utf8" }).trim());
      measured(
        `re-issued PgBouncer certificate served after the association's run: ${before.serial} → ${after.serial}, pid ${after.pid} unchanged`,
      );
    },
    10 * MINUTE,
  );

  it(
    "a config change goes the way of production: re-plan, upload, the association reloads PgBouncer in place; a broken file is refused",
    async () => {
      // The user edits a sizing key in the stack file and runs `pulumi up`.
      const projectDir = fs.mkdtempSync(path.join(fleet.runDir, "project-"));
      fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
      const stackFile = fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
      fs.writeFileSync(
        path.join(projectDir, "Pulumi.prod.yaml"),
        `${stackFile.trimEnd()}\n  odoo-stack:pgbouncer:\n    defaultPoolSize: 7\n`,
      );
      const replanned = await fleet.planStack(projectDir);
      const commands = await fleet.deliver(replanned, ["pgbouncer"]);
      const pgb = fleet.machine("pgbouncer");
      const pid = () => pgb.shOk("systemctl show -p MainPID --value pgbouncer").trim();
      const poolSize = () =>
        pgb
          .shOk(
            `PGPASSFILE=/etc/odoo-stack/metrics.pgpass psql -X -At "host=${fleet.model.hosts.pgbouncer.fqdn} port=6432 dbname=pgbouncer user=pgbouncer_stats sslmode=verify-full sslrootcert=${PATHS.caCert}" -c "SHOW CONFIG" | awk -F'|' '$1 == "default_pool_size" {print $2}'`,
          )
          .trim();
      const before = { pid: pid(), poolSize: poolSize() };
      const started = Date.now();
      const r = pgb.sh(commands.get("pgbouncer") as string, { timeoutMs: 5 * MINUTE });
      expect(r.code).toBe(0);
      const after = { pid: pid(), poolSize: poolSize() };
      expect(after).toEqual({ pid: before.pid, poolSize: "7" });
      measured(
        `default_pool_size ${before.poolSize} → ${after.poolSize} by the association's command in ${Date.now() - started} ms, PgBouncer pid ${after.pid} unchanged`,
      );

      // A broken pgbouncer.ini, delivered with a manifest that matches it: refused, the old one serves.
      const manifestKey = `hosts/pgbouncer/manifest.json`;
      const manifest = JSON.parse(fs.readFileSync(path.join(replanned.stackDir, "hosts/pgbouncer/manifest.json"), "utf8")) as {
        files: { path: string; sha256: string }[];
      };
      const broken = `${fs.readFileSync(path.join(replanned.stackDir, "hosts/pgbouncer", PATHS.pgbouncerIni), "utf8")}\n[pgbouncer]\npool_mode = not-a-mode\n`;
      const { createHash } = await import("crypto");
      for (const f of manifest.files) if (f.path === PATHS.pgbouncerIni) f.sha256 = createHash("sha256").update(broken).digest("hex");
      const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
      await fleet.putObject(replanned.configBucket, `hosts/pgbouncer${PATHS.pgbouncerIni}`, broken);
      await fleet.putObject(replanned.configBucket, manifestKey, manifestText);
      const installed = pgb.shOk(`sha256sum ${PATHS.pgbouncerIni}`);
      const refused = pgb.sh(
        applyCommandLine({
          bucket: replanned.configBucket,
          hostId: "pgbouncer",
          region: replanned.region,
          manifestSha256: createHash("sha256").update(manifestText).digest("hex"),
        }),
        { timeoutMs: 5 * MINUTE },
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("pgbouncer: the new configuration is invalid (nothing was installed or reloaded)");
      expect(pgb.shOk(`sha256sum ${PATHS.pgbouncerIni}`)).toBe(installed);
      expect({ pid: pid(), poolSize: poolSize() }).toEqual({ pid: before.pid, poolSize: "7" });
      measured("a broken pgbouncer.ini was refused by the apply step; the running PgBouncer kept its file, its pid and its settings");
      // Put the good files back for what follows.
      await fleet.deliver(replanned, ["pgbouncer"]);
    },
    10 * MINUTE,
  );

  // --- day 2: the procedures of the runbooks, run as written (issue 13) ------------------------
  /** The stack file the hosts run on now: a test that re-plans and delivers to every host sets it. */
  let deployedStackFile: string | undefined;
  let deployedFacts: PlanFacts | undefined;
  const deployedStack = () => deployedStackFile ?? fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
  /** `pulumi up` of an edited stack file: its plan, in a directory of its own. */
  const replan = async (stackFile: string): Promise<PlanFacts> => {
    const projectDir = fs.mkdtempSync(path.join(fleet.runDir, "project-"));
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(projectDir, "Pulumi.prod.yaml"), stackFile);
    return fleet.planStack(projectDir);
  };
  const db = () => fleet.model.settings.databases[0];
  const pgSql = (sql: string, database = db()) =>
    fleet.machine("postgres").shOk(`runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d ${database} -c "${sql}"`).trim();
  const loginServed = async () => {
    let status = "";
    for (let i = 0; i < 30 && status !== "200"; i++) {
      status = httpStatus("/web/login");
      if (status !== "200") await sleep(2000);
    }
    return status;
  };

  it(
    "runbook: PgBouncer's queue and the auth file's reload run as written",
    async () => {
      const queue = await runProcedure(fleet, "pgbouncer-queue");
      expect(queue.map((o) => o.output).join("\n")).toMatch(/cl_waiting/);
      const reload = await runProcedure(fleet, "reload-auth-file");
      measured(`pgbouncer-queue: ${describeOutcomes(queue)}; reload-auth-file: ${describeOutcomes(reload)}`);
    },
    5 * MINUTE,
  );

  it(
    "runbook: rotating the odoo password as written, under Odoo's pooled traffic: 0 failed transactions",
    async () => {
      const odoo = fleet.machine(fleet.model.cronHost.id);
      odoo.shOk("cat > /var/tmp/fleet-db-load.py", { input: fs.readFileSync(path.join(__dirname, "clients", "db-load.py"), "utf8") });
      // As Odoo's processes connect: the internal CA through PGSSLROOTCERT (its systemd drop-in).
      const load = odoo.spawn(["env", `PGSSLROOTCERT=${PATHS.caCert}`, "python3", "/var/tmp/fleet-db-load.py", "8", db()]);
      let out = "";
      load.stdout?.on("data", (d: Buffer) => (out += d.toString("utf8")));
      for (let i = 0; i < 100 && !out.includes("started"); i++) await sleep(100);
      await sleep(3000);
      const password = randomPassword(40);
      const p = fleet.model.parameters;
      // The keeper step: `pulumi up` replaces the password and its verifier in SSM, nothing else.
      const outcomes = await runProcedure(fleet, "rotate-odoo", {
        laptop: {
          keeper: async () => {
            await fleet.setParameter(p.odooDbPassword, password);
            await fleet.setParameter(p.odooDbScramVerifier, freshVerifier(password));
          },
        },
      });
      await sleep(3000);
      load.stdin?.end();
      await new Promise((r) => load.on("exit", r));
      const stats = JSON.parse(out.trim().split("\n").pop() as string) as {
        transactions: number;
        failed: number;
        longestGapMs: number;
        errors: string[];
      };
      expect({ failed: stats.failed, errors: stats.errors }).toEqual({ failed: 0, errors: [] });
      expect(stats.transactions).toBeGreaterThan(100);
      // The new password is the one in use: a new login with odoo.conf's credentials works.
      expect(odoo.shOk(`grep -c '^db_password = ${password}$' ${PATHS.odooConf}`).trim()).toBe("1");
      measured(
        `rotate-odoo as written (${describeOutcomes(outcomes)}): ${stats.transactions} transactions on 8 pooled connections, ${stats.failed} failed, longest gap ${stats.longestGapMs} ms`,
      );
    },
    10 * MINUTE,
  );

  it(
    "runbook: rotating the internal CA as written: new verify-full logins across the hosts never fail (TLS-2, TLS-4)",
    async () => {
      const p = fleet.model.parameters;
      const ca1 = fleet.internalCa;
      const ca2 = createCa(path.join(fleet.runDir, "pki", "internal-2"), "odoo-stack prod internal CA 2 (fleet)");
      const byGeneration = new Map<number, Ca>([
        [1, ca1],
        [2, ca2],
      ]);
      // What `pulumi up` writes for a step: the trust bundle the InternalCa component would (lib/internal-ca.ts).
      const trust = async (generation: number, next: InternalCaNext) => {
        const g = internalCaGenerations({ internalCaGeneration: generation, internalCaNext: next });
        await fleet.setParameter(p.caCert, internalCaBundle(g.trusted.map((n) => byGeneration.get(n)!.certPem)));
        return g;
      };
      // A prober on odoo-1: a new verify-full login to PgBouncer every 200 ms (a TLS handshake
      // odoo-1 → PgBouncer each time); on the PgBouncer host, RECONNECT every second, so the
      // server connections behind it are new verify-full handshakes to PostgreSQL too.
      const odoo = fleet.machine(fleet.model.cronHost.id);
      const pgbFqdn = fleet.model.hosts.pgbouncer.fqdn;
      const stop = "/var/tmp/fleet-ca-probe.stop";
      odoo.shOk(`rm -f ${stop}`);
      const probe = odoo.spawn([
        "bash",
        "-c",
        `pw=$(sed -n 's/^db_password = //p' ${PATHS.odooConf}); ok=0; failed=0; : > /var/tmp/fleet-ca-probe.err
      while [ ! -e ${stop} ]; do
        if PGPASSWORD=$pw psql -X -At "host=${pgbFqdn} port=6432 dbname=${db()} user=${DB_ROLES.odoo} sslmode=verify-full sslrootcert=${PATHS.caCert}" -c 'SELECT 1' >/dev/null 2>>/var/tmp/fleet-ca-probe.err; then ok=$((ok+1)); else failed=$((failed+1)); fi
        sleep 0.2
      done
      echo "$ok $failed"`,
      ]);
      let probeOut = "";
      probe.stdout?.on("data", (d: Buffer) => (probeOut += d.toString("utf8")));
      const reconnect = fleet
        .machine("pgbouncer")
        .spawn([
          "bash",
          "-c",
          `while sleep 1; do ${pgbouncerConsole(`RECONNECT ${db()}`).replace(/^sudo /, "")} >/dev/null 2>&1 || true; done`,
        ]);
      await sleep(2000);
      const outcomes = await runProcedure(fleet, "rotate-internal-ca", {
        laptop: {
          "trust-next": async () => void (await trust(1, "trusted")),
          "issue-next": async () => {
            const g = await trust(1, "issuing");
            const issuer = byGeneration.get(g.issuing)!;
            for (const h of fleet.model.allHosts) {
              const names = fleet.facts.certificateNames[h.id] ?? { dnsNames: [h.fqdn], ipAddresses: [] };
              const cert = issue(issuer, path.join(fleet.runDir, "pki", "hosts-2"), h.id, names.dnsNames, names.ipAddresses);
              await fleet.setParameter(p.hostCert(h.id), cert.certPem);
              await fleet.setParameter(p.hostKey(h.id), cert.keyPem);
            }
          },
          "drop-old": async () => void (await trust(2, "none")),
        },
      });
      await sleep(2000);
      odoo.shOk(`touch ${stop}`);
      await new Promise((r) => probe.on("exit", r));
      reconnect.kill("SIGKILL");
      fleet.machine("pgbouncer").sh("pkill -f 'RECONNECT' || true");
      fleet.internalCa = ca2;
      const [ok, failed] = probeOut.trim().split(" ").map(Number);
      expect({ failed, errors: odoo.shOk("cat /var/tmp/fleet-ca-probe.err").trim() }).toEqual({ failed: 0, errors: "" });
      expect(ok).toBeGreaterThan(20);
      // Every host now serves a certificate of CA 2 and trusts CA 2 alone.
      const served = fleet
        .machine("pgbouncer")
        .shOk(
          `openssl s_client -starttls postgres -connect ${pgbFqdn}:6432 -servername ${pgbFqdn} </dev/null 2>/dev/null | openssl x509 -noout -issuer`,
        )
        .trim();
      expect(served).toContain("internal CA 2");
      for (const h of fleet.model.allHosts)
        expect(fleet.machine(h.id).shOk(`grep -c 'BEGIN CERTIFICATE' ${PATHS.caCert}`).trim()).toBe("1");
      measured(
        `rotate-internal-ca as written: ${describeOutcomes(outcomes)}; ${ok} new verify-full logins through PgBouncer (server connections renewed every second), ${failed} failed`,
      );
    },
    15 * MINUTE,
  );

  it(
    "runbook: importing an existing database and filestore, as written",
    async () => {
      const region = fleet.facts.region;
      const bucket = fleet.parameterValues.get(backupBucketNameParameter(fleet.model)) as string;
      // A source database: this one with a marker, dumped, then the marker dropped here.
      pgSql("CREATE TABLE fleet_import_marker (n int); INSERT INTO fleet_import_marker VALUES (42)");
      const dump = Buffer.from(fleet.machine("postgres").shOk(`runuser -u postgres -- pg_dump -Fc ${db()} | base64 -w0`), "base64");
      pgSql("DROP TABLE fleet_import_marker");
      const odoo = fleet.machine(fleet.model.cronHost.id);
      const filestore = Buffer.from(
        odoo.shOk("d=$(mktemp -d) && mkdir -p $d/ab && echo imported > $d/ab/abcdef0123 && tar -czf - -C $d . | base64 -w0"),
        "base64",
      );
      const outcomes = await runProcedure(fleet, "import-database", {
        params: { DB: db() },
        laptop: {
          upload: async () => {
            await fleet.putObject(bucket, `${importPrefix(fleet.model.stack)}${db()}.dump`, dump);
            await fleet.putObject(bucket, `${importPrefix(fleet.model.stack)}${db()}-filestore.tar.gz`, filestore);
          },
        },
      });
      expect(pgSql("SELECT n FROM fleet_import_marker")).toBe("42");
      expect(pgSql(`SELECT tableowner FROM pg_tables WHERE tablename = 'fleet_import_marker'`)).toBe(DB_ROLES.odoo);
      expect(odoo.shOk(`cat ${ODOO_FILESTORE_DIR}/${db()}/ab/abcdef0123`).trim()).toBe("imported");
      expect(await loginServed()).toBe("200");
      measured(
        `import-database as written (region ${region}): ${describeOutcomes(outcomes)}; the dump's rows and the filestore are back, owned by ${DB_ROLES.odoo}, login page served`,
      );
    },
    10 * MINUTE,
  );

  it(
    "runbook: a PostgreSQL minor update and an Odoo module update, as written",
    async () => {
      const pg = await runProcedure(fleet, "upgrade-postgresql");
      expect(pg.map((o) => o.output).join("\n")).toMatch(/PostgreSQL 15\./);
      const odoo = await runProcedure(fleet, "upgrade-odoo");
      expect(await loginServed()).toBe("200");
      measured(`upgrade-postgresql: ${describeOutcomes(pg)}; upgrade-odoo: ${describeOutcomes(odoo)}; login page served after`);
    },
    15 * MINUTE,
  );

  it(
    "runbook: long transactions as written: cancel ends a running statement, terminate an idle-in-transaction session",
    async () => {
      const pg = fleet.machine("postgres");
      const open = (name: string, sql: string) => {
        const child = pg.spawn(["runuser", "-u", "postgres", "--", "env", `PGAPPNAME=${name}`, "psql", "-X", "-d", db()]);
        let output = "";
        child.stdout?.on("data", (d: Buffer) => (output += d.toString("utf8")));
        child.stderr?.on("data", (d: Buffer) => (output += d.toString("utf8")));
        child.stdin?.write(sql);
        return { child, output: () => output, exited: new Promise<number | null>((r) => child.on("exit", r)) };
      };
      const pidOf = async (name: string) => {
        for (let i = 0; i < 50; i++) {
          const pid = pgSql(`SELECT pid FROM pg_stat_activity WHERE application_name = '${name}' AND xact_start IS NOT NULL`);
          if (pid) return pid;
          await sleep(100);
        }
        throw new Error(`no open transaction of ${name}`);
      };
      // A statement that runs for 10 minutes: cancelling it rolls its transaction back.
      const running = open("fleet-long-running", "BEGIN; SELECT pg_sleep(600);\n");
      const runningPid = await pidOf("fleet-long-running");
      const cancelled = await runProcedure(fleet, "long-transactions", { params: { PID: runningPid }, skip: ["terminate"] });
      expect(cancelled.find((o) => o.step === "list")?.output).toContain(runningPid);
      expect(cancelled.find((o) => o.step === "cancel")?.output.trim()).toBe("t");
      for (let i = 0; i < 50 && !running.output().includes("canceling statement"); i++) await sleep(100);
      expect(running.output()).toContain("canceling statement due to user request");
      running.child.stdin?.end();
      await running.exited;
      // Idle in transaction: nothing to cancel, so the runbook's terminate step ends it.
      const idle = open("fleet-idle-in-transaction", "BEGIN; SELECT 1;\n");
      const idlePid = await pidOf("fleet-idle-in-transaction");
      const terminated = await runProcedure(fleet, "long-transactions", { params: { PID: idlePid } });
      expect(terminated.find((o) => o.step === "terminate")?.output.trim()).toBe("t");
      expect(pgSql(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${idlePid}`)).toBe("0");
      idle.child.stdin?.end();
      await idle.exited;
      measured(
        `long-transactions: running statement cancelled (${describeOutcomes(cancelled)}); idle-in-transaction session terminated (${describeOutcomes(terminated)})`,
      );
    },
    5 * MINUTE,
  );

  it(
    "runbook: a PgBouncer upgrade as written: restart, version, pools, the apply script's validation",
    async () => {
      const before = fleet.machine("pgbouncer").shOk("systemctl show -p MainPID --value pgbouncer").trim();
      const outcomes = await runProcedure(fleet, "upgrade-pgbouncer");
      const after = fleet.machine("pgbouncer").shOk("systemctl show -p MainPID --value pgbouncer").trim();
      expect(after).not.toBe(before);
      expect(outcomes.find((o) => o.step === "package")?.output).toMatch(/PgBouncer 1\.\d+/);
      expect(await loginServed()).toBe("200");
      measured(`upgrade-pgbouncer: ${describeOutcomes(outcomes)}; PgBouncer pid ${before} → ${after}; login page served after`);
    },
    10 * MINUTE,
  );

  it(
    "runbook: the full restore as written brings back every committed transaction; RTO measured",
    async () => {
      pgSql("CREATE TABLE fleet_restore_marker (t timestamptz); INSERT INTO fleet_restore_marker VALUES (now())");
      // Committed after the last backup: only WAL archiving carries it.
      const before = Number(pgSql("SELECT archived_count FROM pg_stat_archiver", "postgres"));
      pgSql("SELECT pg_switch_wal()", "postgres");
      for (let i = 0; i < 60 && Number(pgSql("SELECT archived_count FROM pg_stat_archiver", "postgres")) <= before; i++) await sleep(1000);
      const started = Date.now();
      const outcomes = await runProcedure(fleet, "restore");
      const status = await loginServed();
      const rto = (Date.now() - started) / 1000;
      expect(status).toBe("200");
      expect(pgSql("SELECT count(*) FROM fleet_restore_marker")).toBe("1");
      measured(
        `restore as written: RTO ${rto.toFixed(1)} s from the first step to the login page (${describeOutcomes(outcomes)}); the transaction committed after the last backup is back`,
      );
    },
    20 * MINUTE,
  );

  it(
    "adding a second database, each on its own hostname, as the runbook says: each hostname serves only its own database",
    async () => {
      // The stack file as an operator edits it (README "Several databases"): the databases in the
      // {name, domain} form, the first on the prod domain, a second under the same parent, no domain.
      const first = db();
      const second = "shop";
      const parent = domain.slice(domain.indexOf(".") + 1);
      const hostnames: Record<string, string> = { [first]: domain, [second]: `${second}.${parent}` };
      const projectDir = fs.mkdtempSync(path.join(fleet.runDir, "project-"));
      fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
      const stackFile = fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
      const edited = stackFile.replace(/^ {2}odoo-stack:domain: .*\n/m, "").replace(
        /^ {2}odoo-stack:databases:\n(?: {4}- .*\n)+/m,
        `  odoo-stack:databases:\n${Object.entries(hostnames)
          .map(([name, host]) => `    - {name: ${name}, domain: ${host}}\n`)
          .join("")}`,
      );
      expect(edited).not.toContain("odoo-stack:domain:");
      expect(edited).toContain(`- {name: ${second}, domain: ${hostnames[second]}}`);
      fs.writeFileSync(path.join(projectDir, "Pulumi.prod.yaml"), edited);
      const replanned = await fleet.planStack(projectDir);
      // `pulumi up`: a public A record per hostname, both on the proxy's Elastic IP.
      expect(Object.fromEntries(Object.values(hostnames).map((h) => [h, replanned.publicRecords[h]]))).toEqual(
        Object.fromEntries(Object.values(hostnames).map((h) => [h, publicIp])),
      );

      // The procedure from the new plan's runbooks, as written. Its laptop steps: `pulumi up` (the
      // files and records delivered; AWS runs each host's updated association, here one host after
      // another, the database's host first), and the check from the client below.
      const callsBefore = (await fleet.calls()).length;
      const applied: string[] = [];
      const order = ["postgres", "pgbouncer", ...fleet.model.hosts.odoo.map((h) => h.id), "proxy"];
      const outcomes = await runProcedure(fleet, "add-database", {
        facts: replanned,
        laptop: {
          stack: async () => {
            const commands = await fleet.deliver(replanned);
            expect([...commands.keys()].sort()).toEqual([...order].sort());
            for (const host of order) {
              const started = Date.now();
              const r = fleet.machine(host).sh(commands.get(host) as string, { timeoutMs: 10 * MINUTE });
              expect({ host, code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ host, code: 0, stderr: "" });
              applied.push(`${host} ${Date.now() - started} ms`);
            }
          },
          check: async () => undefined, // done below, from the client, with more than the status
        },
      });
      const certificate = outcomes.find((o) => o.step === "certificate")?.output ?? "";
      for (const h of Object.values(hostnames)) expect(certificate).toContain(`DNS:${h}`);
      // One order, a DNS-01 challenge per hostname, each validated through the hosted zone.
      const validations = (await fleet.calls())
        .slice(callsBefore)
        .filter((c) => c.service === "acme" && c.action === "validate-dns-01")
        .map((c) => c.detail);
      expect(validations).toEqual(expect.arrayContaining(Object.values(hostnames).map((h) => ({ domain: h, valid: true }))));
      expect(validations.every((v) => v.valid === true)).toBe(true);
      const install = outcomes.find((o) => o.step === "install")?.output ?? "";
      expect(install).toMatch(new RegExp(`${second}: initialized in \\d+ s`));
      expect(install).toContain(`${first}: initialized already; left untouched`);
      deployedStackFile = edited;
      deployedFacts = replanned;
      measured(`add-database as written (${describeOutcomes(outcomes)}); associations: ${applied.join(", ")}`);

      // The client resolves each hostname through the edge's DNS (the hosted zone's A records).
      const resolve = (name: string) =>
        fleet
          .client(process.execPath, [
            "-e",
            `const r = new (require("dns").promises.Resolver)(); r.setServers([${JSON.stringify(fleet.network?.resolverIp)}]); r.resolve4(${JSON.stringify(name)}).then((a) => console.log(a.join(",")), (e) => console.log(e.code))`,
          ])
          .trim();
      const resolved = Object.fromEntries(Object.values(hostnames).map((h) => [h, resolve(h)]));
      expect(resolved).toEqual(Object.fromEntries(Object.values(hostnames).map((h) => [h, publicIp])));
      expect(resolve(`nothere.${parent}`)).toBe("ENOTFOUND");

      // Which database served a request: Odoo logs each request under its database's name
      // (odoo/netsvc.py's format: date time pid level dbname logger: message).
      const odoo = fleet.machine(fleet.model.cronHost.id);
      const served = async (host: string, query: string, headers: readonly string[] = []) => {
        const marker = `fleet${Math.random().toString(36).slice(2, 10)}`;
        const urlPath = `/web/login?${query ? `${query}&` : ""}m=${marker}`;
        const status = fleet.client("curl", [
          "-sS",
          "--max-time",
          "30",
          "--interface",
          CLIENT_IP,
          "--cacert",
          fleet.publicCa.certFile,
          "--resolve",
          `${host}:443:${resolved[host]}`,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          ...headers.flatMap((h) => ["-H", h]),
          `https://${host}${urlPath}`,
        ]);
        let line = "";
        for (let i = 0; i < 20 && !line; i++) {
          line = odoo.sh(`grep -F 'm=${marker} ' ${PATHS.odooLogFile} | tail -n 1`).stdout.trim();
          if (!line) await sleep(500);
        }
        return { status, db: line.split(/\s+/)[4] ?? "(no log line)" };
      };
      const seen: string[] = [];
      for (const [database, host] of Object.entries(hostnames)) {
        const other = Object.keys(hostnames).find((d) => d !== database) as string;
        const plain = await served(host, "");
        const asked = await served(host, `db=${other}`);
        const forged = await served(host, "", [`X-Forwarded-Host: ${hostnames[other]}`]);
        const own = await served(host, `db=${database}`);
        expect({ host, plain, asked, forged, own }).toEqual({
          host,
          plain: { status: "200", db: database },
          asked: { status: "200", db: database },
          forged: { status: "200", db: database },
          own: { status: "200", db: database },
        });
        seen.push(`${host} → ${plain.db} (also with ?db=${other} and X-Forwarded-Host: ${hostnames[other]})`);
      }
      // Any other name under the parent: the proxy refuses the TLS handshake.
      const stranger = `nothere.${parent}`;
      let refused = { code: 0, stderr: "" };
      try {
        fleet.client("curl", [
          "-sS",
          "--max-time",
          "30",
          "--interface",
          CLIENT_IP,
          "--cacert",
          fleet.publicCa.certFile,
          "--resolve",
          `${stranger}:443:${publicIp}`,
          "-o",
          "/dev/null",
          `https://${stranger}/web/login`,
        ]);
      } catch (e) {
        refused = { code: (e as { status: number }).status, stderr: String((e as { stderr?: string }).stderr ?? "") };
      }
      expect(refused.code).toBe(35); // CURLE_SSL_CONNECT_ERROR: the handshake failed
      measured(
        `each hostname serves only its own database: ${seen.join("; ")}; ${stranger}: handshake refused (${refused.stderr.trim().slice(0, 100)})`,
      );

      // PgBouncer: a transaction pool per database, the postgres session pool shared.
      const pools = showPools("$1, $2, $NF");
      for (const database of Object.keys(hostnames)) expect(pools).toContain(`${database} ${DB_ROLES.odoo} transaction`);
      expect(pools).toContain(`postgres ${DB_ROLES.odoo} session`);
      measured(`SHOW POOLS after adding ${second}: ${pools.join(" | ")}`);
    },
    30 * MINUTE,
  );

  it(
    "runbook: releasing a new Odoo build and a custom addons artifact as written, and rolling back a failing one",
    async () => {
      if (fleet.options.odooDeb) {
        measured("release-odoo: not run, the fleet installs a real Odoo package (the suite has no other build of it to release)");
        return;
      }
      const started = Date.now();
      const settings = fleet.model.settings;
      const pinned = odooPackageVersion(settings);
      const newer = `${settings.odooVersion}.${NEWER_ODOO_BUILD}`;
      expect(NEWER_ODOO_BUILD > settings.odooBuild).toBe(true);
      const odooHosts = fleet.model.hosts.odoo.map((h) => h.id);
      const cron = fleet.machine(fleet.model.cronHost.id);
      const installed = (host: string) => fleet.machine(host).shOk("dpkg-query -W -f='${Version}' odoo").trim();
      const current = (host: string) => fleet.machine(host).shOk(`readlink ${ODOO_RELEASE_PATHS.current}`).trim();
      const known = (host: string) =>
        fleet.machine(host).shOk(`apt-cache madison odoo | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort`).trim().split("\n");

      // First boot installed exactly the pinned build, though Odoo's repository has a newer one,
      // and apt would not move it (the pin).
      for (const h of odooHosts) {
        expect({ host: h, installed: installed(h), known: known(h) }).toEqual({
          host: h,
          installed: pinned,
          known: [pinned, newer].sort(),
        });
        expect(fleet.machine(h).shOk("apt-cache policy odoo | sed -n 's/^ *Candidate: //p'").trim()).toBe(pinned);
      }

      // The user's artifacts: one addon importing its one requirement (a wheel shipped in wheels/);
      // the second release of it raises on import.
      const workDir = fs.mkdtempSync(path.join(fleet.runDir, "addons-"));
      const manifest = "{'name': 'Fleet Hello', 'version': '17.0.1.0.0', 'depends': ['base'], 'installable': True}\n";
      const requirements = "odoo_stack_tinydep==1.2.3\n";
      const good = makeArtifact(
        workDir,
        "addons-1.tar.gz",
        {
          fleet_hello: {
            "__manifest__.py": manifest,
            "__init__.py": "import odoo_stack_tinydep\n\nGREETING = 'hello ' + odoo_stack_tinydep.VERSION\n",
          },
        },
        requirements,
      );
      const bad = makeArtifact(
        workDir,
        "addons-2.tar.gz",
        {
          fleet_hello: {
            "__manifest__.py": manifest,
            "__init__.py": "import odoo_stack_tinydep\n\nraise RuntimeError('fleet_hello 2 breaks on import, on purpose')\n",
          },
        },
        requirements,
      );
      const bucket = "odoo-stack-fleet-artifacts";
      await fleet.createBucket(bucket);
      const stackWith = (build: string, artifact: Artifact, key: string): string =>
        `${deployedStack()
          .replace(/^ {2}odoo-stack:odooBuild: .*\n/m, "")
          .replace(/^ {2}odoo-stack:odooAddons:\n(?: {4}.*\n)*/m, "")
          .trimEnd()}\n` +
        `  odoo-stack:odooBuild: "${build}"\n  odoo-stack:odooAddons:\n    s3Uri: s3://${bucket}/${key}\n    sha256: ${artifact.sha256}\n`;
      const envOf = (facts: PlanFacts, key: string) =>
        new RegExp(`^${key}=(.*)$`, "m").exec(
          fs.readFileSync(path.join(facts.stackDir, "hosts", cron.spec.host, ODOO_RELEASE_PATHS.env), "utf8"),
        )?.[1] ?? "";
      /** The objects `pulumi up` would change in the config bucket, from one plan to the next. */
      const changedObjects = (before: PlanFacts, after: PlanFacts) => {
        const objects = (facts: PlanFacts) =>
          new Map(facts.hosts.flatMap((h) => deliveredFiles(facts.stackDir, h.id)).map((f) => [f.key, fs.readFileSync(f.file, "utf8")]));
        const [a, b] = [objects(before), objects(after)];
        return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
      };
      const odooLog = () => cron.shOk(`cat ${PATHS.odooLogFile}`);
      const probe = () => {
        // "The internet" asks for the login page five times a second while the associations run.
        const file = path.join(workDir, `probe-${Date.now()}.txt`);
        const child = spawn(
          "nsenter",
          [
            `--net=${fleet.network?.path}`,
            "bash",
            "-c",
            `while :; do curl -sS -o /dev/null --max-time 10 --interface ${CLIENT_IP} --cacert ${fleet.publicCa.certFile} --resolve ${domain}:443:${publicIp} -w '%{http_code} %header{retry-after}\\n' https://${domain}/web/login >>${file} 2>/dev/null; sleep 0.2; done`,
          ],
          { stdio: "ignore", detached: true },
        );
        return () => {
          process.kill(-(child.pid as number), "SIGKILL");
          const answers = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
          const count = (re: RegExp) => answers.filter((a) => re.test(a)).length;
          return {
            answers: answers.length,
            ok: count(/^200 $/),
            maintenance: count(/^503 \d+$/),
            other: answers.filter((a) => !/^200 $|^503 \d+$/.test(a)),
          };
        };
      };
      type Association = { host: string; code: number; output: string; ms: number; probe: ReturnType<ReturnType<typeof probe>> };
      /** `pulumi up` of `facts`: the Odoo hosts' files delivered, then AWS runs their associations (the manifest changed). */
      const pulumiUp = async (facts: PlanFacts): Promise<Association[]> => {
        const commands = await fleet.deliver(facts, odooHosts);
        const results: Association[] = [];
        for (const host of odooHosts) {
          const stop = probe();
          const t0 = Date.now();
          const r = fleet.machine(host).sh(commands.get(host) as string, { timeoutMs: 10 * MINUTE });
          results.push({ host, code: r.code, output: `${r.stdout}${r.stderr}`, ms: Date.now() - t0, probe: stop() });
        }
        return results;
      };
      const artifactGets = async (since: number, key: string) =>
        (await fleet.calls())
          .slice(since)
          .filter((c) => c.service === "s3" && c.action === "GET" && String((c.detail as { path?: string }).path ?? "").endsWith(key))
          .length;

      // --- release 1: the newer build and the first artifact, as the runbook says ----------------
      const key1 = "odoo/addons-1.tar.gz";
      const first = await replan(stackWith(NEWER_ODOO_BUILD, good, key1));
      const databases = envOf(first, "ODOO_STACK_DATABASES").split(",");
      expect(envOf(first, "ODOO_STACK_ODOO_PACKAGE")).toBe(newer);
      // The preview: each Odoo host's release file and manifest, nothing else; the grant on exactly the artifact.
      expect(changedObjects(deployedFacts ?? fleet.facts, first)).toEqual(
        odooHosts.flatMap((h) => [`hosts/${h}${ODOO_RELEASE_PATHS.env}`, `hosts/${h}/manifest.json`]).sort(),
      );
      const grants = (facts: PlanFacts) => {
        type Resource = { type: string; name: string; inputs: Record<string, unknown> };
        const doc = JSON.parse(fs.readFileSync(path.join(facts.stackDir, "resources.json"), "utf8")) as
          Resource[] | { resources: Resource[] };
        return (Array.isArray(doc) ? doc : doc.resources)
          .filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")
          .flatMap((r) =>
            (
              JSON.parse(String(r.inputs.policy)) as { Statement: { Sid?: string; Action: string[]; Resource: string[] }[] }
            ).Statement.filter((st) => st.Sid === "OdooAddonsArtifact").map((st) => ({
              policy: r.name,
              action: st.Action,
              resource: st.Resource,
            })),
          );
      };
      expect(grants(first)).toEqual(
        odooHosts.map(() => ({ policy: expect.any(String), action: ["s3:GetObject"], resource: [`arn:aws:s3:::${bucket}/${key1}`] })),
      );
      let forward: Association[] = [];
      const logBefore = odooLog().length;
      const released = await runProcedure(fleet, "release-odoo", {
        facts: first,
        skip: ["rollback"],
        laptop: {
          stack: async () => {
            await fleet.putObject(bucket, key1, fs.readFileSync(good.file)); // aws s3 cp addons.tar.gz "$ADDONS_URI"
            forward = await pulumiUp(first);
            for (const a of forward)
              expect({ host: a.host, code: a.code, output: a.code === 0 ? "" : a.output }).toEqual({ host: a.host, code: 0, output: "" });
          },
        },
      });
      // While Odoo was stopped the proxy answered 503 with Retry-After, never a bare 502/504.
      const seen = forward.map((a) => a.probe);
      expect(seen.map((p) => ({ maintenance: p.maintenance > 0, other: p.other }))).toEqual(
        odooHosts.map(() => ({ maintenance: true, other: [] })),
      );
      expect(await loginServed()).toBe("200");
      expect(released.find((o) => o.step === "verify")?.output).toContain(`on release ${newer} + ${good.sha256}; nothing to do`);
      for (const h of odooHosts) {
        expect({ host: h, installed: installed(h), current: current(h) }).toEqual({
          host: h,
          installed: newer,
          current: `releases/${good.sha256}`,
        });
        expect(fleet.machine(h).shOk(`test -f ${ODOO_RELEASE_PATHS.customAddons}/fleet_hello/__manifest__.py && echo present`).trim()).toBe(
          "present",
        );
      }
      // The module update ran on the cron host, per database, as the migration role; Odoo's module
      // list (update_list over addons_path) now knows the artifact's addon.
      const updateLog = odooLog().slice(logBefore);
      for (const d of databases) {
        expect(updateLog).toContain(`module update: -i - -u all -d ${d} as ${DB_ROLES.migrate}`);
        expect(pgSql("SELECT state FROM ir_module_module WHERE name = 'fleet_hello'", d)).toBe("uninstalled");
      }
      // The requirement: importable by Odoo's Python through the service's PYTHONPATH, from the release.
      const env = cron.shOk("systemctl show -p Environment --value odoo");
      const pythonPath = /(?:^| )PYTHONPATH=(\S+)/.exec(env)?.[1];
      expect(pythonPath).toBe(ODOO_RELEASE_PATHS.python);
      expect(
        cron
          .shOk(
            `runuser -u odoo -- env PYTHONPATH=${pythonPath} python3 -c 'import os, odoo_stack_tinydep as m; print(os.path.realpath(m.__file__), m.VERSION)'`,
          )
          .trim(),
      ).toBe(`/opt/odoo/releases/${good.sha256}/python/odoo_stack_tinydep/__init__.py 1.2.3`);
      expect(cron.sh("runuser -u odoo -- python3 -c 'import odoo_stack_tinydep'").code).not.toBe(0);
      // The user installs the addon (Apps; here Odoo's command line), Odoo restarts and loads it.
      cron.shOk(odooMigrationCommand(fleet.model, fleet.model.cronHost, databases[0]).replace(" -u all ", " -i fleet_hello "), {
        timeoutMs: 5 * MINUTE,
      });
      expect(pgSql("SELECT state FROM ir_module_module WHERE name = 'fleet_hello'", databases[0])).toBe("installed");
      const beforeRestart = odooLog().length;
      cron.shOk("systemctl restart odoo");
      expect(await loginServed()).toBe("200");
      expect(odooLog().slice(beforeRestart)).toContain(`registry of ${databases[0]} loaded; custom modules: fleet_hello`);
      measured(
        `release-odoo as written, ${pinned} → ${newer} + addons ${good.sha256.slice(0, 12)}… (${describeOutcomes(released)}); association ${forward.map((a) => `${a.host} ${(a.ms / 1000).toFixed(1)} s`).join(", ")}; ` +
          `the proxy answered ${seen.map((p) => `${p.maintenance}×503+Retry-After, ${p.ok}×200 of ${p.answers}`).join("; ")}; module update -u all on ${databases.join(", ")}`,
      );

      // --- release 2: a build published after first boot and an artifact that fails its update ----
      const later = fleet.publishOdooBuild("20250201");
      expect(known(cron.spec.host)).not.toContain(later);
      const key2 = "odoo/addons-2.tar.gz";
      const failing = await replan(stackWith(later.slice(settings.odooVersion.length + 1), bad, key2));
      let failed: Association[] = [];
      const callsBefore = (await fleet.calls()).length;
      const attempt = runProcedure(fleet, "release-odoo", {
        facts: failing,
        skip: ["rollback"],
        laptop: {
          stack: async () => {
            await fleet.putObject(bucket, key2, fs.readFileSync(bad.file));
            failed = await pulumiUp(failing);
          },
        },
      });
      // The runbook's verify step (its check changes nothing) says the host is not on the stack's release.
      await expect(attempt).rejects.toThrow(
        /step verify on [\s\S]*not on the stack's release: package [^ ]+ \(the stack's: [^)]+\), addons [0-9a-f]{64}/,
      );
      expect(await artifactGets(callsBefore, key2)).toBeGreaterThan(0);
      for (const a of failed) {
        expect(a.code).not.toBe(0);
        expect(a.output).toContain(`step module update of ${databases[0]} failed; rolling back to ${newer} + ${good.sha256}`);
        expect(a.probe.other).toEqual([]);
      }
      // The new build was installed (the index refreshed) and then the previous one again.
      const dpkgLog = cron.shOk("grep -E ' status installed odoo:all ' /var/log/dpkg.log | awk '{print $NF}' | uniq").trim().split("\n");
      expect(dpkgLog.slice(-3)).toEqual([newer, later, newer]);
      expect(odooLog()).toContain("RuntimeError: fleet_hello 2 breaks on import, on purpose");
      for (const h of odooHosts)
        expect({ host: h, installed: installed(h), current: current(h) }).toEqual({
          host: h,
          installed: newer,
          current: `releases/${good.sha256}`,
        });
      expect(await loginServed()).toBe("200");
      // Odoo restarted on the good release: its registry loads fleet_hello after the failing import.
      const log2 = odooLog();
      expect(log2.slice(log2.lastIndexOf("Couldn't load module fleet_hello"))).toContain(
        `registry of ${databases[0]} loaded; custom modules: fleet_hello`,
      );

      // --- the runbook's way back: its rollback step (the previous values, pulumi up), then verify ---
      // The previous values are release 1's: its plan again.
      const back = first;
      let rolledBack: Association[] = [];
      const callsBeforeBack = (await fleet.calls()).length;
      const rollback = await runProcedure(fleet, "release-odoo", {
        facts: failing,
        skip: ["backup", "stack", "verify"],
        laptop: { rollback: async () => void (rolledBack = await pulumiUp(back)) },
      });
      for (const a of rolledBack) {
        expect({ host: a.host, code: a.code, output: a.code === 0 ? "" : a.output }).toEqual({ host: a.host, code: 0, output: "" });
        expect(a.output).toContain(`on release ${newer} + ${good.sha256}; nothing to do`);
      }
      // As the rollback step says: the previous release is kept on the host, so no download.
      expect(await artifactGets(callsBeforeBack, key1)).toBe(0);
      const verified = await runProcedure(fleet, "release-odoo", { facts: back, skip: ["backup", "stack", "rollback"] });
      expect(verified.find((o) => o.step === "verify")?.output).toContain(`on release ${newer} + ${good.sha256}; nothing to do`);
      expect(await loginServed()).toBe("200");
      deployedStackFile = stackWith(NEWER_ODOO_BUILD, good, key1);
      deployedFacts = first;
      measured(
        `a failing release (${later} + an addon raising on import) rolled back by the host: association exit ${failed.map((a) => a.code).join(",")} at the module update, back on ${newer} + ${good.sha256.slice(0, 12)}…, login page served; ` +
          `the runbook's rollback (${describeOutcomes(rollback)}) and verify (${describeOutcomes(verified)}): nothing to do; whole test ${Math.round((Date.now() - started) / 1000)} s`,
      );
    },
    20 * MINUTE,
  );

  it(
    "every host comes back after a reboot without a hand: mounts before services, Odoo's login page served again",
    async () => {
      const started = Date.now();
      await Promise.all([...fleet.machines.values()].map((m) => m.reboot()));
      for (const m of fleet.machines.values()) {
        let state = "";
        for (let i = 0; i < 60 && !["running", "degraded"].includes(state); i++) {
          state = m.sh("systemctl is-system-running").stdout.trim();
          if (!["running", "degraded"].includes(state)) await sleep(2000);
        }
        expect({ host: m.spec.host, state, failed: m.sh("systemctl list-units --failed --plain --no-legend").stdout.trim() }).toEqual({
          host: m.spec.host,
          state: "running",
          failed: "",
        });
        // First boot is not run again.
        expect(m.sh(`systemctl show -p ConditionResult --value ${FIRSTBOOT_UNIT}`).stdout.trim()).toBe("no");
      }
      const startedAfterMount = (host: string, mountUnit: string, service: string) => {
        const m = fleet.machine(host);
        const mountAt = Number(m.shOk(`systemctl show -p ActiveEnterTimestampMonotonic --value ${mountUnit}`).trim());
        const serviceAt = Number(m.shOk(`systemctl show -p ExecMainStartTimestampMonotonic --value ${service}`).trim());
        expect({ host, mounted: mountAt > 0 }).toEqual({ host, mounted: true });
        expect(serviceAt).toBeGreaterThan(mountAt);
        return (serviceAt - mountAt) / 1e6;
      };
      const pgAfter = startedAfterMount("postgres", "var-lib-postgresql.mount", "postgresql@15-main.service");
      // One Odoo host: data_dir (the filestore) is its own volume, mounted before Odoo starts.
      const odooAfter = startedAfterMount(fleet.model.cronHost.id, "var-lib-odoo.mount", "odoo.service");
      let status = "";
      for (let i = 0; i < 30 && status !== "200"; i++) {
        status = httpStatus("/web/login");
        if (status !== "200") await sleep(2000);
      }
      expect(status).toBe("200");
      measured(
        `all ${fleet.machines.size} hosts rebooted and served /web/login again in ${Math.round((Date.now() - started) / 1000)} s; PostgreSQL started ${pgAfter.toFixed(2)} s and Odoo ${odooAfter.toFixed(2)} s after their data volumes were mounted`,
      );
    },
    10 * MINUTE,
  );
});
