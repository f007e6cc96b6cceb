// Small, tolerant readers for the config files the stack renders. The policies read the text a
// resource carries with these, independently of the renderers (a policy that trusted the
// renderer would prove nothing). Each reader follows the daemon's own parsing rules where
// they change the meaning of a value (last key wins, quoting, Odoo's string truthiness,
// nginx's header inheritance), and never throws on odd input: what it cannot read, it skips.

// ---------------------------------------------------------------------------------------------
// INI (odoo.conf, pgbouncer.ini)
// ---------------------------------------------------------------------------------------------

export interface IniEntry {
  /** Section name as written, without brackets ("" before the first section). */
  readonly section: string;
  readonly key: string;
  readonly value: string;
  /** 1-based line number, for messages. */
  readonly line: number;
}

export interface IniDocument {
  readonly entries: readonly IniEntry[];
}

/**
 * Reads `[section]` and `key = value` lines. Lines starting with '#' or ';' are comments.
 * Indented lines continue the previous value (ConfigParser's multi-line values). Values are
 * kept verbatim: neither ConfigParser (odoo.conf) nor PgBouncer removes quotes.
 */
export function parseIni(text: string): IniDocument {
  const entries: IniEntry[] = [];
  let section = "";
  let last: { section: string; key: string; value: string; line: number } | undefined;
  const flush = () => {
    if (last) entries.push({ ...last });
    last = undefined;
  };
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) return;
    if (/^\s/.test(raw) && last) {
      last.value += `\n${trimmed}`;
      return;
    }
    flush();
    const header = /^\[([^\]]*)\]/.exec(trimmed);
    if (header) {
      section = header[1].trim();
      return;
    }
    const eq = trimmed.search(/[=:]/);
    if (eq <= 0) return;
    last = { section, key: trimmed.slice(0, eq).trim(), value: trimmed.slice(eq + 1).trim(), line };
  });
  flush();
  return { entries };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Every entry of a section (section names and keys compared case-insensitively). */
export function iniSection(doc: IniDocument, section: string): IniEntry[] {
  return doc.entries.filter((e) => same(e.section, section));
}

/** The value a daemon uses: the last occurrence of the key in the section. */
export function iniGet(doc: IniDocument, section: string, key: string): string | undefined {
  const found = iniSection(doc, section).filter((e) => same(e.key, key));
  return found.length > 0 ? found[found.length - 1].value : undefined;
}

/** True when the section exists at all (a file without [options] is not an odoo.conf). */
export const iniHasSection = (doc: IniDocument, section: string): boolean => doc.entries.some((e) => same(e.section, section));

// ---------------------------------------------------------------------------------------------
// odoo.conf
// ---------------------------------------------------------------------------------------------

/** The [options] of an odoo.conf, keys lower-cased as ConfigParser does. */
export interface OdooConf {
  /** The options Odoo ends up with, under their current names (aliases resolved). */
  readonly options: ReadonlyMap<string, string>;
  /**
   * Options written twice in one section (names as written, lower-cased): ConfigParser's strict
   * mode raises DuplicateOptionError, which Odoo does not catch, so the server does not start.
   */
  readonly duplicates: readonly string[];
}

/**
 * Option names Odoo 17 still reads under an old name (odoo/tools/config.py, load():
 * outdated_options_map). The alias is applied in file order, so whichever line comes last wins.
 */
export const ODOO_OPTION_ALIASES: Readonly<Record<string, string>> = {
  xmlrpc_port: "http_port",
  xmlrpc_interface: "http_interface",
  xmlrpc: "http_enable",
};

/**
 * odoo.conf as Odoo 17 reads it (odoo/tools/config.py load(), RawConfigParser): only the section
 * named exactly `options` (section names are case-sensitive; without it Odoo keeps every
 * default), `[DEFAULT]` keys feeding it (dict update order: DEFAULT first, options override in
 * place), option names lower-cased, old names mapped in order, and `longpolling_port` copied over
 * `gevent_port` when set (_warn_deprecated_options).
 */
export function parseOdooConf(text: string): OdooConf {
  const doc = parseIni(text);
  const ordered = new Map<string, string>();
  const duplicates = new Set<string>();
  for (const section of ["DEFAULT", "options"]) {
    const seen = new Set<string>();
    for (const e of doc.entries.filter((x) => x.section === section)) {
      const key = e.key.toLowerCase();
      if (seen.has(key)) duplicates.add(key);
      seen.add(key);
      ordered.set(key, e.value);
    }
  }
  if (!doc.entries.some((e) => e.section === "options")) ordered.clear();
  const options = new Map<string, string>();
  for (const [key, value] of ordered) options.set(ODOO_OPTION_ALIASES[key] ?? key, value);
  const longpolling = options.get("longpolling_port");
  if (longpolling !== undefined && longpolling.trim() !== "" && longpolling.trim() !== "0") options.set("gevent_port", longpolling);
  return { options, duplicates: [...duplicates] };
}

/**
 * How Odoo reads a boolean option from its file (odoo/tools/config.py, load()): only "True" /
 * "true" and "False" / "false" become booleans; any other value stays a string, which Python
 * treats as true unless it is empty. So `list_db = 0` ENABLES the database list.
 * Undefined when the key is absent.
 */
export function odooTruthy(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "True" || value === "true") return true;
  if (value === "False" || value === "false") return false;
  return value !== "";
}

/** Odoo casts integer options with int(); undefined when absent or not an integer. */
export function odooInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^[+-]?\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

// ---------------------------------------------------------------------------------------------
// pgbouncer.ini
// ---------------------------------------------------------------------------------------------

export interface PgbouncerIni {
  /** [pgbouncer] settings, keys lower-cased (PgBouncer matches them case-insensitively). */
  readonly settings: ReadonlyMap<string, string>;
  /** [databases] entries in file order: name → connection string parameters. */
  readonly databases: readonly PgbouncerDatabase[];
  /** [users] entries: user name → parameters (pool_mode, max_user_connections). */
  readonly users: readonly PgbouncerDatabase[];
  /**
   * Files named by `%include` lines (libusual cfparser.c): PgBouncer reads them in place, so
   * anything they set overrides what came before them.
   */
  readonly includes: readonly string[];
}

export interface PgbouncerDatabase {
  readonly name: string;
  /** Parameters of the entry, keys lower-cased: host, port, dbname, pool_mode, pool_size, … */
  readonly params: ReadonlyMap<string, string>;
}

export function parsePgbouncerIni(text: string): PgbouncerIni {
  // PgBouncer takes a value verbatim to the end of the line (libusual cfparser.c): no quoting.
  const doc = parseIni(text);
  const settings = new Map<string, string>();
  for (const e of iniSection(doc, "pgbouncer")) settings.set(e.key.toLowerCase(), e.value);
  const entries = (section: string): PgbouncerDatabase[] => {
    // A later entry for the same name replaces the earlier one.
    const byName = new Map<string, PgbouncerDatabase>();
    for (const e of iniSection(doc, section)) byName.set(e.key, { name: e.key, params: parseConnString(e.value) });
    return [...byName.values()];
  };
  const includes = text.split(/\r?\n/).flatMap((l) => {
    const m = /^\s*%include\s+(.*?)\s*$/.exec(l);
    return m ? [m[1]] : [];
  });
  return { settings, databases: entries("databases"), users: entries("users"), includes };
}

/**
 * libpq-style `key=value key='quoted value'` pairs, as PgBouncer reads a [databases] entry.
 * Keys lower-cased; a value in single quotes may contain spaces and '\'' escapes.
 */
export function parseConnString(text: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:'((?:[^'\\]|\\.|'')*)'|(\S*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1").replace(/''/g, "'") : m[3];
    params.set(m[1].toLowerCase(), value);
  }
  return params;
}

/** PgBouncer integer settings: plain decimal numbers; undefined otherwise. */
export function iniInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*[+-]?\d+\s*$/.test(value)) return undefined;
  return Number(value.trim());
}

// ---------------------------------------------------------------------------------------------
// postgresql.conf
// ---------------------------------------------------------------------------------------------

/** Settings of a postgresql.conf, names lower-cased, last occurrence wins, quotes removed. */
export function parsePostgresConf(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=\s*|\s+)(.*)$/.exec(raw);
    if (!m) continue;
    const value = readPostgresValue(m[2]);
    if (value !== undefined) settings.set(m[1].toLowerCase(), value);
  }
  return settings;
}

/** One value: a single-quoted string ('' and \' escapes) or a bare word; '#' starts a comment. */
function readPostgresValue(rest: string): string | undefined {
  const s = rest.trim();
  if (s.startsWith("'")) {
    let out = "";
    for (let i = 1; i < s.length; i++) {
      const c = s[i];
      if (c === "\\" && i + 1 < s.length) {
        out += s[++i];
      } else if (c === "'") {
        if (s[i + 1] === "'") {
          out += "'";
          i++;
        } else {
          return out;
        }
      } else {
        out += c;
      }
    }
    return undefined; // unterminated: PostgreSQL refuses the file; so do we (skip)
  }
  const bare = /^([^\s#]*)/.exec(s);
  return bare && bare[1] !== "" ? bare[1] : undefined;
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A PostgreSQL time setting in milliseconds. `defaultUnit` is the setting's base unit
 * (statement_timeout: ms). Undefined when the text is not a duration.
 * https://www.postgresql.org/docs/15/config-setting.html#CONFIG-SETTING-NAMES-VALUES
 */
export function parsePgDurationMs(value: string | undefined, defaultUnit: keyof typeof DURATION_UNITS_MS = "ms"): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*([+-]?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNITS_MS[m[2] ?? defaultUnit];
}

/** PostgreSQL booleans: on/off, true/false, yes/no, 1/0 and unique prefixes of them. */
export function parsePgBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === "") return undefined;
  if (v === "on" || v === "1" || "true".startsWith(v) || "yes".startsWith(v)) return true;
  if (v === "off" || v === "of" || v === "0" || "false".startsWith(v) || "no".startsWith(v)) return false;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// pg_hba.conf
// ---------------------------------------------------------------------------------------------

export interface HbaRecord {
  readonly line: number;
  /** local, host, hostssl, hostnossl, hostgssenc, hostnogssenc. */
  readonly type: string;
  readonly database: string;
  readonly user: string;
  /** Undefined for local records. */
  readonly address?: string;
  readonly method: string;
  readonly options: readonly string[];
}

/** Records of a pg_hba.conf (comments, quoting and backslash line continuation handled). */
export function parsePgHba(text: string): HbaRecord[] {
  const records: HbaRecord[] = [];
  const physical = text.split(/\r?\n/);
  for (let i = 0; i < physical.length; i++) {
    const line = i + 1;
    let logical = physical[i];
    while (/\\\s*$/.test(logical) && i + 1 < physical.length) logical = logical.replace(/\\\s*$/, " ") + physical[++i];
    const fields = hbaFields(logical);
    if (fields.length < 3) continue;
    const [type, database, user] = fields;
    let rest = fields.slice(3);
    let address: string | undefined;
    if (type !== "local") {
      address = rest[0];
      rest = rest.slice(1);
      // An address without a prefix length may be followed by a separate netmask field.
      if (
        address !== undefined &&
        !address.includes("/") &&
        /^[0-9.:a-fA-F]+$/.test(address) &&
        rest[0] &&
        /^[0-9.:a-fA-F]+$/.test(rest[0]) &&
        rest.length >= 2
      ) {
        rest = rest.slice(1);
      }
    }
    if (rest.length === 0) continue;
    records.push({ line, type: type.toLowerCase(), database, user, address, method: rest[0].toLowerCase(), options: rest.slice(1) });
  }
  return records;
}

function hbaFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === "#") break;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    let field = "";
    while (i < line.length && !/\s/.test(line[i]) && line[i] !== "#") {
      if (line[i] === '"') {
        const end = line.indexOf('"', i + 1);
        field += line.slice(i + 1, end === -1 ? line.length : end);
        i = end === -1 ? line.length : end + 1;
      } else {
        field += line[i++];
      }
    }
    fields.push(field);
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

export interface NginxDirective {
  readonly name: string;
  readonly args: readonly string[];
  /** Present for block directives (server, location, upstream, http, …). */
  readonly block?: readonly NginxDirective[];
  readonly line: number;
}

/**
 * nginx's configuration grammar: `name args;` and `name args { … }`, '#' comments, single or
 * double quotes with backslash escapes. Unbalanced braces end the current block instead of
 * throwing (the reader is tolerant; nginx -t is the strict check on the host).
 */
export function parseNginx(text: string): NginxDirective[] {
  const tokens = nginxTokens(text);
  let pos = 0;
  const readBlock = (): NginxDirective[] => {
    const out: NginxDirective[] = [];
    let words: { text: string; line: number }[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++];
      if (t.kind === "word") {
        words.push(t);
      } else if (t.kind === ";") {
        if (words.length > 0) out.push({ name: words[0].text, args: words.slice(1).map((w) => w.text), line: words[0].line });
        words = [];
      } else if (t.kind === "{") {
        const head = words;
        words = [];
        const block = readBlock();
        if (head.length > 0) out.push({ name: head[0].text, args: head.slice(1).map((w) => w.text), block, line: head[0].line });
      } else {
        return out; // "}"
      }
    }
    return out;
  };
  return readBlock();
}

type NginxToken = { kind: "word"; text: string; line: number } | { kind: ";" | "{" | "}"; line: number };

function nginxTokens(text: string): NginxToken[] {
  const tokens: NginxToken[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === ";" || c === "{" || c === "}") {
      tokens.push({ kind: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      let word = "";
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        if (text[i] === "\n") line++;
        word += text[i++];
      }
      i++;
      tokens.push({ kind: "word", text: word, line });
    } else {
      let word = "";
      while (i < text.length && !/[\s;{}]/.test(text[i])) {
        if (text[i] === "\\" && i + 1 < text.length) word += text[i++];
        word += text[i++];
      }
      tokens.push({ kind: "word", text: word, line });
    }
  }
  return tokens;
}

/** Every directive of `name` directly inside `block`. */
export const nginxAll = (block: readonly NginxDirective[] | undefined, name: string): NginxDirective[] =>
  (block ?? []).filter((d) => d.name === name);

/** The directive of `name` directly inside `block` (the last one, as nginx keeps for scalars). */
export function nginxOne(block: readonly NginxDirective[] | undefined, name: string): NginxDirective | undefined {
  const all = nginxAll(block, name);
  return all[all.length - 1];
}

/**
 * nginx time values ("90", "90s", "5m", "1h 30s") in seconds; undefined when unreadable.
 * https://nginx.org/en/docs/syntax.html
 */
export function parseNginxSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };
  const parts = value.trim().split(/\s+/);
  let total = 0;
  for (const p of parts) {
    const m = /^(\d+)(ms|s|m|h|d|w|M|y)?$/.exec(p);
    if (!m) return undefined;
    total += Number(m[1]) * unit[m[2] ?? "s"];
  }
  return parts.length > 0 ? total : undefined;
}

// ---------------------------------------------------------------------------------------------
// SQL: per-role and per-database settings (ALTER ROLE / ALTER DATABASE … SET)
// ---------------------------------------------------------------------------------------------

export interface SqlSetting {
  /** `ALTER SYSTEM` writes postgresql.auto.conf, read after every other file (server-wide). */
  readonly scope: "role" | "database" | "system";
  /** Role or database name, unquoted ("" for ALTER SYSTEM). */
  readonly name: string;
  /** `ALTER ROLE ALL …`: every role (PostgreSQL applies a specific role's setting first). */
  readonly allRoles?: boolean;
  /** `ALTER ROLE r IN DATABASE d SET …`: the database, if any. */
  readonly inDatabase?: string;
  readonly parameter: string;
  /** The value, unquoted; undefined for `TO DEFAULT` and `RESET`. */
  readonly value?: string;
}

const SQL_IDENT = `("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const unquoteIdent = (s: string): string => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s.toLowerCase());
const sqlValue = (raw: string | undefined): string | undefined =>
  raw === undefined || raw.toUpperCase() === "DEFAULT" ? undefined : raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'") : raw;

/**
 * Settings a SQL script attaches to roles and databases, which PostgreSQL applies at session
 * start and which therefore survive transaction pooling (DESIGN principle 7), and the
 * server-wide ones `ALTER SYSTEM` writes. Comments and string contents are read loosely;
 * statements the reader does not know are skipped.
 */
export function parseSqlSettings(text: string): SqlSetting[] {
  const noComments = text.replace(/--[^\n]*/g, "");
  const found: { readonly at: number; readonly setting: SqlSetting }[] = [];
  const re = new RegExp(
    `ALTER\\s+(ROLE|USER|DATABASE)\\s+${SQL_IDENT}(?:\\s+IN\\s+DATABASE\\s+${SQL_IDENT})?\\s+(SET\\s+([A-Za-z_][A-Za-z0-9_.]*)\\s*(?:=|\\s+TO\\s+)\\s*('(?:[^']|'')*'|[^;\\s]+)|RESET\\s+([A-Za-z_][A-Za-z0-9_.]*))`,
    "gi",
  );
  for (let m = re.exec(noComments); m; m = re.exec(noComments)) {
    const [, kind, name, inDb, , setParam, rawValue, resetParam] = m;
    const scope = kind.toUpperCase() === "DATABASE" ? "database" : "role";
    found.push({
      at: m.index,
      setting: {
        scope,
        name: unquoteIdent(name),
        ...(scope === "role" && name.toUpperCase() === "ALL" ? { allRoles: true } : {}),
        ...(inDb !== undefined ? { inDatabase: unquoteIdent(inDb) } : {}),
        parameter: (setParam ?? resetParam).toLowerCase(),
        value: sqlValue(rawValue),
      },
    });
  }
  const system =
    /ALTER\s+SYSTEM\s+(?:SET\s+([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|\s+TO\s+)\s*('(?:[^']|'')*'|[^;\s]+)|RESET\s+([A-Za-z_][A-Za-z0-9_.]*))/gi;
  for (let m = system.exec(noComments); m; m = system.exec(noComments)) {
    found.push({ at: m.index, setting: { scope: "system", name: "", parameter: (m[1] ?? m[3]).toLowerCase(), value: sqlValue(m[2]) } });
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.setting);
}

// ---------------------------------------------------------------------------------------------
// systemd unit files and drop-ins
// ---------------------------------------------------------------------------------------------

/** `Key=Value` lines of a unit file, per section, in order (systemd.syntax(7)); `#`/`;` comments. */
export function parseSystemdUnit(
  text: string,
): { readonly section: string; readonly key: string; readonly value: string; readonly line: number }[] {
  const out: { section: string; key: string; value: string; line: number }[] = [];
  let section = "";
  const physical = text.split(/\r?\n/);
  for (let i = 0; i < physical.length; i++) {
    const line = i + 1;
    let logical = physical[i];
    // A trailing backslash joins the next line.
    while (/\\$/.test(logical) && i + 1 < physical.length) logical = `${logical.slice(0, -1)} ${physical[++i]}`;
    const t = logical.trim();
    if (t === "" || t.startsWith("#") || t.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(t);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = t.indexOf("=");
    if (eq > 0) out.push({ section, key: t.slice(0, eq).trim(), value: t.slice(eq + 1).trim(), line });
  }
  return out;
}
