// nginx: goldens of nginx.conf and the Odoo site, and the proxy invariants (PROXY-1..5,
// NET-2, NET-3) read from a parse of the rendered text, not from string searches.
import type { StackModel } from "../../lib/model";
import { PATHS } from "../../lib/model";
import { PORTS } from "../../lib/ports";
import { proxyTimeoutSeconds } from "../../lib/sizing";
import { escapeNginx, GENERATED } from "../../templates/format";
import {
  NGINX_ACCESS_LOG_FORMAT,
  NGINX_BUSY_LOCATION,
  NGINX_REQUIRED_HEADERS,
  NGINX_RETRY_AFTER_SECONDS,
  NGINX_TARGET_WEBSOCKETS,
  NGINX_UPSTREAMS,
  NGINX_WEBSOCKET_HEADERS,
  nginxFiles,
  nginxMainSettings,
  nginxSiteSettingsFor,
  nginxWorkerConnections,
  renderNginxConf,
  renderNginxSite,
} from "../../templates/nginx";
import { expectGolden } from "../helpers/golden";
import { databasesAt, modelWith } from "../helpers/fixtures";

interface Directive {
  readonly name: string;
  readonly args: string[];
  readonly block?: Directive[];
}

/** A small nginx parser: words, quotes ('…', "…"), comments, `;` and `{ }` blocks. */
function parseNginx(text: string): Directive[] {
  const tokens: string[] = [];
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (/\s/.test(c)) i++;
    else if (c === "#") while (i < text.length && text[i] !== "\n") i++;
    else if (c === ";" || c === "{" || c === "}") tokens.push(text[i++]);
    else if (c === "'" || c === '"') {
      let j = i + 1;
      let word = "";
      while (text[j] !== c) {
        if (text[j] === "\\") j++;
        if (j >= text.length) throw new Error("unterminated quote");
        word += text[j++];
      }
      tokens.push(word);
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s;{}]/.test(text[j])) j++;
      tokens.push(text.slice(i, j));
      i = j;
    }
  }
  let pos = 0;
  const block = (): Directive[] => {
    const out: Directive[] = [];
    while (pos < tokens.length && tokens[pos] !== "}") {
      const words: string[] = [];
      while (tokens[pos] !== ";" && tokens[pos] !== "{") {
        if (pos >= tokens.length) throw new Error("directive without ';'");
        words.push(tokens[pos++]);
      }
      if (tokens[pos++] === "{") {
        out.push({ name: words[0], args: words.slice(1), block: block() });
        if (tokens[pos++] !== "}") throw new Error("unclosed block");
      } else out.push({ name: words[0], args: words.slice(1) });
    }
    return out;
  };
  const top = block();
  if (pos !== tokens.length) throw new Error("unbalanced '}'");
  return top;
}

/** Every directive named `name` at any depth. */
function findAll(tree: readonly Directive[], name: string): Directive[] {
  return tree.flatMap((d) => [...(d.name === name ? [d] : []), ...(d.block ? findAll(d.block, name) : [])]);
}
const only = (tree: readonly Directive[], name: string): Directive => {
  const found = tree.filter((d) => d.name === name);
  expect({ name, count: found.length }).toEqual({ name, count: 1 });
  return found[0];
};
const location = (server: Directive, ...args: string[]): Directive => {
  const found = (server.block ?? []).filter((d) => d.name === "location" && d.args.join(" ") === args.join(" "));
  expect({ location: args.join(" "), count: found.length }).toEqual({ location: args.join(" "), count: 1 });
  return found[0];
};
const proxyHeaders = (loc: Directive): [string, string][] =>
  (loc.block ?? []).filter((d) => d.name === "proxy_set_header").map((d) => [d.args[0], d.args[1]]);

const MODELS: [string, StackModel][] = [
  ["default", modelWith()],
  ["three-hosts", modelWith({ odooInstances: 3 })],
  ["odoo-16.0", modelWith({ odooVersion: "16.0" })],
  ["odoo-18.0", modelWith({ odooVersion: "18.0" })],
];
const site = (model: StackModel) => parseNginx(renderNginxSite(nginxSiteSettingsFor(model)));
const odooServer = (tree: Directive[]) => {
  const servers = tree.filter((d) => d.name === "server" && d.block?.some((x) => x.name === "server_name"));
  expect(servers).toHaveLength(1);
  return servers[0];
};

describe("nginx goldens", () => {
  it("nginx.conf", () => expectGolden("nginx/nginx.conf", renderNginxConf(nginxMainSettings())));
  it("site, default model", () => expectGolden("nginx/site-default.conf", renderNginxSite(nginxSiteSettingsFor(modelWith()))));
  it("site, three Odoo hosts", () =>
    expectGolden("nginx/site-three-hosts.conf", renderNginxSite(nginxSiteSettingsFor(modelWith({ odooInstances: 3 })))));
  it("site, two databases: one server per hostname, each pinning its own name (issue 16)", () =>
    expectGolden("nginx/site-two-databases.conf", renderNginxSite(nginxSiteSettingsFor(modelWith(databasesAt("erp", "shop"))))));
  it.each(["16.0", "18.0"])("site, Odoo %s: the same routes as 17.0 (gevent_port and /websocket since 16.0)", (odooVersion) => {
    expect(renderNginxSite(nginxSiteSettingsFor(modelWith({ odooVersion })))).toBe(renderNginxSite(nginxSiteSettingsFor(modelWith())));
  });
});

describe("nginx.conf invariants", () => {
  const text = renderNginxConf(nginxMainSettings());
  const tree = parseNginx(text);
  const http = only(tree, "http");

  it("starts with the generated header", () => expect(text.split("\n")[0]).toBe(`# ${GENERATED}`));

  it(`holds ${NGINX_TARGET_WEBSOCKETS} WebSockets (2 connections each) in a single worker`, () => {
    const connections = Number(only(only(tree, "events").block ?? [], "worker_connections").args[0]);
    expect(connections).toBeGreaterThanOrEqual(2 * NGINX_TARGET_WEBSOCKETS);
    expect(Number(only(tree, "worker_rlimit_nofile").args[0])).toBeGreaterThanOrEqual(connections);
    expect(only(tree, "worker_processes").args).toEqual(["auto"]);
    expect(only(tree, "user").args).toEqual(["www-data"]);
  });

  it("includes the generated site only, never sites-enabled (whose default serves port 80)", () => {
    expect(findAll(tree, "include").map((d) => d.args[0])).toEqual(["/etc/nginx/mime.types", "/etc/nginx/conf.d/*.conf"]);
    expect(PATHS.nginxSite.startsWith("/etc/nginx/conf.d/")).toBe(true);
    expect(text).not.toContain("sites-enabled");
  });

  it("logs JSON with the fields p95/p99 per route needs, without query strings (OBS-4)", () => {
    const format = only(http.block ?? [], "log_format");
    expect(format.args.slice(0, 2)).toEqual([NGINX_ACCESS_LOG_FORMAT, "escape=json"]);
    const fields = JSON.parse(format.args[2]) as Record<string, string>;
    expect(fields).toMatchObject({
      request_time: "$request_time",
      upstream_response_time: "$upstream_response_time",
      status: "$status",
      uri: "$uri",
      upstream_addr: "$upstream_addr",
    });
    expect(Object.values(fields)).not.toContain("$request_uri");
    expect(Object.values(fields)).not.toContain("$args");
    expect(only(http.block ?? [], "access_log").args).toEqual(["/var/log/nginx/access.log", NGINX_ACCESS_LOG_FORMAT]);
  });

  it("hides its version and compresses text responses", () => {
    expect(only(http.block ?? [], "server_tokens").args).toEqual(["off"]);
    expect(only(http.block ?? [], "gzip").args).toEqual(["on"]);
    expect(only(http.block ?? [], "gzip_types").args).toEqual(
      expect.arrayContaining(["application/javascript", "application/json", "text/css"]),
    );
  });

  it("keeps temp files in the sandbox's directory when it runs unprivileged", () => {
    const sandbox = parseNginx(renderNginxConf({ ...nginxMainSettings(), tempDir: "/tmp/sandbox/tmp" }));
    const http = only(sandbox, "http").block ?? [];
    for (const kind of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
      expect(only(http, `${kind}_temp_path`).args).toEqual([`/tmp/sandbox/tmp/${kind}`]);
    }
    expect(findAll(tree, "proxy_temp_path")).toEqual([]);
  });

  it("refuses fewer descriptors than connections", () => {
    expect(() => renderNginxConf({ ...nginxMainSettings(), workerRlimitNofile: 100 })).toThrow(
      /worker_rlimit_nofile = 100: must be at least worker_connections/,
    );
  });

  it.each([
    [1000, 4096],
    [5000, 16384],
    [6500, 16384],
    [6600, 32768],
  ])("sizes worker_connections for %i WebSockets as %i", (websockets, connections) => {
    expect(nginxWorkerConnections(websockets)).toBe(connections);
  });
});

describe("nginx site invariants", () => {
  it.each(MODELS)(
    "%s: listens on 443 with TLS, and on 80 only in a server that answers a redirect to https://<domain> (NET-2, NET-3)",
    (_n, model) => {
      const tree = site(model);
      const servers = tree.filter((d) => d.name === "server" && d.block?.some((x) => x.name === "listen"));
      const plain = servers.filter((d) => only(d.block ?? [], "listen").args[0] === String(PORTS.http.port));
      for (const server of servers.filter((d) => !plain.includes(d))) {
        for (const l of (server.block ?? []).filter((d) => d.name === "listen")) {
          expect(l.args[0]).toBe(String(PORTS.https.port));
          expect(l.args).toContain("ssl");
        }
      }
      // Issue 12 item 11: port 80 on by default, and nothing in that server but the redirect.
      expect(model.settings.httpRedirect).toBe(true);
      expect(plain).toHaveLength(1);
      expect(plain[0].block?.map((d) => [d.name, ...d.args])).toEqual([
        ["listen", "80", "default_server"],
        ["return", "301", `https://${model.settings.domain}$request_uri`],
      ]);
    },
  );

  it("renders no plain-HTTP server at all with httpRedirect = false", () => {
    const model = modelWith({ httpRedirect: false });
    const text = renderNginxSite(nginxSiteSettingsFor(model));
    expect(text).not.toMatch(/listen\s+(\S+:)?80\b/);
    for (const l of findAll(parseNginx(text), "listen")) expect(l.args).toContain("ssl");
  });

  it.each(MODELS)("%s: refuses TLS handshakes for names other than the domain", (_n, model) => {
    const tree = site(model);
    const fallback = tree.filter((d) => d.name === "server" && d.block?.some((x) => x.name === "ssl_reject_handshake"));
    expect(fallback).toHaveLength(1);
    expect(only(fallback[0].block ?? [], "listen").args).toContain("default_server");
    expect(only(fallback[0].block ?? [], "ssl_reject_handshake").args).toEqual(["on"]);
    expect(fallback[0].block?.some((d) => d.name === "location" || d.name === "proxy_pass")).toBe(false);
  });

  it.each(MODELS)("%s: every Odoo host is in both upstreams, in the same order (PROXY-1, PROXY-2)", (_n, model) => {
    const tree = site(model);
    const servers = (name: string) =>
      only(
        tree.filter((d) => d.name === "upstream" && d.args[0] === name),
        "upstream",
      )
        .block?.filter((d) => d.name === "server")
        .map((d) => d.args[0]);
    expect(servers("odoo")).toEqual(model.hosts.odoo.map((h) => `${h.privateIp}:${PORTS.odooHttp.port}`));
    expect(servers("odoochat")).toEqual(model.hosts.odoo.map((h) => `${h.privateIp}:${PORTS.odooGevent.port}`));
  });

  it.each(MODELS)("%s: both upstreams pin a client to one host with the same hash", (_n, model) => {
    for (const upstream of findAll(site(model), "upstream")) {
      expect({ upstream: upstream.args[0], hash: only(upstream.block ?? [], "hash").args }).toEqual({
        upstream: upstream.args[0],
        hash: ["$remote_addr"],
      });
    }
  });

  it.each(MODELS)("%s: routes / to odoo and /websocket to odoochat with the Upgrade handshake (PROXY-1, PROXY-2)", (_n, model) => {
    const server = odooServer(site(model));
    const root = location(server, "/");
    const ws = location(server, "/websocket");
    expect(only(root.block ?? [], "proxy_pass").args).toEqual(["http://odoo"]);
    expect(only(ws.block ?? [], "proxy_pass").args).toEqual(["http://odoochat"]);
    expect(only(ws.block ?? [], "proxy_http_version").args).toEqual(["1.1"]);
    expect(proxyHeaders(ws)).toEqual(expect.arrayContaining(Object.entries(NGINX_WEBSOCKET_HEADERS)));
    const map = only(
      site(model).filter((d) => d.name === "map"),
      "map",
    );
    expect(map.args).toEqual(["$http_upgrade", "$connection_upgrade"]);
    expect(map.block?.map((d) => [d.name, ...d.args])).toEqual([
      ["default", "upgrade"],
      ["", "close"],
    ]);
  });

  it.each(MODELS)("%s: every proxied location sends each forwarded header exactly once (PROXY-3)", (_n, model) => {
    const proxied = findAll(site(model), "location").filter((l) => l.block?.some((d) => d.name === "proxy_pass"));
    expect(proxied).toHaveLength(2);
    for (const loc of proxied) {
      const headers = proxyHeaders(loc);
      for (const [name, value] of Object.entries(NGINX_REQUIRED_HEADERS)) {
        expect({ location: loc.args.join(" "), name, values: headers.filter(([n]) => n === name).map(([, v]) => v) }).toEqual({
          location: loc.args.join(" "),
          name,
          values: [value],
        });
      }
      expect(new Set(headers.map(([n]) => n.toLowerCase())).size).toBe(headers.length);
    }
  });

  it.each(MODELS)("%s: proxy timeouts outlive Odoo's limit_time_real, and nothing is replayed (PROXY-5)", (_n, model) => {
    const expected = proxyTimeoutSeconds(model.settings.sizing.odoo.limitTimeReal);
    expect(expected).toBeGreaterThan(model.settings.sizing.odoo.limitTimeReal);
    for (const loc of findAll(site(model), "location").filter((l) => l.block?.some((d) => d.name === "proxy_pass"))) {
      const block = loc.block ?? [];
      expect(only(block, "proxy_read_timeout").args).toEqual([`${expected}s`]);
      expect(only(block, "proxy_send_timeout").args).toEqual([`${expected}s`]);
      expect(only(block, "proxy_connect_timeout").args).toEqual(["5s"]);
      expect(only(block, "proxy_next_upstream").args).toEqual(["off"]);
    }
  });

  it("follows a longer limit_time_real from the stack config (PROXY-5)", () => {
    const model = modelWith({ odoo: { limitTimeReal: 3600 } });
    const root = location(odooServer(site(model)), "/");
    expect(only(root.block ?? [], "proxy_read_timeout").args).toEqual(["3630s"]);
  });

  it.each(MODELS)("%s: closes the database manager (ODOO-2)", (_n, model) => {
    const manager = location(odooServer(site(model)), "~", "^/web/database");
    expect(manager.block?.map((d) => [d.name, ...d.args])).toEqual([["return", "404"]]);
  });

  it.each(MODELS)("%s: serves the domain with modern TLS, HSTS and secure session cookies", (_n, model) => {
    const server = odooServer(site(model)).block ?? [];
    expect(only(server, "server_name").args).toEqual([model.settings.domain]);
    expect(only(server, "ssl_protocols").args).toEqual(["TLSv1.2", "TLSv1.3"]);
    expect(only(server, "ssl_certificate").args).toEqual([`${PATHS.nginxTlsDir}/fullchain.pem`]);
    expect(only(server, "ssl_certificate_key").args).toEqual([`${PATHS.nginxTlsDir}/privkey.pem`]);
    expect(only(server, "add_header").args).toEqual(["Strict-Transport-Security", "max-age=31536000; includeSubDomains", "always"]);
    expect(only(server, "proxy_cookie_flags").args).toEqual(["session_id", "samesite=lax", "secure"]);
    expect(only(server, "client_max_body_size").args).toEqual(["100m"]);
    // add_header is inherited only by levels that set none: a location with its own repeats HSTS.
    for (const loc of findAll(server, "location").filter((l) => findAll(l.block ?? [], "add_header").length > 0)) {
      expect(findAll(loc.block ?? [], "add_header").map((d) => d.args)).toContainEqual([
        "Strict-Transport-Security",
        "max-age=31536000; includeSubDomains",
        "always",
      ]);
    }
  });

  it.each(MODELS)(
    "%s: caps each Odoo host at its workers plus a bounded queue, then answers 503 with Retry-After (PROXY-5)",
    (_n, model) => {
      const tree = site(model);
      const odoo = findAll(tree, "upstream").find((u) => u.args[0] === NGINX_UPSTREAMS.http);
      const servers = findAll(odoo?.block ?? [], "server");
      const maxConns = model.settings.sizing.odoo.httpMaxConns;
      expect(servers.map((d) => d.args[1])).toEqual(model.hosts.odoo.map(() => `max_conns=${maxConns}`));
      // max_conns holds across nginx's workers only with the group in shared memory.
      expect(only(odoo?.block ?? [], "zone").args).toEqual([NGINX_UPSTREAMS.http, "64k"]);
      // Below Odoo's own listen backlog of 8 per worker (odoo/service/server.py L992).
      expect(maxConns).toBeLessThan(model.settings.sizing.odoo.workers * 9);
      // The gevent upstream (WebSockets) is not capped.
      const chat = findAll(tree, "upstream").find((u) => u.args[0] === NGINX_UPSTREAMS.websocket);
      expect(findAll(chat?.block ?? [], "server").every((d) => d.args.length === 1)).toBe(true);

      const server = odooServer(tree).block ?? [];
      expect(only(location(odooServer(tree), "/").block ?? [], "error_page").args).toEqual(["502", "=", NGINX_BUSY_LOCATION]);
      const busy = location(odooServer(tree), NGINX_BUSY_LOCATION).block ?? [];
      expect(findAll(busy, "add_header").map((d) => d.args)).toContainEqual(["Retry-After", String(NGINX_RETRY_AFTER_SECONDS), "always"]);
      expect(only(busy, "return").args[0]).toBe("503");
      expect(findAll(busy, "proxy_pass")).toEqual([]);
      expect(findAll(server, "location").length).toBe(4);
    },
  );

  it("renders the sandbox's loopback address, port, certificate and upstreams", () => {
    const settings = {
      ...nginxSiteSettingsFor(modelWith()),
      listenAddress: "127.0.0.1",
      listenPort: 18443,
      redirectListenPort: 18080,
      tlsCertificatePath: "/tmp/sb/cert.pem",
      tlsCertificateKeyPath: "/tmp/sb/key.pem",
      odooHttpServers: [{ address: "127.0.0.1", port: 18069 }],
      odooGeventServers: [{ address: "127.0.0.1", port: 18072 }],
      clientMaxBodyMiB: 250,
    };
    const tree = parseNginx(renderNginxSite(settings));
    expect(findAll(tree, "listen").map((d) => d.args)).toEqual([
      ["127.0.0.1:18443", "ssl", "http2", "default_server"],
      ["127.0.0.1:18080", "default_server"],
      ["127.0.0.1:18443", "ssl", "http2"],
    ]);
    expect(
      findAll(tree, "server")
        .filter((d) => d.args.length > 0)
        .map((d) => d.args[0]),
    ).toEqual(["127.0.0.1:18069", "127.0.0.1:18072"]);
    expect(only(odooServer(tree).block ?? [], "client_max_body_size").args).toEqual(["250m"]);
  });
});

describe("nginx site checks and escaping", () => {
  const base = nginxSiteSettingsFor(modelWith({ odooInstances: 2 }));

  it("refuses upstreams that disagree on hosts or order (a WebSocket would land on another host)", () => {
    expect(() => renderNginxSite({ ...base, odooGeventServers: [...base.odooGeventServers].reverse() })).toThrow(
      /upstream odoochat: must list the same Odoo hosts in the same order/,
    );
  });

  it("refuses an empty upstream (PROXY-1)", () => {
    expect(() => renderNginxSite({ ...base, odooHttpServers: [], odooGeventServers: [] })).toThrow(
      /upstream odoo: needs at least one Odoo host/,
    );
  });

  it("refuses a wildcard upstream address", () => {
    expect(() =>
      renderNginxSite({
        ...base,
        odooHttpServers: [{ address: "0.0.0.0", port: 8069 }],
        odooGeventServers: [{ address: "0.0.0.0", port: 8072 }],
      }),
    ).toThrow(/upstream server "0\.0\.0\.0": must be an Odoo host's private address/);
  });

  it("refuses a zero timeout (PROXY-5)", () => {
    expect(() => renderNginxSite({ ...base, proxyReadTimeoutSeconds: 0 })).toThrow(/proxy_read_timeout = 0: must be a whole number ≥ 1/);
  });

  it("refuses '$' and newlines in values: variables belong to the template", () => {
    expect(() => escapeNginx("a\nb")).toThrow(/single line/);
    expect(() => renderNginxSite({ ...base, serverName: "erp.example.com;\n    listen 80" })).toThrow(/single line/);
    expect(() => renderNginxSite({ ...base, serverName: "$host" })).toThrow(/must not contain '\$'/);
    expect(() => renderNginxConf({ ...nginxMainSettings(), accessLogPath: "/var/log/nginx/$host.log" })).toThrow(/must not contain '\$'/);
  });
});

describe("nginx host delivery", () => {
  it("delivers nginx.conf and the site, world-readable (no secrets; the key is a separate file)", () => {
    const model = modelWith();
    expect(nginxFiles(model).map((f) => [f.path, f.mode, f.owner, f.group])).toEqual([
      [PATHS.nginxConf, "0644", "root", "root"],
      [PATHS.nginxSite, "0644", "root", "root"],
    ]);
    expect(nginxFiles(model)[1].content).toBe(renderNginxSite(nginxSiteSettingsFor(model)));
  });
});

describe("several databases, each on its own hostname (issue 16, ODOO-3, PROXY-3)", () => {
  const model = modelWith(databasesAt("erp", "shop"));
  const tree = site(model);
  const servers = tree.filter((d) => d.name === "server" && d.block?.some((x) => x.name === "server_name"));
  const namesOf = (server: Directive) => server.block?.filter((d) => d.name === "server_name").flatMap((d) => d.args) ?? [];
  const tlsServers = servers.filter((s) => s.block?.some((d) => d.name === "listen" && d.args.includes("ssl")));

  it("serves each hostname from its own TLS server, and nothing else", () => {
    expect(tlsServers.map(namesOf)).toEqual([["erp.example.com"], ["shop.example.com"]]);
  });

  it("writes each server's own name into Host and X-Forwarded-Host in every proxied location, never the client's", () => {
    for (const server of tlsServers) {
      const [name] = namesOf(server);
      const locations = (server.block ?? []).filter((d) => d.name === "location" && d.block?.some((x) => x.name === "proxy_pass"));
      expect(locations.length).toBe(2);
      for (const location of locations) {
        const headers = new Map((location.block ?? []).filter((d) => d.name === "proxy_set_header").map((d) => [d.args[0], d.args[1]]));
        expect([name, headers.get("Host"), headers.get("X-Forwarded-Host")]).toEqual([name, name, name]);
        expect(headers.get("X-Forwarded-For")).toBe("$proxy_add_x_forwarded_for");
      }
    }
  });

  it("keeps the TLS handshake refused for any other name, and redirects each name's plain HTTP to itself", () => {
    const defaults = tree.filter((d) => d.name === "server" && d.block?.some((x) => x.name === "ssl_reject_handshake"));
    expect(defaults).toHaveLength(1);
    const redirects = servers
      .filter((s) => s.block?.some((d) => d.name === "return"))
      .map((s) => [namesOf(s)[0], s.block?.find((d) => d.name === "return")?.args]);
    expect(redirects).toEqual([
      ["erp.example.com", ["301", "https://erp.example.com$request_uri"]],
      ["shop.example.com", ["301", "https://shop.example.com$request_uri"]],
    ]);
  });

  it("refuses pinned names that leave out the primary name or repeat one", () => {
    const base = nginxSiteSettingsFor(model);
    expect(() => renderNginxSite({ ...base, pinnedServerNames: ["shop.example.com"] })).toThrow(/must be one of the pinned server names/);
    expect(() => renderNginxSite({ ...base, pinnedServerNames: ["erp.example.com", "erp.example.com"] })).toThrow(
      /each hostname gets one server block/,
    );
  });

  it("leaves the one-database site as it was: one server forwarding $host", () => {
    expect(nginxSiteSettingsFor(modelWith()).pinnedServerNames).toBeUndefined();
    expect(nginxSiteSettingsFor(modelWith(databasesAt("erp"))).pinnedServerNames).toBeUndefined();
    expect(renderNginxSite(nginxSiteSettingsFor(modelWith(databasesAt("erp"))))).toBe(renderNginxSite(nginxSiteSettingsFor(modelWith())));
  });
});
