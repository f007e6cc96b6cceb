// Odoo's secure configuration (ODOO-1 … ODOO-5), read from the rendered odoo.conf, and the
// proxy's block of the database manager (ODOO-2).
import { randomBytes } from "crypto";
import {
  nginxDatabaseManagerBlocked,
  odooAdminPasswdSecretReference,
  odooDbfilterRestricts,
  odooDbFilterAdmits,
  odooHostnamesPinDatabases,
  odooListDbDisabled,
  odooLogfileRotated,
  odooLogfileSet,
} from "../../policy/odoo";
import { setLine, validateResource, validateStack, withContent } from "./fakes";
import { replaced, stackFixture } from "./stack-fixture";
import { databasesAt, modelWith } from "../helpers/fixtures";

const fixture = stackFixture();
const conf = fixture.file("odoo-1", "/etc/odoo/odoo.conf");
const label = `odoo.conf of odoo-1 (${conf.name})`;
/** Replaces, removes or (when the rendered file has no such key) adds the `key = …` line. */
const putLine =
  (key: string, line: string | undefined) =>
  (text: string): string =>
    new RegExp(`^${key}\\s*=`, "m").test(text)
      ? setLine(key, line)(text)
      : line === undefined
        ? text
        : text.replace("[options]\n", `[options]\n${line}\n`);
const edited = (key: string, line: string | undefined) => withContent(conf, putLine(key, line));

describe("odoo-admin-passwd-secret-reference (ODOO-1)", () => {
  const policy = odooAdminPasswdSecretReference;

  it("passes the rendered {{ssm:…}} reference", async () => {
    expect(await validateResource(policy, conf)).toEqual([]);
  });

  it.each([
    // A literal, generated per run: the value does not matter, that it is not a reference does.
    [
      `admin_passwd = ${randomBytes(12).toString("hex")}`,
      `${label} must set admin_passwd to an {{ssm:/…}} reference resolved on the host, not a literal value (ODOO-1).`,
    ],
    [
      "admin_passwd = {{ssm:/odoo-stack/test/odoo/admin-passwd}}x",
      `${label} must set admin_passwd to an {{ssm:/…}} reference resolved on the host, not a literal value (ODOO-1).`,
    ],
    [undefined, `${label} must set admin_passwd to an {{ssm:…}} reference; without it Odoo's master password is "admin" (ODOO-1).`],
  ])("rejects %s", async (line, message) => {
    expect(await validateResource(policy, edited("admin_passwd", line))).toEqual([message]);
  });

  it("ignores files that are not odoo.conf", async () => {
    expect(await validateResource(policy, fixture.file("proxy", "/etc/nginx/nginx.conf"))).toEqual([]);
  });
});

describe("odoo-list-db-disabled (ODOO-2)", () => {
  const policy = odooListDbDisabled;

  it("passes list_db = False", async () => {
    expect(await validateResource(policy, conf)).toEqual([]);
  });

  it.each([
    ["list_db = True", `"True", which Odoo reads as true`],
    ["list_db = 0", `"0", which Odoo reads as true`],
    [undefined, "absent (Odoo's default is True)"],
  ])("rejects %s", async (line, now) => {
    expect(await validateResource(policy, edited("list_db", line))).toEqual([`${label} must set list_db = False; it is ${now} (ODOO-2).`]);
  });
});

describe("odoo-dbfilter-restricts (ODOO-3)", () => {
  const policy = odooDbfilterRestricts;
  const withBoth = (dbName: string | undefined, dbfilter: string | undefined) =>
    withContent(conf, (text) => putLine("dbfilter", dbfilter)(putLine("db_name", dbName)(text)));

  it("passes the rendered single-database file: db_name = erp and no dbfilter", async () => {
    expect(String(conf.props.content)).not.toMatch(/^dbfilter/m);
    expect(String(conf.props.content)).toMatch(/^db_name = erp$/m);
    expect(await validateResource(policy, conf)).toEqual([]);
  });

  it.each(["dbfilter = ^erp$", "dbfilter = ^%d$", "dbfilter = ^%h$"])("passes %s", async (line) => {
    expect(await validateResource(policy, edited("dbfilter", line))).toEqual([]);
  });

  it("passes several databases with a dbfilter that restricts", async () => {
    expect(await validateResource(policy, withBoth("db_name = erp,shop", "dbfilter = ^%d$"))).toEqual([]);
  });

  it.each([
    ["dbfilter = .*", `${label} must set a dbfilter that restricts databases; ".*" accepts any name (ODOO-3).`],
    ["dbfilter = ^(erp", `${label} must set dbfilter to a valid regular expression, not "^(erp" (ODOO-3).`],
  ])("rejects %s", async (line, message) => {
    expect(await validateResource(policy, edited("dbfilter", line))).toEqual([message]);
  });

  it.each([
    [
      "no db_name and no dbfilter",
      undefined,
      undefined,
      `${label} must set db_name to its one database, or a dbfilter such as ^%d$ with several; with neither, Odoo serves every database its role can see (ODOO-3).`,
    ],
    [
      "an empty db_name and an empty dbfilter",
      "db_name =",
      "dbfilter =",
      `${label} must set db_name to its one database, or a dbfilter such as ^%d$ with several; with neither, Odoo serves every database its role can see (ODOO-3).`,
    ],
    [
      "several databases without a dbfilter",
      "db_name = erp,shop",
      undefined,
      `${label} must set a dbfilter such as ^%d$: db_name lists 2 databases (erp, shop), and only a filter restricts each request to one (ODOO-3).`,
    ],
  ])("rejects %s", async (_name, dbName, dbfilter, message) => {
    expect(await validateResource(policy, withBoth(dbName, dbfilter))).toEqual([message]);
  });
});

describe("odoo-logfile-set and odoo-logfile-rotated (ODOO-5)", () => {
  it("passes the rendered file and its logrotate stanza", async () => {
    expect(await validateResource(odooLogfileSet, conf)).toEqual([]);
    expect(await validateStack(odooLogfileRotated, fixture.resources)).toEqual([]);
  });

  it("rejects a missing or relative logfile", async () => {
    expect(await validateResource(odooLogfileSet, edited("logfile", undefined))).toEqual([
      `${label} must set logfile to an absolute path; it is absent (ODOO-5).`,
    ]);
    expect(await validateResource(odooLogfileSet, edited("logfile", "logfile = odoo.log"))).toEqual([
      `${label} must set logfile to an absolute path; it is "odoo.log" (ODOO-5).`,
    ]);
  });

  it("rejects a log file no logrotate stanza on the host names", async () => {
    const moved = edited("logfile", "logfile = /srv/odoo/odoo.log");
    expect(await validateStack(odooLogfileRotated, replaced(fixture.resources, moved))).toEqual([
      {
        message: `${label} logs to /srv/odoo/odoo.log, which host odoo-1 must rotate: no /etc/logrotate.d file it receives names that path (ODOO-5).`,
        urn: expect.stringContaining(conf.name),
      },
    ]);
  });
});

describe("nginx-database-manager-blocked (ODOO-2)", () => {
  const policy = nginxDatabaseManagerBlocked;
  const site = fixture.file("proxy", "/etc/nginx/conf.d/odoo.conf");

  it("passes the rendered site", async () => {
    expect(await validateResource(policy, site)).toEqual([]);
  });

  it("rejects a site whose database-manager location proxies to Odoo, or that has none", async () => {
    const proxied = withContent(site, (t) =>
      t.replace(/location ~ \^\/web\/database \{\n\s+return 404;/, "location ~ ^/web/database {\n        proxy_pass http://odoo;"),
    );
    const removed = withContent(site, (t) => t.replace(/\s+location ~ \^\/web\/database \{\n\s+return 404;\n\s+\}/, ""));
    for (const r of [proxied, removed]) {
      expect(await validateResource(policy, r)).toEqual([
        expect.stringMatching(
          /^odoo\.conf of proxy \(.*\) must block \/web\/database\/manager \(a location returning 403\/404 or deny all\) in the server at line \d+, so the database manager is never reachable \(ODOO-2\)\.$/,
        ),
      ]);
    }
  });
});

describe("odoo-hostnames-pin-databases (ODOO-3, PROXY-3; issue 16)", () => {
  const policy = odooHostnamesPinDatabases;
  const two = stackFixture(modelWith(databasesAt("erp", "shop")));
  const twoConf = two.file("odoo-1", "/etc/odoo/odoo.conf");
  const site = two.file("proxy", "/etc/nginx/conf.d/odoo.conf");
  const twoLabel = `odoo.conf of odoo-1 (${twoConf.name})`;
  const messages = async (resources: Parameters<typeof validateStack>[1]) => (await validateStack(policy, resources)).map((v) => v.message);
  /** The site without the server block of `host` (its redirect stays). */
  const withoutServer = (host: string) => (t: string) => {
    const start = t.indexOf(`\n# ${host}: HTTPS`);
    const next = t.indexOf("\n# ", start + 3);
    return t.slice(0, start) + (next < 0 ? "\n" : t.slice(next));
  };

  it("passes the rendered two-database stack and the one-database stack", async () => {
    expect(await validateStack(policy, two.resources)).toEqual([]);
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("models Odoo 17's db_filter: %d is the first label after www., re.match anchors at the start only", () => {
    expect(odooDbFilterAdmits("^(?=(?:erp|shop)$)%d$", "shop.example.com:443", ["erp", "shop", "shopx"])).toEqual(["shop"]);
    expect(odooDbFilterAdmits("^(?=(?:erp|shop)$)%d$", "www.erp.example.com", ["erp", "shop"])).toEqual(["erp"]);
    expect(odooDbFilterAdmits("%d", "erp.example.com", ["erp", "erpx", "xerp"])).toEqual(["erp", "erpx"]);
    expect(odooDbFilterAdmits("^%h$", "erp.example.com", ["erp"])).toEqual([]);
    expect(odooDbFilterAdmits("^(erp", "erp.example.com", ["erp"])).toBeUndefined();
  });

  it("rejects a database without a hostname", async () => {
    const edited = withContent(site, withoutServer("shop.example.com"));
    expect(await messages(replaced(two.resources, edited))).toEqual([
      `${twoLabel} serves database shop, which must have its own hostname: no nginx server of the stack has a server_name whose first label is shop (ODOO-3).`,
    ]);
  });

  it("rejects a hostname served without its database pinned (the client's $host forwarded)", async () => {
    const edited = withContent(site, (t) =>
      t.replace(/proxy_set_header X-Forwarded-Host shop\.example\.com;/g, "proxy_set_header X-Forwarded-Host $host;"),
    );
    const found = await messages(replaced(two.resources, edited));
    expect(found).toHaveLength(2);
    for (const m of found)
      expect(m).toMatch(
        /must pin `proxy_set_header X-Forwarded-Host shop\.example\.com` for location \/(websocket)?; it sends "\$host", so the database Odoo picks follows what the client sends \(ODOO-3, PROXY-3\)\.$/,
      );
  });

  it("rejects a server whose hostname names no database of the stack", async () => {
    const edited = withContent(site, (t) => t.replace(/shop\.example\.com/g, "shop2.example.com"));
    const found = await messages(replaced(two.resources, edited));
    expect(found).toContain(
      `${twoLabel} serves database shop, which must have its own hostname: no nginx server of the stack has a server_name whose first label is shop (ODOO-3).`,
    );
    expect(
      found.some((m) =>
        /must serve a hostname whose first label is one of the databases \(erp, shop\); shop2\.example\.com names none/.test(m),
      ),
    ).toBe(true);
  });

  it.each([
    ["^%d", "erp, erp_old, erptest, erpx"],
    ["^(erp|shop)$", "erp, shop"],
  ])("rejects dbfilter = %s, which for erp.example.com admits %s", async (dbfilter, admitted) => {
    const edited = withContent(twoConf, putLine("dbfilter", `dbfilter = ${dbfilter}`));
    const found = await messages(replaced(two.resources, edited));
    expect(found).toContain(
      `${twoLabel} must set a dbfilter that admits exactly erp for erp.example.com; ${JSON.stringify(dbfilter)} admits ${admitted} of the stack's databases and names it does not declare (ODOO-3).`,
    );
  });
});
