// The monthly cost estimate the offline plan writes to out/<stack>/cost.md: every resource whose
// price its inputs fix (instances, volumes, NAT gateways, public addresses, endpoints, RDS, the
// KMS key, alarms, hosted zones) priced from a committed table (tools/prices/<region>.json, which
// names its source and date), one table per resource kind. What depends on traffic or data
// (S3, EFS, logs, NAT and endpoint bytes, snapshots) is listed, not guessed. Pure.
import * as fs from "fs";
import * as path from "path";

export interface PriceTable {
  readonly region: string;
  readonly currency: string;
  readonly hoursPerMonth: number;
  readonly source: readonly string[];
  readonly asOf: string;
  readonly note: string;
  readonly ec2Hourly: Readonly<Record<string, number>>;
  readonly rdsHourly: Readonly<Record<string, number>>;
  readonly ebsGp3GiBMonth: number;
  readonly rdsGp3GiBMonth: number;
  readonly natGatewayHourly: number;
  readonly publicIpv4Hourly: number;
  readonly interfaceEndpointAzHourly: number;
  readonly kmsKeyMonthly: number;
  readonly alarmMonthly: number;
  readonly hostedZoneMonthly: number;
}

export const PRICES_DIR = path.join(__dirname, "prices");

/** The committed price table of `region`, or undefined when none is committed. */
export function readPriceTable(region: string): PriceTable | undefined {
  const file = path.join(PRICES_DIR, `${region}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as PriceTable) : undefined;
}

/** A resource as the plan captured it: its type, name and plain inputs. */
export interface PricedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Readonly<Record<string, unknown>>;
}

export interface CostRow {
  readonly item: string;
  readonly quantity: number;
  readonly unit: string;
  readonly unitPrice: number;
  readonly monthly: number;
}

export interface CostSection {
  readonly kind: string;
  readonly rows: readonly CostRow[];
  readonly subtotal: number;
}

export interface CostEstimate {
  readonly sections: readonly CostSection[];
  readonly total: number;
  /** Resources the table has no price for: left out of the total, named in the report. */
  readonly unpriced: readonly string[];
  /** Resource kinds whose cost depends on usage, with how many the stack has. */
  readonly usageBased: readonly { readonly kind: string; readonly count: number; readonly why: string }[];
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
const num = (v: unknown): number => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN);

/** Monthly cost of `resources` at `prices`. */
export function estimateMonthlyCost(resources: readonly PricedResource[], prices: PriceTable): CostEstimate {
  const hours = prices.hoursPerMonth;
  const of = (type: string) => resources.filter((r) => r.type === type);
  const sections: CostSection[] = [];
  const unpriced: string[] = [];
  const section = (kind: string, rows: CostRow[]) => {
    if (rows.length === 0) return;
    sections.push({ kind, rows, subtotal: round2(rows.reduce((s, r) => s + r.monthly, 0)) });
  };
  const row = (item: string, quantity: number, unit: string, unitPrice: number, perMonth: number): CostRow => ({
    item,
    quantity,
    unit,
    unitPrice,
    monthly: round2(quantity * unitPrice * perMonth),
  });

  // EC2 instances, by type.
  const instances = of("aws:ec2/instance:Instance");
  const byType = new Map<string, number>();
  for (const i of instances) byType.set(String(i.inputs.instanceType), (byType.get(String(i.inputs.instanceType)) ?? 0) + 1);
  const ec2Rows: CostRow[] = [];
  for (const [type, count] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
    const price = prices.ec2Hourly[type];
    if (price === undefined) unpriced.push(`${count} × EC2 ${type}`);
    else ec2Rows.push(row(type, count, "instance-hour", price, hours));
  }
  section("EC2 instances (On-Demand, Linux)", ec2Rows);

  // EBS gp3: root volumes and data volumes.
  const rootGiB = instances.reduce(
    (s, i) => s + (num((i.inputs.rootBlockDevice as Record<string, unknown> | undefined)?.volumeSize) || 0),
    0,
  );
  const dataGiB = of("aws:ebs/volume:Volume").reduce((s, v) => s + (num(v.inputs.size) || 0), 0);
  section("EBS volumes (gp3)", [
    ...(rootGiB > 0
      ? [
          row(
            `root volumes of ${instances.length} instance${instances.length === 1 ? "" : "s"}`,
            rootGiB,
            "GiB-month",
            prices.ebsGp3GiBMonth,
            1,
          ),
        ]
      : []),
    ...(dataGiB > 0 ? [row("data volumes", dataGiB, "GiB-month", prices.ebsGp3GiBMonth, 1)] : []),
  ]);

  // RDS: the instance class (twice with Multi-AZ) and its storage.
  const rdsRows: CostRow[] = [];
  for (const db of of("aws:rds/instance:Instance")) {
    const cls = String(db.inputs.instanceClass);
    const copies = db.inputs.multiAz === true ? 2 : 1;
    const price = prices.rdsHourly[cls];
    if (price === undefined) unpriced.push(`RDS ${cls}`);
    else rdsRows.push(row(`${cls}${copies === 2 ? " Multi-AZ (primary + standby)" : ""}`, copies, "instance-hour", price, hours));
    const storage = num(db.inputs.allocatedStorage) || 0;
    if (storage > 0)
      rdsRows.push(row(`gp3 storage${copies === 2 ? " ×2 (Multi-AZ)" : ""}`, storage * copies, "GiB-month", prices.rdsGp3GiBMonth, 1));
  }
  section("RDS for PostgreSQL", rdsRows);

  // Network: NAT gateways, public IPv4 addresses, interface endpoints per AZ.
  const nats = of("aws:ec2/natGateway:NatGateway").length;
  const eips = of("aws:ec2/eip:Eip").length;
  const endpointAzs = of("aws:ec2/vpcEndpoint:VpcEndpoint")
    .filter((e) => e.inputs.vpcEndpointType === "Interface")
    .reduce((s, e) => s + (Array.isArray(e.inputs.subnetIds) ? e.inputs.subnetIds.length : 1), 0);
  section("Network", [
    ...(nats > 0 ? [row("NAT gateways (hours; data processed is extra)", nats, "gateway-hour", prices.natGatewayHourly, hours)] : []),
    ...(eips > 0 ? [row("public IPv4 addresses (Elastic IPs)", eips, "address-hour", prices.publicIpv4Hourly, hours)] : []),
    ...(endpointAzs > 0
      ? [row("interface endpoint × AZ (data processed is extra)", endpointAzs, "endpoint-AZ-hour", prices.interfaceEndpointAzHourly, hours)]
      : []),
  ]);

  // Fixed monthly items.
  const keys = of("aws:kms/key:Key").length;
  const alarms = of("aws:cloudwatch/metricAlarm:MetricAlarm").length;
  const zones = of("aws:route53/zone:Zone").length;
  section("KMS, CloudWatch alarms, Route 53", [
    ...(keys > 0 ? [row("KMS keys", keys, "key-month", prices.kmsKeyMonthly, 1)] : []),
    ...(alarms > 0
      ? [row("CloudWatch standard alarms (the first 10 of the account are free)", alarms, "alarm-month", prices.alarmMonthly, 1)]
      : []),
    ...(zones > 0 ? [row("Route 53 hosted zones (queries are extra)", zones, "zone-month", prices.hostedZoneMonthly, 1)] : []),
  ]);

  const usage: [string, string, string][] = [
    ["aws:s3/bucket:Bucket", "S3 buckets", "storage, versions and requests (config files, backups)"],
    ["aws:efs/fileSystem:FileSystem", "EFS file systems", "the filestore's size"],
    ["aws:cloudwatch/logGroup:LogGroup", "CloudWatch log groups", "log volume ingested and kept"],
    ["aws:dlm/lifecyclePolicy:LifecyclePolicy", "EBS snapshot policies", "changed blocks kept"],
    ["aws:sns/topic:Topic", "SNS topics", "notifications sent"],
  ];
  const usageBased = usage.map(([type, kind, why]) => ({ kind, count: of(type).length, why })).filter((u) => u.count > 0);
  return { sections, total: round2(sections.reduce((s, x) => s + x.subtotal, 0)), unpriced, usageBased };
}

const money = (n: number, currency: string): string => `${n.toFixed(2)} ${currency}`;

/** out/<stack>/cost.md. */
export function renderCostMarkdown(
  stack: string,
  region: string,
  prices: PriceTable | undefined,
  estimate: CostEstimate | undefined,
): string {
  const lines = [`# Monthly cost estimate: stack ${stack} (${region})`, ""];
  if (!prices || !estimate) {
    lines.push(`No price table is committed for ${region} (tools/prices/${region}.json); add one to get an estimate.`, "");
    return lines.join("\n");
  }
  const c = prices.currency;
  lines.push(
    `**${money(estimate.total, c)} per month** (${prices.hoursPerMonth} hours), On-Demand list prices, before taxes, free tiers, savings plans and usage-based charges.`,
    "",
    `Prices: \`tools/prices/${region}.json\`, as of ${prices.asOf}. Source: ${prices.source.join("; ")}. ${prices.note}`,
    "",
  );
  for (const s of estimate.sections) {
    lines.push(`## ${s.kind}`, "", "| item | quantity | unit | unit price | per month |", "| --- | ---: | --- | ---: | ---: |");
    for (const r of s.rows) lines.push(`| ${r.item} | ${r.quantity} | ${r.unit} | ${r.unitPrice} ${c} | ${money(r.monthly, c)} |`);
    lines.push(`| **subtotal** | | | | **${money(s.subtotal, c)}** |`, "");
  }
  if (estimate.unpriced.length > 0) {
    lines.push("## Not priced (no entry in the price table, left out of the total)", "", ...estimate.unpriced.map((u) => `- ${u}`), "");
  }
  if (estimate.usageBased.length > 0) {
    lines.push("## Depends on usage (not in the total)", "", "| kind | count | cost follows |", "| --- | ---: | --- |");
    for (const u of estimate.usageBased) lines.push(`| ${u.kind} | ${u.count} | ${u.why} |`);
    lines.push("");
  }
  return lines.join("\n");
}
