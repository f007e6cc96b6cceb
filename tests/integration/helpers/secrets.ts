// Secrets the sandbox generates at runtime and substitutes for the secretRef() placeholders
// of rendered files, as the host's apply script does with SSM at apply time (DESIGN principle
// 5). Nothing here is written to the repository or printed.
import { randomBytes, randomInt } from "crypto";
import { scramSha256Verifier, SCRAM_DEFAULT_ITERATIONS, SCRAM_SALT_BYTES } from "../../../lib/scram";
import { SECRET_REF, type StackModel } from "../../../lib/model";

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random alphanumeric password (ASCII, so no SASLprep question arises; see lib/scram.ts). */
export function randomPassword(length = 32): string {
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}

/** A fresh SCRAM-SHA-256 verifier with PostgreSQL's salt length and iteration count. */
export function freshVerifier(password: string): string {
  return scramSha256Verifier(password, randomBytes(SCRAM_SALT_BYTES), SCRAM_DEFAULT_ITERATIONS);
}

export interface SandboxSecrets {
  readonly odooDbPassword: string;
  readonly statsPassword: string;
  readonly monitorPassword: string;
  readonly odooAdminPassword: string;
  /** parameter path → value, for every secret parameter of the model. */
  readonly byParameter: ReadonlyMap<string, string>;
}

/**
 * Generates a value for every secret SSM parameter of `model`; the two verifiers are made
 * from the two passwords, so PostgreSQL and PgBouncer end up with byte-identical secrets.
 */
export function generateSecrets(model: StackModel): SandboxSecrets {
  const odooDbPassword = randomPassword();
  const statsPassword = randomPassword();
  const monitorPassword = randomPassword();
  const odooAdminPassword = randomPassword();
  const p = model.parameters;
  const byParameter = new Map<string, string>([
    [p.odooDbPassword, odooDbPassword],
    [p.odooDbScramVerifier, freshVerifier(odooDbPassword)],
    [p.statsPassword, statsPassword],
    [p.statsScramVerifier, freshVerifier(statsPassword)],
    [p.monitorPassword, monitorPassword],
    [p.odooAdminPassword, odooAdminPassword],
    [p.backupCipherPass, randomPassword(48)],
  ]);
  return { odooDbPassword, statsPassword, monitorPassword, odooAdminPassword, byParameter };
}

/** Every secretRef parameter path `text` mentions. */
export function secretRefsIn(text: string): string[] {
  return [...new Set([...text.matchAll(new RegExp(SECRET_REF.source, "g"))].map((m) => m[1]))].sort();
}

/**
 * Replaces every secretRef placeholder with its value; throws naming any placeholder that has
 * no value (a rendered file that references an unknown parameter is a finding, not a default).
 */
export function resolveSecretRefs(text: string, values: ReadonlyMap<string, string>): string {
  const missing = secretRefsIn(text).filter((ref) => !values.has(ref));
  if (missing.length > 0) throw new Error(`rendered file references SSM parameters the sandbox has no value for: ${missing.join(", ")}`);
  return text.replace(new RegExp(SECRET_REF.source, "g"), (_, ref: string) => values.get(ref) as string);
}
