// The checks the components make before registering anything, as exported pure functions:
// tested here without mocks and without resources (issue 17; STYLE: validators are exported pure
// functions). The constructors throw what these return through throwIfAny (lib/problems.ts).
import { checkOdooAppModel } from "../../components/odoo-app";
import { checkPostgresHostEngine } from "../../components/postgres-host";
import { checkPrivateBucketArgs, PRIVATE_BUCKET_DEFAULTS } from "../../components/private-bucket";
import { checkSharedFilestoreNetwork } from "../../components/shared-filestore";
import { modelWith } from "../helpers/fixtures";

const model = modelWith({ odooInstances: 2 });

describe("checkOdooAppModel (LIMIT-2: exactly one Odoo host runs the crons)", () => {
  it("accepts the model as built", () => {
    expect(checkOdooAppModel(model)).toEqual([]);
  });

  it.each([
    ["two cron hosts", model.hosts.odoo.map((h) => ({ ...h, runsCron: true })), "it has 2 hosts and 2 cron hosts (odoo-1, odoo-2)."],
    ["no cron host", model.hosts.odoo.map((h) => ({ ...h, runsCron: false })), "it has 2 hosts and 0 cron hosts (none)."],
    ["no Odoo host", [], "it has 0 hosts and 0 cron hosts (none)."],
  ])("refuses %s", (_why, odoo, tail) => {
    expect(checkOdooAppModel({ hosts: { ...model.hosts, odoo } })).toEqual([
      `the model must have at least one Odoo host and exactly one that runs crons; ${tail}`,
    ]);
  });
});

describe("checkPostgresHostEngine", () => {
  it("accepts the settings' engine and refuses the other", () => {
    expect(checkPostgresHostEngine(model, model.settings.postgresEngine)).toEqual([]);
    const other = model.settings.postgresEngine === "rds" ? "ec2" : "rds";
    expect(checkPostgresHostEngine(model, other)).toEqual([
      `engine "${other}" differs from the settings' postgresEngine "${model.settings.postgresEngine}"; the other tiers render their files for the latter.`,
    ]);
  });
});

describe("checkPrivateBucketArgs", () => {
  it.each([[undefined], [1], [PRIVATE_BUCKET_DEFAULTS.noncurrentVersionExpirationDays], [365]])(
    "accepts noncurrentVersionExpirationDays = %s",
    (days) => {
      expect(checkPrivateBucketArgs({ noncurrentVersionExpirationDays: days })).toEqual([]);
    },
  );

  it.each([[0], [-1], [1.5], [Number.NaN]])("refuses noncurrentVersionExpirationDays = %s", (days) => {
    expect(checkPrivateBucketArgs({ noncurrentVersionExpirationDays: days })).toEqual([
      `'noncurrentVersionExpirationDays' must be a whole number of days ≥ 1, got ${days}.`,
    ]);
  });
});

describe("checkSharedFilestoreNetwork", () => {
  const groups = { proxy: "sg-p", odoo: "sg-o", pgbouncer: "sg-b", postgres: "sg-d", endpoints: "sg-e" };
  it("needs the network's efs security group", () => {
    expect(checkSharedFilestoreNetwork({ securityGroupIds: { ...groups, efs: "sg-efs" } })).toEqual([]);
    expect(checkSharedFilestoreNetwork({ securityGroupIds: groups })).toEqual([
      "the network has no efs security group; it creates one when sharedFilestore is true.",
    ]);
  });
});
