// The host scripts (templates/scripts/*.sh) as text, for the renderers that deliver them: the
// bootstrap script rides in user data; the apply and rotate scripts are ordinary host files in
// every manifest, so a fix reaches running hosts through S3 + the apply association instead of
// replacing instances (DESIGN principle 6).
import * as fs from "fs";
import * as path from "path";
import { PATHS } from "../lib/model";
import type { HostFile } from "./format";

export const SCRIPTS = {
  apply: "odoo-stack-apply.sh",
  rotate: "odoo-stack-rotate.sh",
  bootstrap: "odoo-stack-bootstrap.sh",
  odooInit: "odoo-stack-odoo-init.sh",
  odooRelease: "odoo-stack-odoo-release.sh",
} as const;
export type ScriptName = keyof typeof SCRIPTS;

/** Where each script is installed on a host. */
export const SCRIPT_PATHS: Readonly<Record<ScriptName, string>> = {
  apply: PATHS.applyScript,
  rotate: "/usr/local/sbin/odoo-stack-rotate",
  bootstrap: "/usr/local/sbin/odoo-stack-bootstrap",
  odooInit: "/usr/local/sbin/odoo-stack-odoo-init",
  odooRelease: "/usr/local/sbin/odoo-stack-odoo-release",
};

export const SCRIPTS_DIR = path.join(__dirname, "scripts");

const cache = new Map<ScriptName, string>();

/** The text of a script, as shellcheck and the integration tests saw it. */
export function scriptText(name: ScriptName): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = fs.readFileSync(path.join(SCRIPTS_DIR, SCRIPTS[name]), "utf8");
    cache.set(name, text);
  }
  return text;
}

/**
 * The apply and rotate scripts as host files: add them to every host's files so that the
 * manifest carries (and the apply run updates) the scripts themselves. Not secret: 0755 root.
 */
export function hostScriptFiles(): HostFile[] {
  return (["apply", "rotate"] as const).map((name) => ({
    path: SCRIPT_PATHS[name],
    content: scriptText(name),
    mode: "0755",
    owner: "root",
    group: "root",
  }));
}
