// nginx on the proxy host: the main nginx.conf and the Odoo site in conf.d. Two layers per
// file: *SettingsFor(model) derives plain settings (the loopback sandbox builds its own with
// its ports and temp paths), render*() turns them into text. Variables such as $host are
// template text; every value from settings goes through escapeNginx, which refuses '$'.
import { HTTP_QUEUE_PER_WORKER, proxyTimeoutSeconds } from "../lib/sizing";
import { PATHS, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { throwIfAny } from "../lib/problems";
import { escapeNginx, header, lines, sortedEntries, type HostFile } from "./format";

export interface UpstreamServer {
  readonly address: string;
  readonly port: number;
}

/** Every value the main nginx.conf needs. */
export interface NginxMainSettings {
  readonly user: string;
  readonly pidFile: string;
  readonly errorLogPath: string;
  readonly accessLogPath: string;
  readonly mimeTypesPath: string;
  /** Glob of the site files; conf.d only: sites-enabled's Debian default serves plain HTTP on 80. */
  readonly siteIncludeGlob: string;
  readonly workerConnections: number;
  readonly workerRlimitNofile: number;
  /**
   * Where nginx keeps request bodies and buffered responses. Optional: production keeps the
   * compiled-in /var/lib/nginx; a sandbox running nginx unprivileged points it at a temp dir.
   */
  readonly tempDir?: string;
}

/** Every value the Odoo site needs. */
export interface NginxSiteSettings {
  /** The public hostname (server_name, and the SNI the TLS handshake must carry). */
  readonly serverName: string;
  /**
   * Several databases (issue 16): every public hostname, serverName among them, each served by
   * its own server block that writes its own name into Host and X-Forwarded-Host, so the name
   * Odoo picks the database from (dbfilter %d) is never the client's. Optional. Defaults to
   * none: one server block for serverName that forwards $host (one database: db_name alone
   * restricts Odoo to it, whatever the host).
   */
  readonly pinnedServerNames?: readonly string[];
  /** Address to listen on; absent means every address of the host. */
  readonly listenAddress?: string;
  readonly listenPort: number;
  /**
   * Plain-HTTP port of a server that answers every request with a 301 to https://serverName and
   * proxies nothing (NET-3's exception). Optional. Defaults to none: no plain-HTTP listener.
   */
  readonly redirectListenPort?: number;
  readonly tlsCertificatePath: string;
  readonly tlsCertificateKeyPath: string;
  /** Odoo HTTP workers, one per Odoo host (PROXY-1). */
  readonly odooHttpServers: readonly UpstreamServer[];
  /**
   * Requests in flight to one Odoo host's HTTP workers (upstream max_conns, sizing.httpMaxConns):
   * beyond it nginx answers 503 with Retry-After instead of Odoo's listen backlog overflowing.
   */
  readonly odooHttpMaxConns: number;
  /** Odoo gevent (websocket) workers, the same hosts in the same order (PROXY-2). */
  readonly odooGeventServers: readonly UpstreamServer[];
  readonly proxyConnectTimeoutSeconds: number;
  readonly proxyReadTimeoutSeconds: number;
  readonly proxySendTimeoutSeconds: number;
  /** Largest request body: attachments and imports (Odoo has no limit of its own). */
  readonly clientMaxBodyMiB: number;
  readonly hstsMaxAgeSeconds: number;
}

/** Concurrent WebSockets (Odoo's bus: one per open browser tab) the proxy must hold. */
export const NGINX_TARGET_WEBSOCKETS = 5000;

/**
 * worker_connections counts both sides of a proxied connection, so a WebSocket costs 2.
 * Sized so that a single worker can hold the whole target (accepts are not spread evenly
 * between workers), plus 25 % for ordinary requests, rounded up to a power of two.
 * https://nginx.org/en/docs/ngx_core_module.html#worker_connections
 */
export const nginxWorkerConnections = (websockets: number): number => 2 ** Math.ceil(Math.log2(websockets * 2 * 1.25));

/** One descriptor per connection, doubled for temp files, logs and upstream buffers. */
export const nginxWorkerRlimitNofile = (workerConnections: number): number => workerConnections * 2;

/** What a shed request's Retry-After asks for: a few request-times, so the queue has drained. */
export const NGINX_RETRY_AFTER_SECONDS = 5;

/** A connect to an Odoo host inside the VPC that takes longer than this will not succeed. */
export const PROXY_CONNECT_TIMEOUT_SECONDS = 5;
/** Attachments and CSV/XLSX imports; raise it in the settings for bigger files. */
export const DEFAULT_CLIENT_MAX_BODY_MIB = 100;
/** One year: browsers never try plain HTTP for the domain (Odoo's deploy guide, "HTTPS Hardening"). */
export const HSTS_MAX_AGE_SECONDS = 31_536_000;

/**
 * Headers every location sends to Odoo (PROXY-3). proxy_mode makes Odoo trust
 * X-Forwarded-{For,Proto,Host} (werkzeug ProxyFix, one hop); X-Forwarded-For is appended to,
 * and ProxyFix takes the last entry, which is the one nginx wrote.
 */
export const NGINX_REQUIRED_HEADERS: Readonly<Record<string, string>> = {
  Host: "$host",
  "X-Forwarded-For": "$proxy_add_x_forwarded_for",
  "X-Forwarded-Host": "$host",
  "X-Forwarded-Proto": "$scheme",
  "X-Real-IP": "$remote_addr",
};

/** Headers /websocket adds for the HTTP/1.1 Upgrade handshake (PROXY-2). */
export const NGINX_WEBSOCKET_HEADERS: Readonly<Record<string, string>> = {
  Connection: "$connection_upgrade",
  Upgrade: "$http_upgrade",
};

/** Paths the site routes, and where (PROXY-1, PROXY-2). */
export const NGINX_ROUTES = { http: "/", websocket: "/websocket", databaseManager: "^/web/database" } as const;
export const NGINX_UPSTREAMS = { http: "odoo", websocket: "odoochat" } as const;
/** The named location that answers 503 + Retry-After when every Odoo host is at max_conns. */
export const NGINX_BUSY_LOCATION = "@odoo_busy";

/** TLS 1.2 and 1.3 with AEAD ECDHE suites only (Mozilla "intermediate", without DHE: no dhparam). */
export const NGINX_TLS_PROTOCOLS = ["TLSv1.2", "TLSv1.3"] as const;
const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/** The same for every stack: nothing in the model changes the main file. */
export function nginxMainSettings(): NginxMainSettings {
  const workerConnections = nginxWorkerConnections(NGINX_TARGET_WEBSOCKETS);
  return {
    user: "www-data",
    pidFile: "/run/nginx.pid",
    errorLogPath: "/var/log/nginx/error.log",
    accessLogPath: "/var/log/nginx/access.log",
    mimeTypesPath: "/etc/nginx/mime.types",
    siteIncludeGlob: `${PATHS.nginxSite.replace(/\/[^/]+$/, "")}/*.conf`,
    workerConnections,
    workerRlimitNofile: nginxWorkerRlimitNofile(workerConnections),
  };
}

export function nginxSiteSettingsFor(model: StackModel): NginxSiteSettings {
  const timeout = proxyTimeoutSeconds(model.settings.sizing.odoo.limitTimeReal);
  const sites = model.settings.sites;
  return {
    serverName: model.settings.domain,
    ...(sites.length > 1 ? { pinnedServerNames: sites.map((site) => site.hostname) } : {}),
    listenPort: PORTS.https.port,
    ...(model.settings.httpRedirect ? { redirectListenPort: PORTS.http.port } : {}),
    tlsCertificatePath: `${PATHS.nginxTlsDir}/fullchain.pem`,
    tlsCertificateKeyPath: `${PATHS.nginxTlsDir}/privkey.pem`,
    odooHttpServers: model.hosts.odoo.map((h) => ({ address: h.privateIp, port: PORTS.odooHttp.port })),
    odooHttpMaxConns: model.settings.sizing.odoo.httpMaxConns,
    odooGeventServers: model.hosts.odoo.map((h) => ({ address: h.privateIp, port: PORTS.odooGevent.port })),
    proxyConnectTimeoutSeconds: PROXY_CONNECT_TIMEOUT_SECONDS,
    proxyReadTimeoutSeconds: timeout,
    proxySendTimeoutSeconds: timeout,
    clientMaxBodyMiB: DEFAULT_CLIENT_MAX_BODY_MIB,
    hstsMaxAgeSeconds: HSTS_MAX_AGE_SECONDS,
  };
}

function positiveIntegers(values: readonly [string, number][]): string[] {
  return values.filter(([, v]) => !Number.isInteger(v) || v < 1).map(([k, v]) => `${k} = ${v}: must be a whole number ≥ 1`);
}

function fail(file: string, problems: string[]): void {
  throwIfAny(file, problems);
}

/**
 * Access log as one JSON object per line, for p95/p99 per route (OBS-4) and error rates
 * (OBS-5). $uri, not $request_uri: query strings carry reset-password and portal tokens.
 */
const ACCESS_LOG_FIELDS: Readonly<Record<string, string>> = {
  bytes_sent: "$body_bytes_sent",
  client: "$remote_addr",
  host: "$host",
  method: "$request_method",
  protocol: "$server_protocol",
  request_length: "$request_length",
  request_time: "$request_time",
  status: "$status",
  time: "$time_iso8601",
  upstream_addr: "$upstream_addr",
  upstream_connect_time: "$upstream_connect_time",
  upstream_response_time: "$upstream_response_time",
  upstream_status: "$upstream_status",
  uri: "$uri",
  user_agent: "$http_user_agent",
};
export const NGINX_ACCESS_LOG_FORMAT = "odoo_json";

/**
 * Types worth compressing; Odoo itself sends them uncompressed. text/html is always
 * compressed by gzip and must not be listed again.
 */
const GZIP_TYPES = [
  "application/javascript",
  "application/json",
  "application/xml",
  "image/svg+xml",
  "text/css",
  "text/javascript",
  "text/plain",
  "text/xml",
];

export function renderNginxConf(s: NginxMainSettings): string {
  fail(
    "nginx.conf",
    positiveIntegers([
      ["worker_connections", s.workerConnections],
      ["worker_rlimit_nofile", s.workerRlimitNofile],
    ]),
  );
  if (s.workerRlimitNofile < s.workerConnections) {
    fail("nginx.conf", [`worker_rlimit_nofile = ${s.workerRlimitNofile}: must be at least worker_connections (${s.workerConnections})`]);
  }
  const logFormat = `{${sortedEntries(ACCESS_LOG_FIELDS)
    .map(([k, v]) => `"${k}":"${v}"`)
    .join(",")}}`;
  const tempPaths =
    s.tempDir === undefined
      ? []
      : ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((kind) => `    ${kind}_temp_path ${escapeNginx(`${s.tempDir}/${kind}`)};`);
  return lines(
    header("#"),
    `user ${escapeNginx(s.user)};`,
    "worker_processes auto;",
    `# Each worker may hold ${s.workerConnections} connections; a proxied WebSocket uses 2 (client and Odoo).`,
    `worker_rlimit_nofile ${s.workerRlimitNofile};`,
    `pid ${escapeNginx(s.pidFile)};`,
    `error_log ${escapeNginx(s.errorLogPath)};`,
    "",
    "events {",
    `    worker_connections ${s.workerConnections};`,
    "}",
    "",
    "http {",
    `    include ${escapeNginx(s.mimeTypesPath)};`,
    "    default_type application/octet-stream;",
    "    sendfile on;",
    "    tcp_nopush on;",
    "    server_tokens off;",
    ...(tempPaths.length > 0 ? ["", ...tempPaths] : []),
    "",
    `    log_format ${NGINX_ACCESS_LOG_FORMAT} escape=json '${logFormat}';`,
    `    access_log ${escapeNginx(s.accessLogPath)} ${NGINX_ACCESS_LOG_FORMAT};`,
    "",
    "    gzip on;",
    "    gzip_vary on;",
    "    gzip_proxied any;",
    "    gzip_min_length 1024;",
    `    gzip_types ${GZIP_TYPES.join(" ")};`,
    "",
    "    # Only the generated site: no Debian default server on port 80 (NET-2, NET-3).",
    `    include ${escapeNginx(s.siteIncludeGlob)};`,
    "}",
  );
}

const isWildcardAddress = (address: string): boolean => ["", "0.0.0.0", "::", "[::]", "*"].includes(address.trim());

export function checkNginxSiteSettings(s: NginxSiteSettings): string[] {
  const problems = positiveIntegers([
    ["listen port", s.listenPort],
    ...(s.redirectListenPort === undefined ? [] : ([["redirect listen port", s.redirectListenPort]] as [string, number][])),
    ["proxy_connect_timeout", s.proxyConnectTimeoutSeconds],
    ["proxy_read_timeout", s.proxyReadTimeoutSeconds],
    ["proxy_send_timeout", s.proxySendTimeoutSeconds],
    ["client_max_body_size (MiB)", s.clientMaxBodyMiB],
    ["upstream odoo max_conns", s.odooHttpMaxConns],
    ["HSTS max-age", s.hstsMaxAgeSeconds],
  ]);
  if (s.odooHttpServers.length === 0) problems.push("upstream odoo: needs at least one Odoo host (PROXY-1)");
  if (s.pinnedServerNames !== undefined) {
    if (!s.pinnedServerNames.includes(s.serverName))
      problems.push(`server_name ${s.serverName}: must be one of the pinned server names (${s.pinnedServerNames.join(", ")})`);
    if (new Set(s.pinnedServerNames).size !== s.pinnedServerNames.length)
      problems.push(`server names ${s.pinnedServerNames.join(", ")}: each hostname gets one server block`);
  }
  if (s.redirectListenPort !== undefined && s.redirectListenPort === s.listenPort) {
    problems.push(`redirect listen port ${s.redirectListenPort}: must differ from the TLS listen port`);
  }
  const addresses = (servers: readonly UpstreamServer[]) => servers.map((u) => u.address).join(",");
  if (addresses(s.odooHttpServers) !== addresses(s.odooGeventServers)) {
    problems.push(
      "upstream odoochat: must list the same Odoo hosts in the same order as upstream odoo, so a client's HTTP requests and its WebSocket reach the same host (PROXY-2)",
    );
  }
  for (const u of [...s.odooHttpServers, ...s.odooGeventServers]) {
    if (isWildcardAddress(u.address)) problems.push(`upstream server ${JSON.stringify(u.address)}: must be an Odoo host's private address`);
    problems.push(...positiveIntegers([[`upstream server ${u.address} port`, u.port]]));
  }
  return problems;
}

function upstream(name: string, servers: readonly UpstreamServer[], maxConns?: number): string[] {
  return [
    `upstream ${name} {`,
    // max_conns is counted per nginx worker unless the group lives in shared memory.
    ...(maxConns === undefined ? [] : [`    zone ${name} 64k;`]),
    // Client affinity: Odoo keeps sessions in data_dir on each host, and a browser's
    // WebSocket must land where its HTTP session lives. A plain (non-consistent) hash over
    // the same server order picks the same host index in both upstreams; a host at max_conns
    // passes the request to the next one.
    "    hash $remote_addr;",
    ...servers.map((u) => `    server ${escapeNginx(`${u.address}:${u.port}`)}${maxConns === undefined ? "" : ` max_conns=${maxConns}`};`),
    "}",
  ];
}

/**
 * The headers naming the site. With pinned server names (several databases) each server block
 * writes its own name, never the client's Host: Odoo reads the database from X-Forwarded-Host
 * (proxy_mode, ODOO-3, PROXY-3), which nginx thus always overwrites with the block's name.
 */
export const pinnedHostHeaders = (serverName: string): Readonly<Record<string, string>> => ({
  Host: escapeNginx(serverName),
  "X-Forwarded-Host": escapeNginx(serverName),
});

/** proxy_set_header is inherited only by levels that set none, so every location sets them all. */
function proxyToOdoo(
  s: NginxSiteSettings,
  upstreamName: string,
  extraHeaders: Readonly<Record<string, string>>,
  hostHeaders: Readonly<Record<string, string>>,
): string[] {
  return [
    `        proxy_pass http://${upstreamName};`,
    ...sortedEntries({ ...NGINX_REQUIRED_HEADERS, ...hostHeaders, ...extraHeaders }).map(
      ([name, variable]) => `        proxy_set_header ${name} ${variable};`,
    ),
    // Never replay a request on another host: a POST that timed out may have committed (PROXY-5).
    "        proxy_next_upstream off;",
    `        proxy_connect_timeout ${s.proxyConnectTimeoutSeconds}s;`,
    `        proxy_read_timeout ${s.proxyReadTimeoutSeconds}s;`,
    `        proxy_send_timeout ${s.proxySendTimeoutSeconds}s;`,
  ];
}

export function renderNginxSite(s: NginxSiteSettings): string {
  fail("nginx site", checkNginxSiteSettings(s));
  const address = (port: number) => escapeNginx(s.listenAddress === undefined ? String(port) : `${s.listenAddress}:${port}`);
  const listen = `listen ${address(s.listenPort)} ssl http2`;
  // NET-3's exception: plain HTTP gets one answer, a permanent redirect to the site's own name
  // (never $host: a forged Host header must not turn it into an open redirect). No location, no
  // proxy_pass, no root: it serves nothing and reaches no Odoo host.
  const pinned = s.pinnedServerNames;
  const redirect =
    s.redirectListenPort === undefined
      ? []
      : [
          "",
          "# Plain HTTP answers only a redirect to https://; nothing is proxied or served here (NET-3).",
          "server {",
          `    listen ${address(s.redirectListenPort)} default_server;`,
          `    return 301 https://${escapeNginx(s.serverName)}$request_uri;`,
          "}",
          // Each hostname redirects to itself (its own name, never $host).
          ...(pinned ?? []).flatMap((name) => [
            "server {",
            `    listen ${address(s.redirectListenPort as number)};`,
            `    server_name ${escapeNginx(name)};`,
            `    return 301 https://${escapeNginx(name)}$request_uri;`,
            "}",
          ]),
        ];
  const sites =
    pinned === undefined
      ? ["", "# The only server Odoo is reachable through: HTTPS on 443 (NET-2, NET-3).", ...siteServer(s, listen, s.serverName, {})]
      : [...pinned]
          .sort()
          .flatMap((name) => [
            "",
            `# ${name}: HTTPS on 443 (NET-2, NET-3); Odoo serves the database this name's first label names (ODOO-3).`,
            ...siteServer(s, listen, name, pinnedHostHeaders(name)),
          ]);
  return lines(
    header("#"),
    // No upstream keepalive: with proxy_next_upstream off, a reused connection the worker has
    // just closed would fail the request instead of being retried.
    "# Odoo's HTTP workers on every Odoo host (PROXY-1). A host takes its workers' requests plus",
    `# ${HTTP_QUEUE_PER_WORKER} waiting per worker, well inside Odoo's listen backlog of 8 per worker; past that, 503 (below).`,
    ...upstream(NGINX_UPSTREAMS.http, s.odooHttpServers, s.odooHttpMaxConns),
    "",
    "# Odoo's gevent worker: WebSockets of the bus, chat and presence (PROXY-2).",
    ...upstream(NGINX_UPSTREAMS.websocket, s.odooGeventServers),
    "",
    "map $http_upgrade $connection_upgrade {",
    "    default upgrade;",
    "    '' close;",
    "}",
    "",
    "# A TLS handshake for any other name (a scan by IP, a forged Host) is refused before Odoo sees it.",
    "server {",
    `    ${listen} default_server;`,
    "    ssl_reject_handshake on;",
    "}",
    ...redirect,
    ...sites,
  );
}

/** One HTTPS server block for `serverName`. */
function siteServer(s: NginxSiteSettings, listen: string, serverName: string, hostHeaders: Readonly<Record<string, string>>): string[] {
  return [
    "server {",
    `    ${listen};`,
    `    server_name ${escapeNginx(serverName)};`,
    "",
    `    ssl_certificate ${escapeNginx(s.tlsCertificatePath)};`,
    `    ssl_certificate_key ${escapeNginx(s.tlsCertificateKeyPath)};`,
    `    ssl_protocols ${NGINX_TLS_PROTOCOLS.join(" ")};`,
    `    ssl_ciphers ${TLS12_CIPHERS};`,
    "    ssl_prefer_server_ciphers off;",
    "    ssl_session_cache shared:odoo_tls:10m;",
    "    ssl_session_timeout 1d;",
    "    ssl_session_tickets off;",
    "",
    `    add_header Strict-Transport-Security "max-age=${s.hstsMaxAgeSeconds}; includeSubDomains" always;`,
    "    # Odoo's deploy guide: the session cookie never leaves HTTPS and is not sent cross-site.",
    "    proxy_cookie_flags session_id samesite=lax secure;",
    `    client_max_body_size ${s.clientMaxBodyMiB}m;`,
    "",
    "    # The database manager stays closed even if list_db were flipped (ODOO-2).",
    `    location ~ ${NGINX_ROUTES.databaseManager} {`,
    "        return 404;",
    "    }",
    "",
    `    location ${NGINX_ROUTES.websocket} {`,
    ...proxyToOdoo(s, NGINX_UPSTREAMS.websocket, NGINX_WEBSOCKET_HEADERS, hostHeaders),
    "        proxy_http_version 1.1;",
    "    }",
    "",
    `    location ${NGINX_ROUTES.http} {`,
    ...proxyToOdoo(s, NGINX_UPSTREAMS.http, {}, hostHeaders),
    "        proxy_redirect off;",
    '        # nginx\'s own 502s: every host at max_conns ("no live upstreams"), or Odoo not',
    "        # accepting (restarting). Both mean: come back shortly. Odoo's own answers pass as they are.",
    `        error_page 502 = ${NGINX_BUSY_LOCATION};`,
    "    }",
    "",
    "    # Load shed on purpose: a bounded queue per Odoo host (max_conns), then an immediate answer",
    "    # that tells clients when to come back, instead of a backlog overflow's 502/504 after seconds.",
    `    location ${NGINX_BUSY_LOCATION} {`,
    "        default_type text/plain;",
    // add_header at this level replaces the server's: HSTS is repeated so no answer lacks it.
    `        add_header Strict-Transport-Security "max-age=${s.hstsMaxAgeSeconds}; includeSubDomains" always;`,
    `        add_header Retry-After ${NGINX_RETRY_AFTER_SECONDS} always;`,
    `        return 503 "Odoo is busy; retry in ${NGINX_RETRY_AFTER_SECONDS} seconds.\\n";`,
    "    }",
    "}",
  ];
}

/** The proxy host's nginx files. */
export function nginxFiles(model: StackModel): HostFile[] {
  const file = (path: string, content: string): HostFile => ({ path, content, mode: "0644", owner: "root", group: "root" });
  return [file(PATHS.nginxConf, renderNginxConf(nginxMainSettings())), file(PATHS.nginxSite, renderNginxSite(nginxSiteSettingsFor(model)))];
}
