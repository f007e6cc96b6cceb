#!/bin/bash
# odoo-stack-odoo-release: puts this Odoo host on the release the stack names (issue 12 item 7):
# the exact Odoo package (odooVersion + odooBuild, held by an apt pin) and the custom addons
# artifact (odooAddons: an S3 object and its sha256). odoo-stack-apply runs it whenever the
# rendered release file changes (and at first boot), so a new build or artifact reaches running
# hosts in place. Installed by odoo-stack from templates/scripts/odoo-stack-odoo-release.sh; do
# not edit it on the host.
#
# Usage: odoo-stack-odoo-release [--check] [ENV_FILE]   (default /etc/odoo-stack/odoo-release.env)
#   --check: changes nothing; says whether this host is on the stack's release (exit 0) or not
#   (exit 1, naming what differs). The runbook's verify step uses it: running the script itself
#   after a failed release would stop Odoo and try the failing release again.
# Steps, all checks before Odoo stops:
#   0. a new build: Odoo's package index refreshed (a build published after the host's last
#      apt-get update is not in its lists) and the exact version found there;
#   1. the artifact: download, sha256 against the stack's, unpack to releases/<sha256> (no absolute
#      or .. member), every addon's __manifest__.py a Python literal, `compileall` of every file,
#      requirements.txt installed with pip --target into the release's python/ (from its wheels/
#      only, --no-index, when it ships them; Debian 12 is PEP 668: never into the system);
#   2. Odoo stopped and held so (a runtime mask: the package's postinst would start it); the proxy
#      answers 503 + Retry-After meanwhile; the apt pin and the exact package; the `current`
#      symlink switched (custom-addons and PYTHONPATH go through it);
#   3. the cron host only: the module update of every database as the migration role (`-u all`
#      for a new package, `-u <the artifact's addons>` for new addons; none on the host's first
#      release: the first install or import installs the modules); Odoo started.
#   A failure in 2-3 switches back to the previous release (package, pin, symlink), starts Odoo
#   and exits 1 naming the step; a failure in 1 leaves Odoo running on its release.
# Exit status: 0 on the release (now or before); 1 failed (see the ERROR line), or --check: not on it.
#
# Settings (KEY=VALUE, rendered by templates/odoo-release.ts): ODOO_STACK_ODOO_PACKAGE,
# ODOO_STACK_ADDONS_URI and ODOO_STACK_ADDONS_SHA256 (both empty: no addons), ODOO_STACK_REGION,
# ODOO_STACK_RUNS_CRON (1 on the cron host), ODOO_STACK_DATABASES, ODOO_STACK_CA,
# ODOO_STACK_MIGRATION_ROLE.
# Overrides for tests: ODOO_STACK_ROOT (prefix of /opt/odoo and /etc/apt), ODOO_STACK_AWS (aws),
# ODOO_STACK_APT_INSTALL (installs its arguments), ODOO_STACK_APT_UPDATE (refreshes Odoo's index),
# ODOO_STACK_ODOO_AVAILABLE (prints the odoo versions the index has, one a line),
# ODOO_STACK_ODOO_INSTALLED (prints the odoo package's version), ODOO_STACK_ODOO (odoo),
# ODOO_STACK_ODOO_CONF, ODOO_STACK_PIP (pip),
# ODOO_STACK_STOP_ODOO / ODOO_STACK_RESTART_ODOO / ODOO_STACK_HOLD_ODOO / ODOO_STACK_UNHOLD_ODOO
# (hooks), ODOO_STACK_RUN_AS_ODOO (prefix).
set -Eeuo pipefail
umask 022
export LC_ALL=C

readonly PROG=odoo-stack-odoo-release
log() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
  printf '%s: ERROR: %s\n' "$PROG" "$*" >&2
  exit 1
}

CHECK=0
if [[ ${1:-} == --check ]]; then
  CHECK=1
  shift
fi
ENV_FILE=${1:-/etc/odoo-stack/odoo-release.env}
ROOT=${ODOO_STACK_ROOT:-}
AWS=${ODOO_STACK_AWS:-aws}
APT_INSTALL=${ODOO_STACK_APT_INSTALL:-apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold install -y --no-install-recommends --allow-downgrades \"\$@\"}
# Odoo's source only (the bootstrap's odoo-repo step writes it): Debian's lists stay as they are.
APT_UPDATE=${ODOO_STACK_APT_UPDATE:-apt-get -o DPkg::Lock::Timeout=600 -o Dir::Etc::sourcelist=sources.list.d/odoo.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 --error-on=any update}
ODOO_AVAILABLE=${ODOO_STACK_ODOO_AVAILABLE:-"apt-cache madison odoo | awk -F'|' '{gsub(/ /, \"\", \$2); print \$2}'"}
ODOO_INSTALLED=${ODOO_STACK_ODOO_INSTALLED:-"dpkg-query -W -f='\${Version}' odoo 2>/dev/null || true"}
ODOO=${ODOO_STACK_ODOO:-odoo}
ODOO_CONF=${ODOO_STACK_ODOO_CONF:-/etc/odoo/odoo.conf}
read -r -a PIP <<<"${ODOO_STACK_PIP:-python3 -m pip}"
STOP_ODOO=${ODOO_STACK_STOP_ODOO:-systemctl stop odoo}
START_ODOO=${ODOO_STACK_RESTART_ODOO:-systemctl restart odoo}
# Odoo held stopped while the release changes under it: the package's postinst (dh_installsystemd:
# deb-systemd-invoke start/restart odoo.service) would start it in the middle of the release, on
# the previous addons or while the module update runs. A runtime mask is gone at the next boot.
HOLD_ODOO=${ODOO_STACK_HOLD_ODOO:-systemctl mask --runtime --quiet odoo}
UNHOLD_ODOO=${ODOO_STACK_UNHOLD_ODOO:-systemctl unmask --runtime --quiet odoo}
read -r -a RUN_AS_ODOO <<<"${ODOO_STACK_RUN_AS_ODOO:-runuser -u odoo --}"
# One source with lib/model.ts PATHS (tests/unit/odoo-release.test.ts holds them together).
readonly BASE=$ROOT/opt/odoo
readonly RELEASES=$BASE/releases CURRENT=$BASE/current ADDONS_LINK=$BASE/custom-addons
readonly PIN_FILE=$ROOT/etc/apt/preferences.d/odoo-stack-odoo.pref

PACKAGE='' URI='' SHA='' REGION='' RUNS_CRON='' DATABASES='' CA='' MIGRATION_ROLE=''
[[ -r $ENV_FILE ]] || die "no settings file $ENV_FILE (did odoo-stack-apply run?)"
while IFS= read -r line || [[ -n $line ]]; do
  [[ -z $line || $line == \#* ]] && continue
  value=${line#*=}
  case ${line%%=*} in
    ODOO_STACK_ODOO_PACKAGE) PACKAGE=$value ;;
    ODOO_STACK_ADDONS_URI) URI=$value ;;
    ODOO_STACK_ADDONS_SHA256) SHA=$value ;;
    ODOO_STACK_REGION) REGION=$value ;;
    ODOO_STACK_RUNS_CRON) RUNS_CRON=$value ;;
    ODOO_STACK_DATABASES) DATABASES=$value ;;
    ODOO_STACK_CA) CA=$value ;;
    ODOO_STACK_MIGRATION_ROLE) MIGRATION_ROLE=$value ;;
    *) die "unknown key '${line%%=*}' in $ENV_FILE" ;;
  esac
done <"$ENV_FILE"
[[ $PACKAGE =~ ^[0-9]+\.0\.20[0-9]{6}$ ]] || die "ODOO_STACK_ODOO_PACKAGE: invalid '$PACKAGE' (SERIES.YYYYMMDD)"
if [[ -n $URI || -n $SHA ]]; then
  [[ $URI =~ ^s3://[a-z0-9][a-z0-9.-]+/[A-Za-z0-9!_.*\'()/-]+$ ]] || die "ODOO_STACK_ADDONS_URI: invalid '$URI'"
  [[ $SHA =~ ^[0-9a-f]{64}$ ]] || die "ODOO_STACK_ADDONS_SHA256: invalid '$SHA'"
fi
[[ $REGION =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "ODOO_STACK_REGION: invalid '$REGION'"
[[ $RUNS_CRON == 0 || $RUNS_CRON == 1 ]] || die "ODOO_STACK_RUNS_CRON: must be 0 or 1, not '$RUNS_CRON'"
[[ $DATABASES =~ ^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$ ]] || die "ODOO_STACK_DATABASES: invalid '$DATABASES'"
[[ $MIGRATION_ROLE =~ ^[a-z_][a-z0-9_]*$ ]] || die "ODOO_STACK_MIGRATION_ROLE: invalid '$MIGRATION_ROLE'"
[[ $CA == /* ]] || die "ODOO_STACK_CA: invalid '$CA'"

RELEASE=${SHA:-none}
installed=$(bash -c "$ODOO_INSTALLED")
previous=''
if [[ -L $CURRENT ]]; then previous=$(basename -- "$(readlink -- "$CURRENT")"); fi
log "package: installed '${installed:-none}', wanted $PACKAGE; addons: current '${previous:-none yet}', wanted $RELEASE"

# The pin: apt (upgrade, unattended-upgrades) never moves odoo off this version. The bootstrap's
# odoo-repo step writes the same file (tests/unit/odoo-release.test.ts compares them).
write_pin() {
  mkdir -p -- "${PIN_FILE%/*}"
  printf '# generated by odoo-stack — do not edit\nPackage: odoo\nPin: version %s\nPin-Priority: 1001\n' "$1" >"$PIN_FILE.tmp"
  mv -f -- "$PIN_FILE.tmp" "$PIN_FILE"
}

if ((CHECK)); then
  if [[ $installed == "$PACKAGE" && $previous == "$RELEASE" && -L $ADDONS_LINK ]]; then
    log "on release $PACKAGE + $RELEASE; nothing to do"
    exit 0
  fi
  die "not on the stack's release: package ${installed:-none} (the stack's: $PACKAGE), addons ${previous:-none} (the stack's: $RELEASE); the apply association's output names the step that failed"
fi

if [[ $installed == "$PACKAGE" && $previous == "$RELEASE" && -L $ADDONS_LINK ]]; then
  write_pin "$PACKAGE"
  log "on release $PACKAGE + $RELEASE; nothing to do"
  exit 0
fi

# --- 0. a new build: in Odoo's repository, or nothing happens ----------------------------------
if [[ $installed != "$PACKAGE" ]]; then
  bash -c "$APT_UPDATE" || die "cannot refresh Odoo's package index (nightly.odoo.com; nothing changed)"
  available=$(bash -c "$ODOO_AVAILABLE")
  if ! grep -qxF -- "$PACKAGE" <<<"$available"; then
    die "odoo=$PACKAGE is not in Odoo's repository (it has: $(tr '\n' ' ' <<<"$available")); check odooBuild (nothing changed)"
  fi
fi

# --- 1. the new release, prepared and checked while Odoo still serves --------------------------
mkdir -p -- "$RELEASES"
target=$RELEASES/$RELEASE
addon_names=()
if [[ ! -f $target/.complete ]]; then
  rm -rf -- "$target" "$target.tmp"
  mkdir -p -- "$target.tmp/addons" "$target.tmp/python"
  if [[ $RELEASE != none ]]; then
    "$AWS" s3 cp --only-show-errors --region "$REGION" "$URI" "$target.tmp/artifact.tar.gz" ||
      die "cannot download $URI (does the bucket exist, and may this host's role read exactly that object?)"
    actual=$(sha256sum -- "$target.tmp/artifact.tar.gz")
    [[ ${actual%% *} == "$SHA" ]] || die "$URI has sha256 ${actual%% *}, not the stack's $SHA (odooAddons.sha256): nothing changed"
    if tar -tzf "$target.tmp/artifact.tar.gz" | grep -Eq '(^/|(^|/)\.\.(/|$))'; then
      die "$URI has an absolute or .. member: refused"
    fi
    tar -xzf "$target.tmp/artifact.tar.gz" --no-same-owner --no-same-permissions -C "$target.tmp/addons"
    rm -f -- "$target.tmp/artifact.tar.gz"
    # requirements.txt and wheels/ belong to the release, not among the addons.
    for extra in requirements.txt wheels; do
      if [[ -e $target.tmp/addons/$extra ]]; then mv -- "$target.tmp/addons/$extra" "$target.tmp/$extra"; fi
    done
    python3 - "$target.tmp/addons" <<'PY' || die "$URI: the addons do not load (nothing changed)"
import ast, os, sys
root = sys.argv[1]
names = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "__manifest__.py")))
if not names:
    sys.exit("no addon (a directory with __manifest__.py) at the artifact's top level")
for name in names:
    with open(os.path.join(root, name, "__manifest__.py"), encoding="utf-8") as f:
        manifest = ast.literal_eval(f.read())
    if not isinstance(manifest, dict):
        sys.exit(f"{name}/__manifest__.py is not a dict")
PY
    python3 -m compileall -q -- "$target.tmp/addons" >/dev/null || die "$URI: a Python file does not compile (nothing changed)"
    if [[ -f $target.tmp/requirements.txt ]]; then
      index=()
      if [[ -d $target.tmp/wheels ]]; then index=(--no-index --find-links "$target.tmp/wheels"); fi
      "${PIP[@]}" install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location --target "$target.tmp/python" \
        "${index[@]}" -r "$target.tmp/requirements.txt" || die "$URI: requirements.txt does not install (nothing changed)"
    fi
  fi
  # Whatever modes the artifact's members had (a tarball of a 0700 build directory keeps them on
  # its `.`): Odoo's user reads and traverses the release, nobody but root writes it.
  chmod -R u=rwX,go=rX -- "$target.tmp"
  mv -T -- "$target.tmp" "$target"
  : >"$target/.complete"
fi
for d in "$target"/addons/*/__manifest__.py; do
  [[ -f $d ]] && addon_names+=("$(basename -- "$(dirname -- "$d")")")
done
log "release $RELEASE ready: ${#addon_names[@]} addon(s)${addon_names[*]:+ (${addon_names[*]})}"

# --- 2-3. switch, update, start; back to the previous release on failure -----------------------
switch_to() { # release directory name
  ln -sfn -- "releases/$1" "$BASE/.current.tmp"
  mv -T -- "$BASE/.current.tmp" "$CURRENT"
  # custom-addons (odoo.conf's addons_path, ODOO-4) always goes through `current`.
  if [[ ! -L $ADDONS_LINK ]]; then
    if [[ -d $ADDONS_LINK ]]; then rmdir -- "$ADDONS_LINK" || die "$ADDONS_LINK is a non-empty directory, not the stack's symlink"; fi
    ln -s -- current/addons "$ADDONS_LINK"
  fi
}

install_package() {
  write_pin "$1"
  bash -c "$APT_INSTALL" odoo-stack-apt "odoo=$1"
}

rollback() {
  trap - ERR
  printf '%s: ERROR: %s; rolling back to %s + %s\n' "$PROG" "$1" "${installed:-none}" "${previous:-none}" >&2
  if [[ -n $installed && $installed != "$PACKAGE" ]]; then
    install_package "$installed" || printf '%s: ERROR: could not reinstall odoo=%s\n' "$PROG" "$installed" >&2
  fi
  if [[ -n $previous ]]; then switch_to "$previous"; fi
  bash -c "$UNHOLD_ODOO" || printf '%s: ERROR: could not unmask odoo.service (systemctl unmask --runtime odoo)\n' "$PROG" >&2
  bash -c "$START_ODOO" || printf '%s: ERROR: Odoo did not start on the previous release\n' "$PROG" >&2
  printf '%s: ERROR: rolled back; if the module update had begun, check the database against the backup taken before (runbook release-odoo)\n' "$PROG" >&2
  exit 1
}

log "stopping Odoo (the proxy answers 503 with Retry-After until it is back)"
bash -c "$HOLD_ODOO" || die "could not hold Odoo stopped (systemctl mask --runtime odoo); nothing changed"
if ! bash -c "$STOP_ODOO"; then
  bash -c "$UNHOLD_ODOO" || true
  die "could not stop Odoo; nothing changed"
fi
step=package
trap 'rollback "step $step failed"' ERR
if [[ $installed != "$PACKAGE" ]]; then install_package "$PACKAGE"; else write_pin "$PACKAGE"; fi
step=switch
switch_to "$RELEASE"

modules=''
if [[ $installed != "$PACKAGE" ]]; then modules=all; elif ((${#addon_names[@]})); then modules=$(IFS=,; printf '%s' "${addon_names[*]}"); fi
if [[ $RUNS_CRON == 1 && -n $modules && -n $previous ]]; then
  IFS=, read -r -a dbs <<<"$DATABASES"
  for db in "${dbs[@]}"; do
    step="module update of $db"
    log "$db: odoo -u $modules as $MIGRATION_ROLE"
    "${RUN_AS_ODOO[@]}" env "PGSSLROOTCERT=$CA" "PYTHONPATH=$CURRENT/python" "$ODOO" -c "$ODOO_CONF" --db_user "$MIGRATION_ROLE" \
      -d "$db" -u "$modules" --stop-after-init --no-http
  done
elif [[ $RUNS_CRON == 1 && -z $previous ]]; then
  log "first release on this host: no module update (the first install or import installs the modules)"
else
  log "module update: ${modules:+on the cron host only}${modules:-nothing to update}"
fi
step=start
bash -c "$UNHOLD_ODOO"
bash -c "$START_ODOO"
trap - ERR

# Keep the release now running and the one before it (the rollback path); drop older ones.
for d in "$RELEASES"/*; do
  name=$(basename -- "$d")
  [[ $name == "$RELEASE" || $name == "$previous" ]] || rm -rf -- "$d"
done
log "on release $PACKAGE + $RELEASE"
