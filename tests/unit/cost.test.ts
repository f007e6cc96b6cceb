// tools/cost.ts: the monthly estimate the plan writes to out/<stack>/cost.md, from the committed
// price table. Known values on a hand-made resource list, the table naming its source and date,
// and every instance type and RDS class the shipped stacks use priced.
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { estimateMonthlyCost, readPriceTable, renderCostMarkdown, type PriceTable, type PricedResource } from "../../tools/cost";

const prices = readPriceTable("eu-west-1") as PriceTable;

const r = (type: string, inputs: Record<string, unknown>, name = type.split(":").pop() ?? type): PricedResource => ({ type, name, inputs });
const RESOURCES: PricedResource[] = [
  r("aws:ec2/instance:Instance", { instanceType: "m6i.xlarge", rootBlockDevice: { volumeSize: 20 } }),
  r("aws:ec2/instance:Instance", { instanceType: "t3.small", rootBlockDevice: { volumeSize: 20 } }),
  r("aws:ec2/instance:Instance", { instanceType: "t3.small", rootBlockDevice: { volumeSize: 20 } }),
  r("aws:ec2/instance:Instance", { instanceType: "x9.weird", rootBlockDevice: { volumeSize: 20 } }),
  r("aws:ebs/volume:Volume", { size: 100, type: "gp3" }),
  r("aws:rds/instance:Instance", { instanceClass: "db.r6i.large", multiAz: true, allocatedStorage: 100 }),
  r("aws:ec2/natGateway:NatGateway", {}),
  r("aws:ec2/eip:Eip", {}),
  r("aws:ec2/eip:Eip", {}),
  r("aws:ec2/vpcEndpoint:VpcEndpoint", { vpcEndpointType: "Interface", subnetIds: ["a", "b"] }),
  r("aws:ec2/vpcEndpoint:VpcEndpoint", { vpcEndpointType: "Gateway", routeTableIds: ["x"] }),
  r("aws:kms/key:Key", {}),
  r("aws:cloudwatch/metricAlarm:MetricAlarm", {}),
  r("aws:route53/zone:Zone", {}),
  r("aws:s3/bucket:Bucket", {}),
];

describe("the price table", () => {
  it("names its region, currency, source pages and date", () => {
    expect(prices).toEqual(expect.objectContaining({ region: "eu-west-1", currency: "USD", hoursPerMonth: 730 }));
    expect(prices.asOf).toMatch(/^\d{4}-\d{2}$/);
    expect(prices.source.every((s) => s.startsWith("https://aws.amazon.com/"))).toBe(true);
    expect(prices.note.length).toBeGreaterThan(20);
  });

  it.each(["prod", "scale"])("prices every instance type and RDS class of Pulumi.%s.yaml", (stack) => {
    const config = (
      yaml.load(fs.readFileSync(path.join(__dirname, "..", "..", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }
    ).config;
    const rds = config["odoo-stack:postgresEngine"] === "rds";
    for (const role of ["proxy", "odoo", "pgbouncer", "postgres"]) {
      const type = String(config[`odoo-stack:${role}InstanceType`]);
      if (role === "postgres" && rds) expect([type, prices.rdsHourly[`db.${type}`]]).toEqual([type, expect.any(Number)]);
      else expect([type, prices.ec2Hourly[type]]).toEqual([type, expect.any(Number)]);
    }
  });
});

describe("estimateMonthlyCost", () => {
  const estimate = estimateMonthlyCost(RESOURCES, prices);
  const section = (kind: string) => estimate.sections.find((s) => s.kind.startsWith(kind));

  it("prices instances per type for 730 hours and names the unpriced one instead of guessing", () => {
    expect(section("EC2")?.rows).toEqual([
      { item: "m6i.xlarge", quantity: 1, unit: "instance-hour", unitPrice: 0.214, monthly: 156.22 },
      { item: "t3.small", quantity: 2, unit: "instance-hour", unitPrice: 0.0228, monthly: 33.29 },
    ]);
    expect(estimate.unpriced).toEqual(["1 × EC2 x9.weird"]);
  });

  it("counts gp3 root and data volumes, RDS Multi-AZ twice (instance and storage), endpoints per AZ", () => {
    expect(section("EBS")?.rows.map((x) => [x.quantity, x.monthly])).toEqual([
      [80, 7.04],
      [100, 8.8],
    ]);
    expect(section("RDS")?.rows.map((x) => [x.item, x.quantity, x.monthly])).toEqual([
      ["db.r6i.large Multi-AZ (primary + standby)", 2, 401.5],
      ["gp3 storage ×2 (Multi-AZ)", 200, 25.4],
    ]);
    expect(section("Network")?.rows.map((x) => [x.quantity, x.monthly])).toEqual([
      [1, 35.04],
      [2, 7.3],
      [2, 16.06],
    ]);
    expect(section("KMS")?.subtotal).toBe(1 + 0.1 + 0.5);
  });

  it("totals the sections and lists what depends on usage", () => {
    expect(estimate.total).toBe(Math.round(estimate.sections.reduce((s, x) => s + x.subtotal, 0) * 100) / 100);
    expect(estimate.total).toBe(692.25); // 156.22 + 33.29 + 7.04 + 8.8 + 401.5 + 25.4 + 35.04 + 7.3 + 16.06 + 1.6
    expect(estimate.usageBased).toEqual([{ kind: "S3 buckets", count: 1, why: expect.any(String) }]);
  });

  it("renders one table per resource kind, with the total, the source, the date and the unpriced", () => {
    const md = renderCostMarkdown("prod", "eu-west-1", prices, estimate);
    expect(md).toContain(`**${estimate.total.toFixed(2)} USD per month**`);
    expect(md).toContain(`as of ${prices.asOf}. Source: ${prices.source[0]}`);
    expect(md.match(/^## /gm)).toHaveLength(estimate.sections.length + 2);
    expect(md).toContain("- 1 × EC2 x9.weird");
    expect(renderCostMarkdown("x", "mars-east-1", undefined, undefined)).toContain("No price table is committed for mars-east-1");
  });
});
