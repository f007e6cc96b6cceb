// The sandbox may change only where a daemon listens, whom it talks to and where its files
// live (issue 4: "only ports, paths and addresses remapped"). remapForSandbox() makes that
// rule executable: each test names the settings keys it remaps, and any other key in the
// override is an error, so the rest of the rendered file is exactly what production gets.

/** A settings object with `overrides` applied; throws if an override touches a key not in `allowed`. */
export function remapForSandbox<T extends object, K extends keyof T>(settings: T, allowed: readonly K[], overrides: Pick<T, K>): T {
  const illegal = Object.keys(overrides).filter((k) => !(allowed as readonly PropertyKey[]).includes(k));
  if (illegal.length > 0) {
    throw new Error(
      `sandbox remap may only change ports, addresses and paths (${allowed.join(", ")}); it tried to change ${illegal.join(", ")}`,
    );
  }
  return { ...settings, ...overrides };
}

/** Keys whose value differs between production settings and the sandbox's (for the report). */
export function remappedKeys<T extends object>(production: T, sandbox: T): string[] {
  const keys = new Set([...Object.keys(production), ...Object.keys(sandbox)]);
  return [...keys]
    .filter((k) => JSON.stringify((production as Record<string, unknown>)[k]) !== JSON.stringify((sandbox as Record<string, unknown>)[k]))
    .sort();
}
