// Debian packages the fleet builds for what it cannot download, each named a stand-in in its
// description: Odoo 17 (unless ODOO_STACK_FLEET_ODOO_DEB names a real odoo_17.0.*.deb), and the
// two AWS agents the bootstrap installs from AWS's regional buckets. Built per run with dpkg-deb.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/**
 * Odoo 17's own `Depends` (debian/control of odoo 17.0, alternatives as written there), so the
 * mirror carries what the real package needs and the stand-in installs the same libraries.
 */
export const ODOO_STANDIN_DEPENDS: readonly string[] = [
  "adduser",
  "fonts-dejavu-core | fonts-freefont-ttf | fonts-freefont-otf | fonts-noto-core",
  "fonts-inconsolata",
  "fonts-font-awesome",
  "fonts-roboto-unhinted",
  "gsfonts",
  "libjs-underscore",
  "lsb-base",
  "postgresql-client",
  "python3",
  "python3-babel",
  "python3-chardet",
  "python3-cryptography",
  "python3-dateutil",
  "python3-decorator",
  "python3-docutils",
  "python3-freezegun",
  "python3-geoip2",
  "python3-gevent",
  "python3-greenlet",
  "python3-idna",
  "python3-pil",
  "python3-jinja2",
  "python3-libsass",
  // After lxml 5.2, lxml-html-clean is a separate package (not in Debian 12: apt takes python3-lxml).
  "python3-lxml-html-clean | python3-lxml",
  "python3-markupsafe",
  "python3-num2words",
  "python3-ofxparse",
  "python3-passlib",
  "python3-polib",
  "python3-psutil",
  "python3-psycopg2",
  "python3-pydot",
  "python3-openssl",
  "python3-pypdf2 | python3-pypdf",
  "python3-rjsmin",
  "python3-qrcode",
  "python3-renderpm",
  "python3-reportlab",
  "python3-requests",
  "python3-stdnum",
  "python3-tz",
  "python3-urllib3",
  "python3-vobject",
  "python3-werkzeug",
  "python3-xlsxwriter",
  "python3-xlrd",
  "python3-zeep",
];

const STANDIN_DIR = path.resolve(__dirname, "../standins");

interface PackageFile {
  readonly path: string;
  readonly content: string | Buffer;
  readonly mode: number;
}

interface PackageSpec {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly depends?: readonly string[];
  readonly files: readonly PackageFile[];
  readonly conffiles?: readonly string[];
  readonly postinst?: string;
  readonly postrm?: string;
}

function buildDeb(spec: PackageSpec, outDir: string): string {
  const stage = fs.mkdtempSync(path.join(outDir, `.${spec.name}-`));
  try {
    fs.mkdirSync(path.join(stage, "DEBIAN"));
    const control = [
      `Package: ${spec.name}`,
      `Version: ${spec.version}`,
      "Architecture: all",
      "Maintainer: odoo-stack fleet suite <fleet@odoo-stack.invalid>",
      ...(spec.depends?.length ? [`Depends: ${spec.depends.join(", ")}`] : []),
      `Description: ${spec.description}`,
      " Built by tests/fleet for the fleet-boot suite; a test double, not the real software.",
      "",
    ].join("\n");
    fs.writeFileSync(path.join(stage, "DEBIAN/control"), control);
    if (spec.conffiles?.length) fs.writeFileSync(path.join(stage, "DEBIAN/conffiles"), `${spec.conffiles.join("\n")}\n`);
    if (spec.postinst) fs.writeFileSync(path.join(stage, "DEBIAN/postinst"), spec.postinst, { mode: 0o755 });
    if (spec.postrm) fs.writeFileSync(path.join(stage, "DEBIAN/postrm"), spec.postrm, { mode: 0o755 });
    for (const f of spec.files) {
      const target = path.join(stage, f.path);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, f.content, { mode: f.mode });
      fs.chmodSync(target, f.mode);
    }
    const deb = path.join(outDir, `${spec.name}_${spec.version}_all.deb`);
    execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", stage, deb], { stdio: "pipe" });
    return deb;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The unit of Odoo's debian/odoo.service, byte for byte. */
const ODOO_SERVICE = `[Unit]
Description=Odoo Open Source ERP and CRM
After=network.target

[Service]
Type=simple
User=odoo
Group=odoo
ExecStart=/usr/bin/odoo --config /etc/odoo/odoo.conf --logfile /var/log/odoo/odoo-server.log
KillMode=mixed

[Install]
WantedBy=multi-user.target
`;

/** Odoo's debian/odoo.conf. */
const ODOO_DEFAULT_CONF = `[options]
; This is the password that allows database operations:
; admin_passwd = admin
db_host = False
db_port = False
db_user = odoo
db_password = False
;addons_path = /usr/lib/python3/dist-packages/odoo/addons
default_productivity_apps = True
`;

/**
 * Odoo's debian/postinst (user, config file, log directory) followed by what dh_installsystemd
 * adds to it (#DEBHELPER#): the unit enabled and started.
 */
const ODOO_POSTINST = `#!/bin/sh
set -e
ODOO_CONFIGURATION_FILE=/etc/odoo/odoo.conf
ODOO_DATA_DIR=/var/lib/odoo
ODOO_LOG_DIR=/var/log/odoo
case "$1" in
  configure)
    if ! getent passwd | grep -q "^odoo:"; then
      adduser --system --home $ODOO_DATA_DIR --quiet --group odoo
      chown odoo:odoo $ODOO_DATA_DIR
    fi
    su - postgres -c "createuser -d -R -S odoo" 2> /dev/null || true
    chown odoo:odoo $ODOO_CONFIGURATION_FILE
    chmod 0640 $ODOO_CONFIGURATION_FILE
    mkdir -p $ODOO_LOG_DIR
    chown odoo:odoo $ODOO_LOG_DIR
    chmod 0750 $ODOO_LOG_DIR
    ;;
esac
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ]; then
  deb-systemd-helper unmask odoo.service >/dev/null || true
  if deb-systemd-helper --quiet was-enabled odoo.service; then
    deb-systemd-helper enable odoo.service >/dev/null || true
  else
    deb-systemd-helper update-state odoo.service >/dev/null || true
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    deb-systemd-invoke start odoo.service >/dev/null || true
  fi
fi
exit 0
`;

/**
 * `version`: the build the stack pins (lib/config.ts odooPackageVersion), which first boot
 * installs exactly, as nightly.odoo.com's package of that date would be.
 */
export function buildOdooStandin(outDir: string, version: string): string {
  return buildDeb(
    {
      name: "odoo",
      version,
      description: "STAND-IN for Odoo 17 (odoo-stack fleet suite; not Odoo)",
      depends: ODOO_STANDIN_DEPENDS,
      conffiles: ["/etc/odoo/odoo.conf"],
      postinst: ODOO_POSTINST,
      files: [
        { path: "usr/bin/odoo", content: fs.readFileSync(path.join(STANDIN_DIR, "odoo/odoo")), mode: 0o755 },
        { path: "etc/odoo/odoo.conf", content: ODOO_DEFAULT_CONF, mode: 0o644 },
        { path: "lib/systemd/system/odoo.service", content: ODOO_SERVICE, mode: 0o644 },
        { path: "usr/lib/python3/dist-packages/odoo/addons/README.fleet-standin", content: `${version} (fleet stand-in)\n`, mode: 0o644 },
      ],
    },
    outDir,
  );
}

const SSM_AGENT_SERVICE = `[Unit]
Description=STAND-IN for amazon-ssm-agent (odoo-stack fleet suite)
After=network-online.target

[Service]
ExecStart=/usr/bin/amazon-ssm-agent
Restart=always

[Install]
WantedBy=multi-user.target
`;

/** The SSM agent: a service that idles (the suite runs association commands itself). */
export function buildSsmAgentStandin(outDir: string): string {
  return buildDeb(
    {
      name: "amazon-ssm-agent",
      version: "3.3.0.0~fleetstandin1",
      description: "STAND-IN for amazon-ssm-agent (odoo-stack fleet suite)",
      postinst:
        '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then deb-systemd-helper enable amazon-ssm-agent.service >/dev/null || true; fi\nexit 0\n',
      files: [
        {
          path: "usr/bin/amazon-ssm-agent",
          content: "#!/bin/sh\n# odoo-stack fleet stand-in: the suite runs association commands itself.\nexec sleep infinity\n",
          mode: 0o755,
        },
        { path: "lib/systemd/system/amazon-ssm-agent.service", content: SSM_AGENT_SERVICE, mode: 0o644 },
      ],
    },
    outDir,
  );
}

/**
 * The CloudWatch agent's control command, as the apply script calls it (`-a fetch-config -m ec2
 * -s -c file:PATH`): checks the configuration is JSON with a `metrics` or `logs` section and
 * keeps a copy where the agent would.
 */
const CLOUDWATCH_CTL = `#!/usr/bin/python3
# odoo-stack fleet STAND-IN for amazon-cloudwatch-agent-ctl.
import json, shutil, sys
args = sys.argv[1:]
conf = next((a[5:] for a in args if a.startswith("file:")), None)
if "-a" not in args or args[args.index("-a") + 1] != "fetch-config" or conf is None:
    sys.exit("amazon-cloudwatch-agent-ctl stand-in: only '-a fetch-config ... -c file:PATH' is supported")
with open(conf) as f:
    doc = json.load(f)
if not ("metrics" in doc or "logs" in doc):
    sys.exit("amazon-cloudwatch-agent-ctl stand-in: %s has neither metrics nor logs" % conf)
shutil.copy(conf, "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json")
print("amazon-cloudwatch-agent-ctl stand-in: configuration accepted:", conf)
`;

export function buildCloudwatchAgentStandin(outDir: string): string {
  return buildDeb(
    {
      name: "amazon-cloudwatch-agent",
      version: "1.300000.0~fleetstandin1",
      description: "STAND-IN for amazon-cloudwatch-agent (odoo-stack fleet suite)",
      depends: ["python3"],
      files: [
        { path: "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl", content: CLOUDWATCH_CTL, mode: 0o755 },
        { path: "opt/aws/amazon-cloudwatch-agent/etc/.keep", content: "", mode: 0o644 },
      ],
    },
    outDir,
  );
}

/** A .deb's Depends field split into groups of alternatives ("a | b"). */
export function debDepends(deb: string): string[] {
  const field = execFileSync("dpkg-deb", ["-f", deb, "Depends"], { encoding: "utf8" }).trim();
  return field === "" ? [] : field.split(",").map((s) => s.trim().replace(/\s*\([^)]*\)/g, ""));
}
