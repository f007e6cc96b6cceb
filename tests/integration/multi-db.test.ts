// issue 16: two databases, each on its own hostname, on the real daemons: the rendered nginx
// site (one server block per hostname), the rendered PgBouncer (one transaction pool per
// database) and PostgreSQL 15, on 127.0.0.1. Odoo is a stand-in written here that picks the
// database exactly as Odoo 17 does, from the rendered odoo.conf:
//   - proxy_mode: the host is X-Forwarded-Host (odoo/http.py L2389, werkzeug ProxyFix);
//   - a session's database is kept only if db_filter admits it for the host, else the request
//     lists databases (odoo/http.py _get_session_and_dbname L1603-1617) and takes the only one
//     (monodb); list_dbs connects to `postgres` and lists the role's databases (odoo/service/
//     db.py L428-449), db_filter keeps the dbfilter's matches (odoo/http.py L344-379) —
//     tools/bench/odoo-traffic.ts OdooProcess.dbList and dbFilter model both, cited there;
//   - `?db=` is used only when db_filter admits it (addons/web/controllers/utils.py ensure_db
//     L63-68).
// It then answers with current_database() read through PgBouncer, so what a client sees is the
// database its request really reached.
import * as http from "http";
import type { ClientConfig } from "pg";
import { Client } from "pg";
import { PORTS } from "../../lib/ports";
import { odooConfSettingsFor, renderOdooConf } from "../../templates/odoo-conf";
import { LISTEN_DATABASE } from "../../templates/pgbouncer";
import { nginxSiteSettingsFor, renderNginxConf, renderNginxSite } from "../../templates/nginx";
import { dbFilter, odooDbOptions, OdooProcess, TrafficRecorder, type OdooDbEndpoint } from "../../tools/bench/odoo-traffic";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { clientConfig } from "./helpers/clients";
import { httpsGet, startWebSocketStub, type TlsTarget } from "./helpers/http";
import { sandboxNginxMain } from "./helpers/nginx";
import { remapForSandbox } from "./helpers/remap";
import { BIN, Sandbox, systemUser, waitForOwnPort, withFreshPort, type ManagedProcess } from "./helpers/sandbox";
import { startDatabaseTier, type DatabaseTier } from "./helpers/stack";
import { createCertificateAuthority, installPem, issueHostCertificate } from "./helpers/tls";

jest.setTimeout(120_000);

const model = modelWith({ ...databasesAt("erp", "shop"), odooInstances: 1 });
const [erp, shop] = model.settings.sites;
const odooConf = renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0]));
const options = odooDbOptions(odooConf);
const www = systemUser("www-data");
const sandbox = Sandbox.create("multi-db");
let tier: DatabaseTier;
let nginx: ManagedProcess;
let odoo: http.Server;
let worker: OdooProcess;
const targets = new Map<string, TlsTarget>();
/** What the stand-in saw: the Host and X-Forwarded-Host of each request. */
const seen: { host?: string; forwardedHost?: string }[] = [];
const summary: string[] = [];

/** The Odoo stand-in's answer: which database served the request, and why. */
interface Served {
  readonly database: string | null;
  readonly via: "session" | "param" | "monodb" | "none";
}

async function pickDatabase(req: http.IncomingMessage, url: URL): Promise<Served> {
  // proxy_mode + X-Forwarded-Host: ProxyFix makes it the request's host (http.py L2389-2396).
  const forwarded = req.headers["x-forwarded-host"];
  const host = (typeof forwarded === "string" && forwarded !== "" ? forwarded : req.headers.host) ?? "";
  const param = url.searchParams.get("db")?.trim();
  // ensure_db: a database from the URL only when db_filter admits it for this host.
  if (param && dbFilter(options, [param], host).includes(param)) return { database: param, via: "param" };
  const cookie = /(?:^|;\s*)session_db=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
  if (cookie && dbFilter(options, [cookie], host).length === 1) return { database: cookie, via: "session" };
  const all = await worker.dbList(options, host);
  return all.length === 1 ? { database: all[0], via: "monodb" } : { database: null, via: "none" };
}

async function currentDatabase(database: string): Promise<string> {
  const client = new Client(clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(database)));
  await client.connect();
  try {
    return (await client.query("SELECT current_database() AS db")).rows[0].db as string;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  tier = await startDatabaseTier(sandbox, model);
  const endpoint: OdooDbEndpoint = { config: (db: string): ClientConfig => clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(db)) };
  worker = new OdooProcess(41_000, "http", options.dbMaxconn, endpoint, new TrafficRecorder());
  sandbox.onCleanup(() => worker.close());

  odoo = http.createServer((req, res) => {
    seen.push({ host: req.headers.host, forwardedHost: req.headers["x-forwarded-host"] as string | undefined });
    const url = new URL(req.url ?? "/", "http://odoo");
    pickDatabase(req, url)
      .then(async (served) => {
        const reached = served.database === null ? null : await currentDatabase(served.database);
        res.writeHead(served.database === null ? 404 : 200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ...served, reached }));
      })
      .catch((err: Error) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(err.message);
      });
  });
  const odooPort = await withFreshPort(
    sandbox,
    (port) =>
      new Promise<number>((resolve, reject) => {
        odoo.once("error", reject);
        odoo.listen(port, "127.0.0.1", () => resolve(port));
      }),
  );
  sandbox.onCleanup(() => new Promise<void>((resolve) => odoo.close(() => resolve())));
  const gevent = await withFreshPort(sandbox, (port) => startWebSocketStub(String(PORTS.odooGevent.port), port));
  sandbox.onCleanup(() => gevent.close());

  // One certificate for both names (TLS-3): the ACME order carries every hostname as a SAN.
  const ca = await createCertificateAuthority(sandbox, sandbox.path("ca"));
  const cert = await issueHostCertificate(
    sandbox,
    ca,
    sandbox.path("issued"),
    model.settings.sites.map((s) => s.hostname),
  );
  const { main, etc } = sandboxNginxMain(sandbox, "nginx");
  const tlsDir = sandbox.mkdir("nginx-etc/tls", www, 0o700);
  const confPath = sandbox.writeFile(`${etc}/nginx.conf`, renderNginxConf(main));
  nginx = await withFreshPort(sandbox, async (tlsPort) => {
    const site = remapForSandbox(
      nginxSiteSettingsFor(model),
      [
        "listenAddress",
        "listenPort",
        "redirectListenPort",
        "tlsCertificatePath",
        "tlsCertificateKeyPath",
        "odooHttpServers",
        "odooGeventServers",
      ],
      {
        listenAddress: "127.0.0.1",
        listenPort: tlsPort,
        redirectListenPort: await sandbox.freePort(),
        tlsCertificatePath: installPem(cert.certPath, `${tlsDir}/fullchain.pem`, www, 0o644),
        tlsCertificateKeyPath: installPem(cert.keyPath, `${tlsDir}/privkey.pem`, www, 0o600),
        odooHttpServers: [{ address: "127.0.0.1", port: odooPort }],
        odooGeventServers: [{ address: "127.0.0.1", port: gevent.port }],
      },
    );
    sandbox.writeFile(`${etc}/conf.d/odoo.conf`, renderNginxSite(site));
    const test = await sandbox.run(BIN.nginx, ["-t", "-c", confPath], { user: www });
    if (test.code !== 0) throw new Error(`nginx -t refused the rendered site:\n${test.stdout}${test.stderr}`);
    const daemon = sandbox.start({
      name: "nginx",
      command: BIN.nginx,
      args: ["-c", confPath, "-g", "daemon off;"],
      user: www,
      stopSignal: "SIGTERM",
    });
    await waitForOwnPort(daemon, tlsPort);
    for (const site of model.settings.sites) targets.set(site.database, { port: tlsPort, serverName: site.hostname, caPem: ca.certPem });
    return daemon;
  });
}, 180_000);

afterAll(async () => {
  await sandbox.cleanup();
  console.log(`[multi-db] ${summary.join(" | ")}`);
});

const get = async (database: string, path: string, headers: Record<string, string> = {}) => {
  const answer = await httpsGet(targets.get(database) as TlsTarget, path, { headers });
  return {
    status: answer.status,
    body: answer.status === 200 || answer.status === 404 ? (JSON.parse(answer.body) as Served & { reached: string | null }) : answer.body,
  };
};

describe("two databases, each on its own hostname (issue 16)", () => {
  it("renders the filter that admits exactly the two databases, one per hostname (ODOO-3)", () => {
    expect(options.dbNames).toEqual(["erp", "shop"]);
    expect(options.dbfilter).toBe("^(?=(?:erp|shop)$)%d$");
    expect(nginx.pid).toBeGreaterThan(0);
  });

  it("each hostname reaches its own database and only it, through nginx, PgBouncer and PostgreSQL", async () => {
    for (const site of [erp, shop]) {
      const answer = await get(site.database, "/web/login");
      expect(answer).toEqual({ status: 200, body: { database: site.database, via: "monodb", reached: site.database } });
    }
    // nginx wrote each block's own name into Host and X-Forwarded-Host.
    expect(seen.map((s) => [s.host, s.forwardedHost])).toEqual([
      [erp.hostname, erp.hostname],
      [shop.hostname, shop.hostname],
    ]);
    summary.push(`${erp.hostname} → erp, ${shop.hostname} → shop (cookieless: list_dbs + dbfilter, monodb)`);
  });

  it("never lets a client's ?db=, forged Host/X-Forwarded-Host/Forwarded or session reach the other database", async () => {
    const forgeries: [string, string, Record<string, string>][] = [
      ["?db=shop", "/web/login?db=shop", {}],
      ["?db=postgres", "/web/login?db=postgres", {}],
      ["X-Forwarded-Host", "/web/login", { "x-forwarded-host": shop.hostname }],
      ["Forwarded", "/web/login", { forwarded: `host=${shop.hostname}` }],
      ["X-Forwarded-Host + ?db=", "/web/login?db=shop", { "x-forwarded-host": shop.hostname }],
      ["a session of shop", "/web", { cookie: "session_db=shop" }],
      ["X-Original-Host", "/web", { "x-original-host": shop.hostname, "x-host": shop.hostname }],
    ];
    for (const [what, path, headers] of forgeries) {
      const answer = await get("erp", path, headers);
      expect([what, answer]).toEqual([what, { status: 200, body: { database: "erp", via: "monodb", reached: "erp" } }]);
    }
    // The other way round too, and a session of erp presented at shop is dropped (logout).
    const back = await get("shop", "/web?db=erp", { "x-forwarded-host": erp.hostname, cookie: "session_db=erp" });
    expect(back).toEqual({ status: 200, body: { database: "shop", via: "monodb", reached: "shop" } });
    // A legitimate ?db= for the hostname's own database is honoured as Odoo honours it.
    expect(await get("shop", "/web/login?db=shop")).toEqual({ status: 200, body: { database: "shop", via: "param", reached: "shop" } });
    // Every request reached Odoo with the pinned name, whatever the client sent.
    expect(
      seen.slice(2).every((s) => s.host === s.forwardedHost && [erp.hostname, shop.hostname].includes(s.forwardedHost as string)),
    ).toBe(true);
    summary.push(`${forgeries.length + 1} forged requests: none reached the other database`);
  });

  it("a Host naming the other site on a connection made for one is served as that site (its own name pinned), never as a mix", async () => {
    // SNI says erp, Host says shop: nginx picks the server by Host, which pins shop's name.
    const answer = await httpsGet(targets.get("erp") as TlsTarget, "/web/login", { headers: { host: shop.hostname } });
    expect(JSON.parse(answer.body)).toEqual({ database: "shop", via: "monodb", reached: "shop" });
    expect(seen[seen.length - 1]).toEqual({ host: shop.hostname, forwardedHost: shop.hostname });
  });

  it("refuses the TLS handshake for a hostname the stack does not serve", async () => {
    const refused = await httpsGet({ ...(targets.get("erp") as TlsTarget), serverName: "other.example.com" }, "/web/login").then(
      (a) => `answered ${a.status}`,
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/alert|unrecognized name|handshake|ECONNRESET|socket hang up/i);
  });

  it("gives each database its own transaction pool in SHOW POOLS, and the shared `postgres` session pool (POOL-1, POOL-5)", async () => {
    const pools = await tier.pgbouncer.show("POOLS");
    const byDb = new Map(pools.map((p) => [p.database, p]));
    for (const db of ["erp", "shop", LISTEN_DATABASE]) expect([db, byDb.has(db)]).toEqual([db, true]);
    expect(byDb.get("erp")?.pool_mode).toBe("transaction");
    expect(byDb.get("shop")?.pool_mode).toBe("transaction");
    expect(byDb.get(LISTEN_DATABASE)?.pool_mode).toBe("session");
    const databases = await tier.pgbouncer.show("DATABASES");
    const sizing = model.settings.sizing.pgbouncer;
    for (const db of ["erp", "shop"]) {
      const row = databases.find((d) => d.name === db);
      expect([db, Number(row?.pool_size), Number(row?.max_connections)]).toEqual([db, sizing.defaultPoolSize, sizing.maxDbConnections]);
    }
    summary.push(`SHOW POOLS: ${pools.map((p) => `${p.database}/${p.user} ${p.pool_mode}`).join(", ")}`);
  });
});
