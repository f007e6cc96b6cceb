// Scenario 2 (issue 7): the proxy. HTTP through the rendered nginx (TLS, a real certificate
// from the sandbox's CA) to the 8069 stub versus straight to the stub, and WebSockets held
// open at once through nginx to the 8072 stub: the rendered nginx.conf against Debian's stock
// one (worker_connections 768, the systemd default of 1024 descriptors), same site file.
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as path from "path";
import * as tls from "tls";
import { WebSocket, type ClientOptions } from "ws";
import {
  nginxMainSettings,
  nginxSiteSettingsFor,
  renderNginxConf,
  renderNginxSite,
  NGINX_TARGET_WEBSOCKETS,
  type NginxMainSettings,
} from "../../templates/nginx";
import { remapForSandbox } from "../../tests/integration/helpers/remap";
import { BIN, processGroupPids, Sandbox, systemUser, waitForPort, type ManagedProcess } from "../../tests/integration/helpers/sandbox";
import { createCertificateAuthority, installPem, issueHostCertificate } from "../../tests/integration/helpers/tls";
import { cpuBetween, cpuSnapshot } from "./cpu";
import { errorKey } from "./pg-load";
import { benchModel } from "./pool";
import type { CpuUse, HttpRun, ProxyScenario, WebSocketHold } from "./results";
import { ratio, summarizeLatencies } from "./stats";
import { STUBS_READY } from "./stub-server";

/** Descriptors this process needs: one per client WebSocket, plus HTTP clients and slack. */
export const WEBSOCKET_FDS_NEEDED = NGINX_TARGET_WEBSOCKETS * 2 + 2_000;

/** Debian 12's /etc/nginx/nginx.conf main settings (nginx-light 1.22). */
export const DEBIAN_STOCK_NGINX = { workerConnections: 768, workerProcesses: "auto" } as const;
/** systemd's default soft RLIMIT_NOFILE for services; Debian's nginx.service does not raise it. */
export const SYSTEMD_DEFAULT_NOFILE = 1024;

export interface ProxyOptions {
  readonly httpConnections: number;
  readonly httpMeasureMs: number;
  readonly websockets: number;
  readonly log: (line: string) => void;
}

/**
 * Debian's stock nginx.conf with its paths remapped into the sandbox and including the same
 * rendered site: only the main settings differ from the rendered setup.
 */
export function stockNginxConf(o: { pidFile: string; errorLog: string; accessLog: string; tempDir: string; siteGlob: string }): string {
  return [
    "user www-data;",
    `worker_processes ${DEBIAN_STOCK_NGINX.workerProcesses};`,
    `pid ${o.pidFile};`,
    `error_log ${o.errorLog};`,
    "",
    "events {",
    `    worker_connections ${DEBIAN_STOCK_NGINX.workerConnections};`,
    "}",
    "",
    "http {",
    "    sendfile on;",
    "    tcp_nopush on;",
    "    types_hash_max_size 2048;",
    "    include /etc/nginx/mime.types;",
    "    default_type application/octet-stream;",
    "    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;",
    "    ssl_prefer_server_ciphers on;",
    `    access_log ${o.accessLog};`,
    "    gzip on;",
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `    ${k}_temp_path ${o.tempDir}/${k};`),
    `    include ${o.siteGlob};`,
    "}",
    "",
  ].join("\n");
}

interface HttpTarget {
  readonly label: string;
  request(pathname: string, cb: (res: http.IncomingMessage) => void): http.ClientRequest;
  close(): void;
}

/** One measured window of HTTP load: the raw latencies, so several windows combine exactly. */
interface HttpWindow {
  readonly label: string;
  readonly connections: number;
  readonly measuredMs: number;
  readonly latencies: readonly number[];
  readonly errors: number;
  readonly cpu: CpuUse;
}

/** `connections` keep-alive connections, each sending its next GET as soon as the last answer ends. */
async function httpLoad(target: HttpTarget, connections: number, measureMs: number, pgids: readonly number[]): Promise<HttpWindow> {
  const latencies: number[] = [];
  let errors = 0;
  let stopping = false;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = target.request("/web/dataset/call_kw/res.partner/read", (res) => {
        res.on("data", () => undefined);
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  const warmupEnd = performance.now() + 1_000;
  let windowEnd = Infinity;
  const loops = Array.from({ length: connections }, async () => {
    while (!stopping) {
      const started = performance.now();
      try {
        await one();
        const finished = performance.now();
        if (started >= warmupEnd && finished <= windowEnd) latencies.push(finished - started);
      } catch {
        errors++;
      }
    }
  });
  await new Promise((resolve) => setTimeout(resolve, warmupEnd - performance.now()));
  const before = cpuSnapshot(pgids);
  windowEnd = performance.now() + measureMs;
  await new Promise((resolve) => setTimeout(resolve, measureMs));
  const after = cpuSnapshot(pgids);
  stopping = true;
  await Promise.all(loops);
  target.close();
  return { label: target.label, connections, measuredMs: measureMs, latencies, errors, cpu: cpuBetween(before, after) };
}

/** Windows of the same path as one run; CPU averaged over time. */
export function combineWindows(windows: readonly HttpWindow[]): HttpRun {
  const measuredMs = windows.reduce((s, w) => s + w.measuredMs, 0);
  const latencies = windows.flatMap((w) => w.latencies);
  const cpuAverage = (pick: (c: CpuUse) => number) => windows.reduce((s, w) => s + pick(w.cpu) * w.measuredMs, 0) / measuredMs;
  return {
    label: windows[0].label,
    connections: windows[0].connections,
    measuredMs,
    requests: latencies.length,
    errors: windows.reduce((s, w) => s + w.errors, 0),
    rps: latencies.length / (measuredMs / 1000),
    latencyMs: summarizeLatencies(latencies),
    cpu: {
      generatorCores: cpuAverage((c) => c.generatorCores),
      serverCores: cpuAverage((c) => c.serverCores),
      machineBusyCores: cpuAverage((c) => c.machineBusyCores),
    },
  };
}

function directTarget(port: number, connections: number): HttpTarget {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  return {
    label: "straight to the 8069 stub (plain HTTP)",
    request: (p, cb) => http.request({ host: "127.0.0.1", port, path: p, agent, headers: { host: "erp.example.com" } }, cb),
    close: () => agent.destroy(),
  };
}

function nginxTarget(port: number, serverName: string, caPem: string, connections: number): HttpTarget {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: connections,
    ca: caPem,
    servername: serverName,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
  });
  return {
    label: "through the rendered nginx (TLS, keep-alive)",
    request: (p, cb) => https.request({ host: "127.0.0.1", port, path: p, agent, headers: { host: serverName } }, cb),
    close: () => agent.destroy(),
  };
}

/** Opens `count` WebSockets through nginx (at most `parallel` handshakes at once) and counts the ones still open together. */
async function holdWebSockets(
  o: { port: number; serverName: string; caPem: string; count: number; label: string; nginx: ManagedProcess; errorLog: string },
  meta: Pick<WebSocketHold, "workerProcesses" | "workerConnections" | "nofile">,
): Promise<WebSocketHold> {
  const open: WebSocket[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  const started = performance.now();
  const connectOne = () =>
    new Promise<void>((resolve) => {
      const options: ClientOptions & { servername: string } = {
        servername: o.serverName,
        ca: o.caPem,
        headers: { host: o.serverName },
        handshakeTimeout: 15_000,
      };
      const ws = new WebSocket(`wss://127.0.0.1:${o.port}/websocket`, options);
      let settled = false;
      const fail = (key: string) => {
        if (settled) return;
        settled = true;
        failed++;
        errors.set(key, (errors.get(key) ?? 0) + 1);
        ws.terminate();
        resolve();
      };
      const timer = setTimeout(() => fail("no greeting from the 8072 stub within 15 s"), 15_000);
      ws.on("message", (data) => {
        if (settled || !data.toString().startsWith("hello from 8072")) return;
        settled = true;
        clearTimeout(timer);
        open.push(ws);
        resolve();
      });
      ws.on("unexpected-response", (_req, res) => {
        clearTimeout(timer);
        fail(`handshake answered HTTP ${res.statusCode}`);
      });
      ws.on("error", (err) => {
        clearTimeout(timer);
        fail(errorKey(err));
      });
      ws.on("close", () => {
        clearTimeout(timer);
        fail("closed before the greeting");
      });
    });
  let next = 0;
  const parallel = 100;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < o.count) {
        next++;
        await connectOne();
      }
    }),
  );
  const openMs = performance.now() - started;
  // Held at once: still open after every handshake is done and a settle time has passed.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const held = open.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  for (const ws of open) ws.terminate();
  let log = "";
  try {
    log = fs.readFileSync(o.errorLog, "utf8");
  } catch {
    // no error log yet
  }
  const complaints = [
    ...new Set(
      log
        .split("\n")
        .filter(
          (line) => /\[(alert|crit|emerg)\]/.test(line) || (/\[error\]/.test(line) && /worker_connections|open files|accept/.test(line)),
        )
        .map((line) => line.replace(/^.*?\[(alert|crit|emerg|error)\] \d+#\d+: (\*\d+ )?/, "").replace(/, client: .*$/, "")),
    ),
  ];
  const workers = processGroupPids(o.nginx.pid).filter((pid) => pid !== o.nginx.pid);
  const workerNofile = Math.min(...workers.map(openFilesLimit).filter((n) => n > 0));
  return {
    label: o.label,
    ...meta,
    workerNofile,
    attempted: o.count,
    held,
    failed,
    errors: Object.fromEntries(errors),
    openMs,
    nginxComplaints: complaints.slice(0, 5),
  };
}

/** The soft "Max open files" of a process, from /proc/<pid>/limits; 0 when unreadable. */
function openFilesLimit(pid: number): number {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/limits`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    return Number(line?.split(/\s{2,}/)[1] ?? 0);
  } catch {
    return 0;
  }
}

async function startNginx(sandbox: Sandbox, name: string, confPath: string, nofile?: number): Promise<ManagedProcess> {
  const test = await sandbox.run(BIN.nginx, ["-t", "-c", confPath]);
  if (test.code !== 0) throw new Error(`nginx -t (${name}) failed:\n${test.stdout}${test.stderr}`);
  // The master runs as root, as under systemd: it opens the logs and the workers drop to
  // www-data (`user` in both files) after raising their own limit (worker_rlimit_nofile).
  const exec = `exec ${BIN.nginx} -c "$0" -g 'daemon off;'`;
  return sandbox.start({
    name,
    command: "/bin/sh",
    args: ["-c", nofile === undefined ? exec : `ulimit -n ${nofile} && ${exec}`, confPath],
    stopSignal: "SIGTERM",
  });
}

export async function runProxyScenario(opts: ProxyOptions, root = path.resolve(__dirname, "..", "..")): Promise<ProxyScenario> {
  const sandbox = Sandbox.create("bench-proxy");
  try {
    const www = systemUser("www-data");
    const model = benchModel(root, {});
    const serverName = model.settings.domain;
    const ca = await createCertificateAuthority(sandbox, sandbox.path("ca"));
    const cert = await issueHostCertificate(sandbox, ca, sandbox.path("issued"), [serverName]);
    const [httpStubPort, geventStubPort, renderedPort] = [await sandbox.freePort(), await sandbox.freePort(), await sandbox.freePort()];

    // The stubs in their own process; it inherits this process's descriptor limit.
    const tsxCli = require.resolve("tsx/cli");
    const stubs = sandbox.start({
      name: "stubs",
      command: process.execPath,
      args: [tsxCli, path.join(__dirname, "stub-server.ts"), String(httpStubPort), String(geventStubPort)],
    });
    await stubs.waitForOutput(new RegExp(STUBS_READY), 30_000);

    const etc = sandbox.mkdir("etc-nginx", undefined, 0o755);
    const tlsDir = sandbox.mkdir("etc-nginx/tls", www, 0o700);
    const logs = sandbox.mkdir("log", www, 0o755);
    const temp = sandbox.mkdir("lib-nginx", www, 0o700);
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
        listenPort: renderedPort,
        // The port-80 redirect serves no benchmarked request, and www-data cannot bind 80.
        redirectListenPort: undefined,
        tlsCertificatePath: installPem(cert.certPath, `${tlsDir}/fullchain.pem`, www, 0o644),
        tlsCertificateKeyPath: installPem(cert.keyPath, `${tlsDir}/privkey.pem`, www, 0o600),
        odooHttpServers: [{ address: "127.0.0.1", port: httpStubPort }],
        odooGeventServers: [{ address: "127.0.0.1", port: geventStubPort }],
      },
    );
    const renderedMainProduction = nginxMainSettings();
    const main: NginxMainSettings = remapForSandbox(
      renderedMainProduction,
      ["pidFile", "errorLogPath", "accessLogPath", "siteIncludeGlob", "tempDir"],
      {
        pidFile: `${logs}/rendered.pid`,
        errorLogPath: `${logs}/rendered-error.log`,
        accessLogPath: `${logs}/rendered-access.log`,
        siteIncludeGlob: `${etc}/rendered.d/*.conf`,
        tempDir: temp,
      },
    );
    const renderedConf = sandbox.writeFile(`${etc}/rendered.conf`, renderNginxConf(main));
    sandbox.writeFile(`${etc}/rendered.d/odoo.conf`, renderNginxSite(site));
    const stockConf = sandbox.writeFile(
      `${etc}/stock.conf`,
      stockNginxConf({
        pidFile: `${logs}/stock.pid`,
        errorLog: `${logs}/stock-error.log`,
        accessLog: `${logs}/stock-access.log`,
        tempDir: temp,
        siteGlob: `${etc}/stock.d/*.conf`,
      }),
    );

    // --- HTTP: straight to the stub vs through the rendered nginx, interleaved in two rounds ----
    const rendered = await startNginx(sandbox, "nginx-rendered", renderedConf);
    await waitForPort(renderedPort, { process: rendered });
    const halves: HttpWindow[][] = [[], []];
    for (let round = 0; round < 2; round++) {
      opts.log(`proxy: HTTP round ${round + 1}/2 …`);
      halves[0].push(
        await httpLoad(directTarget(httpStubPort, opts.httpConnections), opts.httpConnections, opts.httpMeasureMs / 2, [stubs.pid]),
      );
      halves[1].push(
        await httpLoad(
          nginxTarget(renderedPort, serverName, ca.certPem, opts.httpConnections),
          opts.httpConnections,
          opts.httpMeasureMs / 2,
          [stubs.pid, rendered.pid],
        ),
      );
    }
    const [direct, viaNginx] = halves.map(combineWindows);
    opts.log(
      `proxy: direct ${direct.rps.toFixed(0)} req/s p99 ${direct.latencyMs.p99.toFixed(2)} ms; nginx ${viaNginx.rps.toFixed(0)} req/s p99 ${viaNginx.latencyMs.p99.toFixed(2)} ms`,
    );

    // --- WebSockets held at once -----------------------------------------------------------------
    const cores = (await sandbox.run("/usr/bin/nproc", [])).stdout.trim();
    opts.log(`proxy: ${opts.websockets} WebSockets through the rendered nginx …`);
    const renderedHold = await holdWebSockets(
      {
        port: renderedPort,
        serverName,
        caPem: ca.certPem,
        count: opts.websockets,
        label: "rendered",
        nginx: rendered,
        errorLog: main.errorLogPath,
      },
      { workerProcesses: Number(cores), workerConnections: main.workerConnections, nofile: main.workerRlimitNofile },
    );
    opts.log(`proxy: rendered held ${renderedHold.held}/${renderedHold.attempted}`);
    await rendered.stop();

    // The stock port is picked only now, and again if taken: the sandbox's port range lies in
    // Linux's ephemeral range, and 10,000 sockets of the run before may hold any port in it.
    let stock: ManagedProcess | undefined;
    let stockPort = 0;
    for (let attempt = 1; !stock; attempt++) {
      stockPort = await sandbox.freePort();
      sandbox.writeFile(`${etc}/stock.d/odoo.conf`, renderNginxSite({ ...site, listenPort: stockPort }));
      const started = await startNginx(sandbox, "nginx-stock", stockConf, SYSTEMD_DEFAULT_NOFILE);
      try {
        await waitForPort(stockPort, { process: started });
        stock = started;
      } catch (err) {
        await started.stop();
        if (attempt >= 3) throw err;
      }
    }
    opts.log(`proxy: ${opts.websockets} WebSockets through the stock nginx …`);
    const stockHold = await holdWebSockets(
      {
        port: stockPort,
        serverName,
        caPem: ca.certPem,
        count: opts.websockets,
        label: "Debian stock",
        nginx: stock,
        errorLog: `${logs}/stock-error.log`,
      },
      { workerProcesses: Number(cores), workerConnections: DEBIAN_STOCK_NGINX.workerConnections, nofile: SYSTEMD_DEFAULT_NOFILE },
    );
    opts.log(`proxy: stock held ${stockHold.held}/${stockHold.attempted}`);

    return {
      direct,
      viaNginx,
      throughputRatio: ratio(viaNginx.rps, direct.rps),
      addedP99Ms: viaNginx.latencyMs.p99 - direct.latencyMs.p99,
      websockets: { target: opts.websockets, rendered: renderedHold, stock: stockHold },
    };
  } finally {
    await sandbox.cleanup();
  }
}
