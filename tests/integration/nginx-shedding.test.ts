// issue 15, defect 5: a real Odoo 17 under 200 concurrent requests overflowed its listen backlog
// 1,806 times in 15 s and nginx answered 502/504. The rendered nginx (Debian's, unprivileged, on
// 127.0.0.1; only addresses, ports and paths remapped) now caps each Odoo host at its workers plus
// a bounded queue (upstream max_conns) and answers what is beyond with 503 + Retry-After at once.
// The upstream is a stand-in for Odoo's prefork HTTP server: one listening socket with Odoo's
// backlog of 8 × workers (odoo/service/server.py L992), `workers` workers that each accept one
// connection and serve it to the end before the next (WorkerHTTP), here in threads.
import { execFileSync } from "child_process";
import { startRenderedProxy } from "./helpers/nginx";
import { NGINX_RETRY_AFTER_SECONDS } from "../../templates/nginx";
import { modelWith } from "../helpers/fixtures";
import { httpsGet, type HttpAnswer, type TlsTarget } from "./helpers/http";
import { Sandbox, sleep, systemUser, withFreshPort, type ManagedProcess } from "./helpers/sandbox";

jest.setTimeout(120_000);

const model = modelWith();
const workers = model.settings.sizing.odoo.workers;
/** How long the stand-in takes per request: a slow page, so the burst cannot drain while it arrives. */
const HOLD_SECONDS = 1;
const BURST = 200;
const www = systemUser("www-data");
const sandbox = Sandbox.create("nginx-shedding");
const summary: string[] = [];
let target: TlsTarget;
let odooPort = 0;
let odoo: ManagedProcess;

/** Odoo's prefork HTTP server in miniature: listen(8 × workers), `workers` blocking accept loops. */
const PREFORK_STAND_IN = `
import socket, sys, threading, time
port, workers, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(8 * workers)
print("listening", flush=True)
def worker():
    while True:
        c, _ = s.accept()
        try:
            c.settimeout(30)
            data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            time.sleep(hold)
            c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n")
        except Exception:
            pass
        finally:
            c.close()
for _ in range(workers):
    threading.Thread(target=worker, daemon=True).start()
threading.Event().wait()
`;

beforeAll(async () => {
  odoo = await withFreshPort(sandbox, async (port) => {
    const p = sandbox.start({
      name: "odoo-prefork-stand-in",
      command: "/usr/bin/python3",
      args: ["-c", PREFORK_STAND_IN, String(port), String(workers), String(HOLD_SECONDS)],
      user: www,
    });
    await p.waitForOutput(/listening|Address already in use/, 10_000);
    if (/Address already in use/.test(p.output())) {
      await p.stop();
      throw new Error("EADDRINUSE");
    }
    odooPort = port;
    return p;
  });

  const geventPort = await sandbox.freePort();
  target = (await startRenderedProxy(sandbox, model, { odooHttpPort: odooPort, odooGeventPort: geventPort })).target;
}, 60_000);

afterAll(async () => {
  await sandbox.cleanup();
  console.log(`[nginx-shedding] ${summary.join(" | ")}`);
});

/** The stand-in's accept queue now (ss: Recv-Q of the listening socket) and its size (Send-Q). */
function acceptQueue(): { readonly queued: number; readonly backlog: number } {
  const line =
    execFileSync("ss", ["-ltnH", `( sport = :${odooPort} )`], { encoding: "utf8" })
      .trim()
      .split("\n")[0] ?? "";
  const [, recvQ, sendQ] = line.trim().split(/\s+/);
  return { queued: Number(recvQ), backlog: Number(sendQ) };
}

describe("the rendered nginx in front of Odoo's prefork server under a burst (issue 15, defect 5)", () => {
  it(`sheds a burst of ${BURST} requests with 503 + Retry-After past max_conns, and Odoo's listen backlog never fills (no 502/504)`, async () => {
    expect(odoo.running).toBe(true);
    const maxConns = model.settings.sizing.odoo.httpMaxConns;
    let peakQueue = 0;
    let backlog = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const q = acceptQueue();
        peakQueue = Math.max(peakQueue, q.queued);
        backlog = q.backlog;
        await sleep(20);
      }
    })();
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: BURST }, (_, i) => httpsGet(target, `/web/burst/${i}`, { timeoutMs: 60_000 }).catch((err: Error) => err)),
    );
    const elapsedMs = Date.now() - started;
    sampling = false;
    await sampler;

    const statuses = new Map<string, number>();
    for (const a of answers) {
      const key = a instanceof Error ? `error: ${a.message}` : String(a.status);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    const ok = answers.filter((a): a is HttpAnswer => !(a instanceof Error) && a.status === 200);
    const shed = answers.filter((a): a is HttpAnswer => !(a instanceof Error) && a.status === 503);
    const slowestShedMs = Math.max(0, ...shed.map((a) => a.elapsedMs));
    summary.push(
      `${BURST} at once to ${workers} workers (backlog ${backlog}, max_conns ${maxConns}): ${JSON.stringify(Object.fromEntries(statuses))} in ${(elapsedMs / 1000).toFixed(1)} s; ` +
        `accept queue peak ${peakQueue}; slowest 503 ${slowestShedMs} ms`,
    );
    expect(backlog).toBe(8 * workers);
    // Only answers a client can act on: served, or "busy, retry in N s". No gateway errors.
    expect([...statuses.keys()].filter((k) => k !== "200" && k !== "503")).toEqual([]);
    expect(shed.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(maxConns);
    for (const a of shed) {
      expect(a.headers["retry-after"]).toBe(String(NGINX_RETRY_AFTER_SECONDS));
      expect(a.headers["strict-transport-security"]).toMatch(/max-age=\d+/);
      expect(a.body).toContain("retry");
    }
    // The queue is nginx's bound, not the kernel's: Odoo's backlog never filled.
    expect(peakQueue).toBeLessThan(backlog);
    expect(peakQueue).toBeLessThanOrEqual(maxConns - workers);
  });
});
