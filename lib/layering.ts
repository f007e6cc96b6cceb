// The one layering of a config file's keys (issue 17 item 2), after CloudNativePG's
// pkg/postgres/configuration.go: defaults, then the user's overrides minus what is fixed, then
// the fixed keys written last, so no override can defeat a checklist setting (STYLE.md,
// "Rendering configs"). Each renderer declares one table of its keys — default, overridable or
// not, forced with its checklist IDs and rule, or owned by the stack — and calls layer(); the
// checklist evidence (tools/checklist.ts) and the RDS parameter group read the same tables.
// Pure and free of imports, so templates, tools and the policy pack may all use it.

/** A value of a key, before the file's own escape function writes it. */
export type LayerValue = string | number | boolean;

/** A fact of the table: the same for every file, or a function of the renderer's settings. */
export type OfSettings<S, T> = T | ((s: S) => T);

/** One key of a file. A key with neither default, forced nor owned is written only when overridden. */
export interface LayerEntry<S, V extends LayerValue = LayerValue> {
  /** The value before overrides; undefined leaves the key out. Optional. Defaults to none. */
  readonly default?: OfSettings<S, V | undefined>;
  /** Whether a user override may set the key. Optional. Defaults to false. */
  readonly overridable?: OfSettings<S, boolean>;
  /**
   * Fixed by the checklist: written last, whatever the overrides say; undefined leaves the key out
   * (it is still refused as an override). Needs `checklist` and `rule`. Optional.
   */
  readonly forced?: OfSettings<S, V | undefined>;
  /**
   * Owned by the stack (derived from the model, no checklist item of its own): written last like a
   * forced key and refused as an override while it is written. Optional.
   */
  readonly owned?: OfSettings<S, V | undefined>;
  /** Checklist IDs the key's value enforces: named when an override is refused; the evidence tools/checklist.ts reads. Optional. */
  readonly checklist?: readonly string[];
  /** What must hold, in words (the refusal names it). Required with `forced`. */
  readonly rule?: string;
  /** The problem with an override's value, or undefined. Optional. Defaults to no check. */
  readonly check?: (value: V, s: S) => string | undefined;
}

/** A file's keys and the words its refusals use. */
export interface LayerTable<S, V extends LayerValue = LayerValue> {
  /** Every key the file may carry, by name. */
  readonly keys: Readonly<Record<string, LayerEntry<S, V>>>;
  /** What an override is called in a refusal, e.g. "an extra option". */
  readonly overrideName: string;
  /** What an allowed key is, e.g. "an Odoo 17.0 option odoo-stack lets you set". */
  readonly allowedName: OfSettings<S, string>;
  /**
   * Where a key is set instead (a stack-config key, another setting): when it answers, the
   * override is refused with that text, before any other reason. Optional. Defaults to nowhere.
   */
  readonly setElsewhere?: (key: string, s: S) => string | undefined;
  /** A check every accepted override's value must also pass, after its entry's own. Optional. */
  readonly checkValue?: (key: string, value: V, s: S) => string | undefined;
}

/** The layers of one file, and every refused override at once. */
export interface Layered<V extends LayerValue = LayerValue> {
  /** Defaults with the accepted overrides on top: the keys a file writes before its fixed ones. */
  readonly main: Readonly<Record<string, V>>;
  /** Forced and owned keys: written last, so nothing above can change them. */
  readonly fixed: Readonly<Record<string, V>>;
  /** main then fixed: the final key → value map. */
  readonly values: Readonly<Record<string, V>>;
  /** One line per refused override, sorted by key, each naming the key and the fix. */
  readonly problems: readonly string[];
}

const resolve = <S, T>(fact: OfSettings<S, T>, s: S): T => (typeof fact === "function" ? (fact as (s: S) => T)(s) : fact);

/** The keys an override may set, for these settings, sorted. */
export function overridableKeys<S, V extends LayerValue>(table: LayerTable<S, V>, s: S): string[] {
  return Object.keys(table.keys)
    .filter((k) => resolve(table.keys[k].overridable ?? false, s))
    .sort();
}

/** The checklist-forced keys and their IDs (a table's evidence of what it enforces). */
export function forcedEntries<S, V extends LayerValue>(table: LayerTable<S, V>): [string, LayerEntry<S, V>][] {
  return Object.entries(table.keys).filter(([, e]) => e.forced !== undefined);
}

/** The keys carrying checklist IDs, with those IDs: what a rendered line of the file proves. */
export function checklistKeys<S, V extends LayerValue>(table: LayerTable<S, V>): Record<string, readonly string[]> {
  return Object.fromEntries(
    Object.entries(table.keys).flatMap(([k, e]) => (e.checklist && e.checklist.length > 0 ? [[k, e.checklist]] : [])),
  );
}

/** Why an override of `key` is refused, or undefined when it is accepted. */
function refusal<S, V extends LayerValue>(
  table: LayerTable<S, V>,
  s: S,
  key: string,
  value: V,
  allowed: readonly string[],
): string | undefined {
  const entry = Object.prototype.hasOwnProperty.call(table.keys, key) ? table.keys[key] : undefined;
  const elsewhere = table.setElsewhere?.(key, s);
  if (elsewhere !== undefined) return `${key}: ${elsewhere}`;
  if (entry?.forced !== undefined) {
    const ids = (entry.checklist ?? []).join(", ");
    return `${key}: is fixed by odoo-stack (${ids}: ${entry.rule ?? ""}) and cannot be set as ${table.overrideName}`;
  }
  if (entry?.owned !== undefined && resolve(entry.owned, s) !== undefined) {
    return `${key}: is fixed by odoo-stack and cannot be set as ${table.overrideName}`;
  }
  if (!allowed.includes(key)) return `${key}: is not ${resolve(table.allowedName, s)}; allowed: ${allowed.join(", ")}`;
  return entry?.check?.(value, s) ?? table.checkValue?.(key, value, s);
}

/**
 * The layering in one place: defaults, then the overrides the table allows, then forced and
 * owned keys, so a fixed key has the last word even when a caller ignores the problems.
 * A refused override is left out of the result and named in `problems`; the caller throws them
 * all at once (lib/problems.ts throwIfAny).
 */
export function layer<S, V extends LayerValue>(table: LayerTable<S, V>, s: S, overrides: Readonly<Record<string, V>> = {}): Layered<V> {
  const allowed = overridableKeys(table, s);
  const main: Record<string, V> = {};
  const fixed: Record<string, V> = {};
  for (const [key, entry] of Object.entries(table.keys)) {
    const d = entry.default === undefined ? undefined : resolve(entry.default, s);
    if (d !== undefined) main[key] = d;
  }
  const problems: string[] = [];
  for (const key of Object.keys(overrides).sort()) {
    const problem = refusal(table, s, key, overrides[key], allowed);
    if (problem === undefined) main[key] = overrides[key];
    else problems.push(problem);
  }
  for (const [key, entry] of Object.entries(table.keys)) {
    const f = entry.forced ?? entry.owned;
    const v = f === undefined ? undefined : resolve(f, s);
    if (v !== undefined) {
      fixed[key] = v;
      delete main[key];
    }
  }
  return { main, fixed, values: { ...main, ...fixed }, problems };
}

/** The problems of a table's declaration itself: a forced key without its checklist IDs or rule, a key both forced and owned. */
export function tableProblems<S, V extends LayerValue>(table: LayerTable<S, V>, checklistIds: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const [key, e] of Object.entries(table.keys)) {
    if (e.forced !== undefined && e.owned !== undefined) problems.push(`${key}: is both forced and owned; a key has one source`);
    if (e.forced !== undefined && (e.checklist === undefined || e.checklist.length === 0))
      problems.push(`${key}: is forced without a checklist ID`);
    if (e.forced !== undefined && (e.rule === undefined || e.rule.trim() === ""))
      problems.push(`${key}: is forced without a rule in words`);
    if (e.forced !== undefined && e.overridable !== undefined && e.overridable !== false)
      problems.push(`${key}: is forced and overridable at once`);
    for (const id of e.checklist ?? []) if (!checklistIds.has(id)) problems.push(`${key}: cites ${id}, which CHECKLIST.md does not define`);
  }
  return problems;
}

/** The keys a table writes last (forced or owned), sorted. */
export function fixedKeys<S, V extends LayerValue>(table: LayerTable<S, V>): string[] {
  return Object.keys(table.keys)
    .filter((k) => table.keys[k].forced !== undefined || table.keys[k].owned !== undefined)
    .sort();
}

/** The forced value of `key` when it is the same for every file (another engine reuses it: RDS); throws when it depends on the settings. */
export function staticForced<S, V extends LayerValue>(table: LayerTable<S, V>, key: string): V {
  const forced = table.keys[key]?.forced;
  if (forced === undefined || typeof forced === "function") throw new Error(`${key} has no forced value independent of the settings`);
  return forced;
}
