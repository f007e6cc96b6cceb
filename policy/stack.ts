// Stack-wide checks that need every resource at once (AnalyzeStack): coherence between the
// tiers' files (PG-1, POOL-4), where Odoo's database traffic goes (NET-5, NET-6, TLS-2), and
// that every host receives the files the other policies read — a host whose file is missing
// would otherwise pass every file policy by saying nothing.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { ODOO_CLI_OPTIONS, ODOO_CONF_ITEMS, ODOO_OPTION_ITEMS, PGBOUNCER_INI_ITEMS, POSTGRES_CONF_ITEMS } from "./lib/checklist-keys";
import { DB_ROLES, PATHS } from "../lib/model";
import { PORTS } from "../lib/ports";
import { POSTGRES_RESERVED } from "../lib/sizing";
import { isServingServer, nginxServers } from "./lib/nginx";
import { iniInt, odooInt, parseOdooConf, parsePgbouncerIni, parsePostgresConf, parseSystemdUnit } from "./lib/parse";
import { LISTEN_DATABASE, listenDatabase, maxServerConnections, otherUsersServerConnections, setting } from "./lib/pgbouncer";
import {
  configObjectOf,
  fileKindOf,
  fileLabel,
  hostByName,
  hostViews,
  renderedFileOf,
  renderedFiles,
  UnknownValues,
  validateRenderedFile,
  type ConfigObject,
  type FileKind,
  type HostView,
  type RenderedFile,
  type StackResourceView,
} from "./lib/resources";

/** The configuration directory of the PostgreSQL cluster the hosts run (Debian: /etc/postgresql/<major>/main). */
const PG_CONF_DIR = PATHS.postgresConfDir;

/**
 * The files each tier must receive, where the daemon reads them, and the checklist items read
 * from each. A file of the right kind at another path (odoo.conf beside the one Odoo is started
 * with, a PostgreSQL drop-in outside conf.d) is checked by the pack and ignored by the daemon.
 */
const REQUIRED_FILES: Readonly<
  Record<
    string,
    readonly {
      readonly kinds: readonly FileKind[];
      readonly read: (path: string) => boolean;
      readonly what: string;
      readonly items: string;
    }[]
  >
> = {
  proxy: [
    {
      kinds: ["nginx-site", "nginx.conf"],
      read: (p) => p === PATHS.nginxConf || /^\/etc\/nginx\/conf\.d\/[^/]+\.conf$/.test(p),
      what: "an nginx server that proxies to Odoo (nginx.conf or /etc/nginx/conf.d/*.conf)",
      items: "NET-2, PROXY-1, PROXY-2, PROXY-3, PROXY-5",
    },
  ],
  odoo: [
    {
      kinds: ["odoo.conf"],
      read: (p) => p === PATHS.odooConf,
      what: `odoo.conf at ${PATHS.odooConf}`,
      items: "NET-1, PROXY-4, ODOO-1, ODOO-2, ODOO-3, ODOO-5, LIMIT-1, LIMIT-2, LIMIT-3, TLS-2",
    },
  ],
  pgbouncer: [
    {
      kinds: ["pgbouncer.ini"],
      read: (p) => p === PATHS.pgbouncerIni,
      what: `pgbouncer.ini at ${PATHS.pgbouncerIni}`,
      items: "POOL-1, POOL-2, POOL-3, POOL-4, POOL-5, AUTH-1, AUTH-2, TLS-1, OBS-3",
    },
    { kinds: ["userlist"], read: () => true, what: "its auth_file (userlist)", items: "AUTH-2" },
  ],
  postgres: [
    {
      kinds: ["postgresql.conf"],
      read: (p) =>
        p === `${PG_CONF_DIR}/postgresql.conf` || new RegExp(`^${PG_CONF_DIR.replace(/[.]/g, "\\.")}/conf\\.d/[^/]+\\.conf$`).test(p),
      what: `a postgresql.conf (${PG_CONF_DIR}/conf.d/*.conf)`,
      items: "PG-1, PG-2, PG-3, TLS-1, AUTH-1",
    },
    {
      kinds: ["pg_hba.conf"],
      read: (p) => p === PATHS.postgresHba,
      what: `pg_hba.conf at ${PATHS.postgresHba}`,
      items: "AUTH-1, TLS-1, NET-6",
    },
  ],
};

/** Whether `file` really is what the kind promises (an nginx file that serves, not only redirects). */
const serves = (file: RenderedFile): boolean =>
  !(fileKindOf(file.path) === "nginx-site" || fileKindOf(file.path) === "nginx.conf") || nginxServers(file.content).some(isServingServer);

/**
 * Every checklist item marked P for a tier: the tier's instance receives the config files the
 * policies read, through the config bucket (components/host.ts). Without this, deleting a file
 * (or delivering it some other way) would silence every policy about it.
 */
export const hostsReceiveCheckedConfigFiles: StackValidationPolicy = {
  name: "hosts-receive-checked-config-files",
  description:
    "Checks whether every proxy, Odoo, PgBouncer and PostgreSQL instance receives the config files the pack checks (nginx site, odoo.conf, pgbouncer.ini and userlist, postgresql.conf and pg_hba.conf) as readable config objects, at the paths the daemons read.",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const objects = resources.map((r) => unknown.run(() => configObjectOf(r))).filter((o): o is ConfigObject => o !== undefined);
    // Inline text the pack can read; while it is unknown (preview) the object counts as present.
    const readable = (o: ConfigObject): boolean =>
      unknown.run(() => {
        const file = renderedFileOf(o.resource);
        return file !== undefined && serves(file);
      }) ?? true;
    for (const host of hostViews(resources, unknown)) {
      unknown.run(() => {
        for (const need of REQUIRED_FILES[host.role ?? ""] ?? []) {
          const found = objects.some(
            (o) => o.host === host.id && need.kinds.includes(fileKindOf(o.path) as FileKind) && need.read(o.path) && readable(o),
          );
          if (!found) {
            reportViolation(
              `EC2 instance (${host.instance.name}) must receive ${need.what} as a config object with inline content (key hosts/${host.id}/…): it is the ${host.role} host ${host.id}, and without the file the pack cannot check it (${need.items}).`,
              host.instance.urn,
            );
          }
        }
      });
    }
    unknown.finish();
  },
};

/** Odoo's default db_maxconn (odoo/tools/config.py) when odoo.conf leaves it out. */
const ODOO_DEFAULT_DB_MAXCONN = 64;

/** Connections one Odoo host may open: every process × its pool (db_maxconn; the gevent worker may have its own). */
function odooClientConnections(options: ReadonlyMap<string, string>): { readonly total: number; readonly how: string } {
  const maxconn = odooInt(options.get("db_maxconn")) ?? ODOO_DEFAULT_DB_MAXCONN;
  const gevent = odooInt(options.get("db_maxconn_gevent")) || maxconn;
  const workers = odooInt(options.get("workers")) ?? 0;
  if (workers <= 0) return { total: maxconn, how: `1 threaded process × ${maxconn}` };
  const cron = odooInt(options.get("max_cron_threads")) ?? 2;
  return { total: (workers + cron) * maxconn + gevent, how: `(${workers} workers + ${cron} cron) × ${maxconn} + gevent ${gevent}` };
}

/** The PgBouncer file(s) an odoo.conf's db_host leads to; every one when names cannot be resolved. */
function pgbouncersFor(odoo: RenderedFile, inis: readonly RenderedFile[], hosts: readonly HostView[]): RenderedFile[] {
  const dbHost = parseOdooConf(odoo.content).options.get("db_host");
  const target = dbHost === undefined ? undefined : hostByName(hosts, dbHost);
  const matching = target ? inis.filter((i) => i.host === target.id) : [];
  return matching.length > 0 ? matching : [...inis];
}

/**
 * POOL-4 across hosts: PgBouncer's max_client_conn admits every connection every Odoo process
 * may open — HTTP and cron workers and the gevent worker, each up to db_maxconn, on every Odoo
 * host — or workers fail with "no more connections allowed" under load.
 */
export const pgbouncerMaxClientConnCoversOdoo: StackValidationPolicy = {
  name: "pgbouncer-max-client-conn-covers-odoo",
  description: "Checks whether PgBouncer's max_client_conn covers every Odoo process × db_maxconn over all Odoo hosts (POOL-4).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const hosts = hostViews(resources, unknown);
    const inis = files.filter((f) => fileKindOf(f.path) === "pgbouncer.ini");
    const demand = new Map<RenderedFile, { total: number; parts: string[] }>();
    for (const odoo of files.filter((f) => fileKindOf(f.path) === "odoo.conf")) {
      unknown.run(() => {
        const c = odooClientConnections(parseOdooConf(odoo.content).options);
        for (const ini of pgbouncersFor(odoo, inis, hosts)) {
          const d = demand.get(ini) ?? { total: 0, parts: [] };
          d.total += c.total;
          d.parts.push(`${odoo.host}: ${c.how}`);
          demand.set(ini, d);
        }
      });
    }
    for (const [ini, d] of demand) {
      unknown.run(() => {
        const maxClient = setting(parsePgbouncerIni(ini.content), "max_client_conn", 100);
        if (maxClient !== undefined && maxClient < d.total) {
          reportViolation(
            `${fileLabel(ini)} must set max_client_conn (${maxClient}) at least the ${d.total} connections Odoo may open (${d.parts.join("; ")}) (POOL-4).`,
            ini.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/**
 * `postgres` sessions one odoo.conf's processes can hold at once: every LISTENer (the gevent
 * worker's bus, each cron worker: addons/bus/models/bus.py L156-161, odoo/service/server.py
 * L1289-1302) and every process's one short-lived connection (NOTIFY imbus, pg_notify
 * cron_trigger, list_dbs under a dbfilter, the server start: lib/sizing.ts postgresShortLived).
 * The threaded server (workers = 0) LISTENs from each cron thread and may open db_maxconn.
 */
function odooPostgresSessions(options: ReadonlyMap<string, string>): {
  readonly listeners: number;
  readonly shortLived: number;
  readonly how: string;
} {
  const workers = odooInt(options.get("workers")) ?? 0;
  const cron = odooInt(options.get("max_cron_threads")) ?? 2;
  if (workers <= 0) {
    const maxconn = odooInt(options.get("db_maxconn")) ?? ODOO_DEFAULT_DB_MAXCONN;
    return { listeners: cron + 1, shortLived: maxconn, how: `threaded: ${cron} cron + bus listening, up to db_maxconn ${maxconn} short` };
  }
  return {
    listeners: cron + 1,
    shortLived: workers + 1 + cron,
    how: `${workers} workers + gevent + ${cron} cron: ${cron + 1} listening, ${workers + 1 + cron} short`,
  };
}

/**
 * POOL-2, POOL-3 (DESIGN principle 7): the `postgres` session pool holds every `postgres`
 * session Odoo's processes can open at once over all Odoo hosts (pool_size), plus a reserve for
 * one host's LISTEN sessions still held by a process that is gone and its successor's start-up
 * connection. Sized for LISTEN alone, the pool made cookieless requests wait 145 s, lost bus
 * notifications, failed cron triggers and kept a second Odoo server from starting.
 */
export const pgbouncerPostgresPoolCoversOdoo: StackValidationPolicy = {
  name: "pgbouncer-postgres-pool-covers-odoo",
  description: `Checks whether PgBouncer's ${LISTEN_DATABASE} session pool covers every LISTEN and short-lived ${LISTEN_DATABASE} session of every Odoo process at once, with a reserve of one host's listeners plus one (POOL-2, POOL-3).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const hosts = hostViews(resources, unknown);
    const inis = files.filter((f) => fileKindOf(f.path) === "pgbouncer.ini");
    const demand = new Map<RenderedFile, { total: number; reserve: number; parts: string[] }>();
    for (const odoo of files.filter((f) => fileKindOf(f.path) === "odoo.conf")) {
      unknown.run(() => {
        const c = odooPostgresSessions(parseOdooConf(odoo.content).options);
        for (const ini of pgbouncersFor(odoo, inis, hosts)) {
          const d = demand.get(ini) ?? { total: 0, reserve: 0, parts: [] };
          d.total += c.listeners + c.shortLived;
          d.reserve = Math.max(d.reserve, c.listeners + 1);
          d.parts.push(`${odoo.host}: ${c.how}`);
          demand.set(ini, d);
        }
      });
    }
    for (const [ini, d] of demand) {
      unknown.run(() => {
        const parsed = parsePgbouncerIni(ini.content);
        const entry = listenDatabase(parsed);
        if (entry === undefined) {
          reportViolation(
            `${fileLabel(ini)} must have a ${LISTEN_DATABASE} entry in session mode for Odoo's ${d.total} ${LISTEN_DATABASE} sessions (${d.parts.join("; ")}) (POOL-2, DESIGN principle 7).`,
            ini.resource.urn,
          );
          return;
        }
        const pool = iniInt(entry.params.get("pool_size")) ?? setting(parsed, "default_pool_size", 20) ?? 20;
        const reserve = iniInt(entry.params.get("reserve_pool")) ?? setting(parsed, "reserve_pool_size", 0) ?? 0;
        const cap = iniInt(entry.params.get("max_db_connections")) ?? setting(parsed, "max_db_connections", 0) ?? 0;
        if (pool < d.total) {
          reportViolation(
            `${fileLabel(ini)} must give ${LISTEN_DATABASE} a pool_size (${pool}) of at least the ${d.total} ${LISTEN_DATABASE} sessions Odoo can hold at once (${d.parts.join("; ")}) (POOL-2).`,
            ini.resource.urn,
          );
        }
        if (reserve < d.reserve) {
          reportViolation(
            `${fileLabel(ini)} must give ${LISTEN_DATABASE} a reserve_pool (${reserve}) of at least ${d.reserve}: one host's LISTEN sessions still held by a process that is gone, plus its successor's start-up connection (POOL-3).`,
            ini.resource.urn,
          );
        }
        if (cap > 0 && cap < pool + reserve) {
          reportViolation(
            `${fileLabel(ini)} must set ${LISTEN_DATABASE}'s max_db_connections (${cap}) at least pool_size + reserve_pool (${pool + reserve}), or the reserve can never be used (POOL-3).`,
            ini.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/**
 * PG-1: PostgreSQL's max_connections covers everything PgBouncer can open (every pool with its
 * reserve, the LISTEN pool included, within the per-database and per-user caps) plus the slots
 * kept outside PgBouncer: backups, monitoring, an operator, and superuser_reserved_connections.
 * Otherwise a peak ends in "too many clients" at PostgreSQL instead of queueing in PgBouncer.
 */
export const postgresMaxConnectionsCoverPgbouncer: StackValidationPolicy = {
  name: "postgres-max-connections-cover-pgbouncer",
  description:
    "Checks whether PostgreSQL's max_connections covers PgBouncer's pools + reserves + LISTEN pool plus backup, monitoring, admin and superuser slots (PG-1).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const hosts = hostViews(resources, unknown);
    const inis = files.filter((f) => fileKindOf(f.path) === "pgbouncer.ini");
    if (inis.length === 0) return unknown.finish();
    const odooUser =
      files
        .filter((f) => fileKindOf(f.path) === "odoo.conf")
        .map((f) => unknown.run(() => parseOdooConf(f.content).options.get("db_user")))
        .find((u) => u !== undefined) ?? DB_ROLES.odoo;
    for (const conf of files.filter((f) => fileKindOf(f.path) === "postgresql.conf")) {
      unknown.run(() => {
        const settings = parsePostgresConf(conf.content);
        const maxConnections = iniInt(settings.get("max_connections"));
        if (maxConnections === undefined) return; // postgres-max-connections-set reports it
        // The pools that lead to this host (all of them when names cannot be resolved).
        let pools = 0;
        const parts: string[] = [];
        for (const ini of inis) {
          const parsed = parsePgbouncerIni(ini.content);
          const here = parsed.databases.filter((d) => {
            const target = d.params.get("host");
            const server = target === undefined ? undefined : hostByName(hosts, target);
            return server === undefined || server.id === conf.host;
          });
          const n = maxServerConnections({ ...parsed, databases: here }, odooUser);
          const others = otherUsersServerConnections(parsed, odooUser);
          pools += n + others.total;
          parts.push(`${ini.host} pools ${n}${others.parts.map((o) => ` + ${o}`).join("")}`);
        }
        const superuser = iniInt(settings.get("superuser_reserved_connections")) ?? POSTGRES_RESERVED.superuserReserved;
        const r = POSTGRES_RESERVED;
        const needed = pools + r.backup + r.monitoring + r.admin + superuser;
        if (maxConnections < needed) {
          reportViolation(
            `${fileLabel(conf)} must set max_connections (${maxConnections}) at least ${needed}: ${parts.join(", ")} + backup ${r.backup} + monitoring ${r.monitoring} + admin ${r.admin} + superuser_reserved_connections ${superuser} (PG-1).`,
            conf.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/**
 * NET-5, NET-6, TLS-2: Odoo talks to PgBouncer — db_host is a name of the PgBouncer host (the
 * one its certificate carries), db_port is PgBouncer's port — and PgBouncer talks to
 * PostgreSQL. Odoo pointed straight at PostgreSQL bypasses the pools and every limit on them.
 */
export const databaseTrafficThroughPgbouncer: StackValidationPolicy = {
  name: "database-traffic-through-pgbouncer",
  description: `Checks whether odoo.conf's db_host names the PgBouncer host with db_port ${PORTS.pgbouncer.port}, and pgbouncer.ini's databases lead to the PostgreSQL host (NET-5, NET-6, TLS-2).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const hosts = hostViews(resources, unknown);
    if (hosts.length === 0) return unknown.finish();
    const files = renderedFiles(resources, unknown);
    for (const odoo of files.filter((f) => fileKindOf(f.path) === "odoo.conf")) {
      unknown.run(() => {
        const options = parseOdooConf(odoo.content).options;
        const dbHost = options.get("db_host");
        const target = dbHost === undefined || dbHost === "" ? undefined : hostByName(hosts, dbHost);
        if (target?.role !== "pgbouncer") {
          const now =
            dbHost === undefined || dbHost === ""
              ? "absent (a local Unix socket)"
              : target
                ? `${dbHost}, the ${target.role} host ${target.id}`
                : `${dbHost}, no host of the stack`;
          const pgbouncer = hosts.find((h) => h.role === "pgbouncer");
          reportViolation(
            `${fileLabel(odoo)} must set db_host to the PgBouncer host's name${pgbouncer?.names[0] ? ` (${pgbouncer.names[0]})` : ""}; it is ${now} (NET-5, TLS-2).`,
            odoo.resource.urn,
          );
        }
        const port = options.get("db_port");
        if (odooInt(port) !== PORTS.pgbouncer.port) {
          reportViolation(
            `${fileLabel(odoo)} must set db_port = ${PORTS.pgbouncer.port} (PgBouncer); it is ${port === undefined ? "absent (5432, PostgreSQL)" : JSON.stringify(port)} (NET-5).`,
            odoo.resource.urn,
          );
        }
      });
    }
    for (const ini of files.filter((f) => fileKindOf(f.path) === "pgbouncer.ini")) {
      unknown.run(() => {
        for (const d of parsePgbouncerIni(ini.content).databases) {
          const host = d.params.get("host");
          if (host === undefined || host.startsWith("/")) continue;
          const target = hostByName(hosts, host);
          if (target !== undefined && target.role !== "postgres") {
            reportViolation(
              `${fileLabel(ini)} must send database ${d.name} to the PostgreSQL host; host=${host} is the ${target.role} host ${target.id} (NET-6).`,
              ini.resource.urn,
            );
          }
        }
      });
    }
    unknown.finish();
  },
};

/** The service each delivered unit or drop-in configures: /etc/systemd/system/<unit> or <unit>.d/*.conf. */
const unitOf = (path: string): string => (/\/([^/]+)\.d\/[^/]+\.conf$/.exec(path) ?? /\/([^/]+)$/.exec(path) ?? ["", ""])[1];

/** The daemons whose checked config a unit could swap, and the items each config carries. */
const CHECKED_SERVICES: readonly {
  readonly unit: RegExp;
  readonly daemon: string;
  readonly items: readonly string[];
  readonly env: readonly string[];
}[] = [
  // Odoo reads the file named by -c, else $ODOO_RC / $OPENERP_SERVER (odoo/tools/config.py).
  { unit: /^odoo\.service$/, daemon: "Odoo", items: ODOO_CONF_ITEMS, env: ["ODOO_RC", "OPENERP_SERVER"] },
  { unit: /^pgbouncer\.service$/, daemon: "PgBouncer", items: PGBOUNCER_INI_ITEMS, env: [] },
  // Debian's postgresql@<version>-<cluster>.service; PGOPTIONS reaches client sessions started by the unit, PGDATA the cluster.
  { unit: /^postgresql(@.*)?\.service$/, daemon: "PostgreSQL", items: POSTGRES_CONF_ITEMS, env: ["PGDATA", "PGOPTIONS"] },
];

/** The items an Odoo command line overrides: by option, or all of odoo.conf's for -c or an unknown option. */
function odooCommandLineItems(command: string): string[] {
  const items = new Set<string>();
  for (const word of command.split(/\s+/)) {
    const option = word.split("=")[0];
    if (option === "-c" || option === "--config") for (const i of ODOO_CONF_ITEMS) items.add(i);
    const key = ODOO_CLI_OPTIONS[option];
    if (key) items.add(ODOO_OPTION_ITEMS[key]);
  }
  return [...items];
}

/**
 * Every item a checked config file carries: the daemon runs with that file. A unit file or
 * drop-in the stack delivers for Odoo, PgBouncer or PostgreSQL must not redefine ExecStart (a
 * command line can name another file or override any option: Odoo's `--http-interface`,
 * `--db-filter`, `--workers` beat odoo.conf) nor point the daemon elsewhere through its
 * environment (ODOO_RC, PGDATA).
 */
export const serviceUnitsKeepCheckedConfig: ResourceValidationPolicy = {
  name: "service-units-keep-checked-config",
  description:
    "Checks whether no delivered systemd unit or drop-in for Odoo, PgBouncer or PostgreSQL redefines ExecStart or points the daemon at another config through its environment, so the daemon runs with the file the pack checks (NET-1, PROXY-4, ODOO-1, ODOO-2, ODOO-3, ODOO-5, LIMIT-1, LIMIT-2, LIMIT-3, TLS-2, POOL-1, AUTH-1, TLS-1, PG-1, PG-2, PG-3).",
  validateResource: validateRenderedFile("systemd-unit", (file, report) => {
    const service = CHECKED_SERVICES.find((s) => s.unit.test(unitOf(file.path)));
    if (!service) return;
    for (const line of parseSystemdUnit(file.content).filter((l) => l.section === "Service")) {
      if (line.key === "ExecStart" && line.value !== "") {
        const items = service.daemon === "Odoo" ? odooCommandLineItems(line.value) : [];
        report(
          `${fileLabel(file)} must not redefine ExecStart (line ${line.line}: ${line.value}): a command line overrides or replaces the config file the pack checks (${(items.length > 0 ? items : service.items).join(", ")}).`,
        );
      } else if (line.key === "Environment" || line.key === "EnvironmentFile") {
        const names =
          line.key === "EnvironmentFile" ? ["EnvironmentFile"] : service.env.filter((v) => new RegExp(`(^|[\\s"])${v}=`).test(line.value));
        if (line.key === "EnvironmentFile" || names.length > 0) {
          report(
            `${fileLabel(file)} must not set ${names.join(", ")} for ${service.daemon} (line ${line.line}): it can point the daemon at a config the pack does not check (${service.items.join(", ")}).`,
          );
        }
      }
    }
  }),
};

export const policies: Policies = [
  hostsReceiveCheckedConfigFiles,
  serviceUnitsKeepCheckedConfig,
  pgbouncerMaxClientConnCoversOdoo,
  pgbouncerPostgresPoolCoversOdoo,
  postgresMaxConnectionsCoverPgbouncer,
  databaseTrafficThroughPgbouncer,
];
