// Error messages as the benchmark counts them. (Scenario 1's load itself is tools/bench/odoo-load.ts,
// on the Odoo traffic model, since issue 15.)

/** First line of an error message, with numbers that vary per connection removed. */
export function errorKey(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n")[0] || (err as { code?: string })?.code || "unknown error").replace(/\b\d{4,}\b/g, "N");
}
