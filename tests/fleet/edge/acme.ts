// A stand-in for Let's Encrypt's ACME v2 endpoint (RFC 8555), enough for certbot 2.1's DNS-01
// flow: account, order, authorization, dns-01 challenge, finalize, certificate. The challenge is
// validated for real: the TXT record `_acme-challenge.<domain>` must hold the key authorization's
// digest (RFC 8555 §8.4), as set through the Route 53 stand-in. Certificates are signed by the
// suite's test CA with the CSR's names.
import { createHash, createPublicKey, randomBytes, type JsonWebKey } from "crypto";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { IncomingMessage, ServerResponse } from "http";
import { body, type Call } from "./aws";

const b64url = (b: Buffer) => b.toString("base64url");

interface Order {
  id: string;
  identifiers: { type: string; value: string }[];
  status: string;
  authz: string[];
  certificate?: string;
}

interface Authz {
  id: string;
  domain: string;
  token: string;
  status: string;
  accountThumbprint: string;
}

/** RFC 7638 thumbprint of a JWK (RSA or EC), the account key's identity in key authorizations. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === "RSA" ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return b64url(createHash("sha256").update(JSON.stringify(members)).digest());
}

export function acmeHandler(opts: {
  base: string;
  caCert: string;
  caKey: string;
  txt: Map<string, string[]>;
  record: (c: Omit<Call, "at">) => void;
}) {
  const accounts = new Map<string, JsonWebKey>();
  const orders = new Map<string, Order>();
  const authzs = new Map<string, Authz>();
  const certs = new Map<string, string>();
  const nonce = () => b64url(randomBytes(16));
  const url = (p: string) => `${opts.base}${p}`;
  const reply = (res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}) => {
    const text = typeof payload === "string" ? payload : JSON.stringify(payload);
    res.writeHead(status, {
      "Replay-Nonce": nonce(),
      "Cache-Control": "no-store",
      "Content-Type": typeof payload === "string" ? "application/pem-certificate-chain" : "application/json",
      Link: `<${url("/directory")}>;rel="index"`,
      ...headers,
    });
    res.end(text);
  };
  const problem = (res: ServerResponse, status: number, type: string, detail: string) =>
    reply(res, status, { type: `urn:ietf:params:acme:error:${type}`, detail }, { "Content-Type": "application/problem+json" });
  const authzView = (a: Authz) => ({
    status: a.status,
    expires: new Date(Date.now() + 86400000).toISOString(),
    identifier: { type: "dns", value: a.domain },
    challenges: [{ type: "dns-01", url: url(`/chall/${a.id}`), token: a.token, status: a.status === "valid" ? "valid" : "pending" }],
  });
  const orderView = (o: Order) => ({
    status: o.status,
    expires: new Date(Date.now() + 86400000).toISOString(),
    identifiers: o.identifiers,
    authorizations: o.authz.map((id) => url(`/authz/${id}`)),
    finalize: url(`/finalize/${o.id}`),
    ...(o.certificate ? { certificate: url(`/cert/${o.certificate}`) } : {}),
  });

  return async (req: IncomingMessage, res: ServerResponse, host: string | undefined) => {
    const p = (req.url ?? "/").split("?")[0];
    const raw = (await body(req)).toString("utf8");
    if (p === "/directory") {
      return reply(res, 200, {
        newNonce: url("/new-nonce"),
        newAccount: url("/new-account"),
        newOrder: url("/new-order"),
        revokeCert: url("/revoke-cert"),
        keyChange: url("/key-change"),
        meta: { termsOfService: url("/terms") },
      });
    }
    if (p === "/new-nonce") return reply(res, req.method === "HEAD" ? 200 : 204, "", { "Content-Type": "text/plain" });
    if (req.method !== "POST") return problem(res, 405, "malformed", `${req.method} ${p}`);
    // A JWS in flattened JSON form; the payload is "" for POST-as-GET.
    const jws = JSON.parse(raw) as { protected: string; payload: string };
    const header = JSON.parse(Buffer.from(jws.protected, "base64url").toString("utf8")) as { jwk?: JsonWebKey; kid?: string; url?: string };
    const payload =
      jws.payload === "" ? {} : (JSON.parse(Buffer.from(jws.payload, "base64url").toString("utf8")) as Record<string, unknown>);
    const account = header.kid ? accounts.get(header.kid) : undefined;
    opts.record({ service: "acme", action: p.split("/")[1] ?? p, host, detail: {} });

    if (p === "/new-account") {
      if (!header.jwk) return problem(res, 400, "malformed", "newAccount needs a jwk");
      createPublicKey({ key: header.jwk, format: "jwk" }); // a key certbot could sign with
      const kid = url(`/acct/${jwkThumbprint(header.jwk).slice(0, 12)}`);
      accounts.set(kid, header.jwk);
      return reply(res, 201, { status: "valid", contact: payload.contact ?? [], orders: url("/orders") }, { Location: kid });
    }
    if (!account) return problem(res, 400, "accountDoesNotExist", "unknown kid");
    const thumbprint = jwkThumbprint(account);

    if (p === "/new-order") {
      const identifiers = (payload.identifiers as Order["identifiers"]) ?? [];
      const order: Order = { id: b64url(randomBytes(9)), identifiers, status: "pending", authz: [] };
      for (const ident of identifiers) {
        const a: Authz = {
          id: b64url(randomBytes(9)),
          domain: ident.value,
          token: b64url(randomBytes(32)),
          status: "pending",
          accountThumbprint: thumbprint,
        };
        authzs.set(a.id, a);
        order.authz.push(a.id);
      }
      orders.set(order.id, order);
      return reply(res, 201, orderView(order), { Location: url(`/order/${order.id}`) });
    }
    const authzMatch = /^\/authz\/(.+)$/.exec(p);
    if (authzMatch) {
      const a = authzs.get(authzMatch[1]);
      return a ? reply(res, 200, authzView(a)) : problem(res, 404, "malformed", "no such authorization");
    }
    const challMatch = /^\/chall\/(.+)$/.exec(p);
    if (challMatch) {
      const a = authzs.get(challMatch[1]);
      if (!a) return problem(res, 404, "malformed", "no such challenge");
      const expected = b64url(createHash("sha256").update(`${a.token}.${a.accountThumbprint}`).digest());
      const found = opts.txt.get(`_acme-challenge.${a.domain}`) ?? [];
      a.status = found.includes(expected) ? "valid" : "invalid";
      opts.record({ service: "acme", action: "validate-dns-01", host, detail: { domain: a.domain, valid: a.status === "valid" } });
      for (const o of orders.values())
        if (o.authz.includes(a.id))
          o.status = o.authz.every((id) => authzs.get(id)?.status === "valid") ? "ready" : a.status === "invalid" ? "invalid" : o.status;
      return reply(
        res,
        200,
        { type: "dns-01", url: url(`/chall/${a.id}`), token: a.token, status: a.status },
        { Link: `<${url(`/authz/${a.id}`)}>;rel="up"` },
      );
    }
    const finalizeMatch = /^\/finalize\/(.+)$/.exec(p);
    if (finalizeMatch) {
      const o = orders.get(finalizeMatch[1]);
      if (!o || o.status !== "ready") return problem(res, 403, "orderNotReady", "the order is not ready");
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acme-"));
      try {
        const der = Buffer.from(String(payload.csr), "base64url");
        fs.writeFileSync(path.join(dir, "csr.der"), der);
        const pem = execFileSync(
          "openssl",
          [
            "x509",
            "-req",
            "-inform",
            "DER",
            "-in",
            path.join(dir, "csr.der"),
            "-CA",
            opts.caCert,
            "-CAkey",
            opts.caKey,
            "-days",
            "90",
            "-copy_extensions",
            "copyall",
            "-set_serial",
            `0x${randomBytes(8).toString("hex")}`,
          ],
          { encoding: "utf8" },
        );
        const id = b64url(randomBytes(9));
        certs.set(id, pem + fs.readFileSync(opts.caCert, "utf8"));
        o.certificate = id;
        o.status = "valid";
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return reply(res, 200, orderView(o), { Location: url(`/order/${o.id}`) });
    }
    const orderMatch = /^\/order\/(.+)$/.exec(p);
    if (orderMatch) {
      const o = orders.get(orderMatch[1]);
      return o ? reply(res, 200, orderView(o)) : problem(res, 404, "malformed", "no such order");
    }
    const certMatch = /^\/cert\/(.+)$/.exec(p);
    if (certMatch) {
      const pem = certs.get(certMatch[1]);
      return pem ? reply(res, 200, pem) : problem(res, 404, "malformed", "no such certificate");
    }
    return problem(res, 404, "malformed", `the fleet's ACME stand-in has no ${p}`);
  };
}
