// Odoo's nightly apt repository as the odoo-repo bootstrap step reads it
// (https://nightly.odoo.com/odoo.key, then `deb [signed-by=…] https://nightly.odoo.com/<series>/nightly/deb/ ./`),
// built per run: a flat repository holding the Odoo packages under test, signed with a key made
// for the run, which is what odoo.key serves. Like nightly.odoo.com it gains builds while the
// hosts run (`publish`): a host only sees one after its own apt-get update.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface OdooRepo {
  /** The directory the edge serves as https://nightly.odoo.com/. */
  readonly dir: string;
  /** Adds packages and signs the new index, as a new nightly build appears. */
  publish(debs: readonly string[]): void;
}

/**
 * `gnupgDir`: the run's signing key, kept outside `dir` (the edge serves everything under it)
 * so that a later `publish` signs with the key the hosts already trust.
 */
export function buildOdooRepo(dir: string, gnupgDir: string, series: string, debs: readonly string[]): OdooRepo {
  const repo = path.join(dir, series, "nightly", "deb");
  const gpg = (args: readonly string[], input?: string) =>
    execFileSync("gpg", ["--homedir", gnupgDir, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", ...args], {
      input,
      stdio: ["pipe", "pipe", "pipe"],
    });
  if (!fs.existsSync(path.join(dir, "odoo.key"))) {
    fs.mkdirSync(gnupgDir, { recursive: true, mode: 0o700 });
    gpg(["--quick-gen-key", "odoo-stack fleet stand-in for Odoo's archive key <fleet@odoo-stack.invalid>", "ed25519", "sign", "1d"]);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "odoo.key"), gpg(["--armor", "--export"]));
  }
  const publish = (more: readonly string[]) => {
    fs.mkdirSync(repo, { recursive: true });
    for (const deb of more) fs.copyFileSync(deb, path.join(repo, path.basename(deb)));
    // Written beside, then renamed: a host's apt-get update never reads half an index.
    const write = (name: string, content: Buffer) => {
      fs.writeFileSync(path.join(repo, `.${name}.tmp`), content);
      fs.renameSync(path.join(repo, `.${name}.tmp`), path.join(repo, name));
    };
    write("Packages", execFileSync("apt-ftparchive", ["packages", "."], { cwd: repo }));
    write(
      "Release",
      execFileSync(
        "apt-ftparchive",
        ["-o", "APT::FTPArchive::Release::Origin=Odoo", "-o", "APT::FTPArchive::Release::Label=Odoo", "release", "."],
        { cwd: repo },
      ),
    );
    gpg(["--clearsign", "--output", path.join(repo, ".InRelease.tmp"), path.join(repo, "Release")]);
    fs.renameSync(path.join(repo, ".InRelease.tmp"), path.join(repo, "InRelease"));
    gpg(["--armor", "--detach-sign", "--output", path.join(repo, ".Release.gpg.tmp"), path.join(repo, "Release")]);
    fs.renameSync(path.join(repo, ".Release.gpg.tmp"), path.join(repo, "Release.gpg"));
  };
  publish(debs);
  return { dir, publish };
}
