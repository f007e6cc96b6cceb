// The policy pack's readers: each case is a rule of the daemon's own parser that changes what a
// value means, so a policy built on the reader sees what the daemon will see.
import {
  iniGet,
  odooInt,
  odooTruthy,
  parseConnString,
  parseIni,
  parseNginx,
  parseNginxSeconds,
  parseOdooConf,
  parsePgBool,
  parsePgDurationMs,
  parsePgHba,
  parsePgbouncerIni,
  parsePostgresConf,
  parseSqlSettings,
  parseSystemdUnit,
} from "../../policy/lib/parse";
import { chainFor, nginxServers, nginxUpstreams, proxyHeaders, proxyTarget } from "../../policy/lib/nginx";

describe("parseIni", () => {
  it("reads sections, ignores comments, and lets the last key win", () => {
    const doc = parseIni("; header\n[options]\n# comment\nlist_db = True\nLIST_DB = False\n\n[other]\nx=1\n");
    expect(iniGet(doc, "options", "list_db")).toBe("False");
    expect(iniGet(doc, "OPTIONS", "x")).toBeUndefined();
    expect(iniGet(doc, "other", "x")).toBe("1");
  });

  it("appends indented continuation lines to the previous value", () => {
    const doc = parseIni("[options]\naddons_path = /a,\n  /b\nnext = 1\n");
    expect(iniGet(doc, "options", "addons_path")).toBe("/a,\n/b");
    expect(iniGet(doc, "options", "next")).toBe("1");
  });

  it("keeps quotes: neither ConfigParser nor PgBouncer removes them", () => {
    expect(iniGet(parseIni('[p]\nk = "a"\n'), "p", "k")).toBe('"a"');
  });

  it("skips lines it cannot read instead of throwing", () => {
    expect(parseIni("garbage\n=novalue\n[s]\nk=v\n").entries).toEqual([{ section: "s", key: "k", value: "v", line: 4 }]);
  });
});

describe("odoo.conf", () => {
  it.each([
    ["True", true],
    ["true", true],
    ["False", false],
    ["false", false],
    ["", false],
    // Odoo keeps these as strings, and a non-empty string is true in Python.
    ["0", true],
    ["no", true],
    ["FALSE", true],
  ])("odooTruthy(%j) = %s, as Odoo's load() reads it", (text, expected) => {
    expect(odooTruthy(text)).toBe(expected);
  });

  it("treats an absent key as unknown, not false", () => {
    expect(odooTruthy(undefined)).toBeUndefined();
  });

  it("reads only [options], with lower-cased keys", () => {
    const conf = parseOdooConf("[options]\nProxy_Mode = True\n[misc]\nlist_db = True\n");
    expect(conf.options.get("proxy_mode")).toBe("True");
    expect(conf.options.has("list_db")).toBe(false);
  });

  // odoo/tools/config.py (17.0) load(): RawConfigParser, outdated_options_map in file order,
  // [DEFAULT] merged under [options]; _warn_deprecated_options copies longpolling_port.
  it("reads Odoo's old option names in file order, so the later line wins", () => {
    expect(parseOdooConf("[options]\nhttp_interface = 10.0.0.5\nxmlrpc_interface = 0.0.0.0\n").options.get("http_interface")).toBe(
      "0.0.0.0",
    );
    expect(parseOdooConf("[options]\nxmlrpc_interface = 0.0.0.0\nhttp_interface = 10.0.0.5\n").options.get("http_interface")).toBe(
      "10.0.0.5",
    );
    expect(parseOdooConf("[options]\nxmlrpc = False\nxmlrpc_port = 8080\n").options).toEqual(
      new Map([
        ["http_enable", "False"],
        ["http_port", "8080"],
      ]),
    );
    expect(parseOdooConf("[options]\ngevent_port = 8072\nlongpolling_port = 8073\n").options.get("gevent_port")).toBe("8073");
  });

  it("feeds [DEFAULT] into [options], which overrides it; reads nothing without a section named exactly options", () => {
    const conf = parseOdooConf("[DEFAULT]\nlist_db = True\nlimit_time_real_cron = 0\n[options]\nlist_db = False\n");
    expect([conf.options.get("list_db"), conf.options.get("limit_time_real_cron")]).toEqual(["False", "0"]);
    expect(parseOdooConf("[Options]\nlist_db = False\n").options.size).toBe(0);
  });

  it("lists options written twice in a section (ConfigParser's DuplicateOptionError)", () => {
    expect(parseOdooConf("[options]\nList_Db = False\nproxy_mode = True\nlist_db = True\n").duplicates).toEqual(["list_db"]);
    expect(parseOdooConf("[DEFAULT]\nlist_db = True\n[options]\nlist_db = False\n").duplicates).toEqual([]);
  });

  it("reads integers and refuses the rest", () => {
    expect(odooInt(" 5 ")).toBe(5);
    expect(odooInt("5.5")).toBeUndefined();
    expect(odooInt("five")).toBeUndefined();
  });
});

describe("pgbouncer.ini", () => {
  const ini = parsePgbouncerIni(
    [
      "[databases]",
      "erp = host=pg.internal port=5432 dbname=erp pool_mode=transaction",
      "postgres = host=pg.internal dbname=postgres pool_mode=session pool_size=5",
      "erp = host=pg.internal dbname=erp pool_mode=session",
      "[pgbouncer]",
      "Pool_Mode = transaction",
      "auth_file = /etc/pgbouncer/userlist.txt",
      "[users]",
      "odoo = pool_mode=transaction max_user_connections=40",
    ].join("\n"),
  );

  it("keeps the last entry per database name", () => {
    expect(ini.databases.map((d) => d.name)).toEqual(["erp", "postgres"]);
    expect(ini.databases[0].params.get("pool_mode")).toBe("session");
  });

  it("lower-cases setting names", () => {
    expect(ini.settings.get("pool_mode")).toBe("transaction");
    expect(ini.settings.get("auth_file")).toBe("/etc/pgbouncer/userlist.txt");
  });

  it("reads [users]", () => {
    expect(ini.users[0].params.get("max_user_connections")).toBe("40");
  });

  it("parses libpq connection strings with quoted values", () => {
    const p = parseConnString("host=a  dbname='my db' password='it\\'s' Port=1");
    expect(Object.fromEntries(p)).toEqual({ host: "a", dbname: "my db", password: "it's", port: "1" });
  });
});

describe("postgresql.conf", () => {
  const conf = parsePostgresConf(
    [
      "# comment",
      "statement_timeout = 0",
      "Statement_Timeout = '2min'  # the last one wins",
      "log_lock_waits on",
      "ssl_cert_file = '/etc/it''s.crt'",
      "broken = 'unterminated",
    ].join("\n"),
  );

  it("reads both `name = value` and `name value`, last wins, quotes removed", () => {
    expect(conf.get("statement_timeout")).toBe("2min");
    expect(conf.get("log_lock_waits")).toBe("on");
    expect(conf.get("ssl_cert_file")).toBe("/etc/it's.crt");
    expect(conf.has("broken")).toBe(false);
  });

  it.each([
    ["120000", 120_000],
    ["2min", 120_000],
    ["30s", 30_000],
    ["1h", 3_600_000],
    ["0", 0],
    ["soon", undefined],
  ])("duration %j = %s ms", (text, ms) => {
    expect(parsePgDurationMs(text)).toBe(ms);
  });

  it("uses the setting's base unit for bare numbers", () => {
    expect(parsePgDurationMs("30", "s")).toBe(30_000);
  });

  it.each([
    ["on", true],
    ["TRUE", true],
    ["y", true],
    ["1", true],
    ["off", false],
    ["of", false],
    ["no", false],
    ["0", false],
    ["o", undefined],
    ["maybe", undefined],
  ])("boolean %j = %s", (text, value) => {
    expect(parsePgBool(text)).toBe(value);
  });
});

describe("pg_hba.conf", () => {
  it("reads local and host records, masks, quotes, options and continuations", () => {
    const records = parsePgHba(
      [
        "# TYPE DATABASE USER ADDRESS METHOD",
        "local all postgres peer",
        'hostssl "erp" odoo 10.40.128.11/32 scram-sha-256 clientcert=verify-full',
        "host all all 10.0.0.0 255.0.0.0 md5",
        "hostssl all \\",
        "  all 10.40.0.0/16 scram-sha-256",
      ].join("\n"),
    );
    expect(records).toEqual([
      { line: 2, type: "local", database: "all", user: "postgres", address: undefined, method: "peer", options: [] },
      {
        line: 3,
        type: "hostssl",
        database: "erp",
        user: "odoo",
        address: "10.40.128.11/32",
        method: "scram-sha-256",
        options: ["clientcert=verify-full"],
      },
      { line: 4, type: "host", database: "all", user: "all", address: "10.0.0.0", method: "md5", options: [] },
      { line: 5, type: "hostssl", database: "all", user: "all", address: "10.40.0.0/16", method: "scram-sha-256", options: [] },
    ]);
  });
});

describe("nginx", () => {
  const tree = parseNginx(
    [
      "upstream odoo { server 10.40.128.20:8069; }",
      "server {",
      "  listen 443 ssl; # comment { not a block",
      '  add_header X-Test "a;b";',
      "  location /websocket {",
      "    proxy_set_header Connection $connection_upgrade;",
      "  }",
      "}",
    ].join("\n"),
  );

  it("builds the directive tree with quoted arguments and line numbers", () => {
    expect(tree.map((d) => d.name)).toEqual(["upstream", "server"]);
    const server = tree[1].block ?? [];
    expect(server.map((d) => [d.name, d.args, d.line])).toEqual([
      ["listen", ["443", "ssl"], 3],
      ["add_header", ["X-Test", "a;b"], 4],
      ["location", ["/websocket"], 5],
    ]);
    expect(server[2].block?.[0].args).toEqual(["Connection", "$connection_upgrade"]);
  });

  it("does not throw on unbalanced braces", () => {
    expect(() => parseNginx("server { listen 443;")).not.toThrow();
    expect(parseNginx("}} listen 80;")).toEqual([]);
  });

  it.each([
    ["90", 90],
    ["90s", 90],
    ["5m", 300],
    ["1h 30s", 3630],
    ["500ms", 0.5],
    ["forever", undefined],
  ])("time %j = %s s", (text, seconds) => {
    expect(parseNginxSeconds(text)).toBe(seconds);
  });
});

describe("nginx location selection (policy/lib/nginx.ts)", () => {
  const site = [
    "server {",
    "  location / { proxy_pass http://a; }",
    "  location /web { proxy_pass http://b; }",
    "  location ^~ /web/static { root /srv; }",
    "  location ~* \\.(png|css)$ { root /img; }",
    "  location = /websocket { proxy_pass http://c; }",
    "  location /websocket { proxy_pass http://d; }",
    "}",
  ].join("\n");
  const server = nginxServers(site)[0];
  const target = (uri: string) => {
    const chain = chainFor(server, uri);
    return chain[chain.length - 1].find((d) => d.name === "proxy_pass" || d.name === "root")?.args[0];
  };

  it.each([
    ["/", "http://a"],
    ["/web/login", "http://b"],
    ["/web/static/x.css", "/srv"], // ^~ stops before the regexes
    ["/web/logo.png", "/img"], // a regex beats a plain prefix
    ["/websocket", "http://c"], // = wins outright
    ["/websocket/x", "http://d"],
  ])("%s is served by %s", (uri, expected) => {
    expect(target(uri)).toBe(expected);
  });

  it("inherits proxy_set_header only into levels that set none", () => {
    const [s] = nginxServers("server { proxy_set_header X-A 1; location / { proxy_set_header X-B 2; } location /x { } }");
    expect([...proxyHeaders(chainFor(s, "/")).keys()]).toEqual(["host", "connection", "x-b"]);
    expect([...proxyHeaders(chainFor(s, "/x")).keys()]).toEqual(["host", "connection", "x-a"]);
  });

  it("resolves proxy_pass through an upstream to its servers' ports", () => {
    const text =
      "upstream odoo { server 10.0.0.1:8069; server 10.0.0.2:8069; } server { location / { proxy_pass http://odoo; } location /x { proxy_pass http://10.0.0.3; } }";
    const [s] = nginxServers(text);
    expect(proxyTarget(chainFor(s, "/"), nginxUpstreams(text))).toEqual({ kind: "ports", target: "http://odoo", ports: [8069, 8069] });
    expect(proxyTarget(chainFor(s, "/x"), nginxUpstreams(text))).toEqual({ kind: "ports", target: "http://10.0.0.3", ports: [80] });
  });
});

describe("includes, ALTER SYSTEM, ALTER ROLE ALL and systemd units", () => {
  it("lists pgbouncer.ini's %include lines", () => {
    expect(parsePgbouncerIni("[pgbouncer]\npool_mode = transaction\n%include /etc/pgbouncer/local.ini\n").includes).toEqual([
      "/etc/pgbouncer/local.ini",
    ]);
  });

  it("reads ALTER SYSTEM (server-wide) and ALTER ROLE ALL apart from a role's own settings, in statement order", () => {
    expect(
      parseSqlSettings(
        `ALTER SYSTEM SET ssl = off;\nALTER ROLE ALL SET statement_timeout = 0;\nALTER ROLE "all" IN DATABASE "erp" SET lock_timeout TO '5s';\nALTER SYSTEM RESET log_lock_waits;`,
      ),
    ).toEqual([
      { scope: "system", name: "", parameter: "ssl", value: "off" },
      { scope: "role", name: "all", allRoles: true, parameter: "statement_timeout", value: "0" },
      { scope: "role", name: "all", inDatabase: "erp", parameter: "lock_timeout", value: "5s" },
      { scope: "system", name: "", parameter: "log_lock_waits", value: undefined },
    ]);
  });

  it("reads a unit's Key=Value lines by section, joining continued lines", () => {
    expect(parseSystemdUnit('# c\n[Service]\nExecStart=\nExecStart=/usr/bin/odoo \\\n  --workers=4\nEnvironment="ODOO_RC=/x"\n')).toEqual([
      { section: "Service", key: "ExecStart", value: "", line: 3 },
      { section: "Service", key: "ExecStart", value: "/usr/bin/odoo    --workers=4", line: 4 },
      { section: "Service", key: "Environment", value: '"ODOO_RC=/x"', line: 6 },
    ]);
  });
});
