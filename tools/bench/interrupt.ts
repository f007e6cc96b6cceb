// Ctrl-C or a CI timeout must not leave daemons or the policy pack behind. Node runs no 'exit'
// handlers when a signal kills it, so the bench turns SIGINT/SIGTERM into an orderly exit: the
// registered async cleanups get a few seconds, then process.exit() runs the integration
// sandbox's own exit hook (SIGKILL to every daemon's process group, temp roots removed).
const cleanups = new Set<() => Promise<void>>();

/** Registers `fn` to run on SIGINT/SIGTERM; returns the function that unregisters it. */
export function onInterrupt(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

let installed = false;

/** Installs the SIGINT/SIGTERM handlers once; exit code 128 + signal number. */
export function installInterruptHandlers(graceMs = 5_000): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`odoo-stack bench: ${signal}, cleaning up`);
      const timer = setTimeout(() => process.exit(code), graceMs);
      void Promise.allSettled([...cleanups].map((fn) => fn())).then(() => {
        clearTimeout(timer);
        process.exit(code);
      });
    });
  }
}
