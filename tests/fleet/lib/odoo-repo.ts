// Odoo's nightly apt repository as the odoo-repo bootstrap step reads it
// (https://nightly.odoo.com/odoo.key, then `deb [signed-by=…] https://nightly.odoo.com/<series>/nightly/deb/ ./`),
// built per run: a flat repository holding the Odoo package under test, signed with a key made
// for the run, which is what odoo.key serves.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export function buildOdooRepo(dir: string, series: string, debs: readonly string[]): string {
  const gnupg = path.join(dir, ".gnupg");
  fs.mkdirSync(gnupg, { recursive: true, mode: 0o700 });
  const gpg = (args: readonly string[], input?: string) =>
    execFileSync("gpg", ["--homedir", gnupg, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", ...args], { input, stdio: ["pipe", "pipe", "pipe"] });
  gpg(["--quick-gen-key", "odoo-stack fleet stand-in for Odoo's archive key <fleet@odoo-stack.invalid>", "ed25519", "sign", "1d"]);
  fs.writeFileSync(path.join(dir, "odoo.key"), gpg(["--armor", "--export"]));
  const repo = path.join(dir, series, "nightly", "deb");
  fs.mkdirSync(repo, { recursive: true });
  for (const deb of debs) fs.copyFileSync(deb, path.join(repo, path.basename(deb)));
  fs.writeFileSync(path.join(repo, "Packages"), execFileSync("apt-ftparchive", ["packages", "."], { cwd: repo }));
  fs.writeFileSync(path.join(repo, "Release"), execFileSync("apt-ftparchive", ["-o", "APT::FTPArchive::Release::Origin=Odoo", "-o", "APT::FTPArchive::Release::Label=Odoo", "release", "."], { cwd: repo }));
  gpg(["--clearsign", "--output", path.join(repo, "InRelease"), path.join(repo, "Release")]);
  gpg(["--armor", "--detach-sign", "--output", path.join(repo, "Release.gpg"), path.join(repo, "Release")]);
  fs.rmSync(gnupg, { recursive: true, force: true });
  return dir;
}
