// What the fleet's Debian 12 machines are made of: the base image standing in for the Debian 12
// AMI, and the packages the hosts install at first boot, which the mirror stand-in serves. The
// per-role package lists are the stack's own (templates/cloud-init.ts), so a package the stack
// starts installing is in the mirror without anyone editing this file.
import type { HostRole } from "../../../lib/model";
import { EFS_PACKAGES, packagesFor, RUNCMD_PACKAGES } from "../../../templates/cloud-init";

export const SUITE = "bookworm";
export const MIRROR_HOST = "deb.debian.org";
export const SECURITY_HOST_PATH = "debian-security";

/** The apt sources of Debian's cloud images (the AMI stand-in has the same three). */
export const APT_SOURCES: readonly string[] = [
  `deb http://${MIRROR_HOST}/debian ${SUITE} main`,
  `deb http://${MIRROR_HOST}/debian ${SUITE}-updates main`,
  `deb http://${MIRROR_HOST}/${SECURITY_HOST_PATH} ${SUITE}-security main`,
];

/**
 * Installed in the image: what a Debian 12 cloud image brings before user data runs (systemd,
 * cloud-init, apt's tools, unattended-upgrades that races first boot for the dpkg lock), and
 * nothing of any role — a role package preinstalled would run on every host.
 */
export const IMAGE_PACKAGES: readonly string[] = [
  "ca-certificates",
  "cloud-guest-utils",
  "cloud-init",
  "dbus",
  "ifupdown",
  "iproute2",
  "iputils-ping",
  "locales",
  "netbase",
  "procps",
  "python3",
  "sudo",
  "systemd-sysv",
  "unattended-upgrades",
];

const ROLES: readonly HostRole[] = ["proxy", "odoo", "pgbouncer", "postgres"];

/**
 * What the hosts install from Debian at first boot, as separate apt transactions the way the
 * bootstrap runs them (each with --no-install-recommends): a role's `packages` step, then its
 * later installs (PostgreSQL's server). Odoo's package is resolved by apt itself from the .deb
 * (image.ts), alternatives included. The mirror carries the closure of each transaction, so a
 * host installs from it whatever its order.
 */
export function firstBootTransactions(): string[][] {
  return [
    ...ROLES.map((role) => packagesFor(role, role === "odoo" ? EFS_PACKAGES : [])),
    ["postgresql-common"],
    [...RUNCMD_PACKAGES.postgres],
  ];
}
