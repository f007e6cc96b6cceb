// Reverse proxy and WebSocket: CHECKLIST §2 (PROXY-1 … PROXY-5), read from the rendered nginx
// files (and proxy_mode from odoo.conf). Routing is evaluated the way nginx evaluates it: which
// location a URI reaches, which proxy_set_header list applies there (inheritance), and which
// ports its proxy_pass ends up on.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { PORTS } from "../lib/ports";
import {
  chainFor,
  effectiveValue,
  isServingServer,
  nginxServers,
  nginxUpstreams,
  proxiedLocations,
  proxyHeaders,
  proxyHosts,
  proxyTarget,
  type NginxChain,
  type NginxServer,
} from "./lib/nginx";
import type { NginxDirective } from "./lib/parse";
import { odooInt, odooTruthy, parseNginx, parseNginxSeconds, parseOdooConf } from "./lib/parse";
import {
  fileKindOf,
  fileLabel,
  hostByName,
  hostViews,
  renderedFileOfKind,
  renderedFiles,
  UnknownValues,
  validateRenderedFile,
  type RenderedFile,
  type ResourceView,
  type StackResourceView,
} from "./lib/resources";

const HTTP_PORT = PORTS.odooHttp.port;
const GEVENT_PORT = PORTS.odooGevent.port;

/** Requests that Odoo's HTTP workers serve (PROXY-1) and the bus WebSocket (PROXY-2). */
const HTTP_URIS = ["/", "/web", "/web/login"];
const WEBSOCKET_URI = "/websocket";

/** The nginx file a resource carries (a conf.d site or nginx.conf itself). */
const nginxFileOf = (r: ResourceView): RenderedFile | undefined =>
  renderedFileOfKind(r, "nginx-site") ?? renderedFileOfKind(r, "nginx.conf");

/** Runs `check` on every server of the file that serves requests (not reject/redirect-only ones). */
function forEachServingServer(r: ResourceView, check: (file: RenderedFile, server: NginxServer, where: string) => void): void {
  const file = nginxFileOf(r);
  if (!file) return;
  for (const server of nginxServers(file.content).filter(isServingServer)) {
    check(file, server, `the server at line ${server.directive.line}`);
  }
}

/** "proxies /web to 10.0.0.1:8072" style description of where a URI goes. */
function routeProblem(file: RenderedFile, chain: NginxChain, wanted: number): string | undefined {
  const target = proxyTarget(chain, nginxUpstreams(file.content));
  if (target.kind === "none") return "does not proxy it";
  if (target.kind === "unresolved") return `proxies it to ${target.target}, which names no upstream in the file`;
  const wrong = target.ports.filter((p) => p !== wanted);
  return wrong.length > 0 ? `proxies it to ${target.target} on port ${[...new Set(target.ports)].join("/")}` : undefined;
}

/** PROXY-1: `/` (and Odoo's web client) reaches the HTTP workers on 8069. */
export const nginxRootRoutesToOdooHttp: ResourceValidationPolicy = {
  name: "nginx-root-routes-to-odoo-http",
  description: `Checks whether the proxy routes / and the web client to Odoo's HTTP port ${HTTP_PORT} (PROXY-1).`,
  validateResource: (args, reportViolation) =>
    forEachServingServer(args, (file, server, where) => {
      for (const uri of HTTP_URIS) {
        const problem = routeProblem(file, chainFor(server, uri), HTTP_PORT);
        if (problem) {
          reportViolation(`${fileLabel(file)} must proxy ${uri} to Odoo's HTTP port ${HTTP_PORT}; ${where} ${problem} (PROXY-1).`);
          return;
        }
      }
    }),
};

/** Is `$connection_upgrade` defined by a `map $http_upgrade $connection_upgrade {…}` in the file? */
const definesConnectionUpgrade = (text: string): boolean => {
  const visit = (block: readonly NginxDirective[]): boolean =>
    block.some(
      (d) =>
        (d.name === "map" && d.args[0] === "$http_upgrade" && d.args[1] === "$connection_upgrade") ||
        (d.name === "http" && visit(d.block ?? [])),
    );
  return visit(parseNginx(text));
};

/**
 * PROXY-2, the "ghost bug": /websocket must reach the gevent worker on 8072 as an HTTP/1.1
 * Upgrade. Routed to 8069, or without Upgrade/Connection, or on HTTP/1.0 (nginx's default),
 * the bus silently falls back or fails and Discuss, notifications and presence stop updating.
 */
export const nginxWebsocketRoutesToGevent: ResourceValidationPolicy = {
  name: "nginx-websocket-routes-to-gevent",
  description: `Checks whether the proxy routes ${WEBSOCKET_URI} to Odoo's gevent port ${GEVENT_PORT} with HTTP/1.1 and the Upgrade and Connection headers (PROXY-2).`,
  validateResource: (args, reportViolation) =>
    forEachServingServer(args, (file, server, where) => {
      const chain = chainFor(server, WEBSOCKET_URI);
      const subject = `${fileLabel(file)} must`;
      const problem = routeProblem(file, chain, GEVENT_PORT);
      if (problem) {
        reportViolation(`${subject} proxy ${WEBSOCKET_URI} to Odoo's gevent port ${GEVENT_PORT}; ${where} ${problem} (PROXY-2).`);
        return;
      }
      const version = effectiveValue(chain, "proxy_http_version")?.[0];
      if (version !== "1.1") {
        reportViolation(
          `${subject} set proxy_http_version 1.1 for ${WEBSOCKET_URI} in ${where}: WebSocket upgrades need HTTP/1.1, and it is ${version ?? "nginx's default 1.0"} (PROXY-2).`,
        );
      }
      const headers = proxyHeaders(chain);
      const upgrade = headers.get("upgrade");
      if (upgrade !== "$http_upgrade") {
        reportViolation(
          `${subject} send \`proxy_set_header Upgrade $http_upgrade\` for ${WEBSOCKET_URI} in ${where}; it sends ${upgrade === undefined ? "none" : JSON.stringify(upgrade)} (PROXY-2).`,
        );
      }
      const connection = headers.get("connection") ?? "";
      const upgrades =
        connection.toLowerCase() === "upgrade" || (connection === "$connection_upgrade" && definesConnectionUpgrade(file.content));
      if (!upgrades) {
        const why =
          connection === "$connection_upgrade"
            ? "$connection_upgrade is used but no `map $http_upgrade $connection_upgrade` defines it"
            : `it sends ${JSON.stringify(connection)}`;
        reportViolation(
          `${subject} send \`proxy_set_header Connection $connection_upgrade\` (or "upgrade") for ${WEBSOCKET_URI} in ${where}; ${why} (PROXY-2).`,
        );
      }
    }),
};

/**
 * The headers Odoo's proxy_mode reads (werkzeug ProxyFix: X-Forwarded-For, -Proto, -Host) and
 * the Host Odoo builds URLs and picks the database from, each with a value that carries the
 * client's request (not nginx's own defaults, e.g. Host $proxy_host = the upstream's name).
 */
const FORWARDED_HEADERS: readonly { readonly name: string; readonly values: readonly string[] }[] = [
  { name: "X-Forwarded-For", values: ["$proxy_add_x_forwarded_for", "$remote_addr"] },
  { name: "X-Forwarded-Proto", values: ["$scheme", "https"] },
  { name: "X-Forwarded-Host", values: ["$host", "$http_host", "$server_name"] },
  { name: "Host", values: ["$host", "$http_host", "$server_name"] },
];

/**
 * PROXY-3: every proxied location sends the forwarded headers. nginx inherits
 * proxy_set_header only into levels that set none, so a location that adds one header (e.g.
 * Upgrade) silently drops the server's X-Forwarded-*: the check evaluates each location's
 * effective list.
 */
export const nginxForwardedHeaders: ResourceValidationPolicy = {
  name: "nginx-forwarded-headers",
  description: `Checks whether Odoo's routes and every other proxied location send ${FORWARDED_HEADERS.map((h) => h.name).join(", ")} with the client's values, honouring nginx's proxy_set_header inheritance (PROXY-3).`,
  validateResource: (args, reportViolation) =>
    forEachServingServer(args, (file, server, where) => {
      for (const { chain, name } of proxiedRoutes(file, server)) {
        const headers = proxyHeaders(chain);
        // A server of one hostname may write that name itself (several databases: issue 16).
        const names = server.directive.block?.find((d) => d.name === "server_name")?.args ?? [];
        const pinned = names.length === 1 ? names[0] : undefined;
        for (const h of FORWARDED_HEADERS) {
          const value = headers.get(h.name.toLowerCase());
          const ownName = pinned !== undefined && (h.name === "Host" || h.name === "X-Forwarded-Host") && value === pinned;
          if (!ownName && (value === undefined || !h.values.includes(value))) {
            const now = value === undefined ? "it sends none" : `it sends ${JSON.stringify(value)}`;
            reportViolation(
              `${fileLabel(file)} must send \`proxy_set_header ${h.name} ${h.values[0]}\` for ${name} in ${where}; ${now} (PROXY-3).`,
            );
          }
        }
      }
    }),
};

/**
 * What a server proxies, each once: the chains of Odoo's known routes (/, /web, /web/login,
 * /websocket) and of every other location that proxies (a /report/ or /web/content location
 * added later has its own timeouts and headers). A location reached by a known route is named
 * by that route.
 */
function proxiedRoutes(file: RenderedFile, server: NginxServer): { readonly chain: NginxChain; readonly name: string }[] {
  const upstreams = nginxUpstreams(file.content);
  const out: { chain: NginxChain; name: string }[] = [];
  const seen = new Set<readonly NginxDirective[]>();
  for (const uri of [...HTTP_URIS, WEBSOCKET_URI]) {
    const chain = chainFor(server, uri);
    const inner = chain[chain.length - 1];
    if (proxyTarget(chain, upstreams).kind === "none" || seen.has(inner)) continue;
    seen.add(inner);
    out.push({ chain, name: uri });
  }
  for (const location of proxiedLocations(server)) {
    const inner = location.chain[location.chain.length - 1];
    if (seen.has(inner)) continue;
    seen.add(inner);
    out.push(location);
  }
  return out;
}

interface TimeoutConfig {
  readonly minimumTimeoutSeconds?: number;
}
/** Long PDF reports and exports run for minutes; nginx's default 60 s cuts them (PROXY-5). */
export const DEFAULT_MINIMUM_PROXY_TIMEOUT_SECONDS = 300;
const NGINX_DEFAULT_PROXY_TIMEOUT_SECONDS = 60;

/**
 * PROXY-5: proxy_read_timeout and proxy_send_timeout at least a minimum a team may tune
 * (policy config), on every proxied location including /websocket.
 */
export const nginxProxyTimeouts: ResourceValidationPolicy = {
  name: "nginx-proxy-timeouts",
  description:
    "Checks whether proxy_read_timeout and proxy_send_timeout on Odoo's routes and every other proxied location are at least the configured minimum, so long reports are not cut (PROXY-5).",
  configSchema: {
    properties: {
      minimumTimeoutSeconds: {
        type: "integer",
        default: DEFAULT_MINIMUM_PROXY_TIMEOUT_SECONDS,
        minimum: 1,
        description: "Lowest proxy_read_timeout / proxy_send_timeout accepted, in seconds.",
      },
    },
  },
  validateResource: (args, reportViolation) => {
    const minimum = args.getConfig<TimeoutConfig>().minimumTimeoutSeconds ?? DEFAULT_MINIMUM_PROXY_TIMEOUT_SECONDS;
    forEachServingServer(args, (file, server, where) => {
      for (const { chain, name } of proxiedRoutes(file, server)) {
        for (const directive of ["proxy_read_timeout", "proxy_send_timeout"]) {
          const written = effectiveValue(chain, directive)?.join(" ");
          const seconds = written === undefined ? NGINX_DEFAULT_PROXY_TIMEOUT_SECONDS : parseNginxSeconds(written);
          if (seconds === undefined || seconds < minimum) {
            const now = written === undefined ? `nginx's default ${NGINX_DEFAULT_PROXY_TIMEOUT_SECONDS}s` : written;
            reportViolation(
              `${fileLabel(file)} must set ${directive} to at least ${minimum}s for ${name} in ${where}; it is ${now} (PROXY-5).`,
            );
          }
        }
      }
    });
  },
};

/** PROXY-4: Odoo trusts the proxy's X-Forwarded-* only with proxy_mode on. */
export const odooProxyModeEnabled: ResourceValidationPolicy = {
  name: "odoo-proxy-mode-enabled",
  description:
    "Checks whether odoo.conf sets proxy_mode = True, so Odoo uses the client's address, scheme and host from the proxy's headers (PROXY-4).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const value = parseOdooConf(file.content).options.get("proxy_mode");
    if (odooTruthy(value) !== true) {
      report(
        `${fileLabel(file)} must set proxy_mode = True; it is ${value === undefined ? "absent (Odoo's default False)" : JSON.stringify(value)} (PROXY-4).`,
      );
    }
  }),
};

/**
 * PROXY-5 across tiers: nginx waits at least as long as Odoo lets a request run
 * (limit_time_real), so Odoo — not nginx — ends a long request, logs why, and frees the worker;
 * otherwise the user gets a 504 while the worker keeps computing the report.
 */
export const nginxTimeoutsCoverOdooLimits: StackValidationPolicy = {
  name: "nginx-timeouts-cover-odoo-limits",
  description:
    "Checks whether the proxy's proxy_read_timeout for Odoo's HTTP routes is at least every Odoo host's limit_time_real (PROXY-5).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const limits = files
      .filter((f) => fileKindOf(f.path) === "odoo.conf")
      .map((f) => unknown.run(() => ({ host: f.host, real: odooInt(parseOdooConf(f.content).options.get("limit_time_real")) })))
      .filter((l): l is { host: string; real: number } => l !== undefined && l.real !== undefined);
    if (limits.length === 0) return unknown.finish();
    const longest = limits.reduce((a, b) => (b.real > a.real ? b : a));
    for (const file of files.filter((f) => fileKindOf(f.path) === "nginx-site" || fileKindOf(f.path) === "nginx.conf")) {
      unknown.run(() => {
        for (const server of nginxServers(file.content).filter(isServingServer)) {
          const chain = chainFor(server, "/");
          if (proxyTarget(chain, nginxUpstreams(file.content)).kind === "none") continue;
          const written = effectiveValue(chain, "proxy_read_timeout")?.join(" ");
          const seconds = written === undefined ? NGINX_DEFAULT_PROXY_TIMEOUT_SECONDS : parseNginxSeconds(written);
          if (seconds !== undefined && seconds < longest.real) {
            reportViolation(
              `${fileLabel(file)} must set proxy_read_timeout for / to at least Odoo's limit_time_real on ${longest.host} (${longest.real}s), so Odoo ends long requests itself; it is ${written ?? `nginx's default ${NGINX_DEFAULT_PROXY_TIMEOUT_SECONDS}s`} (PROXY-5).`,
              file.resource.urn,
            );
          }
        }
      });
    }
    unknown.finish();
  },
};

/**
 * PROXY-1, PROXY-2 on Odoo's side: Odoo serves HTTP where the proxy sends / (http_port, or its
 * old name xmlrpc_port) and WebSockets where it sends /websocket (gevent_port, or the deprecated
 * longpolling_port, which Odoo 17 copies over it); http_enable (or xmlrpc) off serves nothing.
 */
export const odooListensOnCatalogPorts: ResourceValidationPolicy = {
  name: "odoo-listens-on-catalog-ports",
  description: `Checks whether odoo.conf keeps Odoo's HTTP server on, at http_port ${HTTP_PORT}, and its gevent worker at gevent_port ${GEVENT_PORT}: where the proxy routes / and ${WEBSOCKET_URI} (PROXY-1, PROXY-2).`,
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const options = parseOdooConf(file.content).options;
    const enabled = options.get("http_enable");
    if (odooTruthy(enabled) === false)
      report(
        `${fileLabel(file)} must keep Odoo's HTTP server on; http_enable is ${JSON.stringify(enabled)}, so nothing answers the proxy on ${HTTP_PORT} (PROXY-1).`,
      );
    const ports: readonly [string, number, string, string][] = [
      ["http_port", HTTP_PORT, "/", "PROXY-1"],
      ["gevent_port", GEVENT_PORT, WEBSOCKET_URI, "PROXY-2"],
    ];
    for (const [key, port, uri, item] of ports) {
      const raw = options.get(key);
      if (raw !== undefined && odooInt(raw) !== port) {
        report(
          `${fileLabel(file)} must set ${key} = ${port} (Odoo's default), where the proxy sends ${uri}; it is ${JSON.stringify(raw)} (${item}).`,
        );
      }
    }
  }),
};

/**
 * PROXY-1, PROXY-2 across tiers: the servers the proxy sends Odoo's routes to are Odoo hosts of
 * the stack (their fixed addresses or private names). An upstream pointing at another tier or at
 * an address outside the stack routes users somewhere that is not Odoo — or out of the VPC.
 */
export const nginxUpstreamsAreOdooHosts: StackValidationPolicy = {
  name: "nginx-upstreams-are-odoo-hosts",
  description: `Checks whether every server the proxy passes / and ${WEBSOCKET_URI} to is an Odoo host of the stack, by address or name (PROXY-1, PROXY-2).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const hosts = hostViews(resources, unknown);
    if (hosts.length === 0) return unknown.finish();
    for (const file of renderedFiles(resources, unknown).filter(
      (f) => fileKindOf(f.path) === "nginx-site" || fileKindOf(f.path) === "nginx.conf",
    )) {
      unknown.run(() => {
        const upstreams = nginxUpstreams(file.content);
        const reported = new Set<string>();
        for (const server of nginxServers(file.content).filter(isServingServer)) {
          for (const uri of [...HTTP_URIS, WEBSOCKET_URI]) {
            const item = uri === WEBSOCKET_URI ? "PROXY-2" : "PROXY-1";
            for (const address of proxyHosts(chainFor(server, uri), upstreams) ?? []) {
              const host = hostByName(hosts, address);
              if (host?.role === "odoo" || reported.has(`${address} ${item}`)) continue;
              reported.add(`${address} ${item}`);
              const now = host ? `the ${host.role} host ${host.id}` : "no host of the stack";
              reportViolation(
                `${fileLabel(file)} must send ${uri} to Odoo hosts; it sends it to ${address}, ${now} (${item}).`,
                file.resource.urn,
              );
            }
          }
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [
  nginxRootRoutesToOdooHttp,
  nginxWebsocketRoutesToGevent,
  nginxForwardedHeaders,
  nginxProxyTimeouts,
  odooProxyModeEnabled,
  nginxTimeoutsCoverOdooLimits,
  odooListensOnCatalogPorts,
  nginxUpstreamsAreOdooHosts,
];
