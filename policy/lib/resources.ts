// What every policy needs to read off a resource, typed structurally so the helpers work on
// both ResourceValidationArgs and PolicyResource (and on the offline plan's captured resources)
// without importing @pulumi/policy or @pulumi/aws. Policies match resources by type token.
import { parseSecretRef } from "../../lib/secret-ref";

/** The part of a resource a policy reads: the same shape Analyze and AnalyzeStack deliver. */
export interface ResourceView {
  readonly type: string;
  readonly urn: string;
  readonly name: string;
  readonly props: Readonly<Record<string, unknown>>;
}

/**
 * A resource as AnalyzeStack delivers it (PolicyResource, structurally): the engine's view of
 * which resources each property was computed from lets a stack policy join resources even
 * while ids are still unknown (preview).
 */
export interface StackResourceView extends ResourceView {
  readonly dependencies?: readonly StackResourceView[];
  readonly propertyDependencies?: Readonly<Record<string, readonly StackResourceView[]>>;
}

/** Type tokens the pack reads (https://www.pulumi.com/registry/packages/aws/api-docs/). */
export const TYPES = {
  instance: "aws:ec2/instance:Instance",
  launchTemplate: "aws:ec2/launchTemplate:LaunchTemplate",
  subnet: "aws:ec2/subnet:Subnet",
  eip: "aws:ec2/eip:Eip",
  eipAssociation: "aws:ec2/eipAssociation:EipAssociation",
  ebsVolume: "aws:ebs/volume:Volume",
  // @pulumi/aws 7: Bucket is the current resource and BucketV2 its deprecated alias; the
  // companion resources exist under both names too.
  buckets: ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"],
  publicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  encryption: [
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
  ],
  versioning: ["aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"],
  bucketAcl: ["aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"],
  bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
  bucketObjects: ["aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject"],
  route53Record: "aws:route53/record:Record",
  ssmParameter: "aws:ssm/parameter:Parameter",
  rdsInstance: "aws:rds/instance:Instance",
  rdsParameterGroup: "aws:rds/parameterGroup:ParameterGroup",
  efsFileSystem: "aws:efs/fileSystem:FileSystem",
  efsMountTarget: "aws:efs/mountTarget:MountTarget",
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  certRequest: "tls:index/certRequest:CertRequest",
  locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
} as const;

/**
 * Tag keys the components put on every AWS resource (components/tags.ts TAG_KEYS). The role
 * says which tier a resource belongs to (proxy, odoo, pgbouncer, postgres, …); the host names
 * the machine a file or instance is for (proxy, odoo-1, …; see lib/model.ts HostId.id).
 */
export const ROLE_TAG = "odoo-stack:role";
export const HOST_TAG = "odoo-stack:host";
export const PATH_TAG = "odoo-stack:path";

/** A tag's value from `tags` (what the program sets) or `tagsAll` (what the provider adds). */
export function tagOf(props: Readonly<Record<string, unknown>>, key: string): string | undefined {
  for (const field of ["tags", "tagsAll"]) {
    const tags = props[field];
    if (isRecord(tags) && typeof tags[key] === "string") return tags[key] as string;
  }
  return undefined;
}

/**
 * The checklist item that keeps each private tier off the internet: Odoo (NET-1), PgBouncer
 * (NET-5), PostgreSQL (NET-6), and the EFS mount targets that hold Odoo's files (NET-1).
 */
export const PRIVATE_TIER_ITEMS: Readonly<Record<string, string>> = { odoo: "NET-1", efs: "NET-1", pgbouncer: "NET-5", postgres: "NET-6" };

export const roleOf = (props: Readonly<Record<string, unknown>>): string | undefined => tagOf(props, ROLE_TAG);
export const hostOf = (props: Readonly<Record<string, unknown>>): string | undefined => tagOf(props, HOST_TAG);

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Strings of a list-of-strings input; anything else (absent, unknown) gives []. */
export const stringList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

/** A port-like input as a number; AWS accepts numbers, the wire may carry numeric strings. */
export function numberOf(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^-?\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

/** Booleans the wire may carry as strings (launch templates take "true"/"false"). */
export function booleanOf(v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  return undefined;
}

export const isOneOf = (type: string, types: string | readonly string[]): boolean =>
  typeof types === "string" ? type === types : types.includes(type);

// ---------------------------------------------------------------------------------------------
// Unknown values (preview)
// ---------------------------------------------------------------------------------------------

/**
 * During preview a value computed from a resource not yet created is unknown; reading it
 * throws the SDK's UnknownValueError, which the SDK turns into an advisory "can't run policy
 * during preview" diagnostic (@pulumi/policy server.js). A resource policy lets it propagate.
 * A stack policy checks many resources, so it must not let one unknown value hide the
 * violations of every other resource: it evaluates each item through `run`, which skips the
 * item on an unknown value, and calls `finish` at the end, which re-throws the first one so the
 * SDK still reports the advisory after the violations found.
 */
export class UnknownValues {
  private first: unknown;

  run<T>(check: () => T): T | undefined {
    try {
      return check();
    } catch (err) {
      if (!isUnknownValueError(err)) throw err;
      if (this.first === undefined) this.first = err;
      return undefined;
    }
  }

  finish(): void {
    if (this.first !== undefined) throw this.first;
  }
}

/** The SDK's UnknownValueError (@pulumi/policy/proxy), recognised without importing internals. */
export const isUnknownValueError = (err: unknown): boolean =>
  err instanceof Error && (err.constructor?.name === "UnknownValueError" || /can't be known during preview/.test(err.message));

// ---------------------------------------------------------------------------------------------
// Joins between resources (stack policies)
// ---------------------------------------------------------------------------------------------

/** The resource's own id, where the engine includes it in the properties. */
export function idOf(r: ResourceView): string | undefined {
  const id = r.props.id;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/**
 * The resources a property of `r` refers to. The engine's property dependencies come first:
 * they are known even while ids are not (preview). Without any recorded for the property (a
 * hand-written id, a captured plan without them), the resources whose id equals the
 * property's value. `value` is read lazily, so an unknown value is touched only when needed.
 */
export function referencedResources<T extends StackResourceView>(
  r: StackResourceView,
  property: string,
  candidates: readonly T[],
  value: () => unknown = () => r.props[property],
): T[] {
  const deps = r.propertyDependencies?.[property];
  if (deps !== undefined && deps.length > 0) return candidates.filter((c) => deps.some((d) => d.urn === c.urn));
  const v = value();
  const wanted = (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === "string");
  return candidates.filter((c) => {
    const id = idOf(c);
    return id !== undefined && wanted.includes(id);
  });
}

// ---------------------------------------------------------------------------------------------
// Rendered files (config objects in the config bucket)
// ---------------------------------------------------------------------------------------------

/** A rendered file a host receives, read from the S3 object that carries it. */
export interface RenderedFile {
  /** HostId.id, e.g. "odoo-1". */
  readonly host: string;
  /** Absolute on-host path, e.g. "/etc/odoo/odoo.conf"; "manifest.json" for the manifest. */
  readonly path: string;
  readonly content: string;
  /** How messages name it: "odoo.conf of odoo-1 (odoo-odoo-1-file-etc-odoo-odoo.conf)". */
  readonly resource: ResourceView;
}

/** S3 keys of config objects: hosts/<hostId>/<path without its leading slash>. */
const CONFIG_KEY = /^hosts\/([^/]+)\/(.+)$/;

/** Where a config object goes: its host and on-host path, read without touching its content. */
export interface ConfigObject {
  readonly host: string;
  readonly path: string;
  readonly resource: ResourceView;
}

/**
 * The host and path of a config object, or undefined for anything else. Host and path come
 * from the key, or from the odoo-stack:host / odoo-stack:path tags when the key does not
 * follow the layout.
 */
export function configObjectOf(r: ResourceView): ConfigObject | undefined {
  if (!isOneOf(r.type, TYPES.bucketObjects)) return undefined;
  const key = typeof r.props.key === "string" ? r.props.key : "";
  const m = CONFIG_KEY.exec(key);
  const host = hostOf(r.props) ?? m?.[1];
  const taggedPath = tagOf(r.props, PATH_TAG);
  const keyPath = m ? (m[2] === "manifest.json" ? "manifest.json" : `/${m[2]}`) : undefined;
  const path = taggedPath ?? keyPath;
  if (host === undefined || path === undefined) return undefined;
  return { host, path, resource: r };
}

/**
 * The file a config object carries, or undefined for anything else (other types, objects whose
 * text is not inline `content`). Reading an unknown content throws the SDK's UnknownValueError.
 */
export function renderedFileOf(r: ResourceView): RenderedFile | undefined {
  const object = configObjectOf(r);
  if (!object) return undefined;
  const content = r.props.content;
  return typeof content === "string" ? { ...object, content } : undefined;
}

/**
 * Every rendered file of a stack, in resource order. With `unknown`, a file whose text is not
 * known yet (preview) is skipped and recorded there instead of aborting the caller.
 */
export const renderedFiles = (resources: readonly ResourceView[], unknown?: UnknownValues): RenderedFile[] =>
  resources
    .map((r) => (unknown ? unknown.run(() => renderedFileOf(r)) : renderedFileOf(r)))
    .filter((f): f is RenderedFile => f !== undefined);

/** Which file a path is, by its place on a Debian host: what the policies dispatch on. */
export type FileKind =
  | "odoo.conf"
  | "nginx-site"
  | "nginx.conf"
  | "pgbouncer.ini"
  | "userlist"
  | "postgresql.conf"
  | "postgresql.auto.conf"
  | "pg_ctl.conf"
  | "pg_hba.conf"
  | "sql"
  | "systemd-unit"
  | "metrics"
  | "manifest";

export function fileKindOf(path: string): FileKind | undefined {
  if (path === "manifest.json" || path.endsWith("/odoo-stack/manifest.json")) return "manifest";
  const base = path.slice(path.lastIndexOf("/") + 1);
  // The metrics collector's config: what each host publishes to CloudWatch (templates/metrics.ts).
  if (path === "/etc/odoo-stack/metrics.json") return "metrics";
  // A unit or a drop-in for one: /etc/systemd/system/<unit> or /etc/systemd/system/<unit>.d/*.conf.
  if (/^\/(etc|run|usr\/lib|lib)\/systemd\/system\/[^/]+(\.d\/[^/]+\.conf)?$/.test(path) && !/\.(timer|socket|path|target)$/.test(path))
    return "systemd-unit";
  if (/^\/etc\/odoo\//.test(path) && base.endsWith(".conf")) return "odoo.conf";
  if (path === "/etc/nginx/nginx.conf") return "nginx.conf";
  if (/^\/etc\/nginx\/(conf\.d|sites-enabled|sites-available)\//.test(path)) return "nginx-site";
  if (/^\/etc\/pgbouncer\//.test(path) && base.endsWith(".ini")) return "pgbouncer.ini";
  if (/^\/etc\/pgbouncer\//.test(path) && base.endsWith(".txt")) return "userlist";
  if (base.endsWith(".sql")) return "sql";
  // What ALTER SYSTEM writes, in the data directory: read after every file in /etc (PostgreSQL docs 20.1.2).
  if (base === "postgresql.auto.conf") return "postgresql.auto.conf";
  if (/^\/etc\/postgresql\//.test(path) && base === "pg_hba.conf") return "pg_hba.conf";
  // Debian's pg_ctlcluster passes pg_ctl_options to the server: `-o '-c key=value'` beats every file.
  if (/^\/etc\/postgresql\//.test(path) && base === "pg_ctl.conf") return "pg_ctl.conf";
  if (/^\/etc\/postgresql\//.test(path) && base.endsWith(".conf") && base !== "pg_ident.conf" && base !== "start.conf")
    return "postgresql.conf";
  return undefined;
}

/** The rendered file of `kind` a resource carries, for resource policies. */
export function renderedFileOfKind(r: ResourceView, kind: FileKind): RenderedFile | undefined {
  const file = renderedFileOf(r);
  return file && fileKindOf(file.path) === kind ? file : undefined;
}

/** "odoo.conf of odoo-1 (<resource name>)": the subject of a file policy's message. */
export const fileLabel = (file: RenderedFile): string =>
  `${file.path.slice(file.path.lastIndexOf("/") + 1)} of ${file.host} (${file.resource.name})`;

/** One entry of a host's manifest.json (components/host.ts hostManifest). */
export interface ManifestEntry {
  readonly path: string;
  readonly mode: string;
  readonly owner: string;
  readonly group: string;
}

/** The entries of a manifest file; [] when the text is not the expected JSON. */
export function manifestEntries(file: RenderedFile): ManifestEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(file.content);
  } catch {
    return [];
  }
  // Either a bare list of entries or {format, hostId, files: [...]} (templates/manifest.ts).
  const list = Array.isArray(parsed) ? parsed : isRecord(parsed) && Array.isArray(parsed.files) ? parsed.files : [];
  return list
    .filter(isRecord)
    .flatMap((e) =>
      typeof e.path === "string"
        ? [{ path: e.path, mode: String(e.mode ?? ""), owner: String(e.owner ?? ""), group: String(e.group ?? "") }]
        : [],
    );
}

/**
 * A resource validation that runs `check` on the rendered file of `kind` a config object
 * carries, and ignores every other resource. The parsed text is passed along with the file.
 */
export function validateRenderedFile<Args extends ResourceView>(
  kind: FileKind,
  check: (file: RenderedFile, report: (message: string) => void, args: Args) => void,
): (args: Args, reportViolation: (message: string) => void) => void {
  return (args, reportViolation) => {
    const file = renderedFileOfKind(args, kind);
    if (file) check(file, reportViolation, args);
  };
}

// ---------------------------------------------------------------------------------------------
// Hosts: which instance a name or address a client uses leads to, and its certificate
// ---------------------------------------------------------------------------------------------

export interface HostView {
  /** HostId.id (odoo-stack:host tag). */
  readonly id: string;
  readonly role: string | undefined;
  readonly instance: StackResourceView;
  /** The fixed private address the program gives the instance (input privateIp). */
  readonly privateIp: string | undefined;
  /** DNS names whose A records hold that address, lower-case, without a trailing dot. */
  readonly names: readonly string[];
}

const dnsName = (name: string): string => name.trim().toLowerCase().replace(/\.$/, "");

/** Every tagged instance of the stack with the DNS names (Route 53 records) pointing at it. */
export function hostViews(resources: readonly StackResourceView[], unknown: UnknownValues = new UnknownValues()): HostView[] {
  const records = resources.filter((r) => r.type === TYPES.route53Record);
  const addresses = (r: ResourceView): string[] => unknown.run(() => stringList(r.props.records)) ?? [];
  const nameOf = (r: ResourceView): string | undefined =>
    unknown.run(() => (typeof r.props.name === "string" ? dnsName(r.props.name) : undefined));
  const views: HostView[] = [];
  for (const instance of resources.filter((r) => r.type === TYPES.instance)) {
    const id = unknown.run(() => hostOf(instance.props));
    if (id === undefined) continue;
    const privateIp = unknown.run(() => (typeof instance.props.privateIp === "string" ? instance.props.privateIp : undefined));
    const names =
      privateIp === undefined
        ? []
        : records
            .filter((r) => addresses(r).includes(privateIp))
            .map(nameOf)
            .filter((n): n is string => n !== undefined);
    views.push({ id, role: unknown.run(() => roleOf(instance.props)), instance, privateIp, names });
  }
  return views;
}

/** The host a client reaches through `name` (a DNS name or an address). */
export function hostByName(hosts: readonly HostView[], name: string): HostView | undefined {
  const n = dnsName(name);
  return hosts.find((h) => h.privateIp === n || h.names.includes(n));
}

/** A certificate request's subject alternative names: DNS names (lower-case) and addresses. */
export function sansOf(request: ResourceView): string[] {
  return [...stringList(request.props.dnsNames).map(dnsName), ...stringList(request.props.ipAddresses)];
}

/** Does a certificate with `sans` cover `name`? A leading "*." covers exactly one label. */
export function sanCovers(sans: readonly string[], name: string): boolean {
  const n = dnsName(name);
  return sans.some((san) => san === n || (san.startsWith("*.") && n.endsWith(san.slice(1)) && !n.slice(0, -san.length + 1).includes(".")));
}

/**
 * The certificate requests of a host: followed from the host's tagged SSM parameters through
 * the certificate that fills them to its request (the engine's property dependencies), or else
 * the requests that name the host's address.
 */
export function certRequestsOf(resources: readonly StackResourceView[], host: HostView): StackResourceView[] {
  const requests = resources.filter((r) => r.type === TYPES.certRequest);
  const certs = resources.filter((r) => r.type === TYPES.locallySignedCert);
  const params = resources.filter((r) => r.type === TYPES.ssmParameter && hostOf(r.props) === host.id);
  const found = new Set<StackResourceView>();
  for (const p of params) {
    for (const cert of (p.propertyDependencies?.value ?? []).filter((d) => certs.some((c) => c.urn === d.urn))) {
      for (const req of cert.propertyDependencies?.certRequestPem ?? []) {
        const r = requests.find((x) => x.urn === req.urn);
        if (r) found.add(r);
      }
    }
  }
  if (found.size === 0 && host.privateIp !== undefined) {
    for (const r of requests) if (stringList(r.props.ipAddresses).includes(host.privateIp)) found.add(r);
  }
  return [...found];
}

// ---------------------------------------------------------------------------------------------
// RDS endpoints (issue 8): a name a file carries as an {{ssm:…}} placeholder
// ---------------------------------------------------------------------------------------------

/**
 * The RDS instance a name leads to when the name is an {{ssm:/path}} placeholder and the
 * stack's String parameter at that path holds the instance's address (by the engine's property
 * dependencies, or by value). RDS presents a certificate of its own CA for that address, so a
 * client dialling it with verify-full against RDS's bundle checks the name (TLS-3).
 */
export function rdsInstanceByReference(resources: readonly StackResourceView[], name: string): StackResourceView | undefined {
  const path = parseSecretRef(name.trim());
  if (path === undefined) return undefined;
  const instances = resources.filter((r) => r.type === TYPES.rdsInstance);
  const parameter = resources.find((r) => r.type === TYPES.ssmParameter && r.props.name === path);
  if (!parameter || instances.length === 0) return undefined;
  const viaDependencies = referencedResources(parameter, "value", instances, () => undefined);
  if (viaDependencies.length > 0) return viaDependencies[0];
  const value = parameter.props.value;
  return instances.find((i) => typeof value === "string" && value !== "" && i.props.address === value);
}
