// Odoo's minimal secure configuration: CHECKLIST §3 (ODOO-1 … ODOO-5), read from the odoo.conf
// the stack delivers to each Odoo host, and the proxy's block of the database manager (ODOO-2).
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { isSecretRef } from "../lib/secret-ref";
import { chainFor, isServingServer, nginxServers, proxiedLocations, proxyHeaders } from "./lib/nginx";
import { ODOO_OPTION_ITEMS } from "./lib/checklist-keys";
import { ODOO_OPTION_ALIASES, odooTruthy, parseOdooConf, parseIni, type OdooConf } from "./lib/parse";
import {
  fileKindOf,
  fileLabel,
  renderedFileOfKind,
  renderedFiles,
  UnknownValues,
  validateRenderedFile,
  type RenderedFile,
  type StackResourceView,
} from "./lib/resources";

const conf = (file: RenderedFile): OdooConf => parseOdooConf(file.content);

/**
 * ODOO-1: admin_passwd protects the database manager (create, drop, restore, dump). It is a
 * reference to an SSM SecureString that the apply script resolves on the host, so no literal
 * (weak or strong) is ever in the repository, the state or the plan. Absent, Odoo's master
 * password is "admin".
 */
export const odooAdminPasswdSecretReference: ResourceValidationPolicy = {
  name: "odoo-admin-passwd-secret-reference",
  description:
    "Checks whether odoo.conf's admin_passwd is an {{ssm:…}} reference resolved on the host, never a literal or Odoo's default \"admin\" (ODOO-1).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const value = conf(file).options.get("admin_passwd");
    if (value === undefined || value === "") {
      report(`${fileLabel(file)} must set admin_passwd to an {{ssm:…}} reference; without it Odoo's master password is "admin" (ODOO-1).`);
    } else if (!isSecretRef(value.trim())) {
      report(`${fileLabel(file)} must set admin_passwd to an {{ssm:/…}} reference resolved on the host, not a literal value (ODOO-1).`);
    }
  }),
};

/**
 * ODOO-2: list_db = False. Odoo reads booleans from its file as strings except "True"/"False"
 * (odoo/tools/config.py), so `list_db = 0` or an absent key (default True) leaves the
 * database list and manager open.
 */
export const odooListDbDisabled: ResourceValidationPolicy = {
  name: "odoo-list-db-disabled",
  description: "Checks whether odoo.conf sets list_db = False, closing the database list and manager (ODOO-2).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const value = conf(file).options.get("list_db");
    if (odooTruthy(value) !== false) {
      const now = value === undefined ? "absent (Odoo's default is True)" : `${JSON.stringify(value)}, which Odoo reads as true`;
      report(`${fileLabel(file)} must set list_db = False; it is ${now} (ODOO-2).`);
    }
  }),
};

/** Names no dbfilter meant for this stack should accept. */
const UNRELATED_DATABASES = ["qx7_unrelated_db", "other-tenant", "z"];

/**
 * ODOO-3: Odoo serves exactly the stack's databases. With one, db_name alone restricts it: with
 * no dbfilter, Odoo 17's list_dbs answers db_name without connecting (odoo/service/db.py
 * L432-437) and db_filter keeps only db_name's databases (odoo/http.py L375-379), so that file
 * has no dbfilter and one db_name. With several, a dbfilter picks one per request: it must be
 * a valid expression that restricts (Odoo substitutes %h, the host, and %d, its first label);
 * ".*", "" or ".+" restrict nothing. Without either key Odoo serves every database its role sees.
 */
export const odooDbfilterRestricts: ResourceValidationPolicy = {
  name: "odoo-dbfilter-restricts",
  description:
    "Checks whether odoo.conf restricts the databases a request can reach: a single db_name without dbfilter, or a dbfilter that restricts (ODOO-3).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const options = conf(file).options;
    const value = options.get("dbfilter");
    if (value === undefined || value.trim() === "") {
      const names = (options.get("db_name") ?? "")
        .split(",")
        .map((d) => d.trim())
        .filter((d) => d !== "");
      if (names.length === 0) {
        report(
          `${fileLabel(file)} must set db_name to its one database, or a dbfilter such as ^%d$ with several; with neither, Odoo serves every database its role can see (ODOO-3).`,
        );
      } else if (names.length > 1) {
        report(
          `${fileLabel(file)} must set a dbfilter such as ^%d$: db_name lists ${names.length} databases (${names.join(", ")}), and only a filter restricts each request to one (ODOO-3).`,
        );
      }
      return;
    }
    let re: RegExp;
    try {
      // The request's host decides %h/%d; a sample name stands in for it.
      re = new RegExp(value.replace(/%h/g, "erp.example.com").replace(/%d/g, "erp"));
    } catch {
      report(`${fileLabel(file)} must set dbfilter to a valid regular expression, not ${JSON.stringify(value)} (ODOO-3).`);
      return;
    }
    if (UNRELATED_DATABASES.every((db) => re.test(db))) {
      report(`${fileLabel(file)} must set a dbfilter that restricts databases; ${JSON.stringify(value)} accepts any name (ODOO-3).`);
    }
  }),
};

/** Odoo 17's db_filter (odoo/http.py L357-373): %h is the host without port and a leading "www.", %d its first label. */
export function odooDbFilterAdmits(dbfilter: string, host: string, databases: readonly string[]): string[] | undefined {
  const h = host.split(":")[0].replace(/^www\./, "");
  const escape = (x: string) => x.replace(/[^A-Za-z0-9_]/g, "\\$&");
  let re: RegExp;
  try {
    // re.match anchors at the start only; Python's patterns the stack writes are valid JavaScript.
    re = new RegExp(`^(?:${dbfilter.replace(/%h/g, escape(h)).replace(/%d/g, escape(h.split(".")[0]))})`);
  } catch {
    return undefined; // odoo-dbfilter-restricts reports it
  }
  return databases.filter((d) => re.test(d));
}

/** Names beside the stack's own that a filter must not admit: near misses of each, and PostgreSQL's. */
const probeDatabases = (declared: readonly string[]): string[] =>
  [
    ...new Set([...declared.flatMap((d) => [`${d}x`, `x${d}`, `${d}_old`, `${d}test`]), "postgres", "template1", ...UNRELATED_DATABASES]),
  ].filter((d) => !declared.includes(d));

/**
 * ODOO-3, PROXY-3 with several databases (issue 16): each database is served at its own
 * hostname, and Odoo picks it from the host it is told (X-Forwarded-Host under proxy_mode,
 * through dbfilter's %d/%h). So every database of db_name has a serving nginx server whose one
 * server_name's first label names it; that server writes its own name into Host and
 * X-Forwarded-Host on every proxied route (never the client's); and for each such hostname the
 * dbfilter admits exactly that database, none of the others and no name the stack does not
 * declare. With one database db_name alone restricts Odoo whatever the host, and this passes.
 */
export const odooHostnamesPinDatabases: StackValidationPolicy = {
  name: "odoo-hostnames-pin-databases",
  description:
    "Checks whether each of several databases has its own nginx hostname, whether each hostname's server pins Host and X-Forwarded-Host to its name, and Odoo's dbfilter admits exactly that hostname's database (ODOO-3, PROXY-3).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const sites = files.filter((f) => fileKindOf(f.path) === "nginx-site" || fileKindOf(f.path) === "nginx.conf");
    for (const odoo of files.filter((f) => fileKindOf(f.path) === "odoo.conf")) {
      unknown.run(() => {
        const options = conf(odoo).options;
        const declared = (options.get("db_name") ?? "")
          .split(",")
          .map((d) => d.trim())
          .filter((d) => d !== "");
        if (declared.length < 2) return;
        const served = new Map<string, string>(); // database → hostname
        for (const site of sites) {
          for (const server of nginxServers(site.content).filter(isServingServer)) {
            const names = server.directive.block?.find((d) => d.name === "server_name")?.args ?? [];
            const where = `${fileLabel(site)}'s server at line ${server.directive.line}`;
            if (names.length !== 1 || /[*~$]/.test(names[0])) {
              reportViolation(
                `${where} must serve exactly one hostname (server_name ${names.join(" ") || "absent"}): with several databases each hostname names its database (ODOO-3).`,
                site.resource.urn,
              );
              continue;
            }
            const host = names[0].toLowerCase();
            const label = host.replace(/^www\./, "").split(".")[0];
            if (!declared.includes(label)) {
              reportViolation(
                `${where} must serve a hostname whose first label is one of the databases (${declared.join(", ")}); ${host} names none, so Odoo would serve no database there, or one the stack does not declare (ODOO-3).`,
                site.resource.urn,
              );
              continue;
            }
            served.set(label, host);
            for (const { chain, name } of proxiedLocations(server)) {
              const headers = proxyHeaders(chain);
              for (const header of ["Host", "X-Forwarded-Host"]) {
                const value = headers.get(header.toLowerCase());
                if (value !== host && value !== `"${host}"`) {
                  reportViolation(
                    `${where} must pin \`proxy_set_header ${header} ${host}\` for ${name}; it sends ${value === undefined ? "none" : JSON.stringify(value)}, so the database Odoo picks follows what the client sends (ODOO-3, PROXY-3).`,
                    site.resource.urn,
                  );
                }
              }
            }
            const dbfilter = options.get("dbfilter");
            if (dbfilter === undefined || dbfilter.trim() === "") continue; // odoo-dbfilter-restricts reports it
            const admitted = odooDbFilterAdmits(dbfilter, host, [...declared, ...probeDatabases(declared)])?.sort();
            if (admitted !== undefined && (admitted.length !== 1 || admitted[0] !== label)) {
              reportViolation(
                `${fileLabel(odoo)} must set a dbfilter that admits exactly ${label} for ${host}; ${JSON.stringify(dbfilter)} admits ${admitted.length === 0 ? "none" : admitted.join(", ")} of the stack's databases and names it does not declare (ODOO-3).`,
                odoo.resource.urn,
              );
            }
          }
        }
        for (const db of declared.filter((d) => !served.has(d))) {
          reportViolation(
            `${fileLabel(odoo)} serves database ${db}, which must have its own hostname: no nginx server of the stack has a server_name whose first label is ${db} (ODOO-3).`,
            odoo.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/**
 * ODOO-5: Odoo logs to a file (rotated by logrotate on the host, see
 * odoo-logfile-rotated). Without `logfile` Odoo logs to stderr only.
 */
export const odooLogfileSet: ResourceValidationPolicy = {
  name: "odoo-logfile-set",
  description: "Checks whether odoo.conf sets logfile to an absolute path (ODOO-5).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const value = conf(file).options.get("logfile");
    if (value === undefined || !value.trim().startsWith("/")) {
      const now = value === undefined ? "absent" : JSON.stringify(value);
      report(`${fileLabel(file)} must set logfile to an absolute path; it is ${now} (ODOO-5).`);
    }
  }),
};

/** Paths a logrotate stanza names before its `{`. */
function rotatedPaths(text: string): string[] {
  const paths: string[] = [];
  const re = /([^{}]*)\{/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const head = m[1]
      .split("\n")
      .filter((l) => !l.trim().startsWith("#"))
      .join(" ");
    paths.push(
      ...head
        .split(/\s+/)
        .filter((w) => w.startsWith("/"))
        .map((w) => w.replace(/^"|"$/g, "")),
    );
  }
  return paths;
}

const globMatches = (glob: string, path: string): boolean =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, "[^/]*")
      .replace(/\?/g, "[^/]")}$`,
  ).test(path);

/**
 * ODOO-5 ("set and rotated"): the host that writes Odoo's log file also receives a logrotate
 * stanza for that path, or Odoo's log fills the disk.
 */
export const odooLogfileRotated: StackValidationPolicy = {
  name: "odoo-logfile-rotated",
  description: "Checks whether each Odoo host that logs to a file also receives a /etc/logrotate.d stanza for it (ODOO-5).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    for (const file of files.filter((f) => fileKindOf(f.path) === "odoo.conf")) {
      unknown.run(() => {
        const logfile = conf(file).options.get("logfile")?.trim();
        if (logfile === undefined || !logfile.startsWith("/")) return; // odoo-logfile-set reports it
        const stanzas = files.filter((f) => f.host === file.host && f.path.startsWith("/etc/logrotate.d/"));
        if (!stanzas.some((s) => rotatedPaths(s.content).some((glob) => globMatches(glob, logfile)))) {
          reportViolation(
            `${fileLabel(file)} logs to ${logfile}, which host ${file.host} must rotate: no /etc/logrotate.d file it receives names that path (ODOO-5).`,
            file.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/** Paths of Odoo's database manager: create, duplicate, drop, backup, restore, change the master password. */
const DATABASE_MANAGER_URIS = ["/web/database/manager", "/web/database/selector", "/web/database/backup", "/web/database/restore"];

/**
 * ODOO-2, defence in depth: even if list_db were flipped, the proxy answers the database
 * manager's URLs itself (return 403/404, or deny all) instead of passing them to Odoo.
 */
export const nginxDatabaseManagerBlocked: ResourceValidationPolicy = {
  name: "nginx-database-manager-blocked",
  description:
    "Checks whether the reverse proxy answers Odoo's database manager URLs (/web/database/…) itself instead of proxying them to Odoo (ODOO-2).",
  validateResource: (args, reportViolation) => {
    const file = renderedFileOfKind(args, "nginx-site") ?? renderedFileOfKind(args, "nginx.conf");
    if (!file) return;
    for (const server of nginxServers(file.content).filter(isServingServer)) {
      for (const uri of DATABASE_MANAGER_URIS) {
        const chain = chainFor(server, uri);
        const inner = chain[chain.length - 1] ?? [];
        const blocked =
          chain.length > server.outer.length + 1 &&
          (inner.some((d) => d.name === "return" && /^(403|404|444)$/.test(d.args[0] ?? "")) ||
            inner.some((d) => d.name === "deny" && d.args[0] === "all")) &&
          !inner.some((d) => d.name === "proxy_pass");
        if (!blocked) {
          reportViolation(
            `${fileLabel(file)} must block ${uri} (a location returning 403/404 or deny all) in the server at line ${server.directive.line}, so the database manager is never reachable (ODOO-2).`,
          );
          break;
        }
      }
    }
  },
};

/**
 * Every checklist item odoo.conf carries: each checklist option is written once, under one
 * name. Odoo's ConfigParser refuses a file with an option written twice (the server does not
 * start, while a reader that keeps the last line would pass it), and an option written under its
 * current and its old name (http_interface and xmlrpc_interface) takes whichever comes last.
 */
export const odooConfKeysOnce: ResourceValidationPolicy = {
  name: "odoo-conf-keys-once",
  description:
    "Checks whether odoo.conf writes each checklist option once, under one name (no duplicate, no old alias beside the current name) (NET-1, PROXY-1, PROXY-2, PROXY-4, ODOO-1, ODOO-2, ODOO-3, ODOO-5, LIMIT-1, LIMIT-2, LIMIT-3, POOL-4, NET-5, TLS-2).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const parsed = conf(file);
    for (const key of parsed.duplicates) {
      const item = ODOO_OPTION_ITEMS[ODOO_OPTION_ALIASES[key] ?? key];
      if (item)
        report(
          `${fileLabel(file)} must write ${key} once: Odoo's ConfigParser refuses a repeated option and the server does not start (${item}).`,
        );
    }
    const written = new Map<string, Set<string>>();
    for (const e of parseIni(file.content).entries.filter((x) => x.section === "options" || x.section === "DEFAULT")) {
      const key = e.key.toLowerCase();
      const canonical = ODOO_OPTION_ALIASES[key] ?? key;
      written.set(canonical, (written.get(canonical) ?? new Set()).add(key));
    }
    for (const [canonical, names] of written) {
      const item = ODOO_OPTION_ITEMS[canonical];
      if (item && names.size > 1)
        report(
          `${fileLabel(file)} must write ${canonical} under one name, not ${[...names].sort().join(" and ")}: Odoo takes whichever line comes last (${item}).`,
        );
    }
  }),
};

export const policies: Policies = [
  odooConfKeysOnce,
  odooAdminPasswdSecretReference,
  odooListDbDisabled,
  odooDbfilterRestricts,
  odooHostnamesPinDatabases,
  odooLogfileSet,
  odooLogfileRotated,
  nginxDatabaseManagerBlocked,
];
