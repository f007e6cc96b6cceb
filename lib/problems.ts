// The one wording of "these inputs are wrong": a title, the count, and every problem numbered,
// so a user sees all of them at once (DESIGN principle 4) in the same shape wherever they come
// from — config validation, a renderer's settings check, a component's arguments. Pure and free
// of imports: the policy pack and the tools may use it too.

/** How a list names its problems; the default reads "3 problems". */
export interface ProblemsWording {
  /** Singular noun; an "s" is added for any count but one. Optional. Defaults to "problem". */
  readonly noun?: string;
  /** Said after the count, e.g. "nothing was created". Optional. Defaults to none. */
  readonly note?: string;
}

/** "<title>: N problems[; note]:" and then "  1. …", one line per problem. */
export function problemsMessage(title: string, problems: readonly string[], wording: ProblemsWording = {}): string {
  const noun = wording.noun ?? "problem";
  const count = `${problems.length} ${noun}${problems.length === 1 ? "" : "s"}`;
  const note = wording.note === undefined ? "" : `; ${wording.note}`;
  return `${title}: ${count}${note}:\n${problems.map((p, i) => `  ${i + 1}. ${p}`).join("\n")}`;
}

/** Throws one Error listing every problem (problemsMessage) when there is any; else returns. */
export function throwIfAny(title: string, problems: readonly string[]): void {
  if (problems.length > 0) throw new Error(problemsMessage(title, problems));
}
