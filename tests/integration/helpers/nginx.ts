// The rendered nginx.conf with only its paths moved into a sandbox: nginx runs as www-data
// here, so pid, logs and temp dirs must be its own (it cannot create /var/lib/nginx/*).
import { nginxMainSettings, type NginxMainSettings } from "../../../templates/nginx";
import { remapForSandbox } from "./remap";
import { systemUser, type Sandbox } from "./sandbox";

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
