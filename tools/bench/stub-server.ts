// The Odoo stubs of scenario 2 in their own process (`tsx tools/bench/stub-server.ts <8069 port>
// <8072 port>`), so they do not share an event loop with the load generator that measures them.
// The stubs themselves are the integration sandbox's (tests/integration/helpers/http.ts).
import { startHttpStub, startWebSocketStub } from "../../tests/integration/helpers/http";

/** Printed once both stubs listen; the parent waits for it. */
export const STUBS_READY = "odoo-stack bench stubs ready";

async function main(): Promise<void> {
  const [httpPort, geventPort] = process.argv.slice(2).map(Number);
  if (!(httpPort > 0 && geventPort > 0)) throw new Error("usage: stub-server.ts <8069 stub port> <8072 stub port>");
  const http = await startHttpStub("8069", httpPort, 60_000);
  const gevent = await startWebSocketStub("8072", geventPort);
  // The stubs keep every request they saw for assertions; a benchmark only needs the count.
  setInterval(() => {
    http.seen.length = 0;
    gevent.seen.length = 0;
    gevent.received.length = 0;
  }, 1_000).unref();
  console.log(STUBS_READY);
  const stop = () => void Promise.all([http.close(), gevent.close()]).finally(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
