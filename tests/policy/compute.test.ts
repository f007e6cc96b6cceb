// Compute policies (NET-1, NET-2, NET-5, NET-6; ODOO-1, AUTH-2 for the secrets on the host):
// a valid instance from the stack fixture passes; each case changes one field.
import { generateKeyPairSync, randomBytes } from "crypto";
import { gzipSync } from "zlib";
import { scramSha256Verifier } from "../../lib/scram";
import {
  instanceImdsv2Required,
  instanceNoPublicIp,
  instanceUserDataNoSecrets,
  instanceVolumesEncrypted,
  privateHostsHaveNoPublicAddress,
} from "../../policy/compute";
import { validateResource, validateStack, withProp, type FakeResource } from "./fakes";
import { instanceName, replaced, stackFixture, T } from "./stack-fixture";

const fixture = stackFixture();
const { hosts } = fixture.model;
const postgres = fixture.get(instanceName(hosts.postgres));
const proxy = fixture.get(instanceName(hosts.proxy));
const instances = fixture.resources.filter((r) => r.type === T.instance);

describe("instance-no-public-ip (NET-1, NET-2, NET-5, NET-6)", () => {
  const policy = instanceNoPublicIp;

  it("passes every instance of the stack, and a proxy that asks for a public address", async () => {
    for (const r of instances) expect(await validateResource(policy, r)).toEqual([]);
    expect(await validateResource(policy, withProp(proxy, "associatePublicIpAddress", true))).toEqual([]);
  });

  it.each([
    [hosts.odoo[0], "odoo", "NET-1"],
    [hosts.pgbouncer, "pgbouncer", "NET-5"],
    [hosts.postgres, "postgres", "NET-6"],
  ])("rejects a public IP on the %s host", async (host, role, item) => {
    const r = withProp(fixture.get(instanceName(host)), "associatePublicIpAddress", true);
    expect(await validateResource(policy, r)).toEqual([
      `EC2 instance (${instanceName(host)}) must not have a public IP address: it is a ${role} host, and only the proxy is reachable from the internet (${item}).`,
    ]);
  });

  it("rejects a launch template that asks for a public address for an untagged host", async () => {
    const template: FakeResource = {
      type: "aws:ec2/launchTemplate:LaunchTemplate",
      name: "workers",
      props: { networkInterfaces: [{ associatePublicIpAddress: "true" }] },
    };
    expect(await validateResource(policy, template)).toEqual([
      "Launch template (workers) must not have a public IP address: it is an untagged host, and only the proxy is reachable from the internet (NET-2).",
    ]);
  });
});

describe("instance-imdsv2-required (ODOO-1, AUTH-2)", () => {
  const policy = instanceImdsv2Required;

  it("passes every instance, and one with the metadata service disabled", async () => {
    for (const r of instances) expect(await validateResource(policy, r)).toEqual([]);
    expect(await validateResource(policy, withProp(postgres, "metadataOptions", { httpEndpoint: "disabled" }))).toEqual([]);
  });

  it.each([
    ["optional", `"optional"`],
    [undefined, "not set (AWS then also accepts IMDSv1)"],
  ])("rejects httpTokens %s", async (tokens, now) => {
    const r = withProp(postgres, "metadataOptions.httpTokens", tokens);
    expect(await validateResource(policy, r)).toEqual([
      `EC2 instance (${postgres.name}) must set metadataOptions.httpTokens = "required" (IMDSv2); it is ${now} (ODOO-1, AUTH-2).`,
    ]);
  });
});

describe("instance-volumes-encrypted (ODOO-1, AUTH-2)", () => {
  const policy = instanceVolumesEncrypted;

  it("passes every instance", async () => {
    for (const r of instances) expect(await validateResource(policy, r)).toEqual([]);
  });

  it("rejects an unencrypted root volume and an unencrypted extra volume", async () => {
    expect(await validateResource(policy, withProp(postgres, "rootBlockDevice.encrypted", false))).toEqual([
      `EC2 instance (${postgres.name}) must encrypt its root volume (rootBlockDevice.encrypted) (ODOO-1, AUTH-2).`,
    ]);
    expect(await validateResource(policy, withProp(postgres, "ebsBlockDevices", [{ deviceName: "/dev/sdg", encrypted: false }]))).toEqual([
      `EC2 instance (${postgres.name}) must encrypt its volume /dev/sdg (ebsBlockDevices[].encrypted) (ODOO-1, AUTH-2).`,
    ]);
  });
});

describe("instance-user-data-no-secrets (ODOO-1)", () => {
  const policy = instanceUserDataNoSecrets;
  const odoo = fixture.get(instanceName(hosts.odoo[0]));

  it("passes user data that holds names only, and {{ssm:…}} references", async () => {
    for (const r of instances) expect(await validateResource(policy, r)).toEqual([]);
    expect(
      await validateResource(
        policy,
        withProp(odoo, "userData", "#cloud-config\n# admin_passwd = {{ssm:/odoo-stack/test/odoo/admin-passwd}}\n"),
      ),
    ).toEqual([]);
  });

  // Generated per run: no secret-shaped literal lives in the repository.
  const password = randomBytes(18).toString("base64url");
  const privateKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();
  it.each([
    [`admin_passwd = ${password}`, "a literal admin_passwd"],
    [privateKey, "a private key"],
    [`"odoo" "${scramSha256Verifier(password, randomBytes(16))}"`, "a SCRAM verifier"],
  ])("rejects user data carrying %s", async (secret, what) => {
    const r = withProp(odoo, "userData", `#cloud-config\nwrite_files:\n- content: ${JSON.stringify(secret)}\n`);
    expect(await validateResource(policy, r)).toEqual([
      `EC2 instance (${odoo.name}) must not carry ${what} in its user data; deliver secrets as {{ssm:…}} references resolved on the host (ODOO-1).`,
    ]);
  });

  it("finds a secret hidden in a gz+b64 write_files entry", async () => {
    const blob = gzipSync(Buffer.from(`[options]\nadmin_passwd = ${password}\n`)).toString("base64");
    const r = withProp(odoo, "userData", `#cloud-config\nwrite_files:\n- encoding: "gz+b64"\n  content: "${blob}"\n`);
    expect(await validateResource(policy, r)).toEqual([expect.stringContaining("must not carry a literal admin_passwd in its user data")]);
  });
});

describe("private-hosts-have-no-public-address (NET-1, NET-2, NET-5, NET-6)", () => {
  const policy = privateHostsHaveNoPublicAddress;

  it("passes the stack (the proxy's Elastic IP included)", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects an instance that leaves associatePublicIpAddress to a subnet mapping public IPs", async () => {
    const subnet = withProp(fixture.get("network-private-0"), "mapPublicIpOnLaunch", true);
    const silent = withProp(postgres, "associatePublicIpAddress", undefined);
    const resources = replaced(replaced(fixture.resources, subnet), silent);
    expect(await validateStack(policy, resources)).toEqual([
      {
        message: `EC2 instance (${postgres.name}) must set associatePublicIpAddress = false: its subnet (network-private-0) maps public IPs on launch, and it is a postgres host (NET-6).`,
        urn: expect.stringContaining(postgres.name),
      },
    ]);
  });

  it("rejects the Elastic IP moved to the PostgreSQL host", async () => {
    const association = fixture.get("proxy-eip-association");
    const moved = { ...withProp(association, "instanceId", `${postgres.name}-id`), propertyDependencies: { instanceId: [postgres.name] } };
    expect((await validateStack(policy, replaced(fixture.resources, moved))).map((v) => v.message)).toEqual([
      `Elastic IP association (proxy-eip-association) must not attach a public address to EC2 instance (${postgres.name}): it is a postgres host, and only the proxy is reachable from the internet (NET-6).`,
    ]);
  });
});
