// The rendered nginx.conf with only its paths moved into a sandbox: nginx runs as www-data
// here, so pid, logs and temp dirs must be its own (it cannot create /var/lib/nginx/*).
import type { StackModel } from "../../../lib/model";
import {
  nginxMainSettings,
  nginxSiteSettingsFor,
  renderNginxConf,
  renderNginxSite,
  type NginxMainSettings,
} from "../../../templates/nginx";
import type { TlsTarget } from "./http";
import { remapForSandbox } from "./remap";
import { BIN, systemUser, waitForOwnPort, withFreshPort, type ManagedProcess, type Sandbox } from "./sandbox";
import { createCertificateAuthority, installPem, issueHostCertificate } from "./tls";

export interface SandboxNginx {
  readonly main: NginxMainSettings;
  /** Where the site file goes: main.siteIncludeGlob reads `${etc}/conf.d/*.conf`. */
  readonly etc: string;
  readonly logs: string;
}

export function sandboxNginxMain(sandbox: Sandbox, prefix: string): SandboxNginx {
  const www = systemUser("www-data");
  const etc = sandbox.mkdir(`${prefix}-etc`, undefined, 0o755);
  const run = sandbox.mkdir(`${prefix}-run`, www, 0o755);
  const logs = sandbox.mkdir(`${prefix}-log`, www, 0o755);
  const temp = sandbox.mkdir(`${prefix}-temp`, www, 0o700);
  const main = remapForSandbox(nginxMainSettings(), ["pidFile", "errorLogPath", "accessLogPath", "siteIncludeGlob", "tempDir"], {
    pidFile: `${run}/nginx.pid`,
    errorLogPath: `${logs}/error.log`,
    accessLogPath: `${logs}/access.log`,
    siteIncludeGlob: `${etc}/conf.d/*.conf`,
    tempDir: temp,
  });
  return { main, etc, logs };
}

/** The rendered nginx (main + the stack's site) serving TLS on 127.0.0.1 in front of given Odoo ports. */
export interface RenderedProxy {
  readonly daemon: ManagedProcess;
  readonly target: TlsTarget;
}

/**
 * Starts the prod-shaped proxy of `model` in the sandbox: a certificate for its domain from a
 * throwaway CA, the rendered nginx.conf and site with only addresses, ports and paths moved, the
 * Odoo HTTP and gevent upstreams at the given ports (nothing need listen there). Throws with
 * `nginx -t`'s output when the rendered files do not pass it.
 */
export async function startRenderedProxy(
  sandbox: Sandbox,
  model: StackModel,
  upstream: { readonly odooHttpPort: number; readonly odooGeventPort: number },
): Promise<RenderedProxy> {
  const www = systemUser("www-data");
  const ca = await createCertificateAuthority(sandbox, sandbox.path("ca"));
  const cert = await issueHostCertificate(sandbox, ca, sandbox.path("issued"), [model.settings.domain]);
  const { main, etc } = sandboxNginxMain(sandbox, "nginx");
  const tlsDir = sandbox.mkdir("nginx-etc/tls", www, 0o700);
  const tls = {
    tlsCertificatePath: installPem(cert.certPath, `${tlsDir}/fullchain.pem`, www, 0o644),
    tlsCertificateKeyPath: installPem(cert.keyPath, `${tlsDir}/privkey.pem`, www, 0o600),
  };
  const confPath = sandbox.writeFile(`${etc}/nginx.conf`, renderNginxConf(main));
  return withFreshPort(sandbox, async (tlsPort) => {
    // The redirect-only server's port 80 (NET-3) moves to a free port too: nginx runs unprivileged here.
    const redirectPort = await sandbox.freePort();
    const site = remapForSandbox(
      nginxSiteSettingsFor(model),
      [
        "listenAddress",
        "listenPort",
        "redirectListenPort",
        "tlsCertificatePath",
        "tlsCertificateKeyPath",
        "odooHttpServers",
        "odooGeventServers",
      ],
      {
        listenAddress: "127.0.0.1",
        listenPort: tlsPort,
        redirectListenPort: redirectPort,
        ...tls,
        odooHttpServers: [{ address: "127.0.0.1", port: upstream.odooHttpPort }],
        odooGeventServers: [{ address: "127.0.0.1", port: upstream.odooGeventPort }],
      },
    );
    sandbox.writeFile(`${etc}/conf.d/odoo.conf`, renderNginxSite(site));
    const test = await sandbox.run(BIN.nginx, ["-t", "-c", confPath], { user: www });
    if (test.code !== 0) throw new Error(`nginx -t failed:\n${test.stdout}${test.stderr}`);
    const daemon = sandbox.start({
      name: "nginx",
      command: BIN.nginx,
      args: ["-c", confPath, "-g", "daemon off;"],
      user: www,
      stopSignal: "SIGTERM",
    });
    await waitForOwnPort(daemon, tlsPort);
    return { daemon, target: { port: tlsPort, serverName: model.settings.domain, caPem: ca.certPem } };
  });
}
