// The host scripts and the user data, checked by the tools Debian 12 hosts run: bash -n and
// shellcheck for every templates/scripts/*.sh; cloud-init's own schema checker (22.4) and YAML
// parser for every role's user data; and the bootstrap steps that can run without AWS (the data
// volume on a file image, the apply script's fetch against a stand-in `aws`).
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { HostRole } from "../../lib/model";
import { buildUserData, renderUserData, userDataInputFor, type UserDataInput } from "../../templates/cloud-init";
import { renderManifest } from "../../templates/manifest";
import { hostScriptFiles, SCRIPT_PATHS, SCRIPTS, SCRIPTS_DIR } from "../../templates/scripts";
import { modelWith } from "../helpers/fixtures";

const scripts = fs
  .readdirSync(SCRIPTS_DIR)
  .filter((f) => f.endsWith(".sh"))
  .sort();
const BOOTSTRAP = path.join(SCRIPTS_DIR, "odoo-stack-bootstrap.sh");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-scripts-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (command: string, args: readonly string[], env: Record<string, string> = {}) =>
  spawnSync(command, [...args], { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env }, timeout: 60_000 });

describe("every host script", () => {
  it("exists", () => {
    expect(scripts).toEqual(expect.arrayContaining(Object.values(SCRIPTS)));
  });

  it.each(scripts)("%s parses (bash -n)", (name) => {
    const result = run("bash", ["-n", path.join(SCRIPTS_DIR, name)]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it.each(scripts)("%s is shellcheck-clean (sourced files followed)", (name) => {
    const result = run("shellcheck", ["-x", "--shell=bash", path.join(SCRIPTS_DIR, name)]);
    expect(result.stdout).toBe("");
    expect(result.status).toBe(0);
  });

  it.each(Object.values(SCRIPTS))("%s is executable, starts with #!/bin/bash, sets -euo pipefail, never xtrace", (name) => {
    const file = path.join(SCRIPTS_DIR, name);
    expect(fs.statSync(file).mode & 0o111).toBe(0o111);
    const text = fs.readFileSync(file, "utf8");
    expect(text.startsWith("#!/bin/bash\n")).toBe(true);
    expect(text).toMatch(/^set -E?euo pipefail$/m);
    expect(text).not.toMatch(/^\s*set -[a-wyz]*x/m);
  });
});

describe("user data: cloud-init 22.4's schema checker and YAML parser", () => {
  const model = modelWith();
  const inputs: [string, UserDataInput][] = (["proxy", "odoo", "pgbouncer", "postgres"] as HostRole[]).map((role) => {
    const host = model.allHosts.find((h) => h.role === role)!;
    return [
      role,
      userDataInputFor(model, host, {
        configBucket: "odoo-stack-test-config",
        region: "eu-west-1",
        ...(role === "postgres" ? { dataVolumeId: "vol-0123456789abcdef0" } : {}),
      }),
    ];
  });
  const staging = modelWith({ tls: { mode: "acme", email: "ops@example.com", hostedZoneId: "Z04417412S8KXAMPLE1", staging: true } });
  inputs.push([
    "proxy (staging ACME, extra packages)",
    { ...userDataInputFor(staging, staging.hosts.proxy, { configBucket: "b-1.example", region: "us-east-1" }), packages: ["htop"] },
  ]);

  it.each(inputs)("%s passes `cloud-init schema --config-file`", (_label, input) => {
    const file = path.join(tmp, `user-data-${input.hostId}-${input.region}.yaml`);
    fs.writeFileSync(file, renderUserData(input));
    const result = run("cloud-init", ["schema", "--config-file", file]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("Valid cloud-config");
    expect(result.status).toBe(0);
  });

  it.each(inputs)("%s reads back, through cloud-init's YAML loader, as the document built", (_label, input) => {
    const file = path.join(tmp, `user-data-${input.hostId}-roundtrip.yaml`);
    fs.writeFileSync(file, renderUserData(input));
    const json = execFileSync(
      "/usr/bin/python3",
      ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", file],
      { encoding: "utf8" },
    );
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(buildUserData(input))));
  });

  it("the schema checker does fail on a broken document (the check above can fail)", () => {
    const file = path.join(tmp, "broken.yaml");
    fs.writeFileSync(file, renderUserData(inputs[0][1]).replace(/^runcmd:\n(- .*\n)+/m, "runcmd: 5\n"));
    const result = run("cloud-init", ["schema", "--config-file", file]);
    expect(result.status).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/runcmd: 5 is not of type 'array'/);
  });
});

describe("bootstrap: data-volume on a file image (never reformats a volume with data)", () => {
  const volumeId = "vol-0123456789abcdef0";
  const devices = path.join(tmp, "by-id");
  const image = path.join(tmp, "volume.img");
  const fstab = path.join(tmp, "fstab");
  const mount = path.join(tmp, "var-lib-postgresql");
  const env = { ODOO_STACK_DEVICE_DIR: devices, ODOO_STACK_FSTAB: fstab, ODOO_STACK_MOUNT: "true", ODOO_STACK_DEVICE_WAIT: "0" };
  const uuid = () => execFileSync("blkid", ["-s", "UUID", "-o", "value", image], { encoding: "utf8" }).trim();

  beforeAll(() => {
    fs.mkdirSync(devices);
    fs.writeFileSync(image, Buffer.alloc(0));
    fs.truncateSync(image, 16 * 1024 * 1024);
    fs.writeFileSync(fstab, "# static\n");
  });

  it("fails clearly when the volume is not attached", () => {
    const result = run("bash", [BOOTSTRAP, "data-volume", volumeId, mount], env);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0 did not appear (is ${volumeId} attached?)`);
  });

  it("formats a blank volume once, adds one nofail fstab line, keeps the filesystem on the next boot", () => {
    fs.symlinkSync(image, path.join(devices, "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"));
    const first = run("bash", [BOOTSTRAP, "data-volume", volumeId, mount], env);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toContain("formatting blank volume");
    const id = uuid();
    expect(fs.readFileSync(fstab, "utf8")).toBe(
      `# static\nUUID=${id} ${mount} ext4 defaults,noatime,nofail,x-systemd.device-timeout=300 0 2\n`,
    );

    const second = run("bash", [BOOTSTRAP, "data-volume", volumeId, mount], env);
    expect(second.status).toBe(0);
    expect(second.stdout).not.toContain("formatting");
    expect(uuid()).toBe(id);
    expect(fs.readFileSync(fstab, "utf8").match(/UUID=/g)).toHaveLength(1);
  });

  it("refuses a malformed volume id", () => {
    const result = run("bash", [BOOTSTRAP, "data-volume", "vol-../../sda", mount], env);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("invalid volume id");
  });
});

describe("bootstrap: fetch-apply installs the apply script only if it matches the manifest", () => {
  const bucketDir = path.join(tmp, "s3");
  const root = path.join(tmp, "root");
  const fakeAws = path.join(tmp, "aws");
  const env = { ODOO_STACK_AWS: fakeAws, ODOO_STACK_ROOT: root, ODOO_STACK_FETCH_WAIT: "0", FAKE_S3: bucketDir };
  const prefix = path.join(bucketDir, "cfg-bucket", "hosts", "odoo-1");

  beforeAll(() => {
    // Stands in for `aws s3 cp [options] s3://bucket/key dest`: copies from a local tree.
    fs.writeFileSync(fakeAws, '#!/bin/bash\nset -eu\nsrc=${*: -2:1}\ndest=${*: -1}\ncp -- "$FAKE_S3/${src#s3://}" "$dest"\n', {
      mode: 0o755,
    });
    const files = hostScriptFiles();
    for (const f of files) {
      fs.mkdirSync(path.join(prefix, path.dirname(f.path)), { recursive: true });
      fs.writeFileSync(path.join(prefix, f.path), f.content);
    }
    fs.writeFileSync(path.join(prefix, "manifest.json"), renderManifest("odoo-1", files));
  });

  it("installs it 0755 when its sha256 matches", () => {
    const result = run("bash", [BOOTSTRAP, "fetch-apply", "cfg-bucket", "odoo-1", "eu-west-1", SCRIPT_PATHS.apply], env);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const installed = path.join(root, SCRIPT_PATHS.apply);
    expect(fs.statSync(installed).mode & 0o777).toBe(0o755);
    const expected = createHash("sha256").update(hostScriptFiles()[0].content).digest("hex");
    expect(createHash("sha256").update(fs.readFileSync(installed)).digest("hex")).toBe(expected);
  });

  it("refuses a tampered script", () => {
    fs.rmSync(path.join(root, SCRIPT_PATHS.apply));
    fs.appendFileSync(path.join(prefix, SCRIPT_PATHS.apply), "echo injected\n");
    const result = run("bash", [BOOTSTRAP, "fetch-apply", "cfg-bucket", "odoo-1", "eu-west-1", SCRIPT_PATHS.apply], env);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("does not match the manifest's sha256");
    expect(fs.existsSync(path.join(root, SCRIPT_PATHS.apply))).toBe(false);
  });
});
