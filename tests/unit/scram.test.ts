import { createHash, createHmac, randomBytes } from "crypto";
import { parseScramVerifier, scramSha256Verifier, SCRAM_DEFAULT_ITERATIONS, SCRAM_SALT_BYTES } from "../../lib/scram";

// Byte identity with PostgreSQL's own verifiers is proven in tests/integration/scram.test.ts,
// against a live server with passwords generated per run; no captured verifier lives here.

describe("scramSha256Verifier (AUTH-1, DESIGN principle 5)", () => {
  it("writes PostgreSQL's format: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>, all base64", () => {
    const salt = randomBytes(SCRAM_SALT_BYTES);
    const verifier = scramSha256Verifier(randomBytes(18).toString("base64url"), salt);
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$/);
    const parts = parseScramVerifier(verifier)!;
    expect(parts.iterations).toBe(SCRAM_DEFAULT_ITERATIONS);
    expect(parts.salt.equals(salt)).toBe(true);
    expect(parts.storedKey).toHaveLength(32);
    expect(parts.serverKey).toHaveLength(32);
  });

  it("keys complete the RFC 7677 §3 example exchange (user/pencil)", () => {
    // The RFC gives the client proof and server signature, not the stored keys: a verifier
    // is right if StoredKey = H(ClientProof XOR HMAC(StoredKey, AuthMessage)) and
    // ServerSignature = HMAC(ServerKey, AuthMessage).
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    const nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
    const clientProof = Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64");
    const serverSignature = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    const { storedKey, serverKey } = parseScramVerifier(scramSha256Verifier("pencil", salt, 4096))!;
    const clientSignature = createHmac("sha256", storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(clientProof.map((b, i) => b ^ clientSignature[i]));
    expect(createHash("sha256").update(clientKey).digest().equals(storedKey)).toBe(true);
    expect(createHmac("sha256", serverKey).update(authMessage).digest("base64")).toBe(serverSignature);
  });

  it("depends on the password, the salt and the iteration count", () => {
    const salt = Buffer.alloc(SCRAM_SALT_BYTES, 7);
    const base = scramSha256Verifier("abc123", salt, 4096);
    expect(scramSha256Verifier("abc124", salt, 4096)).not.toBe(base);
    expect(scramSha256Verifier("abc123", Buffer.alloc(SCRAM_SALT_BYTES, 8), 4096)).not.toBe(base);
    expect(scramSha256Verifier("abc123", salt, 4097)).not.toBe(base);
    expect(scramSha256Verifier("abc123", salt)).toBe(base);
  });

  it.each([
    ["non-ASCII (SASLprep would apply)", "pässword"],
    ["a non-ASCII space", "pass\u00a0word"],
    ["a control character", "pass\tword"],
    ["empty", ""],
  ])("refuses a password that is %s, naming SASLprep", (_label, password) => {
    expect(() => scramSha256Verifier(password, randomBytes(SCRAM_SALT_BYTES))).toThrow(/printable ASCII.*SASLprep/);
  });

  it("refuses an empty salt and a non-positive or fractional iteration count", () => {
    expect(() => scramSha256Verifier("abc", Buffer.alloc(0))).toThrow(/salt/);
    expect(() => scramSha256Verifier("abc", randomBytes(16), 0)).toThrow(/iterations/);
    expect(() => scramSha256Verifier("abc", randomBytes(16), 1.5)).toThrow(/iterations/);
  });
});

describe("parseScramVerifier", () => {
  it("splits a verifier into its parts and round-trips", () => {
    const salt = randomBytes(SCRAM_SALT_BYTES);
    const verifier = scramSha256Verifier("Zx81qQ", salt, 10000);
    const parts = parseScramVerifier(verifier)!;
    expect(parts.iterations).toBe(10000);
    expect(parts.salt.equals(salt)).toBe(true);
    expect(parts.storedKey).toHaveLength(32);
    expect(parts.serverKey).toHaveLength(32);
  });

  const valid = scramSha256Verifier(randomBytes(18).toString("base64url"), randomBytes(SCRAM_SALT_BYTES));
  it.each([
    ["plaintext", randomBytes(9).toString("hex")],
    ["md5", "md5" + "0".repeat(32)],
    ["a placeholder", "{{ssm:/odoo-stack/test/pgbouncer/odoo-scram-verifier}}"],
    ["a truncated key", valid.slice(0, -4)],
    ["trailing text", `${valid} extra`],
    ["zero iterations", valid.replace("$4096:", "$0:")],
  ])("returns undefined for %s", (_label, text) => {
    expect(parseScramVerifier(text)).toBeUndefined();
  });
});
