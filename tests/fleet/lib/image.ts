// The fleet's Debian 12 image (the AMI stand-in) and the package mirror its hosts install from at
// first boot, built once with mmdebstrap from Debian's archive and cached by a hash of what goes
// in: a change of a role's package list (templates/cloud-init.ts) or of Odoo's dependencies makes
// a new cache entry. The mirror keeps Debian's own signed InRelease files and package lists, so
// apt verifies it exactly as it verifies deb.debian.org.
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { APT_SOURCES, firstBootTransactions, IMAGE_PACKAGES, SUITE } from "./debian";

/** Bump when the recipe changes in a way the package lists do not show. */
const RECIPE_VERSION = 3;

export interface FleetImage {
  readonly key: string;
  /** The root file system every host's overlay starts from. */
  readonly root: string;
  /** apt lists (InRelease, Packages) as fetched from the archive, named as apt names them. */
  readonly mirrorLists: string;
  /** The .deb files of every first-boot package and its dependencies. */
  readonly mirrorDebs: string;
  /** Seconds the build took, or 0 when the cache had it. */
  readonly buildSeconds: number;
}

export const DEFAULT_CACHE_DIR = "/var/cache/odoo-stack-fleet";
const GENERATOR = path.resolve(__dirname, "../standins/image/odoo-stack-fleet-blockdev-generator");

/** The image's cache key: everything the build reads. `odooDepends`: the Odoo package's Depends field. */
export function imageKey(odooDepends: string): string {
  const recipe = {
    version: RECIPE_VERSION,
    suite: SUITE,
    sources: APT_SOURCES,
    image: IMAGE_PACKAGES,
    mirror: firstBootTransactions(),
    odooDepends,
    generator: fs.readFileSync(GENERATOR, "utf8"),
    // The archive's security and updates suites carry Valid-Until: a mirror older than a week is
    // refused by apt, so the cache lasts one ISO week.
    week: isoWeek(new Date()),
  };
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 16);
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  return `${t.getUTCFullYear()}-W${Math.ceil(((t.getTime() - yearStart.getTime()) / 86400000 + 1) / 7)}`;
}

/**
 * Returns the cached image for `extraPackages`, building it first when absent. Concurrent
 * callers wait on one lock, so two runs never build the same entry twice.
 */
/**
 * `odooDeb`: the Odoo package the fleet installs (the stand-in or a real one); apt resolves its
 * dependencies, so the mirror has what that very package needs.
 */
export function ensureImage(
  odooDeb: string,
  cacheDir = process.env.ODOO_STACK_FLEET_CACHE ?? DEFAULT_CACHE_DIR,
  log: (line: string) => void = () => undefined,
): FleetImage {
  const odooDepends = execFileSync("dpkg-deb", ["-f", odooDeb, "Depends"], { encoding: "utf8" }).trim();
  const key = imageKey(odooDepends);
  const dir = path.join(cacheDir, `image-${key}`);
  const image = (buildSeconds: number): FleetImage => ({
    key,
    root: path.join(dir, "root"),
    mirrorLists: path.join(dir, "mirror", "lists"),
    mirrorDebs: path.join(dir, "mirror", "debs"),
    buildSeconds,
  });
  if (fs.existsSync(path.join(dir, "READY"))) return image(0);
  fs.mkdirSync(cacheDir, { recursive: true });
  const started = Date.now();
  const script = buildScript(dir, odooDeb);
  log(`building the fleet image ${key} with mmdebstrap (cached in ${dir})`);
  const run = spawnSync("flock", [path.join(cacheDir, ".lock"), "bash", "-c", script], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) {
    throw new Error(
      `building the fleet image failed (exit ${run.status}):\n${(run.stdout + run.stderr).split("\n").slice(-40).join("\n")}`,
    );
  }
  pruneOldImages(cacheDir, key);
  return image(Math.round((Date.now() - started) / 1000));
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function buildScript(dir: string, odooDeb: string): string {
  const tmp = `${dir}.tmp`;
  const mirror = `${tmp}/mirror`;
  const cloudCfg = [
    "# odoo-stack fleet image: the NoCloud seed stands in for EC2's instance metadata",
    "datasource_list: [ NoCloud, None ]",
  ].join("\n");
  const hooks = [
    // Everything a host may install at first boot, with its dependencies, into apt's cache.
    ...firstBootTransactions().map((t) => `chroot "$1" apt-get install --download-only -y --no-install-recommends ${t.join(" ")}`),
    // Odoo's dependencies as apt resolves them from the package itself (alternatives included).
    `cp ${shellQuote(odooDeb)} "$1"/tmp/odoo.deb && chroot "$1" apt-get install --download-only -y --no-install-recommends /tmp/odoo.deb && rm -f "$1"/tmp/odoo.deb`,
    `mkdir -p ${shellQuote(mirror)}/debs ${shellQuote(mirror)}/lists`,
    `cp -a "$1"/var/cache/apt/archives/*.deb ${shellQuote(mirror)}/debs/`,
    `cp -a "$1"/var/lib/apt/lists/*_InRelease "$1"/var/lib/apt/lists/*_Packages ${shellQuote(mirror)}/lists/`,
    `printf '%s\\n' ${shellQuote(cloudCfg)} > "$1"/etc/cloud/cloud.cfg.d/90-odoo-stack-fleet.cfg`,
    `install -D -m 0755 ${shellQuote(GENERATOR)} "$1"/etc/systemd/system-generators/odoo-stack-fleet-blockdev-generator`,
    // As on Debian's cloud images, which boot into a configured locale.
    `sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "$1"/etc/locale.gen && chroot "$1" locale-gen`,
  ];
  return [
    "set -euo pipefail",
    `[ -e ${shellQuote(dir)}/READY ] && exit 0`,
    `rm -rf ${shellQuote(tmp)} ${shellQuote(dir)}`,
    `mkdir -p ${shellQuote(tmp)}`,
    [
      "mmdebstrap",
      "--variant=important",
      `--include=${IMAGE_PACKAGES.join(",")}`,
      "--aptopt='Acquire::Languages \"none\"'",
      ...hooks.map((h) => `--customize-hook=${shellQuote(h)}`),
      // The image keeps no package cache: what a host installs comes from the mirror.
      `--customize-hook=${shellQuote('rm -f "$1"/var/cache/apt/archives/*.deb; rm -rf "$1"/var/lib/apt/lists/*')}`,
      SUITE,
      shellQuote(`${tmp}/root`),
      ...APT_SOURCES.map(shellQuote),
    ].join(" "),
    `touch ${shellQuote(tmp)}/READY`,
    `mv ${shellQuote(tmp)} ${shellQuote(dir)}`,
  ].join("\n");
}

/**
 * Removes the cache's other images, except one a running fleet still boots from (an overlay
 * whose lower layer it is): a fleet of another checkout, on another package list, keeps its disk.
 */
function pruneOldImages(cacheDir: string, keep: string): void {
  const mounts = fs.readFileSync("/proc/mounts", "utf8");
  for (const entry of fs.readdirSync(cacheDir)) {
    if (!entry.startsWith("image-") || entry === `image-${keep}`) continue;
    if (mounts.includes(`lowerdir=${path.join(cacheDir, entry)}/`)) continue;
    fs.rmSync(path.join(cacheDir, entry), { recursive: true, force: true });
  }
}

/** True when this machine has what the fleet needs (root, systemd-nspawn, mmdebstrap, nsenter). */
export function fleetPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root");
  for (const tool of [
    "systemd-nspawn",
    "mmdebstrap",
    "nsenter",
    "ip",
    "losetup",
    "dpkg-deb",
    "apt-ftparchive",
    "gpg",
    "openssl",
    "flock",
  ]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  return missing;
}

export function runQuiet(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
