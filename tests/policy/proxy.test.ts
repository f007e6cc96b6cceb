// Reverse proxy and WebSocket (PROXY-1 … PROXY-5): the rendered nginx site, evaluated the way
// nginx routes and inherits, and proxy_mode in odoo.conf.
import {
  nginxForwardedHeaders,
  nginxProxyTimeouts,
  nginxRootRoutesToOdooHttp,
  nginxTimeoutsCoverOdooLimits,
  nginxWebsocketRoutesToGevent,
  odooProxyModeEnabled,
} from "../../policy/proxy";
import { setLine, validateResource, validateStack, withContent, type FakeResource } from "./fakes";
import { replaced, stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const site = fixture.file("proxy", "/etc/nginx/conf.d/odoo.conf");
const label = `odoo.conf of proxy (${site.name})`;

/** The main server's line (the second `server {`), as messages name it. */
const mainServerLine = (r: FakeResource): number => {
  const lines = String(r.props.content).split("\n");
  return lines.findIndex((l, i) => /^server \{/.test(l) && lines.slice(i, i + 3).some((x) => x.includes("server_name"))) + 1;
};
const where = (r: FakeResource) => `the server at line ${mainServerLine(r)}`;

/** Replaces text inside the `location <path> {…}` block only. */
function inLocation(path: string, edit: (block: string) => string) {
  return (t: string): string => {
    const start = t.indexOf(`    location ${path} {`);
    const end = t.indexOf("    }\n", start);
    if (start < 0 || end < 0) throw new Error(`no location ${path}`);
    return t.slice(0, start) + edit(t.slice(start, end)) + t.slice(end);
  };
}
const dropLine = (pattern: RegExp) => (block: string) => block.replace(new RegExp(`\\n[^\\n]*${pattern.source}[^\\n]*`), "");

describe("the rendered site passes every proxy policy", () => {
  it.each([nginxRootRoutesToOdooHttp, nginxWebsocketRoutesToGevent, nginxForwardedHeaders, nginxProxyTimeouts])("$name", async (policy) => {
    expect(await validateResource(policy, site)).toEqual([]);
    expect(await validateResource(policy, fixture.file("proxy", "/etc/nginx/nginx.conf"))).toEqual([]);
  });
});

describe("nginx-root-routes-to-odoo-http (PROXY-1)", () => {
  it("rejects / routed to the gevent port, and a site that proxies nothing", async () => {
    const wrong = withContent(
      site,
      inLocation("/", (b) => b.replace("proxy_pass http://odoo;", "proxy_pass http://odoochat;")),
    );
    expect(await validateResource(nginxRootRoutesToOdooHttp, wrong)).toEqual([
      `${label} must proxy / to Odoo's HTTP port 8069; ${where(wrong)} proxies it to http://odoochat on port 8072 (PROXY-1).`,
    ]);
    const none = withContent(site, inLocation("/", dropLine(/proxy_pass/)));
    expect(await validateResource(nginxRootRoutesToOdooHttp, none)).toEqual([
      `${label} must proxy / to Odoo's HTTP port 8069; ${where(none)} does not proxy it (PROXY-1).`,
    ]);
  });

  it("rejects a proxy_pass to an upstream the file does not define", async () => {
    const r = withContent(
      site,
      inLocation("/", (b) => b.replace("proxy_pass http://odoo;", "proxy_pass http://$backend;")),
    );
    expect(await validateResource(nginxRootRoutesToOdooHttp, r)).toEqual([
      `${label} must proxy / to Odoo's HTTP port 8069; ${where(r)} proxies it to http://$backend, which names no upstream in the file (PROXY-1).`,
    ]);
  });
});

describe("nginx-websocket-routes-to-gevent (PROXY-2)", () => {
  const policy = nginxWebsocketRoutesToGevent;

  it("rejects /websocket routed to 8069 (the ghost bug)", async () => {
    const r = withContent(
      site,
      inLocation("/websocket", (b) => b.replace("proxy_pass http://odoochat;", "proxy_pass http://odoo;")),
    );
    expect(await validateResource(policy, r)).toEqual([
      `${label} must proxy /websocket to Odoo's gevent port 8072; ${where(r)} proxies it to http://odoo on port 8069 (PROXY-2).`,
    ]);
  });

  it("rejects a site without a /websocket location: / then catches it and sends it to 8069", async () => {
    const r = withContent(site, (t) => t.replace(/ {4}location \/websocket \{[\s\S]*?\n {4}\}\n/, ""));
    expect(await validateResource(policy, r)).toEqual([
      `${label} must proxy /websocket to Odoo's gevent port 8072; ${where(r)} proxies it to http://odoo on port 8069 (PROXY-2).`,
    ]);
  });

  it("rejects HTTP/1.0 and missing Upgrade or Connection headers", async () => {
    const http10 = withContent(site, inLocation("/websocket", dropLine(/proxy_http_version/)));
    expect(await validateResource(policy, http10)).toEqual([
      `${label} must set proxy_http_version 1.1 for /websocket in ${where(http10)}: WebSocket upgrades need HTTP/1.1, and it is nginx's default 1.0 (PROXY-2).`,
    ]);
    const noUpgrade = withContent(site, inLocation("/websocket", dropLine(/Upgrade \$http_upgrade/)));
    expect(await validateResource(policy, noUpgrade)).toEqual([
      `${label} must send \`proxy_set_header Upgrade $http_upgrade\` for /websocket in ${where(noUpgrade)}; it sends none (PROXY-2).`,
    ]);
    const closed = withContent(site, inLocation("/websocket", dropLine(/Connection \$connection_upgrade/)));
    expect(await validateResource(policy, closed)).toEqual([
      `${label} must send \`proxy_set_header Connection $connection_upgrade\` (or "upgrade") for /websocket in ${where(closed)}; it sends "close" (PROXY-2).`,
    ]);
  });

  it("rejects $connection_upgrade without the map that defines it", async () => {
    const r = withContent(site, (t) => t.replace(/map \$http_upgrade \$connection_upgrade \{[\s\S]*?\n\}\n/, ""));
    expect(await validateResource(policy, r)).toEqual([
      `${label} must send \`proxy_set_header Connection $connection_upgrade\` (or "upgrade") for /websocket in ${where(r)}; $connection_upgrade is used but no \`map $http_upgrade $connection_upgrade\` defines it (PROXY-2).`,
    ]);
  });
});

describe("nginx-forwarded-headers (PROXY-3)", () => {
  const policy = nginxForwardedHeaders;

  it.each([
    ["X-Forwarded-Proto", "$scheme"],
    ["X-Forwarded-For", "$proxy_add_x_forwarded_for"],
    ["X-Forwarded-Host", "$host"],
  ])("rejects / without %s", async (header, value) => {
    const r = withContent(site, inLocation("/", dropLine(new RegExp(`${header} `))));
    const messages = await validateResource(policy, r);
    // /web and /web/login reach the same location: reported once, under /.
    expect(messages).toEqual([`${label} must send \`proxy_set_header ${header} ${value}\` for / in ${where(r)}; it sends none (PROXY-3).`]);
  });

  it("rejects Host left to nginx's default $proxy_host", async () => {
    const r = withContent(site, inLocation("/websocket", dropLine(/Host \$host/)));
    expect(await validateResource(policy, r)).toEqual([
      `${label} must send \`proxy_set_header Host $host\` for /websocket in ${where(r)}; it sends "$proxy_host" (PROXY-3).`,
    ]);
  });

  it("follows nginx's inheritance: server-level headers do not reach a location that sets its own", async () => {
    // Move every forwarded header of / to the server level; / still sets X-Real-IP, so it inherits none of them.
    const r = withContent(site, (t) =>
      inLocation("/", (b) => b.replace(/\n\s+proxy_set_header (Host|X-Forwarded-[A-Za-z]+) [^\n]*/g, ""))(t).replace(
        "    client_max_body_size 100m;",
        "    client_max_body_size 100m;\n    proxy_set_header Host $host;\n    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    proxy_set_header X-Forwarded-Host $host;\n    proxy_set_header X-Forwarded-Proto $scheme;",
      ),
    );
    const messages = await validateResource(policy, r);
    expect(messages).toHaveLength(4);
    expect(messages[0]).toBe(
      `${label} must send \`proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for\` for / in ${where(r)}; it sends none (PROXY-3).`,
    );
    // Without X-Real-IP in /, the location sets no header and inherits the server's four.
    const inherits = withContent(r, inLocation("/", dropLine(/X-Real-IP/)));
    expect(await validateResource(policy, inherits)).toEqual([]);
  });
});

describe("nginx-proxy-timeouts (PROXY-5)", () => {
  const policy = nginxProxyTimeouts;

  it("rejects a 5 s read timeout, and nginx's 60 s default", async () => {
    const short = withContent(
      site,
      inLocation("/", (b) => b.replace("proxy_read_timeout 1230s;", "proxy_read_timeout 5s;")),
    );
    expect(await validateResource(policy, short)).toEqual([
      `${label} must set proxy_read_timeout to at least 300s for / in ${where(short)}; it is 5s (PROXY-5).`,
    ]);
    const unset = withContent(site, inLocation("/websocket", dropLine(/proxy_send_timeout/)));
    expect(await validateResource(policy, unset)).toEqual([
      `${label} must set proxy_send_timeout to at least 300s for /websocket in ${where(unset)}; it is nginx's default 60s (PROXY-5).`,
    ]);
  });

  it("takes the minimum from the policy config", async () => {
    expect(await validateResource(policy, site, { minimumTimeoutSeconds: 1200 })).toEqual([]);
    expect(await validateResource(policy, site, { minimumTimeoutSeconds: 1800 })).toHaveLength(4);
  });

  it("checks every other proxied location too, not only Odoo's known routes", async () => {
    const report = withContent(site, (t) =>
      t.replace(
        "    location / {",
        "    location /report/ {\n        proxy_pass http://odoo;\n        proxy_read_timeout 30s;\n        proxy_send_timeout 1230s;\n    }\n\n    location / {",
      ),
    );
    expect(await validateResource(policy, report)).toEqual([
      `${label} must set proxy_read_timeout to at least 300s for location /report/ in ${where(report)}; it is 30s (PROXY-5).`,
    ]);
  });
});

describe("odoo-proxy-mode-enabled (PROXY-4)", () => {
  const conf = fixture.file("odoo-1", "/etc/odoo/odoo.conf");
  const confLabel = `odoo.conf of odoo-1 (${conf.name})`;

  it("passes proxy_mode = True and rejects False or absent", async () => {
    expect(await validateResource(odooProxyModeEnabled, conf)).toEqual([]);
    expect(await validateResource(odooProxyModeEnabled, withContent(conf, setLine("proxy_mode", "proxy_mode = False")))).toEqual([
      `${confLabel} must set proxy_mode = True; it is "False" (PROXY-4).`,
    ]);
    expect(await validateResource(odooProxyModeEnabled, withContent(conf, setLine("proxy_mode", undefined)))).toEqual([
      `${confLabel} must set proxy_mode = True; it is absent (Odoo's default False) (PROXY-4).`,
    ]);
  });
});

describe("nginx-timeouts-cover-odoo-limits (PROXY-5)", () => {
  const policy = nginxTimeoutsCoverOdooLimits;

  it("passes the stack: nginx waits limit_time_real + 30 s", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects a proxy that gives up before Odoo's limit_time_real", async () => {
    const r = withContent(
      site,
      inLocation("/", (b) => b.replace("proxy_read_timeout 1230s;", "proxy_read_timeout 600s;")),
    );
    expect((await validateStack(policy, replaced(fixture.resources, r))).map((v) => v.message)).toEqual([
      `${label} must set proxy_read_timeout for / to at least Odoo's limit_time_real on odoo-1 (1200s), so Odoo ends long requests itself; it is 600s (PROXY-5).`,
    ]);
  });
});
