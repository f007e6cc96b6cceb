// SCRAM-SHA-256 verifiers in PostgreSQL's stored format (DESIGN principle 5): the PgBouncer
// host's auth_file and PostgreSQL's pg_authid carry the same verifier — same salt, same
// iterations — so PgBouncer can pass SCRAM through to the server without ever holding a
// plaintext password. PgBouncer's docs (auth_file format) require the secrets to be
// byte-identical, "not merely the same password".
//
// Format: SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
// (RFC 5803 syntax; PostgreSQL src/common/scram-common.c scram_build_secret()).
// Keys (RFC 5802 §3, with SHA-256 per RFC 7677):
//   SaltedPassword = PBKDF2-HMAC-SHA-256(Normalize(password), salt, iterations)
//   ClientKey      = HMAC(SaltedPassword, "Client Key");  StoredKey = SHA-256(ClientKey)
//   ServerKey      = HMAC(SaltedPassword, "Server Key")
import { createHash, createHmac, pbkdf2Sync } from "crypto";

/** PostgreSQL 15's fixed iteration count (scram_iterations became a setting only in 16). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
/** PostgreSQL's salt length (SCRAM_DEFAULT_SALT_LEN in src/include/common/scram-common.h). */
export const SCRAM_SALT_BYTES = 16;

const SHA256_BYTES = 32;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * The verifier PostgreSQL stores for `password` with this salt and iteration count.
 *
 * Normalize() is SASLprep (RFC 4013). PostgreSQL's pg_saslprep() returns pure-ASCII input
 * unchanged, and the stack only generates ASCII-alphanumeric passwords, so for them the
 * normalisation is the identity. Anything outside printable ASCII is refused rather than
 * hashed without SASLprep, which could produce a verifier PostgreSQL would never match.
 */
export function scramSha256Verifier(password: string, salt: Buffer, iterations = SCRAM_DEFAULT_ITERATIONS): string {
  if (!PRINTABLE_ASCII.test(password)) {
    throw new Error(
      "scramSha256Verifier: the password must be non-empty printable ASCII (0x20–0x7E); PostgreSQL applies SASLprep to other characters and this function does not implement SASLprep — generate ASCII passwords (e.g. random alphanumerics)",
    );
  }
  if (salt.length === 0) throw new Error("scramSha256Verifier: the salt must not be empty; PostgreSQL uses 16 random bytes");
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`scramSha256Verifier: iterations must be a positive whole number, got ${iterations}`);
  }
  const saltedPassword = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, SHA256_BYTES, "sha256");
  const clientKey = createHmac("sha256", saltedPassword).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", saltedPassword).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** The parts of a stored SCRAM-SHA-256 verifier. */
export interface ScramVerifierParts {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

const BASE64 = "[A-Za-z0-9+/]+={0,2}";
const VERIFIER = new RegExp(`^SCRAM-SHA-256\\$([1-9][0-9]*):(${BASE64})\\$(${BASE64}):(${BASE64})$`);

/**
 * Splits a verifier in PostgreSQL's format; returns undefined when `text` is not one
 * (e.g. a plaintext or md5 password), so callers can refuse it.
 */
export function parseScramVerifier(text: string): ScramVerifierParts | undefined {
  const m = VERIFIER.exec(text);
  if (!m) return undefined;
  const storedKey = Buffer.from(m[3], "base64");
  const serverKey = Buffer.from(m[4], "base64");
  if (storedKey.length !== SHA256_BYTES || serverKey.length !== SHA256_BYTES) return undefined;
  return { iterations: Number(m[1]), salt: Buffer.from(m[2], "base64"), storedKey, serverKey };
}
