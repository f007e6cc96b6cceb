// The maintenance window of an Odoo release (issue 12 item 7): odoo-stack-odoo-release stops Odoo
// on a host while it installs the package, switches the addons and updates the modules. The
// rendered nginx site (templates/nginx.ts, the issue-15 busy location) then answers every user
// with 503 and Retry-After (and HSTS), not a bare 502 — proven here on Debian's nginx with the
// Odoo upstream down (nothing listening), and back to Odoo's own answers once it listens again.
import { startRenderedProxy } from "./helpers/nginx";
import { PORTS } from "../../lib/ports";
import { NGINX_RETRY_AFTER_SECONDS } from "../../templates/nginx";
import { modelWith } from "../helpers/fixtures";
import { httpsGet, startHttpStub, type StubUpstream, type TlsTarget } from "./helpers/http";
import { Sandbox, type ManagedProcess } from "./helpers/sandbox";

const model = modelWith();
const sandbox = Sandbox.create("nginx-maintenance");
let nginx: ManagedProcess | undefined;
let target: TlsTarget;
let odooPort = 0;

beforeAll(async () => {
  // Odoo's port, with nothing listening on it: Odoo stopped for the release.
  odooPort = await sandbox.freePort();
  const proxy = await startRenderedProxy(sandbox, model, { odooHttpPort: odooPort, odooGeventPort: odooPort });
  nginx = proxy.daemon;
  target = proxy.target;
}, 60_000);

afterAll(() => sandbox.cleanup());

describe("the proxy while Odoo is stopped for a release (issue 12 item 7)", () => {
  it("answers 503 with Retry-After and HSTS, then Odoo's own page once Odoo listens again", async () => {
    if (!nginx) throw new Error("nginx did not start");
    for (const p of ["/", "/web/login", "/web/assets/some.js"]) {
      const down = await httpsGet(target, p);
      expect({ path: p, status: down.status, retryAfter: down.headers["retry-after"] }).toEqual({
        path: p,
        status: 503,
        retryAfter: String(NGINX_RETRY_AFTER_SECONDS),
      });
      expect(down.headers["strict-transport-security"]).toMatch(/^max-age=\d+; includeSubDomains$/);
      expect(down.body).toContain(`retry in ${NGINX_RETRY_AFTER_SECONDS} seconds`);
    }
    // Odoo back on its port: nginx passes its answers again (after the failed peer's fail_timeout, if any).
    const odoo: StubUpstream = await startHttpStub(String(PORTS.odooHttp.port), odooPort, 1000);
    sandbox.onCleanup(() => odoo.close());
    let up = await httpsGet(target, "/web/login");
    for (const deadline = Date.now() + 30_000; up.status !== 200 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      up = await httpsGet(target, "/web/login");
    }
    expect(up.status).toBe(200);
    expect(up.headers["retry-after"]).toBeUndefined();
  }, 60_000);
});
