// The fleet's edge: every service outside the four hosts, in one process the suite starts inside
// its network namespace (`nsenter --net=… tsx tests/fleet/edge/main.ts CONFIG`). It stands in for
// the VPC resolver, AWS (S3 through s3rver, SSM, CloudWatch, Route 53, IMDSv2), Debian's mirror,
// Odoo's nightly repository and Let's Encrypt. The suite reads what happened and changes state
// (a new manifest in the bucket, a rotated parameter) through a Unix socket, which crosses the
// namespace boundary without a route.
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as path from "path";
import { acmeHandler } from "./acme";
import {
  applyRecordChange,
  cloudwatchHandler,
  imdsHandler,
  route53Handler,
  ssmHandler,
  body,
  type Call,
  type HostedZone,
  type InstanceIdentity,
  type MetricDatum,
  type Parameter,
} from "./aws";
import { startDns, type DnsZone } from "./dns";

// s3rver has no type package; its constructor and run() are all the edge uses.
const S3rver = require("s3rver") as new (opts: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> };

export interface EdgeConfig {
  readonly stateDir: string;
  readonly controlSocket: string;
  readonly region: string;
  readonly accountId: string;
  /** The resolver's address (VPC base + 2) and the addresses the edge's services answer on. */
  readonly resolverIp: string;
  readonly edgeIp: string;
  readonly imdsIp: string;
  readonly dns: { readonly records: Record<string, string>; readonly suffixes: Record<string, string> };
  readonly tls: { readonly certFile: string; readonly keyFile: string };
  readonly testCa: { readonly certFile: string; readonly keyFile: string };
  readonly parameters: Record<string, Parameter>;
  readonly instances: readonly InstanceIdentity[];
  readonly hostedZones: readonly HostedZone[];
  readonly buckets: readonly string[];
  /** Objects to put before the hosts boot: bucket, key, local file. */
  readonly objects: readonly { readonly bucket: string; readonly key: string; readonly file: string }[];
  readonly mirror: { readonly lists: string; readonly debs: string };
  /** A directory served as https://nightly.odoo.com/ (odoo.key and the apt repository). */
  readonly odooRepo: string;
}

const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

async function main(configFile: string): Promise<void> {
  const config = JSON.parse(fs.readFileSync(configFile, "utf8")) as EdgeConfig;
  const calls: Call[] = [];
  const metrics: MetricDatum[] = [];
  const record = (c: Omit<Call, "at">) => calls.push({ at: Date.now(), ...c });
  const hostByIp = new Map(config.instances.map((i) => [i.privateIp, i.host]));
  const parameters = new Map(Object.entries(config.parameters));
  const zone: DnsZone = { records: { ...config.dns.records }, suffixes: config.dns.suffixes, txt: new Map() };

  const s3 = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory: path.join(config.stateDir, "s3"),
    allowMismatchedSignatures: true,
    configureBuckets: config.buckets.map((name) => ({ name, configs: [] })),
  });
  const { port: s3Port } = await s3.run();
  const s3Raw = (method: string, rawPath: string, data?: Buffer): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: s3Port, method, path: rawPath, headers: data ? { "Content-Length": data.length } : {} },
        async (res) => resolve({ status: res.statusCode ?? 0, body: await body(res) }),
      );
      req.on("error", reject);
      req.end(data);
    });
  const s3Request = (method: string, bucket: string, key: string, data?: Buffer) =>
    s3Raw(method, `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`, data);
  for (const o of config.objects) {
    const r = await s3Request("PUT", o.bucket, o.key, fs.readFileSync(o.file));
    if (r.status !== 200) throw new Error(`s3rver refused ${o.bucket}/${o.key}: ${r.status}`);
  }

  const proxyToS3 = (req: http.IncomingMessage, res: http.ServerResponse, host: string | undefined) => {
    record({ service: "s3", action: req.method ?? "", host, detail: { host: req.headers.host, path: (req.url ?? "").split("?")[0] } });
    const upstream = http.request({ host: "127.0.0.1", port: s3Port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  };

  const serveFile = (res: http.ServerResponse, file: string | undefined, type = "application/octet-stream"): void => {
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, { "Content-Type": type, "Content-Length": fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  };

  // Debian's archive: the InRelease files and package lists as fetched when the image was built
  // (signed by Debian), and the package files by their pool name.
  const debs = new Map<string, string>();
  for (const f of fs.readdirSync(config.mirror.debs))
    debs.set(
      f.replace(/^[^_]+_\d+%3a/, (m) => m.replace(/\d+%3a$/, "")),
      path.join(config.mirror.debs, f),
    );
  const mirrorFile = (host: string, urlPath: string): string | undefined => {
    if (urlPath.includes("/pool/")) return debs.get(path.basename(decodeURIComponent(urlPath)));
    const listName = `${host}${urlPath}`.replace(/\//g, "_");
    const candidate = path.join(config.mirror.lists, listName);
    return fs.existsSync(candidate) ? candidate : undefined;
  };

  const ssm = ssmHandler(parameters, record, config.accountId, config.region);
  const cloudwatch = cloudwatchHandler(metrics, record);
  const route53 = route53Handler(config.hostedZones, zone, record);
  const acme = acmeHandler({
    base: "https://acme-v02.api.letsencrypt.org",
    caCert: config.testCa.certFile,
    caKey: config.testCa.keyFile,
    txt: zone.txt,
    record,
  });
  const imds = imdsHandler(new Map(config.instances.map((i) => [i.privateIp, i])), S3_CREDENTIALS, record);
  const region = config.region;

  const tlsServer = https.createServer(
    { cert: fs.readFileSync(config.tls.certFile), key: fs.readFileSync(config.tls.keyFile) },
    (req, res) => {
      const host = (req.headers.host ?? "").split(":")[0].toLowerCase();
      const caller = hostByIp.get((req.socket.remoteAddress ?? "").replace(/^::ffff:/, ""));
      const fail = (e: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(e));
      };
      if (host === `s3.${region}.amazonaws.com` || host.endsWith(`.s3.${region}.amazonaws.com`) || host === "s3.amazonaws.com")
        return proxyToS3(req, res, caller);
      if (host === `ssm.${region}.amazonaws.com`) return void ssm(req, res, caller).catch(fail);
      if (host === `monitoring.${region}.amazonaws.com`) return void cloudwatch(req, res, caller).catch(fail);
      if (host === "route53.amazonaws.com") return void route53(req, res, caller).catch(fail);
      if (host === "acme-v02.api.letsencrypt.org") return void acme(req, res, caller).catch(fail);
      if (host === "nightly.odoo.com") {
        record({ service: "odoo-repo", action: "GET", host: caller, detail: { path: req.url } });
        const target = path.resolve(config.odooRepo, `.${decodeURIComponent((req.url ?? "/").split("?")[0])}`);
        return serveFile(res, target.startsWith(config.odooRepo) ? target : undefined);
      }
      record({ service: "unknown", action: `${req.method} https://${host}${req.url}`, host: caller, detail: {} });
      res.writeHead(404);
      res.end();
    },
  );

  const plainServer = http.createServer((req, res): void => {
    const source = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const local = (req.socket.localAddress ?? "").replace(/^::ffff:/, "");
    const host = (req.headers.host ?? "").split(":")[0].toLowerCase();
    if (local === config.imdsIp) return void imds(req, res, source).catch(() => res.end());
    if (host === "deb.debian.org") {
      const urlPath = decodeURIComponent((req.url ?? "/").split("?")[0]);
      const file = mirrorFile(host, urlPath);
      record({ service: "debian-mirror", action: file ? "GET" : "404", host: hostByIp.get(source), detail: { path: urlPath } });
      return serveFile(res, file);
    }
    record({ service: "unknown", action: `${req.method} http://${host}${req.url}`, host: hostByIp.get(source), detail: {} });
    res.writeHead(404);
    res.end();
    return;
  });

  const listen = (server: http.Server | https.Server, port: number, address: string) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve());
    });
  await listen(tlsServer, 443, config.edgeIp);
  await listen(plainServer, 80, config.edgeIp);
  const imdsServer = http.createServer(plainServer.listeners("request")[0] as http.RequestListener);
  await listen(imdsServer, 80, config.imdsIp);
  await startDns(zone, config.resolverIp, (name, found) => record({ service: "dns", action: found ? "A" : "NXDOMAIN", detail: { name } }));

  // The suite's side: JSON over a Unix socket.
  fs.rmSync(config.controlSocket, { force: true });
  const control = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://control");
    const json = (v: unknown) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(v));
    };
    try {
      if (req.method === "GET" && url.pathname === "/calls") return json(calls);
      if (req.method === "GET" && url.pathname === "/metrics") return json(metrics);
      if (req.method === "GET" && url.pathname === "/txt") return json(Object.fromEntries(zone.txt));
      if (req.method === "GET" && url.pathname === "/records") return json(zone.records);
      // What `pulumi up` does to a hosted zone: UPSERT (or DELETE) A records, as Route 53 would.
      if (req.method === "POST" && url.pathname === "/records") {
        const changes = JSON.parse((await body(req)).toString("utf8")) as { action: string; name: string; ip: string }[];
        for (const c of changes) {
          applyRecordChange(zone, { action: c.action, name: c.name, type: "A", values: [c.ip] });
          record({
            service: "route53",
            action: `ChangeResourceRecordSets:${c.action}`,
            host: "pulumi",
            detail: { name: c.name, type: "A" },
          });
        }
        return json(zone.records);
      }
      if (req.method === "POST" && url.pathname === "/parameter") {
        const p = JSON.parse((await body(req)).toString("utf8")) as { name: string; value: string; type?: Parameter["type"] };
        const existing = parameters.get(p.name);
        parameters.set(p.name, { type: p.type ?? existing?.type ?? "SecureString", value: p.value, version: (existing?.version ?? 0) + 1 });
        return json({ version: parameters.get(p.name)?.version });
      }
      if (url.pathname === "/object") {
        const bucket = url.searchParams.get("bucket") ?? "";
        const key = url.searchParams.get("key") ?? "";
        if (req.method === "PUT") {
          const r = await s3Request("PUT", bucket, key, await body(req));
          return json({ status: r.status });
        }
        if (req.method === "GET") {
          const r = await s3Request("GET", bucket, key);
          res.writeHead(r.status);
          return res.end(r.body);
        }
      }
      // A bucket the user owns (their addons artifact's), as `aws s3 mb` creates it.
      if (req.method === "PUT" && url.pathname === "/bucket") {
        const r = await s3Raw("PUT", `/${encodeURIComponent(url.searchParams.get("name") ?? "")}`);
        return json({ status: r.status });
      }
      if (url.pathname === "/list") {
        const bucket = url.searchParams.get("bucket") ?? "";
        const prefix = url.searchParams.get("prefix") ?? "";
        const r = await s3Raw("GET", `/${bucket}/?list-type=2&prefix=${encodeURIComponent(prefix)}`);
        res.writeHead(r.status, { "Content-Type": "application/xml" });
        return res.end(r.body);
      }
      res.writeHead(404);
      res.end();
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  });
  await new Promise<void>((resolve) => control.listen(config.controlSocket, resolve));
  process.stdout.write(`edge ready: s3rver on 127.0.0.1:${s3Port}\n`);
  const stop = async () => {
    control.close();
    tlsServer.close();
    plainServer.close();
    imdsServer.close();
    await s3.close().catch(() => undefined);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

main(process.argv[2]).catch((e) => {
  process.stderr.write(`edge failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
