// The Odoo release of every Odoo host (issue 12 item 7): the exact package (odooVersion +
// odooBuild) and the custom addons artifact (odooAddons). Rendered into a file of each Odoo host's
// manifest, so a change reaches running hosts through the config bucket and the apply
// association (user data is ignored on change); odoo-stack-apply then runs
// templates/scripts/odoo-stack-odoo-release.sh, which verifies, switches, updates the modules on
// the cron host and rolls back on failure.
import { odooPackageVersion, type StackSettings } from "../lib/config";
import { DB_ROLES, PATHS, type HostId, type StackModel } from "../lib/model";
import { GENERATED, type HostFile } from "./format";
import { ODOO_RELEASE_PYTHONPATH } from "./odoo-conf";
import type { IamStatement } from "./backup-iam";
import { SCRIPT_PATHS, scriptText } from "./scripts";

/** Where the release lives on an Odoo host (the script's BASE layout). */
export const ODOO_RELEASE_PATHS = {
  env: "/etc/odoo-stack/odoo-release.env",
  releases: "/opt/odoo/releases",
  /** The symlink switched atomically: releases/<sha256> (or releases/none). */
  current: "/opt/odoo/current",
  /** odoo.conf's custom addons directory (PATHS.odooCustomAddons): a symlink to current/addons. */
  customAddons: PATHS.odooCustomAddons,
  /** The artifact's Python requirements (pip --target), on Odoo's PYTHONPATH. */
  python: ODOO_RELEASE_PYTHONPATH,
  aptPin: "/etc/apt/preferences.d/odoo-stack-odoo.pref",
} as const;

/** The settings file of odoo-stack-odoo-release on `host`. */
export function renderOdooReleaseEnv(model: StackModel, host: HostId): string {
  const addons = model.settings.odooAddons;
  return [
    `# ${GENERATED}`,
    `ODOO_STACK_ODOO_PACKAGE=${odooPackageVersion(model.settings)}`,
    `ODOO_STACK_ADDONS_URI=${addons === undefined ? "" : `s3://${addons.bucket}/${addons.key}`}`,
    `ODOO_STACK_ADDONS_SHA256=${addons?.sha256 ?? ""}`,
    `ODOO_STACK_REGION=${model.settings.region}`,
    // The module update runs once, on the host that runs the crons (LIMIT-2).
    `ODOO_STACK_RUNS_CRON=${host.runsCron ? 1 : 0}`,
    `ODOO_STACK_DATABASES=${model.settings.databases.join(",")}`,
    `ODOO_STACK_CA=${PATHS.caCert}`,
    `ODOO_STACK_MIGRATION_ROLE=${DB_ROLES.migrate}`,
    "",
  ].join("\n");
}

/** The release script and its settings, for every Odoo host. */
export function odooReleaseFiles(model: StackModel, host: HostId): HostFile[] {
  return [
    { path: SCRIPT_PATHS.odooRelease, content: scriptText("odooRelease"), mode: "0755", owner: "root", group: "root" },
    { path: ODOO_RELEASE_PATHS.env, content: renderOdooReleaseEnv(model, host), mode: "0644", owner: "root", group: "root" },
  ];
}

/**
 * The Odoo hosts' grant on the addons artifact: s3:GetObject on exactly that object (no list,
 * no other key, no other bucket). Empty without odooAddons.
 */
export function odooAddonsStatements(partition: string, settings: Pick<StackSettings, "odooAddons">): IamStatement[] {
  const addons = settings.odooAddons;
  if (addons === undefined) return [];
  return [
    {
      Sid: "OdooAddonsArtifact",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [`arn:${partition}:s3:::${addons.bucket}/${addons.key}`],
    },
  ];
}
