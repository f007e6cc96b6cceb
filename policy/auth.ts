// Auth: CHECKLIST §6 (AUTH-1, AUTH-2): how PgBouncer and PostgreSQL authenticate, read from
// pgbouncer.ini, the userlist and its manifest entry, postgresql.conf and pg_hba.conf.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { parsePgbouncerIni, parsePgHba, parsePostgresConf } from "./lib/parse";
import {
  fileKindOf,
  fileLabel,
  manifestEntries,
  renderedFiles,
  UnknownValues,
  validateRenderedFile,
  type StackResourceView,
} from "./lib/resources";

/** AUTH-1: PgBouncer authenticates clients with SCRAM; md5/plain/trust leak or skip passwords. */
export const pgbouncerAuthScram: ResourceValidationPolicy = {
  name: "pgbouncer-auth-scram",
  description: "Checks whether pgbouncer.ini sets auth_type = scram-sha-256 (AUTH-1).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const authType = parsePgbouncerIni(file.content).settings.get("auth_type");
    if (authType?.toLowerCase() !== "scram-sha-256") {
      report(`${fileLabel(file)} must set auth_type = scram-sha-256; it is ${authType === undefined ? "absent (PgBouncer's default md5)" : JSON.stringify(authType)} (AUTH-1).`);
    }
  }),
};

/** AUTH-2: the users PgBouncer knows live in an auth_file. */
export const pgbouncerAuthFileSet: ResourceValidationPolicy = {
  name: "pgbouncer-auth-file-set",
  description: "Checks whether pgbouncer.ini sets auth_file to an absolute path (AUTH-2).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const authFile = parsePgbouncerIni(file.content).settings.get("auth_file");
    if (authFile === undefined || !authFile.startsWith("/")) {
      report(`${fileLabel(file)} must set auth_file to the absolute path of the userlist; it is ${authFile === undefined ? "absent" : JSON.stringify(authFile)} (AUTH-2).`);
    }
  }),
};

/** A userlist secret: an {{ssm:…}} reference or a SCRAM verifier; never a password or an md5 hash. */
const USERLIST_LINE = /^"((?:[^"]|"")*)"\s+"((?:[^"]|"")*)"(\s.*)?$/;
const SCRAM_VERIFIER = /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/;
const SECRET_REFERENCE = /^\{\{ssm:\/[A-Za-z0-9_.\-/]+\}\}$/;

/** Octal mode with no permission for group or others (0600, 0400). */
const ownerOnly = (mode: string): boolean => /^0?[0-7]{3,4}$/.test(mode) && (parseInt(mode, 8) & 0o077) === 0;

/**
 * AUTH-2 on the host: the auth_file pgbouncer.ini names is delivered to the same host, with mode
 * 0600 (the manifest the apply script follows says so), and in the format PgBouncer reads —
 * `"user" "secret"` per line — where every secret is a SCRAM verifier or an {{ssm:…}}
 * reference to one, never a password or an md5 hash.
 */
export const pgbouncerAuthFileProtected: StackValidationPolicy = {
  name: "pgbouncer-auth-file-protected",
  description: "Checks whether the auth_file pgbouncer.ini names is delivered to its host with mode 0600, in PgBouncer's format, holding SCRAM verifiers (or references to them) only (AUTH-2).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    for (const ini of files.filter((f) => fileKindOf(f.path) === "pgbouncer.ini")) {
      unknown.run(() => {
        const authFile = parsePgbouncerIni(ini.content).settings.get("auth_file");
        if (authFile === undefined || !authFile.startsWith("/")) return; // pgbouncer-auth-file-set reports it
        const subject = `${fileLabel(ini)} names auth_file ${authFile}, which`;
        const userlist = files.find((f) => f.host === ini.host && f.path === authFile);
        if (!userlist) {
          reportViolation(`${subject} must be delivered to host ${ini.host} too: no config object carries it (AUTH-2).`, ini.resource.urn);
          return;
        }
        const manifests = files.filter((f) => f.host === ini.host && fileKindOf(f.path) === "manifest");
        const entry = manifests.flatMap(manifestEntries).find((e) => e.path === authFile);
        if (!entry) {
          reportViolation(`${subject} must be listed in host ${ini.host}'s manifest with mode 0600 (AUTH-2).`, userlist.resource.urn);
        } else if (!ownerOnly(entry.mode)) {
          reportViolation(`${subject} must be installed with mode 0600; host ${ini.host}'s manifest gives it ${entry.mode} (AUTH-2).`, userlist.resource.urn);
        }
        // PgBouncer (loader.c load_auth_file) skips blank lines and ';' comments and stops at the
        // first other line that does not start with '"': every user after it is lost.
        for (const [i, line] of userlist.content.split(/\r?\n/).entries()) {
          const text = line.trim();
          if (text === "" || text.startsWith(";")) continue;
          const m = USERLIST_LINE.exec(text);
          if (!m) {
            reportViolation(`${fileLabel(userlist)} must hold \`"user" "secret"\` (or a ';' comment) on line ${i + 1}; PgBouncer stops reading the file there (AUTH-2).`, userlist.resource.urn);
            break;
          }
          const secret = m[2].replace(/""/g, '"');
          if (!SCRAM_VERIFIER.test(secret) && !SECRET_REFERENCE.test(secret)) {
            reportViolation(`${fileLabel(userlist)} must give user ${m[1]} a SCRAM-SHA-256 verifier or an {{ssm:…}} reference to one on line ${i + 1}, never a password or an md5 hash (AUTH-2).`, userlist.resource.urn);
          }
        }
      });
    }
    unknown.finish();
  },
};

/** Methods that send a password in the clear, accept none, or trust a remote ident server. */
const WEAK_METHODS = new Set(["trust", "password", "md5", "ident"]);

/** AUTH-1 on PostgreSQL: network connections authenticate with SCRAM (or a certificate). */
export const pgHbaNoWeakMethods: ResourceValidationPolicy = {
  name: "pg-hba-no-weak-methods",
  description: `Checks whether pg_hba.conf authenticates every network connection with scram-sha-256 or cert, never ${[...WEAK_METHODS].join("/")} (AUTH-1).`,
  validateResource: validateRenderedFile("pg_hba.conf", (file, report) => {
    for (const r of parsePgHba(file.content)) {
      if (r.type !== "local" && WEAK_METHODS.has(r.method)) {
        report(`${fileLabel(file)} must not authenticate \`${r.type} ${r.database} ${r.user} ${r.address ?? ""}\` with ${r.method} on line ${r.line}; use scram-sha-256 (AUTH-1).`);
      }
    }
  }),
};

/** AUTH-1: passwords PostgreSQL stores are SCRAM verifiers (PostgreSQL 15's default, kept explicit). */
export const postgresPasswordEncryptionScram: ResourceValidationPolicy = {
  name: "postgres-password-encryption-scram",
  description: "Checks whether postgresql.conf keeps password_encryption = scram-sha-256 (AUTH-1).",
  validateResource: validateRenderedFile("postgresql.conf", (file, report) => {
    const value = parsePostgresConf(file.content).get("password_encryption");
    if (value !== undefined && value.toLowerCase() !== "scram-sha-256") {
      report(`${fileLabel(file)} must set password_encryption = scram-sha-256; it is ${JSON.stringify(value)} (AUTH-1).`);
    }
  }),
};

export const policies: Policies = [pgbouncerAuthScram, pgbouncerAuthFileSet, pgbouncerAuthFileProtected, pgHbaNoWeakMethods, postgresPasswordEncryptionScram];
