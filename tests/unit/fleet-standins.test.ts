// The fleet suite's stand-ins for AWS and the DNS, on their own: what they answer is what the
// hosts' tools (awscli 2.9, boto3, certbot, glibc's resolver) read, so a wrong answer would show
// as a host defect that is not one.
import { createHash, generateKeyPairSync } from "crypto";
import { answer, lookup, type DnsZone } from "../fleet/edge/dns";
import { parsePutMetricData } from "../fleet/edge/aws";
import { jwkThumbprint } from "../fleet/edge/acme";
import { firstBootTransactions } from "../fleet/lib/debian";
import { packagesFor, RUNCMD_PACKAGES } from "../../templates/cloud-init";

const zone = (): DnsZone => ({
  records: { "postgres.odoo.internal": "10.40.128.12" },
  suffixes: { "amazonaws.com": "192.0.2.10" },
  txt: new Map([["_acme-challenge.erp.example.com", ["token-digest"]]]),
});

function query(name: string, type: number, id = 0x1234): Buffer {
  const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

describe("the fleet's DNS (the VPC resolver stand-in)", () => {
  it("answers the private zone's exact names and every name below a suffix", () => {
    expect(lookup(zone(), "postgres.odoo.internal")).toBe("10.40.128.12");
    expect(lookup(zone(), "POSTGRES.odoo.internal.")).toBe("10.40.128.12");
    expect(lookup(zone(), "config-bucket-1.s3.eu-west-1.amazonaws.com")).toBe("192.0.2.10");
    expect(lookup(zone(), "pgbouncer.odoo.internal")).toBeUndefined();
    expect(lookup(zone(), "evilamazonaws.com")).toBeUndefined();
  });

  it("encodes an A answer with the query's id and question, NXDOMAIN for an unknown name", () => {
    const reply = answer(zone(), query("postgres.odoo.internal", 1));
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply.readUInt16BE(2) & 0x000f).toBe(0); // NOERROR
    expect(reply.readUInt16BE(6)).toBe(1); // one answer
    expect([...reply.subarray(reply.length - 4)]).toEqual([10, 40, 128, 12]);
    const unknown = answer(zone(), query("github.com", 1));
    expect(unknown.readUInt16BE(2) & 0x000f).toBe(3); // NXDOMAIN: nothing leaves the fleet
    expect(unknown.readUInt16BE(6)).toBe(0);
  });

  it("answers TXT records (ACME DNS-01) and no A record for an AAAA question", () => {
    const txt = answer(zone(), query("_acme-challenge.erp.example.com", 16));
    expect(txt.readUInt16BE(6)).toBe(1);
    expect(txt.subarray(txt.length - "token-digest".length).toString()).toBe("token-digest");
    const aaaa = answer(zone(), query("postgres.odoo.internal", 28));
    expect([aaaa.readUInt16BE(2) & 0x000f, aaaa.readUInt16BE(6)]).toEqual([0, 0]);
  });
});

describe("the fleet's CloudWatch stand-in", () => {
  it("reads awscli's query-protocol PutMetricData: names, values, units and every dimension", () => {
    const form = new URLSearchParams({
      Action: "PutMetricData",
      Namespace: "OdooStack/PgBouncer",
      "MetricData.member.1.MetricName": "ClientsWaiting",
      "MetricData.member.1.Value": "3",
      "MetricData.member.1.Unit": "Count",
      "MetricData.member.1.Dimensions.member.1.Name": "Stack",
      "MetricData.member.1.Dimensions.member.1.Value": "prod",
      "MetricData.member.1.Dimensions.member.2.Name": "Database",
      "MetricData.member.1.Dimensions.member.2.Value": "erp",
      "MetricData.member.2.MetricName": "MaxWaitSeconds",
      "MetricData.member.2.StatisticValues.Sum": "0.5",
    });
    expect(parsePutMetricData(form, "pgbouncer")).toEqual([
      { namespace: "OdooStack/PgBouncer", name: "ClientsWaiting", value: 3, unit: "Count", dimensions: { Stack: "prod", Database: "erp" }, host: "pgbouncer" },
      { namespace: "OdooStack/PgBouncer", name: "MaxWaitSeconds", value: 0.5, unit: undefined, dimensions: {}, host: "pgbouncer" },
    ]);
  });
});

describe("the fleet's ACME stand-in", () => {
  it("computes RFC 7638 thumbprints (RFC 7638 §3.1's example key)", () => {
    const jwk = {
      kty: "RSA",
      n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
      e: "AQAB",
      alg: "RS256",
      kid: "2011-04-29",
    };
    expect(jwkThumbprint(jwk)).toBe("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  });

  it("thumbprints an EC key from its members only, whatever else the JWK carries", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = publicKey.export({ format: "jwk" });
    const expected = createHash("sha256").update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest("base64url");
    expect(jwkThumbprint({ ...jwk, kid: "ignored" })).toBe(expected);
  });
});

describe("the fleet's Debian mirror", () => {
  it("carries each role's first-boot transaction as the bootstrap runs it, and PostgreSQL's server apart", () => {
    const transactions = firstBootTransactions();
    for (const role of ["proxy", "odoo", "pgbouncer", "postgres"] as const) {
      expect(transactions).toContainEqual(expect.arrayContaining(packagesFor(role)));
    }
    expect(transactions).toContainEqual([...RUNCMD_PACKAGES.postgres]);
    // Installed by a step of its own, before the server's postinst creates the cluster.
    expect(transactions).toContainEqual(["postgresql-common"]);
  });
});
