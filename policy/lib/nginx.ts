// What nginx does with a parsed configuration, for the proxy policies: which server and which
// location a request reaches, which value of a directive applies there (inheritance), and
// which ports a proxy_pass ends up on. Written from nginx's documentation:
//   location selection  https://nginx.org/en/docs/http/ngx_http_core_module.html#location
//   proxy_set_header    https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header
//                       ("inherited from the previous configuration level if and only if there
//                        are no proxy_set_header directives defined on the current level")
import { parseNginx, type NginxDirective } from "./parse";

/** A block and the blocks around it, outermost first: [http, server, location, …]. */
export type NginxChain = readonly (readonly NginxDirective[])[];

export interface NginxServer {
  readonly directive: NginxDirective;
  /** The levels above the server (the http block, or the top of an included site file). */
  readonly outer: NginxChain;
}

/**
 * Every `server` of an http context in the file. A site file in conf.d is included inside
 * `http {}`, so its top level is the http level; nginx.conf has an explicit `http` block.
 */
export function nginxServers(text: string): NginxServer[] {
  const top = parseNginx(text);
  const out: NginxServer[] = [];
  const visit = (block: readonly NginxDirective[], outer: NginxChain) => {
    for (const d of block) {
      if (d.name === "server" && d.block) out.push({ directive: d, outer });
      else if (d.name === "http" && d.block) visit(d.block, [...outer, d.block]);
    }
  };
  visit(top, [top]);
  return out;
}

/** The top-level (http) directives that define upstreams, for proxy_pass resolution. */
export function nginxUpstreams(text: string): Map<string, NginxDirective[]> {
  const upstreams = new Map<string, NginxDirective[]>();
  const visit = (block: readonly NginxDirective[]) => {
    for (const d of block) {
      if (d.name === "upstream" && d.block && d.args[0]) upstreams.set(d.args[0], [...d.block]);
      else if (d.name === "http" && d.block) visit(d.block);
    }
  };
  visit(parseNginx(text));
  return upstreams;
}

/**
 * A server that serves requests: not one that only rejects TLS handshakes or only redirects
 * or returns a status. These are the servers the routing rules apply to.
 */
export function isServingServer(server: NginxServer): boolean {
  const block = server.directive.block ?? [];
  const walk = (b: readonly NginxDirective[]): NginxDirective[] => b.flatMap((d) => [d, ...walk(d.block ?? [])]);
  return (
    walk(block).some((d) => ["proxy_pass", "root", "alias", "fastcgi_pass", "uwsgi_pass", "grpc_pass"].includes(d.name)) ||
    !walk(block).some((d) => d.name === "return" || (d.name === "ssl_reject_handshake" && d.args[0] === "on"))
  );
}

interface LocationMatch {
  readonly modifier: "=" | "^~" | "~" | "~*" | "" | "@";
  readonly pattern: string;
}

function locationOf(d: NginxDirective): LocationMatch {
  const [a, b] = d.args;
  if (a === "=" || a === "^~" || a === "~" || a === "~*") return { modifier: a, pattern: b ?? "" };
  if (a?.startsWith("@")) return { modifier: "@", pattern: a };
  // Modifiers written without a space ("=/websocket", "~^/web") are accepted by nginx too.
  const glued = /^(=|\^~|~\*|~)(.+)$/.exec(a ?? "");
  if (glued) return { modifier: glued[1] as LocationMatch["modifier"], pattern: glued[2] };
  return { modifier: "", pattern: a ?? "" };
}

function regexMatches(m: LocationMatch, uri: string): boolean {
  try {
    return new RegExp(m.pattern, m.modifier === "~*" ? "i" : "").test(uri);
  } catch {
    return false;
  }
}

/**
 * The chain of blocks that handles `uri` in `block` (a server or location), nginx's order:
 * an exact match wins; otherwise the longest matching prefix is remembered; if it is `^~` it
 * wins, else the regular expressions are tried in order and the first match wins; else the
 * longest prefix. Nested locations inside the chosen one are searched the same way.
 */
export function selectLocation(block: readonly NginxDirective[], uri: string): NginxChain {
  const locations = block.filter((d) => d.name === "location" && d.block);
  const chosen = (d: NginxDirective | undefined): NginxChain => (d && d.block ? [d.block, ...selectLocation(d.block, uri)] : []);

  const exact = locations.find((d) => {
    const m = locationOf(d);
    return m.modifier === "=" && m.pattern === uri;
  });
  if (exact) return exact.block ? [exact.block] : [];

  let longest: NginxDirective | undefined;
  for (const d of locations) {
    const m = locationOf(d);
    if ((m.modifier === "" || m.modifier === "^~") && uri.startsWith(m.pattern)) {
      if (!longest || m.pattern.length > locationOf(longest).pattern.length) longest = d;
    }
  }
  if (longest && locationOf(longest).modifier === "^~") return chosen(longest);
  const regex = locations.find((d) => {
    const m = locationOf(d);
    return (m.modifier === "~" || m.modifier === "~*") && regexMatches(m, uri);
  });
  if (regex) return chosen(regex);
  return chosen(longest);
}

/** The full chain for `uri` on `server`: http level(s), server, location(s). */
export function chainFor(server: NginxServer, uri: string): NginxChain {
  const block = server.directive.block ?? [];
  return [...server.outer, block, ...selectLocation(block, uri)];
}

/**
 * Every location of a server that proxies (proxy_pass directly inside it), nested ones included,
 * with the chain of levels above it and how messages name it ("location /report/"): the
 * requests a fixed list of URIs does not reach still get the same checks.
 */
export function proxiedLocations(server: NginxServer): { readonly chain: NginxChain; readonly name: string }[] {
  const out: { chain: NginxChain; name: string }[] = [];
  const visit = (block: readonly NginxDirective[], chain: NginxChain) => {
    for (const d of block.filter((x) => x.name === "location" && x.block)) {
      const inner = [...chain, d.block as readonly NginxDirective[]];
      if ((d.block ?? []).some((x) => x.name === "proxy_pass")) out.push({ chain: inner, name: `location ${d.args.join(" ")}` });
      visit(d.block ?? [], inner);
    }
  };
  visit(server.directive.block ?? [], [...server.outer, server.directive.block ?? []]);
  return out;
}

/** True when `uri` reaches a location at all (a server without a matching location serves files). */
export const hasLocation = (server: NginxServer, uri: string): boolean => selectLocation(server.directive.block ?? [], uri).length > 0;

/**
 * The directives of `name` that apply at the innermost level of `chain`: those of the deepest
 * level that has any (nginx's inheritance for both scalar and array directives).
 */
export function effective(chain: NginxChain, name: string): NginxDirective[] {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = chain[i].filter((d) => d.name === name);
    if (found.length > 0) return found;
  }
  return [];
}

/** The value of a scalar directive at the innermost level (the last one written there). */
export function effectiveValue(chain: NginxChain, name: string): string[] | undefined {
  const found = effective(chain, name);
  return found.length > 0 ? [...found[found.length - 1].args] : undefined;
}

/**
 * Headers proxied to the upstream: the effective proxy_set_header list, name → value (names
 * compared case-insensitively, as HTTP does). nginx's own defaults (Host $proxy_host,
 * Connection close) apply when no level sets any.
 */
export function proxyHeaders(chain: NginxChain): Map<string, string> {
  const headers = new Map<string, string>([
    ["host", "$proxy_host"],
    ["connection", "close"],
  ]);
  for (const d of effective(chain, "proxy_set_header")) {
    if (d.args[0] !== undefined) headers.set(d.args[0].toLowerCase(), d.args[1] ?? "");
  }
  return headers;
}

/** Where a request handled by `chain` is proxied: the ports it may reach, or why it cannot be told. */
export type ProxyTarget =
  | { readonly kind: "none" }
  | { readonly kind: "ports"; readonly target: string; readonly ports: readonly number[] }
  | { readonly kind: "unresolved"; readonly target: string };

export function proxyTarget(chain: NginxChain, upstreams: ReadonlyMap<string, readonly NginxDirective[]>): ProxyTarget {
  // proxy_pass is not inherited: only the innermost location's counts.
  const inner = chain[chain.length - 1] ?? [];
  const pass = inner.filter((d) => d.name === "proxy_pass").pop();
  if (!pass || pass.args[0] === undefined) return { kind: "none" };
  const target = pass.args[0];
  const m = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(target);
  if (!m || target.includes("$")) return { kind: "unresolved", target };
  const [, scheme, hostPort] = m;
  const upstream = upstreams.get(hostPort);
  if (upstream) {
    const ports = upstream.filter((d) => d.name === "server" && d.args[0]).map((d) => portOf(d.args[0], 80));
    return ports.length > 0 ? { kind: "ports", target, ports } : { kind: "unresolved", target };
  }
  return { kind: "ports", target, ports: [portOf(hostPort, scheme === "https" ? 443 : 80)] };
}

/**
 * The hosts (addresses or names, without ports) a request handled by `chain` is proxied to:
 * the upstream's servers or the proxy_pass host itself; undefined when nothing is proxied or the
 * target cannot be read (a variable).
 */
export function proxyHosts(chain: NginxChain, upstreams: ReadonlyMap<string, readonly NginxDirective[]>): string[] | undefined {
  const inner = chain[chain.length - 1] ?? [];
  const pass = inner.filter((d) => d.name === "proxy_pass").pop();
  const target = pass?.args[0];
  if (target === undefined) return undefined;
  const m = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(target);
  if (!m || target.includes("$")) return undefined;
  const upstream = upstreams.get(m[2]);
  const addresses = upstream ? upstream.filter((d) => d.name === "server" && d.args[0]).map((d) => d.args[0]) : [m[2]];
  return addresses.map((a) => (a.startsWith("[") ? a.slice(1, a.indexOf("]")) : a.replace(/:\d+$/, "")));
}

/** "10.0.0.1:8069" → 8069, "[::1]:8072" → 8072, "host" → the scheme's default. */
function portOf(address: string, fallback: number): number {
  const m = /:(\d+)$/.exec(address);
  return m ? Number(m[1]) : fallback;
}
