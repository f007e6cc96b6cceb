// systemd drop-ins for the Debian packages' units: the stack adds settings (environment,
// limits) without replacing the packaged unit, so package upgrades keep their fixes.
import { header, lines, sortedEntries, type HostFile } from "./format";

export type SystemdValue = string | number | Readonly<Record<string, string>>;
export type SystemdSections = Readonly<Record<string, Readonly<Record<string, SystemdValue>>>>;

/** The drop-in directory systemd reads for `unit`. */
export const dropInPath = (unit: string): string => `/etc/systemd/system/${unit}.service.d/odoo-stack.conf`;

/**
 * systemd unit-file values: one line, and '%' doubled (specifier expansion). An environment
 * map becomes `Environment="K=V"` lines, quoted as systemd documents.
 */
export function escapeSystemd(value: string | number): string {
  const s = String(value);
  if (/[\r\n\0]/.test(s)) throw new Error(`systemd value must be a single line: ${JSON.stringify(s)}`);
  return s.replace(/%/g, "%%");
}

export function renderSystemdDropIn(sections: SystemdSections): string {
  const body: string[] = [];
  for (const [section, keys] of sortedEntries(sections)) {
    body.push(`[${section}]`);
    for (const [key, value] of sortedEntries(keys)) {
      if (typeof value === "object") {
        for (const [name, v] of sortedEntries(value)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`environment variable name ${JSON.stringify(name)} is not valid`);
          body.push(`${key}="${escapeSystemd(`${name}=${v}`).replace(/["\\]/g, (c) => `\\${c}`)}"`);
        }
      } else {
        body.push(`${key}=${escapeSystemd(value)}`);
      }
    }
  }
  return lines(header("#"), body);
}

export function systemdDropIn(unit: string, sections: SystemdSections): HostFile {
  return { path: dropInPath(unit), content: renderSystemdDropIn(sections), mode: "0644", owner: "root", group: "root" };
}

/**
 * A word in a systemd unit line (ExecStart argument, Environment value): no whitespace,
 * quotes, backslashes or '%' (specifier expansion), so it needs no quoting at all.
 */
export function escapeSystemdWord(value: string | number): string {
  const s = String(value);
  if (!/^[A-Za-z0-9_.,:/@+={}-]+$/.test(s)) {
    throw new Error(`systemd unit word must be letters, digits and _.,:/@+={}- only: ${JSON.stringify(s)}`);
  }
  return s;
}

/** `Environment=KEY=value` with the value as one unquoted word. */
export const systemdEnvironment = (key: string, value: string | number): string => `Environment=${key}=${escapeSystemdWord(value)}`;

/** A unit of the stack's own (not a drop-in): /etc/systemd/system/<name>, root 0644. */
export const unitFile = (name: string, content: string): HostFile => ({
  path: `/etc/systemd/system/${name}`,
  content,
  mode: "0644",
  owner: "root",
  group: "root",
});

/**
 * What every odoo-stack oneshot service (backups, drill, metrics) starts with: the header, a
 * [Unit] ordered after the network (and `after`), then [Service] Type=oneshot and `service`.
 */
export function oneshotService(u: {
  readonly description: string;
  readonly documentation?: string;
  readonly after?: readonly string[];
  readonly service: readonly string[];
}): string {
  return lines(
    header("#").trimEnd(),
    "[Unit]",
    `Description=${u.description}`,
    ...(u.documentation === undefined ? [] : [`Documentation=${u.documentation}`]),
    `After=${[...(u.after ?? []), "network-online.target"].join(" ")}`,
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    ...u.service,
  );
}
