// The fleet suite's stand-ins for AWS and the DNS, on their own: what they answer is what the
// hosts' tools (awscli 2.9, boto3, certbot, glibc's resolver) read, so a wrong answer would show
// as a host defect that is not one.
import { execFileSync } from "child_process";
import { createHash, generateKeyPairSync } from "crypto";
import * as http from "http";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { answer, lookup, type DnsZone } from "../fleet/edge/dns";
import { applyRecordChange, parsePutMetricData } from "../fleet/edge/aws";
import { acmeHandler, jwkThumbprint } from "../fleet/edge/acme";
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
      {
        namespace: "OdooStack/PgBouncer",
        name: "ClientsWaiting",
        value: 3,
        unit: "Count",
        dimensions: { Stack: "prod", Database: "erp" },
        host: "pgbouncer",
      },
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
    const expected = createHash("sha256")
      .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
      .digest("base64url");
    expect(jwkThumbprint({ ...jwk, kid: "ignored" })).toBe(expected);
  });
});

describe("the fleet's ACME stand-in: one order for several names (a hostname per database)", () => {
  it("an authorization and a DNS-01 challenge per name; ready only once every TXT record holds its digest; the certificate names them all", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acme-unit-"));
    const txt = new Map<string, string[]>();
    const handler = acmeHandler({
      base: "http://acme.test",
      caCert: path.join(dir, "ca.crt"),
      caKey: path.join(dir, "ca.key"),
      txt,
      record: () => undefined,
    });
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=unit CA",
        "-days",
        "1",
        "-keyout",
        path.join(dir, "ca.key"),
        "-out",
        path.join(dir, "ca.crt"),
      ],
      { stdio: "ignore" },
    );
    const { server, post, jwk } = await acmeTestClient(handler);
    try {
      await post("/new-account", { termsOfServiceAgreed: true });
      const names = ["erp.example.com", "shop.example.com"];
      const order = await post("/new-order", { identifiers: names.map((value) => ({ type: "dns", value })) });
      const view = JSON.parse(order.text) as { authorizations: string[]; finalize: string };
      expect(view.authorizations).toHaveLength(2);
      const authzs = await Promise.all(
        view.authorizations.map(
          async (u) =>
            JSON.parse((await post(u, "")).text) as { identifier: { value: string }; challenges: { url: string; token: string }[] },
        ),
      );
      expect(authzs.map((a) => a.identifier.value).sort()).toEqual(names);
      const digest = (token: string) =>
        createHash("sha256")
          .update(`${token}.${jwkThumbprint(jwk)}`)
          .digest("base64url");
      const status = async () => (JSON.parse((await post(order.location, "")).text) as { status: string }).status;
      // The first name validated: the order waits for the second.
      txt.set(`_acme-challenge.${authzs[0].identifier.value}`, [digest(authzs[0].challenges[0].token)]);
      expect(JSON.parse((await post(authzs[0].challenges[0].url, {})).text).status).toBe("valid");
      expect(await status()).toBe("pending");
      expect((await post(view.finalize, { csr: "" })).status).toBe(403);
      // Both records in the zone (another value beside it, as certbot leaves while cleaning up).
      txt.set(`_acme-challenge.${authzs[1].identifier.value}`, ["stale", digest(authzs[1].challenges[0].token)]);
      expect(JSON.parse((await post(authzs[1].challenges[0].url, {})).text).status).toBe("valid");
      expect(await status()).toBe("ready");
      execFileSync(
        "openssl",
        [
          "req",
          "-new",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-subj",
          `/CN=${names[0]}`,
          "-addext",
          `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
          "-keyout",
          path.join(dir, "leaf.key"),
          "-outform",
          "DER",
          "-out",
          path.join(dir, "csr.der"),
        ],
        { stdio: "ignore" },
      );
      const finalized = JSON.parse(
        (await post(view.finalize, { csr: fs.readFileSync(path.join(dir, "csr.der")).toString("base64url") })).text,
      ) as { status: string; certificate: string };
      expect(finalized.status).toBe("valid");
      const chain = (await post(finalized.certificate, "")).text;
      const sans = execFileSync("openssl", ["x509", "-noout", "-ext", "subjectAltName"], { input: chain, encoding: "utf8" });
      for (const n of names) expect(sans).toContain(`DNS:${n}`);
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a wrong digest for one name fails the whole order", async () => {
    const txt = new Map<string, string[]>([["_acme-challenge.shop.example.com", ["not-the-digest"]]]);
    const handler = acmeHandler({ base: "http://acme.test", caCert: "/nonexistent", caKey: "/nonexistent", txt, record: () => undefined });
    const { server, post } = await acmeTestClient(handler);
    try {
      await post("/new-account", {});
      const order = await post("/new-order", {
        identifiers: [
          { type: "dns", value: "erp.example.com" },
          { type: "dns", value: "shop.example.com" },
        ],
      });
      const authz = (
        await Promise.all(
          (JSON.parse(order.text) as { authorizations: string[] }).authorizations.map(
            async (u) => JSON.parse((await post(u, "")).text) as { identifier: { value: string }; challenges: { url: string }[] },
          ),
        )
      ).find((a) => a.identifier.value === "shop.example.com")!;
      expect(JSON.parse((await post(authz.challenges[0].url, {})).text).status).toBe("invalid");
      expect((JSON.parse((await post(order.location, "")).text) as { status: string }).status).toBe("invalid");
    } finally {
      server.close();
    }
  });
});

describe("the fleet's Route 53 stand-in changes what the resolver answers", () => {
  it("UPSERT and DELETE of an A record (a hostname per database), TXT values added and removed", () => {
    const z = zone();
    applyRecordChange(z, { action: "UPSERT", name: "Shop.Example.com.", type: "A", values: ["198.51.100.7"] });
    expect(lookup(z, "shop.example.com")).toBe("198.51.100.7");
    const reply = answer(z, query("shop.example.com", 1));
    expect([...reply.subarray(reply.length - 4)]).toEqual([198, 51, 100, 7]);
    applyRecordChange(z, { action: "UPSERT", name: "_acme-challenge.shop.example.com", type: "TXT", values: ["a", "b"] });
    applyRecordChange(z, { action: "DELETE", name: "_acme-challenge.shop.example.com", type: "TXT", values: ["a"] });
    expect(z.txt.get("_acme-challenge.shop.example.com")).toEqual(["b"]);
    applyRecordChange(z, { action: "DELETE", name: "shop.example.com", type: "A", values: ["198.51.100.7"] });
    expect(answer(z, query("shop.example.com", 1)).readUInt16BE(2) & 0x000f).toBe(3);
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

describe("the fleet's Odoo stand-in picks the database as Odoo 17 does (odoo/http.py db_filter L344-379)", () => {
  // The stand-in's functions, called in python3 with a psycopg2 that refuses to connect: what
  // they answer here they answer on the fleet's Odoo host.
  const standin = path.join(__dirname, "..", "fleet", "standins", "odoo", "odoo");
  const call = (calls: readonly [string, ...unknown[]][]): unknown[] => {
    const stub = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-standin-"));
    try {
      fs.mkdirSync(path.join(stub, "psycopg2"));
      fs.writeFileSync(
        path.join(stub, "psycopg2", "__init__.py"),
        "class Error(Exception): pass\nclass OperationalError(Error): pass\ndef connect(**kw):\n    raise OperationalError('no server in a unit test')\n",
      );
      fs.writeFileSync(path.join(stub, "psycopg2", "extensions.py"), "ISOLATION_LEVEL_AUTOCOMMIT = 0\n");
      const script = [
        "import importlib.machinery, importlib.util, json, sys",
        `loader = importlib.machinery.SourceFileLoader("odoo_standin", ${JSON.stringify(standin)})`,
        "spec = importlib.util.spec_from_loader('odoo_standin', loader)",
        "m = importlib.util.module_from_spec(spec); loader.exec_module(m)",
        "out = []",
        "for name, *args in json.loads(sys.stdin.read()):",
        "    try: out.append(getattr(m, name)(*args))",
        "    except Exception as e: out.append('raised ' + type(e).__name__)",
        "print(json.dumps(out))",
      ].join("\n");
      return JSON.parse(
        execFileSync("python3", ["-c", script], {
          input: JSON.stringify(calls),
          env: { ...process.env, PYTHONPATH: stub },
          encoding: "utf8",
        }),
      ) as unknown[];
    } finally {
      fs.rmSync(stub, { recursive: true, force: true });
    }
  };
  // The stack's filter for two databases (lib/config.ts dbfilterFor), with proxy_mode.
  const multi = { dbfilter: "^(?=(?:erp|shop)$)%d$", db_name: "erp,shop", proxy_mode: "True" };
  const single = { db_name: "erp", proxy_mode: "True" };
  const owned = ["erp", "other", "shop"];

  it("db_filter: %d is the host's first label (port and a leading www. dropped); the filter admits exactly that database", () => {
    expect(
      call([
        ["db_filter", multi, owned, "erp.example.com"],
        ["db_filter", multi, owned, "shop.example.com:443"],
        ["db_filter", multi, owned, "www.shop.example.com"],
        ["db_filter", multi, owned, "other.example.com"],
        ["db_filter", multi, owned, "erpshop.example.com"],
        ["db_filter", { dbfilter: "^%h$" }, ["erp.example.com", "erp"], "www.erp.example.com"],
        // Without a filter, db_name is the list of exposed databases, whatever the host.
        ["db_filter", single, owned, "shop.example.com"],
      ]),
    ).toEqual([["erp"], ["shop"], ["shop"], [], [], ["erp.example.com"], ["erp"]]);
  });

  it("the request's host: the last X-Forwarded-Host under proxy_mode (werkzeug ProxyFix), Host otherwise", () => {
    const headers = { Host: "erp.example.com", "X-Forwarded-Host": "evil.example.com, shop.example.com" };
    expect(
      call([
        ["request_host", multi, headers],
        ["request_host", { ...multi, proxy_mode: "False" }, headers],
        ["request_host", multi, { Host: "erp.example.com" }],
      ]),
    ).toEqual(["shop.example.com", "erp.example.com", "erp.example.com"]);
  });

  it("a cookieless request: the one database the host's filter lists; ?db= only when the filter admits it for that host", () => {
    expect(
      call([
        ["request_db", multi, "erp.example.com", "", owned],
        ["request_db", multi, "shop.example.com", "", owned],
        ["request_db", multi, "erp.example.com", "shop", owned],
        ["request_db", multi, "erp.example.com", "other", owned],
        ["request_db", multi, "erp.example.com", " erp ", owned],
        ["request_db", multi, "other.example.com", "", owned],
        ["request_db", multi, "other.example.com", "erp", owned],
        // Not yet created (or not owned by the role): the host has no database.
        ["request_db", multi, "shop.example.com", "", ["erp"]],
        ["request_db", single, "shop.example.com", "shop", ["erp"]],
      ]),
    ).toEqual(["erp", "shop", "erp", "erp", "erp", null, null, null, "erp"]);
  });

  it("list_dbs: db_name without connecting when there is no filter; with one, it connects to `postgres`", () => {
    expect(
      call([
        ["list_dbs", single],
        ["list_dbs", { ...single, db_name: "shop, erp" }],
        ["list_dbs", multi],
      ]),
    ).toEqual([["erp"], ["erp", "shop"], "raised OperationalError"]);
  });
});

/**
 * An ACME client of the stand-in for the tests: JWS bodies as certbot sends them, unsigned (the
 * stand-in checks the protocol, not signatures); the account's kid once /new-account answered.
 */
async function acmeTestClient(handler: ReturnType<typeof acmeHandler>) {
  const server = http.createServer((req, res) => void handler(req, res, "proxy"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" });
  let kid = "";
  const post = async (p: string, payload: unknown) => {
    const prot = Buffer.from(JSON.stringify(kid ? { kid, url: p } : { jwk, url: p })).toString("base64url");
    const body = JSON.stringify({
      protected: prot,
      payload: payload === "" ? "" : Buffer.from(JSON.stringify(payload)).toString("base64url"),
      signature: "",
    });
    const r = await fetch(`http://127.0.0.1:${port}${p.replace("http://acme.test", "")}`, { method: "POST", body });
    const answer = { status: r.status, location: r.headers.get("location") ?? "", text: await r.text() };
    if (p === "/new-account") kid = answer.location;
    return answer;
  };
  return { server, post, jwk };
}
