// Auth: CHECKLIST §6 (AUTH-1, AUTH-2): how PgBouncer and PostgreSQL authenticate, read from
// pgbouncer.ini, the userlist and its manifest entry, postgresql.conf and pg_hba.conf.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { isSecretRef, scanSecretRefs } from "../lib/secret-ref";
import { parseOdooConf, parsePgbouncerIni, parsePgHba, parsePostgresConf } from "./lib/parse";
import {
  fileKindOf,
  fileLabel,
  manifestEntries,
  numberOf,
  renderedFiles,
  TYPES,
  UnknownValues,
  validateRenderedFile,
  type RenderedFile,
  type StackResourceView,
} from "./lib/resources";

/** AUTH-1: PgBouncer authenticates clients with SCRAM; md5/plain/trust leak or skip passwords. */
export const pgbouncerAuthScram: ResourceValidationPolicy = {
  name: "pgbouncer-auth-scram",
  description: "Checks whether pgbouncer.ini sets auth_type = scram-sha-256 (AUTH-1).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const authType = parsePgbouncerIni(file.content).settings.get("auth_type");
    if (authType?.toLowerCase() !== "scram-sha-256") {
      report(
        `${fileLabel(file)} must set auth_type = scram-sha-256; it is ${authType === undefined ? "absent (PgBouncer's default md5)" : JSON.stringify(authType)} (AUTH-1).`,
      );
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
      report(
        `${fileLabel(file)} must set auth_file to the absolute path of the userlist; it is ${authFile === undefined ? "absent" : JSON.stringify(authFile)} (AUTH-2).`,
      );
    }
  }),
};

/** A userlist secret: an {{ssm:…}} reference or a SCRAM verifier; never a password or an md5 hash. */
const USERLIST_LINE = /^"((?:[^"]|"")*)"\s+"((?:[^"]|"")*)"(\s.*)?$/;
const SCRAM_VERIFIER = /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/;

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
  description:
    "Checks whether the auth_file pgbouncer.ini names is delivered to its host with mode 0600, in PgBouncer's format, holding SCRAM verifiers (or references to them) only (AUTH-2).",
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
          reportViolation(
            `${subject} must be installed with mode 0600; host ${ini.host}'s manifest gives it ${entry.mode} (AUTH-2).`,
            userlist.resource.urn,
          );
        }
        // PgBouncer (loader.c load_auth_file) skips blank lines and ';' comments and stops at the
        // first other line that does not start with '"': every user after it is lost.
        for (const [i, line] of userlist.content.split(/\r?\n/).entries()) {
          const text = line.trim();
          if (text === "" || text.startsWith(";")) continue;
          const m = USERLIST_LINE.exec(text);
          if (!m) {
            reportViolation(
              `${fileLabel(userlist)} must hold \`"user" "secret"\` (or a ';' comment) on line ${i + 1}; PgBouncer stops reading the file there (AUTH-2).`,
              userlist.resource.urn,
            );
            break;
          }
          const secret = m[2].replace(/""/g, '"');
          if (!SCRAM_VERIFIER.test(secret) && !isSecretRef(secret)) {
            reportViolation(
              `${fileLabel(userlist)} must give user ${m[1]} a SCRAM-SHA-256 verifier or an {{ssm:…}} reference to one on line ${i + 1}, never a password or an md5 hash (AUTH-2).`,
              userlist.resource.urn,
            );
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
        report(
          `${fileLabel(file)} must not authenticate \`${r.type} ${r.database} ${r.user} ${r.address ?? ""}\` with ${r.method} on line ${r.line}; use scram-sha-256 (AUTH-1).`,
        );
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

/** A secret a rendered file names by {{ssm:…}} reference, and the item its secrecy serves. */
interface SecretReference {
  readonly parameter: string;
  readonly what: string;
  readonly item: string;
}

/** The secrets a file names, by where they stand in it (a host name in {{ssm:…}} is no secret). */
function secretReferences(file: RenderedFile): SecretReference[] {
  const out: SecretReference[] = [];
  const add = (text: string | undefined, what: string, item: string) => {
    const parameter = text === undefined ? undefined : scanSecretRefs(text).paths[0];
    if (parameter !== undefined) out.push({ parameter, what, item });
  };
  const kind = fileKindOf(file.path);
  if (kind === "odoo.conf") {
    const options = parseOdooConf(file.content).options;
    add(options.get("admin_passwd"), "Odoo's admin_passwd", "ODOO-1");
    add(options.get("db_password"), "Odoo's database password", "AUTH-2");
  } else if (kind === "userlist") {
    for (const line of file.content.split(/\r?\n/)) add(USERLIST_LINE.exec(line.trim())?.[2], "a userlist secret", "AUTH-2");
  } else {
    for (const m of file.content.matchAll(/PASSWORD\s+'([^']+)'/gi)) add(m[1], "a role's password verifier", "AUTH-2");
    for (const m of file.content.matchAll(/^\s*password\s*=\s*(\S+)\s*$/gim)) add(m[1], "a database password", "AUTH-2");
    if (file.path.endsWith(".pgpass"))
      for (const line of file.content.split(/\r?\n/)) add(line.split(":").pop(), "a database password", "AUTH-2");
    if (file.path.endsWith(".key")) add(file.content.trim(), "a TLS private key", "TLS-1");
  }
  return out;
}

/** Odoo's master password must come from a generator of at least this many characters (ODOO-1 "strong"). */
const MINIMUM_ADMIN_PASSWORD_LENGTH = 32;
const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";

/**
 * ODOO-1, AUTH-2 (and TLS-1 for private keys) past the rendered file: a secret a file names lives
 * in an SSM SecureString (KMS-encrypted; a String is plain text to anyone who can read
 * parameters), Odoo's master password is generated (a random password of at least 32
 * characters; a value written in the program is in the repository), and a file that carries
 * secrets once resolved is installed with no permission for other users.
 */
export const secretReferencesProtected: StackValidationPolicy = {
  name: "secret-references-protected",
  description: `Checks whether every secret a rendered file references is an SSM SecureString, Odoo's admin password is generated with at least ${MINIMUM_ADMIN_PASSWORD_LENGTH} characters, and files carrying secrets are not readable by others (ODOO-1, AUTH-2, TLS-1).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const parameters = resources.filter((r) => r.type === TYPES.ssmParameter);
    const checked = new Set<string>();
    for (const file of files) {
      unknown.run(() => {
        const refs = secretReferences(file);
        if (refs.length === 0) return;
        const entry = files
          .filter((f) => f.host === file.host && fileKindOf(f.path) === "manifest")
          .flatMap(manifestEntries)
          .find((e) => e.path === file.path);
        if (entry && /^0?[0-7]{3,4}$/.test(entry.mode) && (parseInt(entry.mode, 8) & 0o007) !== 0) {
          reportViolation(
            `${fileLabel(file)} carries ${refs[0].what} once resolved and must be installed without permissions for others; host ${file.host}'s manifest gives it ${entry.mode} (${refs[0].item}).`,
            file.resource.urn,
          );
        }
        for (const ref of refs) {
          const parameter = parameters.find((p) => p.props.name === ref.parameter);
          if (!parameter || checked.has(`${parameter.urn} ${ref.item}`)) continue;
          checked.add(`${parameter.urn} ${ref.item}`);
          if (parameter.props.type !== "SecureString") {
            reportViolation(
              `SSM parameter (${parameter.name}) holds ${ref.what} for ${fileLabel(file)} and must be a SecureString; it is ${JSON.stringify(parameter.props.type)}, plain text to anyone who may read parameters (${ref.item}).`,
              parameter.urn,
            );
          }
          if (ref.item === "ODOO-1") {
            const generators = (parameter.propertyDependencies?.value ?? []).filter((d) => d.type === RANDOM_PASSWORD);
            if (generators.length === 0) {
              reportViolation(
                `SSM parameter (${parameter.name}) holds ${ref.what} and must take its value from a random password the stack generates: a value written in the program is in the repository (ODOO-1).`,
                parameter.urn,
              );
            }
            for (const g of generators) {
              const length = numberOf(g.props.length);
              if (length === undefined || length < MINIMUM_ADMIN_PASSWORD_LENGTH) {
                reportViolation(
                  `Random password (${g.name}) generates ${ref.what} and must be at least ${MINIMUM_ADMIN_PASSWORD_LENGTH} characters long; it is ${length ?? "unknown"} (ODOO-1).`,
                  g.urn,
                );
              }
            }
          }
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [
  secretReferencesProtected,
  pgbouncerAuthScram,
  pgbouncerAuthFileSet,
  pgbouncerAuthFileProtected,
  pgHbaNoWeakMethods,
  postgresPasswordEncryptionScram,
];
