// What the fleet takes from a plan of the stack: each host's user data, files and manifest as the
// plan's resources hold them, the instance ids, roles and volumes AWS would have made, the
// parameters, the private zone's records and the public record of the proxy. Read from the
// plan's output directory (out/<stack>/), so the fleet boots exactly what `npm run plan` shows.
import * as fs from "fs";
import * as path from "path";
import { mockId, plainValue, type CapturedResource } from "../../../tools/mocks";

export interface PlannedHost {
  readonly id: string;
  readonly role: string;
  readonly privateIp: string;
  readonly instanceId: string;
  readonly roleName: string;
  readonly availabilityZone: string;
  readonly userData: string;
  /** The SSM association's command, as the association runs it. */
  readonly associationCommand: string;
  readonly volumes: readonly { readonly id: string; readonly sizeGiB: number }[];
}

export interface PlannedParameter {
  readonly name: string;
  readonly type: "String" | "SecureString";
  /** The planned value when it is not a secret. */
  readonly value?: string;
}

export interface PlanFacts {
  readonly stackDir: string;
  readonly region: string;
  readonly hosts: readonly PlannedHost[];
  readonly parameters: readonly PlannedParameter[];
  readonly configBucket: string;
  readonly privateRecords: Readonly<Record<string, string>>;
  readonly publicRecords: Readonly<Record<string, string>>;
  readonly publicZone: { readonly id: string; readonly name: string } | undefined;
  readonly proxyEip: { readonly publicIp: string; readonly privateIp: string } | undefined;
  /** dnsNames + ipAddresses of each host's internal certificate request. */
  readonly certificateNames: Readonly<Record<string, { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[] }>>;
}

interface Resource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

const T = {
  instance: "aws:ec2/instance:Instance",
  association: "aws:ssm/association:Association",
  profile: "aws:iam/instanceProfile:InstanceProfile",
  parameter: "aws:ssm/parameter:Parameter",
  record: "aws:route53/record:Record",
  volume: "aws:ebs/volume:Volume",
  attachment: "aws:ec2/volumeAttachment:VolumeAttachment",
  eip: "aws:ec2/eip:Eip",
  csr: "tls:index/certRequest:CertRequest",
  subnet: "aws:ec2/subnet:Subnet",
} as const;

const hostTag = (r: Resource): string | undefined => (r.inputs.tags as Record<string, string> | undefined)?.["odoo-stack:host"];

/**
 * `captured`: the plan's resources with their wire values, for what resources.json redacts but is
 * no secret (a String parameter's value is marked secret by the AWS provider's schema).
 */
export function readPlanFacts(stackDir: string, captured: readonly CapturedResource[] = []): PlanFacts {
  const doc = JSON.parse(fs.readFileSync(path.join(stackDir, "resources.json"), "utf8")) as Resource[] | { resources: Resource[] };
  const resources = Array.isArray(doc) ? doc : doc.resources;
  const of = (type: string) => resources.filter((r) => r.type === type);
  const instances = of(T.instance);
  const hosts: PlannedHost[] = instances.map((inst) => {
    const id = hostTag(inst) as string;
    const assoc = of(T.association).find((a) => hostTag(a) === id);
    if (!assoc) throw new Error(`the plan has no apply association for host ${id}`);
    const targets = assoc.inputs.targets as { key: string; values: string[] }[];
    const profile = of(T.profile).find((p) => hostTag(p) === id);
    const userDataFile = path.join(stackDir, "hosts", id, "var/lib/cloud/instance/user-data.txt");
    const volumes = of(T.volume)
      .filter((v) => hostTag(v) === id)
      .map((v) => ({ id: mockId(T.volume, v.name), sizeGiB: Number(v.inputs.size) }));
    const subnetId = String(inst.inputs.subnetId ?? "");
    // The plan's ids are the mocks' stable hashes of type and name.
    const subnet = of(T.subnet).find((s) => mockId(T.subnet, s.name) === subnetId);
    return {
      id,
      role: (inst.inputs.tags as Record<string, string>)["odoo-stack:role"],
      privateIp: String(inst.inputs.privateIp),
      instanceId: targets.find((t) => t.key === "InstanceIds")?.values[0] as string,
      roleName: String(profile?.inputs.role ?? `${id}-role`),
      availabilityZone: String(subnet?.inputs.availabilityZone ?? inst.inputs.availabilityZone ?? ""),
      userData: fs.readFileSync(userDataFile, "utf8"),
      associationCommand: String((assoc.inputs.parameters as Record<string, string>).commands),
      volumes,
    };
  });
  const bucketMatch = /--bucket '([^']+)'/.exec(hosts[0]?.associationCommand ?? "");
  if (!bucketMatch) throw new Error("cannot find the config bucket in the association command");
  const region = /--region '([^']+)'/.exec(hosts[0].associationCommand)?.[1] as string;

  const records = of(T.record);
  const privateZoneIds = new Set(
    records
      .filter((r) => String(r.inputs.name).endsWith(".internal") || /\.odoo\./.test(String(r.inputs.name)))
      .map((r) => String(r.inputs.zoneId)),
  );
  const privateRecords: Record<string, string> = {};
  const publicRecords: Record<string, string> = {};
  let publicZone: PlanFacts["publicZone"];
  for (const r of records) {
    if (r.inputs.type !== "A") continue;
    const target = privateZoneIds.has(String(r.inputs.zoneId)) ? privateRecords : publicRecords;
    target[String(r.inputs.name).toLowerCase()] = String((r.inputs.records as string[])[0]);
    if (target === publicRecords) {
      const name = String(r.inputs.name).split(".").slice(-2).join(".");
      publicZone = { id: String(r.inputs.zoneId), name };
    }
  }
  const proxy = hosts.find((h) => h.role === "proxy");
  const proxyPublic = Object.values(publicRecords)[0];
  const certificateNames: Record<string, { dnsNames: string[]; ipAddresses: string[] }> = {};
  for (const c of of(T.csr)) {
    const host = c.name.replace(/^internal-ca-/, "").replace(/-csr$/, "");
    certificateNames[host] = { dnsNames: (c.inputs.dnsNames as string[]) ?? [], ipAddresses: (c.inputs.ipAddresses as string[]) ?? [] };
  }
  return {
    stackDir,
    region,
    hosts,
    parameters: of(T.parameter).map((p) => {
      const type = p.inputs.type === "SecureString" ? "SecureString" : "String";
      const wire = captured.find((c) => c.type === T.parameter && c.name === p.name);
      const value = type === "String" && wire ? plainValue(wire.inputs.value) : p.inputs.value;
      return { name: String(p.inputs.name), type, ...(typeof value === "string" && value !== "[secret]" ? { value } : {}) };
    }),
    configBucket: bucketMatch[1],
    privateRecords,
    publicRecords,
    publicZone,
    proxyEip: proxy && proxyPublic ? { publicIp: proxyPublic, privateIp: proxy.privateIp } : undefined,
    certificateNames,
  };
}

/** Every file the plan delivers to `host` through the config bucket: path → local file. */
export function deliveredFiles(stackDir: string, host: string): { readonly key: string; readonly file: string }[] {
  const hostDir = path.join(stackDir, "hosts", host);
  const out: { key: string; file: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const rel = path.relative(hostDir, full);
        // User data goes to the instance, not to the bucket.
        if (rel === "var/lib/cloud/instance/user-data.txt") continue;
        out.push({ key: `hosts/${host}/${rel}`, file: full });
      }
    }
  };
  walk(hostDir);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}
