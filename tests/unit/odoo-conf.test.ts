// odoo.conf: goldens per model and version, and the checklist invariants (PROXY-4, ODOO-1..5,
// NET-1, LIMIT-1..3, TLS-2) on every Odoo host of every model.
import type { OdooVersion } from "../../lib/config";
import { DB_ROLES, PATHS, SECRET_REF, type StackModel } from "../../lib/model";
import { PORTS } from "../../lib/ports";
import { escapeOdooConf, GENERATED } from "../../templates/format";
import { forcedEntries } from "../../lib/layering";
import {
  ODOO_CONF,
  ODOO_USER_OPTIONS,
  odooConfFile,
  odooConfOptions,
  odooConfSettingsFor,
  odooServiceEnvironment,
  renderOdooConf,
  type OdooOptionValue,
} from "../../templates/odoo-conf";
import { ODOO_RELEASE_PATHS } from "../../templates/odoo-release";
import { expectGolden } from "../helpers/golden";
import { databasesAt, modelWith } from "../helpers/fixtures";

/**
 * Option names each version's odoo/tools/config.py defines (read from the 16.0, 17.0 and
 * 18.0 sources): a key outside this list is silently ignored by Odoo, which would hide a
 * misconfiguration, so the renderer must never write one.
 */
const COMMON_OPTIONS = [
  "addons_path",
  "admin_passwd",
  "csv_internal_sep",
  "data_dir",
  "db_host",
  "db_maxconn",
  "db_name",
  "db_password",
  "db_port",
  "db_sslmode",
  "db_template",
  "db_user",
  "dbfilter",
  "email_from",
  "from_filter",
  "gevent_port",
  "http_enable",
  "http_interface",
  "http_port",
  "import_partial",
  "limit_memory_hard",
  "limit_memory_soft",
  "limit_request",
  "limit_time_cpu",
  "limit_time_real",
  "limit_time_real_cron",
  "list_db",
  "log_db",
  "log_db_level",
  "log_handler",
  "log_level",
  "logfile",
  "max_cron_threads",
  "osv_memory_count_limit",
  "pg_path",
  "pidfile",
  "proxy_mode",
  "reportgz",
  "screencasts",
  "screenshots",
  "server_wide_modules",
  "smtp_password",
  "smtp_port",
  "smtp_server",
  "smtp_ssl",
  "smtp_ssl_certificate_filename",
  "smtp_ssl_private_key_filename",
  "smtp_user",
  "syslog",
  "transient_age_limit",
  "unaccent",
  "upgrade_path",
  "websocket_keep_alive_timeout",
  "websocket_rate_limit_burst",
  "websocket_rate_limit_delay",
  "without_demo",
  "workers",
  "x_sendfile",
];
const OPTIONS_IN_SOURCE: Record<OdooVersion, ReadonlySet<string>> = {
  "16.0": new Set([...COMMON_OPTIONS, "geoip_database", "longpolling_port", "osv_memory_age_limit"]),
  "17.0": new Set([...COMMON_OPTIONS, "db_maxconn_gevent", "db_sslrootcert", "geoip_city_db", "geoip_country_db", "longpolling_port"]),
  "18.0": new Set([
    ...COMMON_OPTIONS,
    "db_maxconn_gevent",
    "db_replica_host",
    "db_replica_port",
    "geoip_city_db",
    "geoip_country_db",
    "limit_memory_hard_gevent",
    "limit_memory_soft_gevent",
  ]),
};

/** The `key = value` pairs of `[options]`, in file order (duplicates kept). */
function parseOptions(text: string): [string, string][] {
  const body = text.split("\n").filter((l) => l !== "" && !l.startsWith(";"));
  expect(body[0]).toBe("[options]");
  return body.slice(1).map((l) => {
    const m = /^([a-z_]+) = (.*)$/.exec(l);
    if (!m) throw new Error(`not an option line: ${JSON.stringify(l)}`);
    return [m[1], m[2]];
  });
}
const optionMap = (text: string) => new Map(parseOptions(text));

const MODELS: [string, StackModel][] = [
  ["default", modelWith()],
  ["three-hosts", modelWith({ odooInstances: 3 })],
  ["odoo-16.0", modelWith({ odooVersion: "16.0" })],
  ["odoo-18.0", modelWith({ odooVersion: "18.0" })],
];
const EVERY_HOST = MODELS.flatMap(([name, model]) => model.hosts.odoo.map((host) => [`${name} ${host.id}`, model, host] as const));

describe("odoo.conf goldens", () => {
  it.each(EVERY_HOST)("%s", (_name, model, host) => {
    const name = _name.replace(" ", "-");
    expectGolden(`odoo/${name}.conf`, renderOdooConf(odooConfSettingsFor(model, host)));
  });
});

/** The value the checklist requires of a forced key on every production host, stated apart from the table. */
const REQUIRED_VALUES: Readonly<Record<string, string>> = {
  proxy_mode: "True", // PROXY-4
  list_db: "False", // ODOO-2
  addons_path: `${PATHS.odooCoreAddons},${PATHS.odooCustomAddons}`, // ODOO-4
  logfile: PATHS.odooLogFile, // ODOO-5
  http_port: String(PORTS.odooHttp.port), // PROXY-1
  gevent_port: String(PORTS.odooGevent.port), // PROXY-2
  db_port: String(PORTS.pgbouncer.port), // NET-5
  db_sslmode: "verify-full", // TLS-2
};

describe("odoo.conf invariants", () => {
  it.each(EVERY_HOST)("%s: starts with the generated header and lists keys once each, sorted", (_n, model, host) => {
    const text = renderOdooConf(odooConfSettingsFor(model, host));
    expect(text.split("\n")[0]).toBe(`; ${GENERATED}`);
    const keys = parseOptions(text).map(([k]) => k);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toEqual([...keys].sort());
  });

  it.each(EVERY_HOST)("%s: every forced checklist key appears exactly once with its required value", (_n, model, host) => {
    const options = parseOptions(renderOdooConf(odooConfSettingsFor(model, host)));
    for (const [key] of forcedEntries(ODOO_CONF)) {
      const found = options.filter(([k]) => k === key);
      const absent = key === "dbfilter" && model.settings.databases.length === 1;
      expect({ key, count: found.length }).toEqual({ key, count: absent ? 0 : 1 });
      if (key in REQUIRED_VALUES) expect({ key, value: found[0][1] }).toEqual({ key, value: REQUIRED_VALUES[key] });
    }
  });

  it.each(EVERY_HOST)("%s: writes only options its Odoo version knows", (_n, model, host) => {
    const known = OPTIONS_IN_SOURCE[model.settings.odooVersion];
    const unknown = parseOptions(renderOdooConf(odooConfSettingsFor(model, host)))
      .map(([k]) => k)
      .filter((k) => !known.has(k));
    expect(unknown).toEqual([]);
  });

  it.each(EVERY_HOST)("%s: binds the host's private address, never all interfaces (NET-1)", (_n, model, host) => {
    const o = optionMap(renderOdooConf(odooConfSettingsFor(model, host)));
    expect(o.get("http_interface")).toBe(host.privateIp);
    expect(o.get("http_interface")).not.toBe("0.0.0.0");
    expect(o.get("http_port")).toBe(String(PORTS.odooHttp.port));
    expect(o.get("gevent_port")).toBe(String(PORTS.odooGevent.port));
  });

  it.each(EVERY_HOST)(
    "%s: reaches PostgreSQL only through PgBouncer with verify-full and secrets as placeholders (TLS-2, ODOO-1)",
    (_n, model, host) => {
      const text = renderOdooConf(odooConfSettingsFor(model, host));
      const o = optionMap(text);
      expect(o.get("db_host")).toBe(model.hosts.pgbouncer.fqdn);
      expect(o.get("db_port")).toBe(String(PORTS.pgbouncer.port));
      expect(o.get("db_user")).toBe(DB_ROLES.odoo);
      expect(o.get("db_sslmode")).toBe("verify-full");
      expect(o.get("admin_passwd")).toBe(`{{ssm:${model.parameters.odooAdminPassword}}}`);
      expect(o.get("db_password")).toBe(`{{ssm:${model.parameters.odooDbPassword}}}`);
      // Every placeholder is a well-formed SSM reference the apply script can resolve.
      const braces = text.match(/\{\{[^}]*\}\}/g) ?? [];
      expect(braces).toHaveLength(2);
      expect(text.match(SECRET_REF)).toEqual(braces);
    },
  );

  it.each(EVERY_HOST)("%s: limits and workers come from sizing (LIMIT-1, LIMIT-3)", (_n, model, host) => {
    const o = optionMap(renderOdooConf(odooConfSettingsFor(model, host)));
    const sizing = model.settings.sizing.odoo;
    expect(Number(o.get("workers"))).toBe(sizing.workers);
    expect(Number(o.get("limit_memory_soft"))).toBe(sizing.limitMemorySoftBytes);
    expect(Number(o.get("limit_memory_hard"))).toBe(sizing.limitMemoryHardBytes);
    expect(Number(o.get("limit_time_cpu"))).toBe(sizing.limitTimeCpu);
    expect(Number(o.get("limit_time_real"))).toBe(sizing.limitTimeReal);
    expect(Number(o.get("limit_time_real_cron"))).toBe(sizing.limitTimeRealCron);
    expect(Number(o.get("db_maxconn"))).toBe(sizing.dbMaxconn);
  });

  it.each(MODELS)("%s: exactly one host runs 1–2 cron threads, every other host 0 (LIMIT-2)", (_n, model) => {
    const threads = model.hosts.odoo.map((h) => Number(optionMap(renderOdooConf(odooConfSettingsFor(model, h))).get("max_cron_threads")));
    const cronHosts = model.hosts.odoo.filter((_h, i) => threads[i] > 0);
    expect(cronHosts.map((h) => h.id)).toEqual(model.hosts.odoo.filter((h) => h.runsCron).map((h) => h.id));
    expect(cronHosts).toHaveLength(1);
    expect(Math.max(...threads)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...threads)).toBeLessThanOrEqual(2);
  });

  it("keeps core and custom addons apart, logs to the rotated file, scopes databases (ODOO-3, ODOO-4, ODOO-5)", () => {
    const model = modelWith({ ...databasesAt("erp", "hr") });
    const o = optionMap(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])));
    expect(o.get("addons_path")?.split(",")).toEqual([PATHS.odooCoreAddons, PATHS.odooCustomAddons]);
    expect(o.get("logfile")).toBe(PATHS.odooLogFile);
    expect(o.get("db_name")).toBe("erp,hr");
    expect(o.get("dbfilter")).toBe(model.settings.dbfilter);
    expect(o.get("dbfilter")).toBe("^(?=(?:erp|hr)$)%d$");
  });

  it("restricts one database by db_name alone: no dbfilter, so Odoo never lists databases on `postgres` (ODOO-3)", () => {
    const model = modelWith();
    const o = optionMap(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])));
    expect(model.settings.dbfilter).toBeUndefined();
    expect(o.has("dbfilter")).toBe(false);
    expect(o.get("db_name")).toBe("erp");
    expect(o.get("list_db")).toBe("False");
  });

  it("refuses several databases without a dbfilter (ODOO-3)", () => {
    const model = modelWith({ ...databasesAt("erp", "hr") });
    const { dbfilter: _dbfilter, ...withoutFilter } = odooConfSettingsFor(model, model.hosts.odoo[0]);
    expect(() => renderOdooConf(withoutFilter)).toThrow(/dbfilter: must be set with several databases \(erp, hr\)/);
  });

  it.each(["17.0", "18.0"] as const)(
    "gives the gevent worker its own pool on %s (db_maxconn_gevent), and 16.0 none (it has no such option)",
    (version) => {
      const model = modelWith({ odooVersion: version });
      const o = optionMap(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])));
      expect(o.get("db_maxconn_gevent")).toBe(String(model.settings.sizing.odoo.dbMaxconnGevent));
      expect(Number(o.get("db_maxconn_gevent"))).toBeGreaterThan(Number(o.get("db_maxconn")));
      const old = modelWith({ odooVersion: "16.0" });
      expect(optionMap(renderOdooConf(odooConfSettingsFor(old, old.hosts.odoo[0]))).has("db_maxconn_gevent")).toBe(false);
    },
  );

  it("follows the limits the stack config overrides", () => {
    const model = modelWith({ odoo: { limitTimeReal: 3600, limitTimeCpu: 1800, maxCronThreads: 2 } });
    const o = optionMap(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])));
    expect(o.get("limit_time_real")).toBe("3600");
    expect(o.get("limit_time_cpu")).toBe("1800");
    expect(o.get("max_cron_threads")).toBe("2");
  });
});

describe("odoo.conf user options", () => {
  const model = modelWith();
  const host = model.hosts.odoo[0];
  const render = (extra: Record<string, OdooOptionValue>, m: StackModel = model) =>
    renderOdooConf(odooConfSettingsFor(m, m.hosts.odoo[0], extra));

  it("renders an allowlisted option, and an override of a default replaces it", () => {
    const text = render({ smtp_server: "smtp.example.com", smtp_port: 587, smtp_ssl: true, log_level: "warn" });
    const options = parseOptions(text);
    const o = new Map(options);
    expect(o.get("smtp_server")).toBe("smtp.example.com");
    expect(o.get("smtp_port")).toBe("587");
    expect(o.get("smtp_ssl")).toBe("True");
    expect(options.filter(([k]) => k === "log_level")).toEqual([["log_level", "warn"]]);
  });

  // Chosen behaviour: an attempt to set a forced key is an error naming the key and the
  // checklist item, so a user learns at preview that the setting cannot be changed.
  it.each([
    ["proxy_mode", false, "PROXY-4"],
    ["list_db", true, "ODOO-2"],
    ["dbfilter", ".*", "ODOO-3"],
    ["admin_passwd", "admin", "ODOO-1"],
    ["http_interface", "0.0.0.0", "NET-1"],
    ["db_sslmode", "disable", "TLS-2"],
    ["logfile", "/tmp/odoo.log", "ODOO-5"],
  ] as const)("refuses to override %s (%s)", (key, value, checklist) => {
    expect(() => render({ [key]: value })).toThrow(new RegExp(`${key}: is fixed by odoo-stack \\(${checklist}`));
  });

  it("refuses keys derived from the model, such as db_name and without_demo", () => {
    expect(() => render({ db_name: "other" })).toThrow(/db_name: is fixed by odoo-stack/);
    expect(() => render({ without_demo: false })).toThrow(/without_demo: is fixed by odoo-stack/);
  });

  it("sends sizing keys to the stack config, where their invariants are checked", () => {
    expect(() => render({ workers: 32 })).toThrow(/workers: comes from sizing; set odoo\.workers/);
    expect(() => render({ limit_memory_hard: 1 })).toThrow(/set odoo\.limitMemoryHardMiB/);
  });

  it("refuses an unknown key, naming it and the allowed ones", () => {
    expect(() => render({ longpolling_port: 8072 })).toThrow(
      /longpolling_port: is not an Odoo 17\.0 option odoo-stack lets you set; allowed: csv_internal_sep/,
    );
  });

  it("checks option names against the stack's Odoo version", () => {
    const v16 = modelWith({ odooVersion: "16.0" });
    expect(optionMap(render({ geoip_database: "/usr/share/GeoIP/GeoLite2-City.mmdb" }, v16)).get("geoip_database")).toBe(
      "/usr/share/GeoIP/GeoLite2-City.mmdb",
    );
    expect(() => render({ geoip_database: "/x.mmdb" })).toThrow(/geoip_database: is not an Odoo 17\.0 option/);
    expect(() => render({ geoip_city_db: "/x.mmdb" }, v16)).toThrow(/geoip_city_db: is not an Odoo 16\.0 option/);
  });

  it.each(Object.entries(ODOO_USER_OPTIONS))("every option allowed for %s exists in that version's source", (version, allowed) => {
    expect(allowed.filter((k) => !OPTIONS_IN_SOURCE[version as OdooVersion].has(k))).toEqual([]);
  });

  it("accepts a secret option only as an SSM placeholder", () => {
    expect(() => render({ smtp_password: "hunter2" })).toThrow(/smtp_password: is a secret; pass a secretRef\(\)/);
    const ref = `{{ssm:/odoo-stack/test/smtp/password}}`;
    expect(optionMap(render({ smtp_password: ref })).get("smtp_password")).toBe(ref);
  });

  it("refuses a log_level Odoo does not accept", () => {
    expect(() => render({ log_level: "verbose" })).toThrow(/log_level = "verbose": must be one of info/);
  });

  it("reports every problem at once", () => {
    expect(() => render({ list_db: true, workers: 3, bogus: 1 })).toThrow(
      /3 problems:\n {2}1\. bogus:.*\n {2}2\. list_db:.*\n {2}3\. workers:/,
    );
  });

  it("still writes forced keys last when a caller skips the check", () => {
    const settings = odooConfSettingsFor(model, host, { list_db: true, proxy_mode: false, http_interface: "0.0.0.0" });
    const options = odooConfOptions(settings);
    expect(options.list_db).toBe(false);
    expect(options.proxy_mode).toBe(true);
    expect(options.http_interface).toBe(host.privateIp);
  });
});

describe("odoo.conf settings checks and escaping", () => {
  const model = modelWith();
  const base = odooConfSettingsFor(model, model.hosts.odoo[0]);

  it.each(["0.0.0.0", "", "::"])("refuses http_interface %j (NET-1)", (address) => {
    expect(() => renderOdooConf({ ...base, httpInterface: address })).toThrow(
      /http_interface = .*: must be the host's private address .*NET-1/,
    );
  });

  it("refuses an unrestricted dbfilter (ODOO-3)", () => {
    expect(() => renderOdooConf({ ...base, dbfilter: ".*" })).toThrow(/dbfilter = "\.\*": must restrict the databases/);
  });

  it("refuses a literal password where a placeholder belongs (ODOO-1)", () => {
    expect(() => renderOdooConf({ ...base, adminPasswd: "s3cret" })).toThrow(/admin_passwd: must be a secretRef\(\) placeholder/);
    expect(() => renderOdooConf({ ...base, dbPassword: "s3cret" })).toThrow(/db_password: must be a secretRef\(\) placeholder/);
  });

  it("refuses a worker count below multi-process mode (LIMIT-1)", () => {
    expect(() => renderOdooConf({ ...base, workers: 0 })).toThrow(/workers = 0: must be a whole number ≥ 2/);
  });

  it("refuses a newline in any value, forced or user-given", () => {
    expect(() => escapeOdooConf("a\nlist_db = True")).toThrow(/single line/);
    expect(() => renderOdooConf({ ...base, dbfilter: "^erp$\nlist_db = True" })).toThrow(/single line/);
    expect(() => renderOdooConf({ ...base, extraOptions: { email_from: "odoo@example.com\nlist_db = True" } })).toThrow(
      /email_from: must be a single line/,
    );
  });

  it("is rendered for Odoo hosts only", () => {
    expect(() => odooConfSettingsFor(model, model.hosts.pgbouncer)).toThrow(/Odoo hosts only; pgbouncer is a pgbouncer host/);
  });
});

describe("odoo.conf host delivery", () => {
  const model = modelWith();

  it("is readable by root and the odoo group only: it holds passwords once resolved", () => {
    const file = odooConfFile(model, model.hosts.odoo[0]);
    expect({ path: file.path, mode: file.mode, owner: file.owner, group: file.group }).toEqual({
      path: PATHS.odooConf,
      mode: "0640",
      owner: "root",
      group: "odoo",
    });
    expect(file.content).toBe(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])));
  });

  it("gives libpq the internal CA through PGSSLROOTCERT (verify-full needs it; odoo.conf has no key for it in every version)", () => {
    expect(odooServiceEnvironment(odooConfSettingsFor(model, model.hosts.odoo[0]))).toEqual({
      PGSSLROOTCERT: PATHS.caCert,
      PYTHONPATH: ODOO_RELEASE_PATHS.python,
    });
    expect(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0]))).not.toContain("sslrootcert");
  });
});

// Issue 12 item 5: outbound mail from the stack's mail setting, STARTTLS forced, password from SSM.
describe("odoo.conf outbound mail", () => {
  it("renders smtp_* from the mail setting, the password as the stack's parameter reference", () => {
    const model = modelWith({ mail: { host: "smtp.example.com", user: "odoo@example.com", from: "erp@example.com" } });
    const text = renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0], model.settings.odooOptions));
    for (const line of [
      "smtp_server = smtp.example.com",
      "smtp_port = 587",
      "smtp_user = odoo@example.com",
      `smtp_password = {{ssm:${model.parameters.mailPassword}}}`,
      "smtp_ssl = True",
      "email_from = erp@example.com",
    ]) {
      expect(text.split("\n")).toContain(line);
    }
  });

  it("names the operator's parameter when mail.passwordParameter is set, and refuses smtp_* in the options then", () => {
    const model = modelWith({ mail: { host: "smtp.example.com", user: "u", passwordParameter: "/mail/relay" } });
    const settings = odooConfSettingsFor(model, model.hosts.odoo[0]);
    expect(renderOdooConf(settings).split("\n")).toContain("smtp_password = {{ssm:/mail/relay}}");
    expect(() => renderOdooConf({ ...settings, extraOptions: { smtp_port: 25 } })).toThrow(/smtp_port: is set by the stack's mail setting/);
  });
});
