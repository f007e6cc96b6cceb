// The secret placeholder `{{ssm:/path}}`: the one grammar of it. Rendered files carry these
// instead of secrets (DESIGN principle 5; ODOO-1, AUTH-2) and the apply script
// (templates/scripts/odoo-stack-apply.sh, resolve_file) replaces them on the host from SSM.
// The model, every renderer, config validation and the policy pack read the grammar from here;
// the script spells it in bash, and tests/unit/secret-ref.test.ts runs both on one corpus
// (tests/fixtures/ssm-placeholders.json), so the two cannot drift apart.
// Pure and free of imports: the policy pack compiles it too.

/** What opens a placeholder. Any occurrence that does not start a whole placeholder is an error. */
export const SECRET_REF_OPEN = "{{ssm:";
/** What closes one. */
export const SECRET_REF_CLOSE = "}}";
/** SECRET_REF_OPEN as a regular-expression source, for patterns that must look past a placeholder. */
export const SECRET_REF_OPEN_SOURCE = "\\{\\{ssm:";
/**
 * A parameter path: "/" then SSM's parameter-name characters (letters, digits, _ . - /). The
 * apply script's PLACEHOLDER_RE spells the same class in POSIX ERE.
 */
export const SECRET_REF_PATH = "/[A-Za-z0-9_.\\-/]+";

/** A reference to an SSM parameter, resolved on the host at apply time by the apply script. */
export const secretRef = (parameterPath: string): string => `${SECRET_REF_OPEN}${parameterPath}${SECRET_REF_CLOSE}`;

/** Matches every placeholder in a text; group 1 is the parameter path. Global: use matchAll. */
export const SECRET_REF = new RegExp(`${SECRET_REF_OPEN_SOURCE}(${SECRET_REF_PATH})\\}\\}`, "g");

const WHOLE = new RegExp(`^${SECRET_REF.source}$`);

/** The parameter path when the value is exactly one placeholder and nothing else; else undefined. */
export function parseSecretRef(value: string): string | undefined {
  return WHOLE.exec(value)?.[1];
}

/** Whether a parameter path can stand in a placeholder (a setting naming a parameter the files will reference). */
export const isSecretRefPath = (path: string): boolean => parseSecretRef(secretRef(path)) === path;

/** Whether the value is exactly one placeholder (a secret setting must be one, never a literal). */
export const isSecretRef = (value: string): boolean => WHOLE.test(value);

/** What a text holds: the parameter paths of its placeholders, in order, and whether any is malformed. */
export interface SecretRefScan {
  readonly paths: readonly string[];
  /** An `{{ssm:` that does not open a well-formed placeholder: the apply script refuses the file. */
  readonly malformed: boolean;
}

/** Scans a text the way the apply script resolves it. */
export function scanSecretRefs(text: string): SecretRefScan {
  const paths = [...text.matchAll(SECRET_REF)].map((m) => m[1]);
  return { paths, malformed: text.split(SECRET_REF_OPEN).length - 1 !== paths.length };
}

/** The text with every placeholder replaced by value(path); what the apply script installs. */
export function resolveSecretRefs(text: string, value: (path: string) => string): string {
  return text.replace(SECRET_REF, (_, path: string) => value(path));
}
