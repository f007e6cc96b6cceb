// issue 4, check 4: the rendered nginx.conf and Odoo site on Debian's nginx, unprivileged, on
// 127.0.0.1, in front of stub upstreams standing for Odoo's 8069 and 8072. Only the listen
// address/port, the upstream addresses and the file paths are remapped (remapForSandbox).
import { sandboxNginxMain } from "./helpers/nginx";
import * as fs from "fs";
import * as http from "http";
import { randomBytes } from "crypto";
import { PORTS } from "../../lib/ports";
import { proxyTimeoutSeconds } from "../../lib/sizing";
import { nginxSiteSettingsFor, renderNginxConf, renderNginxSite, type NginxSiteSettings } from "../../templates/nginx";
import { modelWith } from "../helpers/fixtures";
import {
  httpsGet,
  plainHttpGet,
  SLOW_PATH,
  startHttpStub,
  startWebSocketStub,
  webSocketRoundTrip,
  type HttpAnswer,
  type StubUpstream,
  type TlsTarget,
} from "./helpers/http";
import { remapForSandbox } from "./helpers/remap";
import {
  ADDRESS_IN_USE,
  BIN,
  listeningPorts,
  processGroupPids,
  Sandbox,
  systemUser,
  waitForOwnPort,
  withFreshPort,
  type ManagedProcess,
} from "./helpers/sandbox";
import { createCertificateAuthority, installPem, issueHostCertificate } from "./helpers/tls";

/** PROXY-5: a report that takes a minute must come back; keep it to one such request (suite < 5 min). */
const SLOW_RESPONSE_MS = 60_000;

const model = modelWith();
const www = systemUser("www-data");
const sandbox = Sandbox.create("nginx");
let nginx: ManagedProcess;
let target: TlsTarget;
/** The sandbox's stand-in for port 80: the rendered redirect-only server (NET-3's exception). */
let redirectPort: number;
let odooHttp: StubUpstream;
let odooGevent: Awaited<ReturnType<typeof startWebSocketStub>>;
let productionSite: NginxSiteSettings;
let configTest = { code: -1 as number | null, output: "" };
let slowRequest: Promise<HttpAnswer | Error>;
const summary: string[] = [];

beforeAll(async () => {
  const ca = await createCertificateAuthority(sandbox, sandbox.path("ca"));
  const serverName = model.settings.domain;
  const cert = await issueHostCertificate(sandbox, ca, sandbox.path("issued"), [serverName]);

  odooHttp = await withFreshPort(sandbox, (port) => startHttpStub(String(PORTS.odooHttp.port), port, SLOW_RESPONSE_MS));
  sandbox.onCleanup(() => odooHttp.close());
  odooGevent = await withFreshPort(sandbox, (port) => startWebSocketStub(String(PORTS.odooGevent.port), port));
  sandbox.onCleanup(() => odooGevent.close());

  const { main, etc } = sandboxNginxMain(sandbox, "nginx");
  const tlsDir = sandbox.mkdir("nginx-etc/tls", www, 0o700);
  productionSite = nginxSiteSettingsFor(model);
  const tls = {
    tlsCertificatePath: installPem(cert.certPath, `${tlsDir}/fullchain.pem`, www, 0o644),
    tlsCertificateKeyPath: installPem(cert.keyPath, `${tlsDir}/privkey.pem`, www, 0o600),
  };
  const confPath = sandbox.writeFile(`${etc}/nginx.conf`, renderNginxConf(main));

  const started = await withFreshPort(sandbox, async (tlsPort) => {
    const httpPort = await sandbox.freePort();
    const site = remapForSandbox(
      productionSite,
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
        redirectListenPort: httpPort,
        ...tls,
        odooHttpServers: [{ address: "127.0.0.1", port: odooHttp.port }],
        odooGeventServers: [{ address: "127.0.0.1", port: odooGevent.port }],
      },
    );
    sandbox.writeFile(`${etc}/conf.d/odoo.conf`, renderNginxSite(site));
    const test = await sandbox.run(BIN.nginx, ["-t", "-c", confPath], { user: www });
    configTest = { code: test.code, output: test.stdout + test.stderr };
    if (test.code !== 0) return undefined; // the `nginx -t` test reports the daemon's error
    const daemon = sandbox.start({
      name: "nginx",
      command: BIN.nginx,
      args: ["-c", confPath, "-g", "daemon off;"],
      user: www,
      stopSignal: "SIGTERM",
    });
    await waitForOwnPort(daemon, tlsPort);
    await waitForOwnPort(daemon, httpPort);
    return { daemon, tlsPort, httpPort };
  });
  if (!started) return;
  nginx = started.daemon;
  redirectPort = started.httpPort;
  target = { port: started.tlsPort, serverName, caPem: ca.certPem };
  // Started now, awaited by the last test: the minute it takes overlaps the other checks.
  slowRequest = httpsGet(target, `${SLOW_PATH}?id=${randomBytes(4).toString("hex")}`, { timeoutMs: SLOW_RESPONSE_MS + 30_000 }).catch(
    (err: Error) => err,
  );
  // Let it reach the stub first, so the other checks count only their own requests.
  for (const deadline = Date.now() + 10_000; !odooHttp.seen.some((r) => r.url.startsWith(SLOW_PATH));) {
    if (Date.now() > deadline) throw new Error("the slow request never reached the 8069 stub");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}, 60_000);

afterAll(async () => {
  await slowRequest;
  await sandbox.cleanup();
  console.log(`[nginx] ${summary.join(" | ")}`);
});

const requireNginx = () => {
  if (!nginx) throw new Error(`nginx did not start; nginx -t said:\n${configTest.output}`);
};

describe("nginx from the rendered nginx.conf and Odoo site (issue 4 check 4)", () => {
  it("passes `nginx -t` as rendered", () => {
    expect(configTest.output).toMatch(/syntax is ok/);
    expect(configTest.output).toMatch(/test is successful/);
    expect(configTest.code).toBe(0);
    summary.push("nginx -t ok");
  });

  it("routes / to Odoo HTTP (8069) with Host, X-Forwarded-For, X-Forwarded-Proto=https and X-Forwarded-Host (PROXY-1, PROXY-3)", async () => {
    requireNginx();
    const before = { http: odooHttp.seen.length, gevent: odooGevent.seen.length };
    const answer = await httpsGet(target, "/web/login?redirect=%2Fodoo");
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ upstream: "8069", url: "/web/login?redirect=%2Fodoo" });
    expect(odooGevent.seen.length).toBe(before.gevent);
    const seen = odooHttp.seen.slice(before.http);
    expect(seen).toHaveLength(1);
    expect(seen[0].headers).toMatchObject({
      host: target.serverName,
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-proto": "https",
      "x-forwarded-host": target.serverName,
    });
    // HSTS on every answer: browsers never come back over plain HTTP.
    expect(answer.headers["strict-transport-security"]).toMatch(/max-age=\d+/);
    summary.push(
      `/ -> 8069 stub with host=${seen[0].headers.host} xff=${seen[0].headers["x-forwarded-for"]} proto=${seen[0].headers["x-forwarded-proto"]} xfh=${seen[0].headers["x-forwarded-host"]}`,
    );
  });

  it("appends the client to an incoming X-Forwarded-For, so Odoo's ProxyFix (last hop) sees nginx's view of the client (PROXY-3)", async () => {
    requireNginx();
    const before = odooHttp.seen.length;
    await httpsGet(target, "/web", { headers: { "x-forwarded-for": "203.0.113.9" } });
    const xff = String(odooHttp.seen[before].headers["x-forwarded-for"]);
    expect(xff.split(/,\s*/).pop()).toBe("127.0.0.1");
  });

  it("upgrades /websocket to a real WebSocket on Odoo gevent (8072), messages flow both ways (PROXY-2)", async () => {
    requireNginx();
    const before = { http: odooHttp.seen.length, gevent: odooGevent.seen.length };
    const message = `bus-${randomBytes(6).toString("hex")}`;
    const started = Date.now();
    const exchange = await webSocketRoundTrip(target, "/websocket", message);
    expect(exchange.handshakeStatus).toBe(101);
    expect(exchange.received).toEqual(["hello from 8072", `echo:${message}`]);
    expect(odooGevent.received).toContain(message);
    expect(odooHttp.seen.length).toBe(before.http);
    const upgrade = odooGevent.seen.slice(before.gevent).filter((r) => r.upgrade);
    expect(upgrade).toHaveLength(1);
    expect(upgrade[0].url).toBe("/websocket");
    expect(upgrade[0].headers).toMatchObject({
      upgrade: "websocket",
      connection: "upgrade",
      host: target.serverName,
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-proto": "https",
      "x-forwarded-host": target.serverName,
    });
    summary.push(
      `/websocket -> 8072 stub: ${exchange.handshakeStatus}, server->client and client->server echoed in ${Date.now() - started} ms`,
    );
  });

  it.each(["/web/database/manager", "/web/database/selector", "/web/database/list", "/web/database/backup"])(
    "blocks %s before it reaches Odoo (ODOO-2)",
    async (path) => {
      requireNginx();
      const before = odooHttp.seen.length + odooGevent.seen.length;
      const answer = await httpsGet(target, path);
      expect(answer.status).toBe(404);
      expect(odooHttp.seen.length + odooGevent.seen.length).toBe(before);
      if (path === "/web/database/manager") summary.push(`database manager/selector/list/backup -> ${answer.status}, upstream saw 0`);
    },
  );

  it("serves no plain HTTP: the TLS port answers a plain request with 400, and the only other port is the redirect (NET-2, NET-3)", async () => {
    requireNginx();
    // Exactly two listeners: the TLS site and the rendered redirect-only server (port 80 in
    // production). A plain-text request to the TLS port gets nginx's own 400.
    const ports = listeningPorts(processGroupPids(nginx.pid));
    expect(ports).toEqual([target.port, redirectPort].sort((a, b) => a - b));
    const before = odooHttp.seen.length + odooGevent.seen.length;
    const answer = await plainHttpGet(target.port, "/web/login", target.serverName);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatch(/The plain HTTP request was sent to HTTPS port/);
    expect(odooHttp.seen.length + odooGevent.seen.length).toBe(before);
    summary.push(`listening ports [${ports.join(",")}]; plain HTTP on the TLS port -> 400, upstream saw 0`);
  });

  // Issue 12 item 11: port 80 answers 301 to https://<domain> and proxies nothing, whatever the
  // method, the Host header or an Upgrade request.
  it.each([
    ["GET with a query", "GET", "/web/login?redirect=%2Fodoo", {}],
    ["POST with a body", "POST", "/web/session/authenticate", { "content-type": "application/json" }],
    ["a forged Host header", "GET", "/web", { host: "evil.example.org" }],
    [
      "a WebSocket upgrade",
      "GET",
      "/websocket",
      { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    ],
  ] as const)(
    "answers plain HTTP (%s) with 301 to https://<domain> and forwards nothing (NET-3)",
    async (_label, method, path, headers) => {
      requireNginx();
      const before = odooHttp.seen.length + odooGevent.seen.length;
      const answer = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port: redirectPort,
            path,
            method,
            headers: { host: target.serverName, ...headers },
            agent: false,
            timeout: 10_000,
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
          },
        );
        req.on("upgrade", (res, socket) => {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, location: res.headers.location });
        });
        req.on("timeout", () => req.destroy(new Error("no answer within 10000 ms")));
        req.on("error", reject);
        req.end(method === "POST" ? JSON.stringify({ params: { login: "admin", password: "x" } }) : undefined);
      });
      expect(answer).toEqual({ status: 301, location: `https://${model.settings.domain}${path}` });
      expect(odooHttp.seen.length + odooGevent.seen.length).toBe(before);
      if (method === "POST")
        summary.push(
          `port 80 (sandbox ${redirectPort}): GET/POST/forged Host/Upgrade -> 301 https://${model.settings.domain}…, upstream saw 0`,
        );
    },
  );

  it("refuses a TLS handshake without the site's name (scan by IP) and serves the site's certificate only for its name", async () => {
    requireNginx();
    // ssl_reject_handshake on the default server: the handshake ends with an unrecognized_name alert.
    const before = odooHttp.seen.length + odooGevent.seen.length;
    await expect(httpsGet(target, "/", { servername: false })).rejects.toThrow(/unrecognized name/i);
    await expect(httpsGet(target, "/", { servername: "other.example.org" })).rejects.toThrow(/unrecognized name/i);
    expect(odooHttp.seen.length + odooGevent.seen.length).toBe(before);
  });

  it(
    `does not cut off a slow upstream answer of ${SLOW_RESPONSE_MS / 1000} s (PROXY-5)`,
    async () => {
      requireNginx();
      const answer = await slowRequest;
      if (answer instanceof Error) throw answer;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ upstream: "8069" });
      expect(answer.elapsedMs).toBeGreaterThanOrEqual(SLOW_RESPONSE_MS);
      // The rendered read timeout is what let it through; it outlives Odoo's limit_time_real.
      expect(productionSite.proxyReadTimeoutSeconds).toBe(proxyTimeoutSeconds(model.settings.sizing.odoo.limitTimeReal));
      summary.push(
        `slow upstream ${SLOW_RESPONSE_MS / 1000}s -> ${answer.status} after ${(answer.elapsedMs / 1000).toFixed(1)} s (proxy_read_timeout ${productionSite.proxyReadTimeoutSeconds}s)`,
      );
    },
    SLOW_RESPONSE_MS + 40_000,
  );

  it("runs without configuration errors: the error log has no [emerg], [crit] or [error] line", () => {
    requireNginx();
    const errorLog = fs.readFileSync(sandbox.path("nginx-log", "error.log"), "utf8") + nginx.output();
    // A bind that lost the port race (withFreshPort retried) is the sandbox's, not the config's.
    const serious = errorLog.split("\n").filter((l) => /\[(emerg|crit|error)\]/.test(l) && !ADDRESS_IN_USE.test(l));
    expect(serious).toEqual([]);
    const alerts = errorLog.split("\n").filter((l) => /\[(alert|warn)\]/.test(l));
    if (alerts.length > 0)
      summary.push(
        `error log warnings/alerts: ${[...new Set(alerts.map((l) => l.replace(/^.*?\[(alert|warn)\] \d+#\d+: (\*\d+ )?/, "[$1] ")))].join(" / ")}`,
      );
  });

  it("logs each request as one JSON line (OBS-4) to the rendered access log", () => {
    requireNginx();
    const log = fs.readFileSync(sandbox.path("nginx-log", "access.log"), "utf8").trim().split("\n");
    const entries = log.map((line) => JSON.parse(line) as Record<string, string>);
    expect(entries.some((e) => e.uri === "/websocket" && e.status === "101")).toBe(true);
    expect(entries.some((e) => e.uri === "/web/database/manager" && e.status === "404")).toBe(true);
  });
});
