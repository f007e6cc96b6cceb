// Stand-ins for the AWS APIs the hosts call, speaking the wire protocols the Debian awscli 2.9 and
// boto3 use: SSM (JSON 1.1), CloudWatch PutMetricData (query protocol), Route 53 (REST XML, for
// certbot's DNS-01 plugin) and the instance metadata service (IMDSv2 only, as the plan's
// instances require). They answer from the plan's data and record every call for the suite.
import { randomUUID } from "crypto";
import type { IncomingMessage, ServerResponse } from "http";

export interface Call {
  readonly at: number;
  readonly service: string;
  readonly action: string;
  /** The calling host, from its source address (undefined for the suite's own calls). */
  readonly host?: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface Parameter {
  type: "String" | "SecureString";
  value: string;
  version: number;
}

export interface MetricDatum {
  readonly namespace: string;
  readonly name: string;
  readonly value: number;
  readonly unit?: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly host?: string;
}

export interface InstanceIdentity {
  readonly host: string;
  readonly instanceId: string;
  readonly privateIp: string;
  readonly publicIp?: string;
  /** Seconds after the instance's first metadata request before its public address shows (an EIP associated after launch). */
  readonly publicIpAfterSeconds?: number;
  readonly availabilityZone: string;
  readonly region: string;
  readonly accountId: string;
  readonly roleName: string;
}

export async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, text: string, type: string): void {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(text), "x-amzn-RequestId": randomUUID() });
  res.end(text);
}

// --- SSM ---------------------------------------------------------------------------------------
export function ssmHandler(parameters: Map<string, Parameter>, record: (c: Omit<Call, "at">) => void, accountId: string, region: string) {
  const arn = (name: string) => `arn:aws:ssm:${region}:${accountId}:parameter${name}`;
  const view = (name: string, p: Parameter, decrypt: boolean) => ({
    Name: name,
    Type: p.type,
    Value: p.type === "SecureString" && !decrypt ? "[encrypted]" : p.value,
    Version: p.version,
    LastModifiedDate: Date.now() / 1000,
    ARN: arn(name),
    DataType: "text",
  });
  return async (req: IncomingMessage, res: ServerResponse, host: string | undefined) => {
    const action = String(req.headers["x-amz-target"] ?? "").replace(/^AmazonSSM\./, "");
    const input = JSON.parse((await body(req)).toString("utf8") || "{}") as Record<string, unknown>;
    const fail = (type: string, message: string) => send(res, 400, JSON.stringify({ __type: type, message }), "application/x-amz-json-1.1");
    const ok = (out: unknown) => send(res, 200, JSON.stringify(out), "application/x-amz-json-1.1");
    // Values are never recorded: the suite's log is printed on failure.
    record({ service: "ssm", action, host, detail: { name: input.Name, names: input.Names } });
    switch (action) {
      case "GetParameter": {
        const p = parameters.get(String(input.Name));
        return p ? ok({ Parameter: view(String(input.Name), p, input.WithDecryption === true) }) : fail("ParameterNotFound", "");
      }
      case "GetParameters": {
        const names = (input.Names as string[]) ?? [];
        return ok({
          Parameters: names
            .filter((n) => parameters.has(n))
            .map((n) => view(n, parameters.get(n) as Parameter, input.WithDecryption === true)),
          InvalidParameters: names.filter((n) => !parameters.has(n)),
        });
      }
      case "PutParameter": {
        const name = String(input.Name);
        const existing = parameters.get(name);
        if (existing && input.Overwrite !== true) return fail("ParameterAlreadyExists", "");
        const next: Parameter = {
          type: (input.Type as Parameter["type"]) ?? existing?.type ?? "String",
          value: String(input.Value),
          version: (existing?.version ?? 0) + 1,
        };
        parameters.set(name, next);
        return ok({ Version: next.version, Tier: "Standard" });
      }
      default:
        return fail("InvalidAction", `the fleet's SSM stand-in does not implement ${action}`);
    }
  };
}

// --- CloudWatch PutMetricData ------------------------------------------------------------------
/** Parses the query-protocol form of PutMetricData into data points. */
export function parsePutMetricData(form: URLSearchParams, host: string | undefined): MetricDatum[] {
  const namespace = form.get("Namespace") ?? "";
  const out: MetricDatum[] = [];
  for (let i = 1; form.has(`MetricData.member.${i}.MetricName`); i++) {
    const p = `MetricData.member.${i}.`;
    const dimensions: Record<string, string> = {};
    for (let j = 1; form.has(`${p}Dimensions.member.${j}.Name`); j++) {
      dimensions[form.get(`${p}Dimensions.member.${j}.Name`) as string] = form.get(`${p}Dimensions.member.${j}.Value`) ?? "";
    }
    const value = form.get(`${p}Value`) ?? form.get(`${p}StatisticValues.Sum`) ?? "NaN";
    out.push({
      namespace,
      name: form.get(`${p}MetricName`) as string,
      value: Number(value),
      unit: form.get(`${p}Unit`) ?? undefined,
      dimensions,
      host,
    });
  }
  return out;
}

export function cloudwatchHandler(metrics: MetricDatum[], record: (c: Omit<Call, "at">) => void) {
  return async (req: IncomingMessage, res: ServerResponse, host: string | undefined) => {
    const form = new URLSearchParams((await body(req)).toString("utf8"));
    const action = form.get("Action") ?? "";
    if (action !== "PutMetricData") {
      record({ service: "monitoring", action, host, detail: {} });
      return send(res, 400, `<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>`, "text/xml");
    }
    const data = parsePutMetricData(form, host);
    metrics.push(...data);
    record({ service: "monitoring", action, host, detail: { namespace: form.get("Namespace"), count: data.length } });
    send(
      res,
      200,
      `<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PutMetricDataResponse>`,
      "text/xml",
    );
  };
}

// --- Route 53 (certbot-dns-route53) ------------------------------------------------------------
export interface HostedZone {
  readonly id: string;
  readonly name: string;
}

/**
 * One change of a ChangeResourceRecordSets batch, applied to the resolver's records: TXT values
 * (ACME DNS-01) added or removed, an A record (`pulumi up`'s aws.route53.Record) set or removed.
 */
export function applyRecordChange(
  dns: { records: Record<string, string>; txt: Map<string, string[]> },
  change: { action: string; name: string; type: string; values: readonly string[] },
): void {
  const name = change.name.toLowerCase().replace(/\.$/, "");
  if (change.type === "TXT") {
    const current = new Set(dns.txt.get(name) ?? []);
    for (const v of change.values) {
      if (change.action === "DELETE") current.delete(v);
      else current.add(v);
    }
    dns.txt.set(name, [...current]);
  } else if (change.type === "A") {
    if (change.action === "DELETE") delete dns.records[name];
    else dns.records[name] = change.values[0];
  }
}

export function route53Handler(
  zones: readonly HostedZone[],
  dns: { records: Record<string, string>; txt: Map<string, string[]> },
  record: (c: Omit<Call, "at">) => void,
) {
  const xml = (inner: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${inner}`;
  const ns = `xmlns="https://route53.amazonaws.com/doc/2013-04-01/"`;
  const change = (id: string, status: string) =>
    `<ChangeInfo><Id>/change/${id}</Id><Status>${status}</Status><SubmittedAt>${new Date().toISOString()}</SubmittedAt></ChangeInfo>`;
  return async (req: IncomingMessage, res: ServerResponse, host: string | undefined) => {
    const url = new URL(req.url ?? "/", "https://route53.amazonaws.com");
    const text = (await body(req)).toString("utf8");
    if (req.method === "GET" && /^\/2013-04-01\/hostedzone\/?$/.test(url.pathname)) {
      record({ service: "route53", action: "ListHostedZones", host, detail: {} });
      const items = zones
        .map(
          (z) =>
            `<HostedZone><Id>/hostedzone/${z.id}</Id><Name>${z.name}.</Name><CallerReference>fleet</CallerReference><Config><PrivateZone>false</PrivateZone></Config><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone>`,
        )
        .join("");
      return send(
        res,
        200,
        xml(
          `<ListHostedZonesResponse ${ns}><HostedZones>${items}</HostedZones><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesResponse>`,
        ),
        "text/xml",
      );
    }
    const rrset = /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset\/?$/.exec(url.pathname);
    if (req.method === "POST" && rrset) {
      const zone = zones.find((z) => z.id === rrset[1]);
      if (!zone)
        return send(res, 404, xml(`<ErrorResponse ${ns}><Error><Code>NoSuchHostedZone</Code></Error></ErrorResponse>`), "text/xml");
      const changes = [...text.matchAll(/<Change>([\s\S]*?)<\/Change>/g)].map((m) => m[1]);
      for (const c of changes) {
        const action = /<Action>(\w+)<\/Action>/.exec(c)?.[1];
        const name = (/<Name>([^<]+)<\/Name>/.exec(c)?.[1] ?? "").toLowerCase().replace(/\.$/, "");
        const type = /<Type>(\w+)<\/Type>/.exec(c)?.[1];
        const values = [...c.matchAll(/<Value>([^<]*)<\/Value>/g)].map((m) => m[1].replace(/^"|"$/g, "").replace(/&quot;/g, ""));
        if (!name.endsWith(zone.name))
          return send(
            res,
            400,
            xml(
              `<ErrorResponse ${ns}><Error><Code>InvalidChangeBatch</Code><Message>${name} is not in ${zone.name}</Message></Error></ErrorResponse>`,
            ),
            "text/xml",
          );
        applyRecordChange(dns, { action: action ?? "", name, type: type ?? "", values });
        record({ service: "route53", action: `ChangeResourceRecordSets:${action}`, host, detail: { zone: zone.id, name, type } });
      }
      const id = randomUUID().replace(/-/g, "").slice(0, 14).toUpperCase();
      return send(
        res,
        200,
        xml(`<ChangeResourceRecordSetsResponse ${ns}>${change(id, "PENDING")}</ChangeResourceRecordSetsResponse>`),
        "text/xml",
      );
    }
    const getChange = /^\/2013-04-01\/change\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && getChange) {
      record({ service: "route53", action: "GetChange", host, detail: {} });
      return send(res, 200, xml(`<GetChangeResponse ${ns}>${change(getChange[1], "INSYNC")}</GetChangeResponse>`), "text/xml");
    }
    record({ service: "route53", action: `${req.method} ${url.pathname}`, host, detail: {} });
    send(
      res,
      400,
      xml(
        `<ErrorResponse ${ns}><Error><Code>InvalidInput</Code><Message>not implemented by the fleet's stand-in</Message></Error></ErrorResponse>`,
      ),
      "text/xml",
    );
  };
}

// --- instance metadata (IMDSv2) ----------------------------------------------------------------
/**
 * IMDSv2 only: a GET without a token from PUT /latest/api/token gets 401, as on an instance whose
 * metadata options require tokens. Credentials are the S3 stand-in's, so its signature checks pass.
 */
export function imdsHandler(
  byAddress: ReadonlyMap<string, InstanceIdentity>,
  credentials: { accessKeyId: string; secretAccessKey: string },
  record: (c: Omit<Call, "at">) => void,
) {
  const tokens = new Set<string>();
  const firstSeen = new Map<string, number>();
  return async (req: IncomingMessage, res: ServerResponse, source: string) => {
    const id = byAddress.get(source);
    if (id && !firstSeen.has(id.host)) firstSeen.set(id.host, Date.now());
    // A directory answers with or without its trailing slash (pgBackRest asks without).
    const raw = (req.url ?? "/").split("?")[0];
    const path = raw === "/latest/meta-data/iam/security-credentials" ? `${raw}/` : raw;
    await body(req);
    if (!id) return send(res, 404, "not an instance of the fleet", "text/plain");
    if (req.method === "PUT" && path === "/latest/api/token") {
      const token = randomUUID();
      tokens.add(token);
      return send(res, 200, token, "text/plain");
    }
    if (!tokens.has(String(req.headers["x-aws-ec2-metadata-token"] ?? ""))) {
      record({ service: "imds", action: "GET without token", host: id.host, detail: { path } });
      return send(res, 401, "", "text/plain");
    }
    const expiration = new Date(Date.now() + 6 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    const meta: Record<string, string> = {
      "/latest/meta-data/instance-id": id.instanceId,
      "/latest/meta-data/local-ipv4": id.privateIp,
      "/latest/meta-data/placement/availability-zone": id.availabilityZone,
      "/latest/meta-data/placement/region": id.region,
      "/latest/meta-data/hostname": `ip-${id.privateIp.replace(/\./g, "-")}.${id.region}.compute.internal`,
      "/latest/meta-data/local-hostname": `ip-${id.privateIp.replace(/\./g, "-")}.${id.region}.compute.internal`,
      "/latest/meta-data/iam/security-credentials/": id.roleName,
      [`/latest/meta-data/iam/security-credentials/${id.roleName}`]: JSON.stringify({
        Code: "Success",
        LastUpdated: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        Type: "AWS-HMAC",
        AccessKeyId: credentials.accessKeyId,
        SecretAccessKey: credentials.secretAccessKey,
        Token: `fleet-session-${id.host}`,
        Expiration: expiration,
      }),
      "/latest/dynamic/instance-identity/document": JSON.stringify({
        accountId: id.accountId,
        architecture: "x86_64",
        availabilityZone: id.availabilityZone,
        instanceId: id.instanceId,
        instanceType: "fleet",
        privateIp: id.privateIp,
        region: id.region,
        version: "2017-09-30",
      }),
      ...(id.publicIp && Date.now() - (firstSeen.get(id.host) as number) >= (id.publicIpAfterSeconds ?? 0) * 1000
        ? { "/latest/meta-data/public-ipv4": id.publicIp }
        : {}),
    };
    // IMDS answers a path with or without its trailing slash (botocore asks for the zone with one).
    const value = meta[path] ?? meta[path.replace(/\/$/, "")] ?? meta[`${path}/`];
    record({ service: "imds", action: "GET", host: id.host, detail: { path } });
    return value === undefined
      ? send(res, 404, "", "text/plain")
      : send(res, 200, value, path.endsWith("credentials/" + id.roleName) || path.endsWith("document") ? "application/json" : "text/plain");
  };
}
