// /etc/logrotate.d/odoo: rotation of Odoo's log file (ODOO-5).
//
// Why neither copytruncate nor a postrotate signal: on POSIX, Odoo 16.0–18.0 log to
// `logfile` through logging.handlers.WatchedFileHandler (odoo/netsvc.py, init_logger), which
// stats the path before every record and reopens it when the inode changed. So logrotate's
// default rename + `create` is enough: each prefork worker moves to the new file on its next
// line, nothing is lost (copytruncate drops what is written between the copy and the
// truncate), and Odoo has no signal that reopens logs (SIGUSR1/SIGUSR2 dump cache and memory
// statistics). `delaycompress` keeps yesterday's file uncompressed for a line still in flight.
import { PATHS } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { header, lines, type HostFile } from "./format";
import { ODOO_SYSTEM_USER } from "./odoo-conf";

/** Every value the logrotate stanza needs. */
export interface LogrotateSettings {
  /** Absolute paths of the rotated files. */
  readonly logFiles: readonly string[];
  /** Account logrotate switches to: the directory belongs to Odoo, not root. */
  readonly user: string;
  /** Group of the new file: adm reads logs on Debian (and the metrics agent joins it). */
  readonly group: string;
  /** Octal mode of the new file. */
  readonly mode: string;
  /** Days of local history; older logs live in CloudWatch (OBS-5). */
  readonly rotateDays: number;
  /** Rotate early once a file passes this size, so an error storm cannot fill the disk. */
  readonly maxSizeMiB: number;
}

/** Local history kept on the host. */
export const ODOO_LOG_RETENTION_DAYS = 14;
/** A busy Odoo at info level writes tens of MiB a day; 512 MiB means something is looping. */
export const ODOO_LOG_MAX_SIZE_MIB = 512;

/** The same on every Odoo host: nothing in the stack model changes it. */
export function odooLogrotateSettings(): LogrotateSettings {
  return {
    logFiles: [PATHS.odooLogFile],
    user: ODOO_SYSTEM_USER,
    group: "adm",
    mode: "0640",
    rotateDays: ODOO_LOG_RETENTION_DAYS,
    maxSizeMiB: ODOO_LOG_MAX_SIZE_MIB,
  };
}

// logrotate has no quoting that format.ts knows; values are validated to a safe alphabet instead.
const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
const SAFE_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export function checkLogrotateSettings(s: LogrotateSettings): string[] {
  const problems: string[] = [];
  if (s.logFiles.length === 0) problems.push("logFiles: at least one file must be rotated (ODOO-5)");
  for (const file of s.logFiles) {
    if (!SAFE_PATH.test(file) || file.includes(".."))
      problems.push(`logFiles: ${JSON.stringify(file)} must be an absolute path of letters, digits, '.', '_', '-' and '/'`);
  }
  for (const [key, value] of [
    ["user", s.user],
    ["group", s.group],
  ] as const) {
    if (!SAFE_NAME.test(value)) problems.push(`${key} = ${JSON.stringify(value)}: must be a Unix account name`);
  }
  if (!/^0[0-7]{3}$/.test(s.mode)) problems.push(`mode = ${JSON.stringify(s.mode)}: must be octal, e.g. 0640`);
  if (!Number.isInteger(s.rotateDays) || s.rotateDays < 1) problems.push(`rotateDays = ${s.rotateDays}: must be a whole number ≥ 1`);
  if (!Number.isInteger(s.maxSizeMiB) || s.maxSizeMiB < 1) problems.push(`maxSizeMiB = ${s.maxSizeMiB}: must be a whole number ≥ 1`);
  return problems;
}

export function renderLogrotate(s: LogrotateSettings): string {
  const problems = checkLogrotateSettings(s);
  throwIfAny("logrotate", problems);
  return lines(
    header("#"),
    `${s.logFiles.join(" ")} {`,
    // Rotate as the owner of /var/log/odoo: root must not follow links a compromised Odoo plants.
    `    su ${s.user} ${s.group}`,
    "    daily",
    `    maxsize ${s.maxSizeMiB}M`,
    `    rotate ${s.rotateDays}`,
    "    missingok",
    "    notifempty",
    "    compress",
    "    delaycompress",
    `    create ${s.mode} ${s.user} ${s.group}`,
    "}",
  );
}

export function odooLogrotateFile(): HostFile {
  return { path: PATHS.odooLogrotate, content: renderLogrotate(odooLogrotateSettings()), mode: "0644", owner: "root", group: "root" };
}
