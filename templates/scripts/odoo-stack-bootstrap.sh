#!/bin/bash
# odoo-stack-bootstrap: first boot of a host, one subcommand per step. cloud-init only installs
# this script, the step list (/etc/odoo-stack/firstboot.steps, one step per line, rendered per
# role by templates/cloud-init.ts) and odoo-stack-firstboot.service, which runs `firstboot`: every
# step not yet done, in order, recording each one done. A step that fails (an apt mirror, the Odoo
# repository, ACME, a database not up yet) fails the service, which systemd starts again until
# every step is done — first boot is retried and re-runnable to completion (issue 12). Every step
# is idempotent, so a step interrupted half-way (power loss) is simply run again.
#
# Usage:
#   odoo-stack-bootstrap firstboot [STEPS_FILE]           run the steps not done yet (the service)
#   odoo-stack-bootstrap public-ip                        wait until IMDS shows the Elastic IP (the proxy)
#   odoo-stack-bootstrap packages PACKAGE...              apt-get update (every index), upgrade, install
#   odoo-stack-bootstrap install PACKAGE...               apt-get install, non-interactive
#   odoo-stack-bootstrap aws-agents REGION                SSM agent + CloudWatch agent (.deb, regional S3)
#   odoo-stack-bootstrap odoo-repo VERSION BUILD          Odoo's nightly apt repository for VERSION, odoo pinned to VERSION.BUILD
#   odoo-stack-bootstrap data-volume VOLUME_ID MOUNT      format (if blank), fstab (nofail), mount
#   odoo-stack-bootstrap postgres-owner MOUNT             give MOUNT to the postgres user
#   odoo-stack-bootstrap odoo-owner MOUNT                 the odoo user (fixed uid), MOUNT its data_dir
#   odoo-stack-bootstrap efs-mount FS_ID REGION MOUNT     shared filestore: EFS over TLS (stunnel), fstab
#   odoo-stack-bootstrap rds-ca-bundle REGION PATH        RDS's regional CA bundle for verify-full
#   odoo-stack-bootstrap acme DOMAIN[,DOMAIN…] EMAIL [--staging]    public certificate (every name a SAN), ACME DNS-01 on Route 53
#   odoo-stack-bootstrap fetch-apply BUCKET HOST_ID REGION PATH   the apply script, from S3
#   odoo-stack-bootstrap apply                            odoo-stack-apply --bootstrap
#   odoo-stack-bootstrap pgbackrest-stanza CONFIG STANZA  create the stanza, check WAL archiving works
#   odoo-stack-bootstrap run PATH [ARG...]                a delivered script (e.g. the Odoo database init)
# Overrides for tests: ODOO_STACK_DEVICE_DIR (default /dev/disk/by-id), ODOO_STACK_FSTAB
# (default /etc/fstab), ODOO_STACK_MOUNT (mount command), ODOO_STACK_DEVICE_WAIT (seconds,
# default 600), ODOO_STACK_AWS (aws), ODOO_STACK_FETCH_WAIT (seconds, default 900),
# ODOO_STACK_ROOT (prefix of PATH), ODOO_STACK_STATE_DIR (default /var/lib/odoo-stack),
# ODOO_STACK_PUBLIC_IP_WAIT (seconds, default 600), ODOO_STACK_IMDS (default http://169.254.169.254),
# ODOO_STACK_ODOO_REPO_PIN_ONLY (odoo-repo writes the pin and stops: no download).
set -Eeuo pipefail
umask 022
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

readonly PROG=odoo-stack-bootstrap

log() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
  printf '%s: ERROR: %s\n' "$PROG" "$*" >&2
  exit 1
}

# The first boot races unattended-upgrades for the dpkg lock; apt waits for it instead of failing.
apt_install() {
  apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold \
    install -y --no-install-recommends "$@"
}

download() { # url dest
  curl -fsSL --retry 5 --retry-connrefused --proto '=https' -o "$2" "$1"
}

cmd_install() {
  (($#)) || die "install: no package given"
  apt_install "$@"
}

# The proxy sits in a public subnet without an address of its own at launch: its Elastic IP is
# associated after the instance exists, and until then nothing outside the VPC answers. Waiting
# for the address in the instance metadata (IMDSv2) puts every step that needs the internet after
# it, instead of failing and retrying them. python3 is on the image; curl is not yet.
cmd_public_ip() {
  local deadline=$((SECONDS + ${ODOO_STACK_PUBLIC_IP_WAIT:-600})) started=$SECONDS address
  until address=$(python3 - "${ODOO_STACK_IMDS:-http://169.254.169.254}" <<'PY'
import sys, urllib.request
base = sys.argv[1]
token = urllib.request.urlopen(urllib.request.Request(base + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), timeout=5).read().decode()
print(urllib.request.urlopen(urllib.request.Request(base + "/latest/meta-data/public-ipv4", headers={"X-aws-ec2-metadata-token": token}), timeout=5).read().decode())
PY
  ) && [[ $address =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; do
    ((SECONDS < deadline)) || die "public-ip: no public IPv4 address in the instance metadata after $((SECONDS - started)) s (is the Elastic IP associated?)"
    log "waiting for the Elastic IP"
    sleep 5
  done
  log "public address $address after $((SECONDS - started)) s"
}

# What cloud-init's package_update / package_upgrade / packages did, but failing on any index
# that could not be fetched (apt-get update alone exits 0 with stale or missing lists), so the
# service retries instead of installing from nothing.
cmd_packages() {
  (($#)) || die "packages: no package given"
  apt-get -o DPkg::Lock::Timeout=600 --error-on=any update
  apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold -y upgrade
  apt_install "$@"
}

# Neither agent is in Debian's archive; AWS publishes them per region and architecture.
cmd_aws_agents() {
  local region=${1:-} arch tmp
  [[ $region =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "aws-agents: invalid region '$region'"
  arch=$(dpkg --print-architecture)
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand $tmp now: it is local to this function
  trap "rm -rf -- '$tmp'" EXIT
  if ! dpkg -s amazon-ssm-agent >/dev/null 2>&1; then
    download "https://s3.$region.amazonaws.com/amazon-ssm-$region/latest/debian_$arch/amazon-ssm-agent.deb" \
      "$tmp/amazon-ssm-agent.deb"
    apt_install "$tmp/amazon-ssm-agent.deb"
  fi
  systemctl enable --now amazon-ssm-agent
  if ! dpkg -s amazon-cloudwatch-agent >/dev/null 2>&1; then
    download "https://s3.$region.amazonaws.com/amazoncloudwatch-agent-$region/debian/$arch/latest/amazon-cloudwatch-agent.deb" \
      "$tmp/amazon-cloudwatch-agent.deb"
    apt_install "$tmp/amazon-cloudwatch-agent.deb"
  fi
}

# As https://www.odoo.com/documentation/17.0/administration/on_premise/packages.html: the key,
# dearmored into a keyring that only this source trusts (signed-by), then the source. The nightly
# repository moves every day: the pin holds odoo at the stack's build (odooBuild), so two hosts
# built on different days run the same Odoo and no upgrade moves it (issue 12 item 7);
# odoo-stack-odoo-release writes the same file when the stack names another build.
odoo_pin() { # VERSION.BUILD
  local pin=${ODOO_STACK_ROOT:-}/etc/apt/preferences.d/odoo-stack-odoo.pref
  mkdir -p -- "${pin%/*}"
  printf '# generated by odoo-stack — do not edit\nPackage: odoo\nPin: version %s\nPin-Priority: 1001\n' "$1" >"$pin.tmp"
  mv -f -- "$pin.tmp" "$pin"
}

cmd_odoo_repo() {
  local version=${1:-} build=${2:-} keyring=/usr/share/keyrings/odoo-archive-keyring.gpg tmp
  [[ $version =~ ^[0-9]+\.0$ ]] || die "odoo-repo: invalid version '$version'"
  [[ $build =~ ^20[0-9]{6}$ ]] || die "odoo-repo: invalid build '$build' (YYYYMMDD)"
  odoo_pin "$version.$build"
  [[ -z ${ODOO_STACK_ODOO_REPO_PIN_ONLY:-} ]] || return 0
  tmp=$(mktemp)
  download https://nightly.odoo.com/odoo.key "$tmp"
  gpg --batch --yes --dearmor -o "$keyring" "$tmp"
  rm -f -- "$tmp"
  chmod 0644 "$keyring"
  printf 'deb [signed-by=%s] https://nightly.odoo.com/%s/nightly/deb/ ./\n' "$keyring" "$version" \
    >/etc/apt/sources.list.d/odoo.list
  apt-get -o DPkg::Lock::Timeout=600 update
}

# A data volume (PostgreSQL's, or Odoo's data_dir on a single Odoo host): attached by Pulumi after the instance starts, so wait for it; its
# NVMe device name varies, its by-id name carries the volume id. Formatted only when blank: a
# volume that outlived a replaced instance keeps its cluster.
cmd_data_volume() {
  local volume_id=${1:-} mount=${2:-} dir device fstab uuid deadline mount_cmd
  [[ $volume_id =~ ^vol-[0-9a-f]{8,17}$ ]] || die "data-volume: invalid volume id '$volume_id'"
  [[ $mount == /* ]] || die "data-volume: invalid mount point '$mount'"
  dir=${ODOO_STACK_DEVICE_DIR:-/dev/disk/by-id}
  fstab=${ODOO_STACK_FSTAB:-/etc/fstab}
  device=$dir/nvme-Amazon_Elastic_Block_Store_${volume_id/-/}
  deadline=$((SECONDS + ${ODOO_STACK_DEVICE_WAIT:-600}))
  until [[ -e $device ]]; do
    ((SECONDS < deadline)) || die "data-volume: $device did not appear (is $volume_id attached?)"
    log "waiting for $device"
    sleep 5
  done
  if ! blkid -p "$device" >/dev/null 2>&1; then
    log "formatting blank volume $volume_id"
    mkfs.ext4 -q -L "$(basename -- "$mount" | cut -c1-16)" "$device"
  fi
  uuid=$(blkid -s UUID -o value "$device")
  [[ -n $uuid ]] || die "data-volume: no filesystem UUID on $device"
  # nofail: a missing volume must not drop the host into emergency mode (then SSM cannot reach it).
  if ! grep -q "^UUID=$uuid " "$fstab"; then
    printf 'UUID=%s %s ext4 defaults,noatime,nofail,x-systemd.device-timeout=300 0 2\n' "$uuid" "$mount" >>"$fstab"
  fi
  mkdir -p -- "$mount"
  read -r -a mount_cmd <<<"${ODOO_STACK_MOUNT:-mount}"
  if ! mountpoint -q -- "$mount"; then "${mount_cmd[@]}" -- "$mount"; fi
}

# The shared filestore (issue 8): EFS mounted at Odoo's data_dir over NFS 4.1 inside TLS.
# amazon-efs-utils (whose `-o tls` does exactly this) is not in Debian 12, so the same design is
# built from Debian's stunnel4: a local stunnel client accepts NFS on 127.0.0.1 and connects to
# the mount target of this AZ on 2049 over TLS 1.2+, verifying the chain (Amazon's roots are in
# ca-certificates) and the file system's DNS name; NFS itself only ever talks to 127.0.0.1.
# The odoo user is created first with a fixed uid/gid, so every host owns the files it shares.
readonly EFS_STUNNEL_NAME=odoo-stack-efs
readonly EFS_LOCAL_PORT=20049
readonly ODOO_UID=9069
# The odoo user before the odoo package: its postinst then keeps it, and data_dir (a volume or
# EFS) belongs to the same uid on every host and after every replacement.
odoo_user() {
  local home=$1
  if ! getent group odoo >/dev/null; then groupadd --system --gid "$ODOO_UID" odoo; fi
  if ! id odoo >/dev/null 2>&1; then
    useradd --system --uid "$ODOO_UID" --gid odoo --home-dir "$home" --no-create-home --shell /usr/sbin/nologin odoo
  fi
}

# Odoo's data_dir on its own volume (one Odoo host): the mount point, and the files a volume that
# outlived an instance brought along, belong to the odoo user.
cmd_odoo_owner() {
  local mount=${1:-}
  [[ -d $mount ]] || die "odoo-owner: $mount is not a directory"
  odoo_user "$mount"
  chown odoo:odoo -- "$mount"
  chmod 0750 -- "$mount"
  if [[ -n $(find "$mount" -mindepth 1 -maxdepth 3 ! -user odoo ! -name lost+found -print -quit) ]]; then
    log "giving the existing data under $mount to odoo"
    find "$mount" -mindepth 1 ! -path "$mount/lost+found*" -exec chown -h odoo:odoo {} +
  fi
}

cmd_efs_mount() {
  local fs_id=${1:-} region=${2:-} mount=${3:-} name conf fstab mount_cmd
  [[ $fs_id =~ ^fs-[0-9a-f]{8,17}$ ]] || die "efs-mount: invalid file system id '$fs_id'"
  [[ $region =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "efs-mount: invalid region '$region'"
  [[ $mount == /* ]] || die "efs-mount: invalid mount point '$mount'"
  name=$fs_id.efs.$region.amazonaws.com
  conf=${ODOO_STACK_ROOT:-}/etc/stunnel/$EFS_STUNNEL_NAME.conf
  fstab=${ODOO_STACK_FSTAB:-/etc/fstab}
  odoo_user "$mount"
  mkdir -p -- "${conf%/*}"
  cat >"$conf" <<EOF
; generated by odoo-stack — do not edit
foreground = yes
pid =
[efs]
client = yes
accept = 127.0.0.1:$EFS_LOCAL_PORT
connect = $name:2049
sslVersionMin = TLSv1.2
verifyChain = yes
CAfile = /etc/ssl/certs/ca-certificates.crt
checkHost = $name
TIMEOUTbusy = 20
TIMEOUTclose = 0
TIMEOUTidle = 70
EOF
  systemctl enable --now "stunnel@$EFS_STUNNEL_NAME.service"
  # _netdev and the stunnel dependency order the mount after the tunnel at every boot; nofail keeps
  # the host reachable through SSM if EFS is not (Odoo then fails its health check instead).
  if ! grep -q "^127.0.0.1:/ $mount " "$fstab"; then
    printf '127.0.0.1:/ %s nfs4 nfsvers=4.1,port=%s,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev,nofail,x-systemd.requires=stunnel@%s.service 0 0\n' \
      "$mount" "$EFS_LOCAL_PORT" "$EFS_STUNNEL_NAME" >>"$fstab"
  fi
  mkdir -p -- "$mount"
  read -r -a mount_cmd <<<"${ODOO_STACK_MOUNT:-mount}"
  if ! mountpoint -q -- "$mount"; then "${mount_cmd[@]}" -- "$mount"; fi
  chown odoo:odoo -- "$mount"
  chmod 0750 -- "$mount"
}

# RDS (issue 8): PgBouncer verifies the RDS endpoint (verify-full) against the regional bundle AWS
# publishes; fetched over HTTPS, itself verified by the system's CA store.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html
cmd_rds_ca_bundle() {
  local region=${1:-} path=${2:-} tmp
  [[ $region =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "rds-ca-bundle: invalid region '$region'"
  [[ $path == /* ]] || die "rds-ca-bundle: invalid path '$path'"
  tmp=$(mktemp)
  download "https://truststore.pki.rds.amazonaws.com/$region/$region-bundle.pem" "$tmp"
  grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp" || die "rds-ca-bundle: the download is not a PEM bundle"
  mkdir -p -- "${ODOO_STACK_ROOT:-}${path%/*}"
  install -m 0644 -- "$tmp" "${ODOO_STACK_ROOT:-}$path"
  rm -f -- "$tmp"
  log "installed $path"
}

# After postgresql-common created the postgres user and before postgresql-15 creates (or, on a
# reattached volume, adopts) the cluster: the mount root and, if the user's uid changed with the
# new instance, the existing data must belong to postgres.
cmd_postgres_owner() {
  local mount=${1:-}
  [[ -d $mount ]] || die "postgres-owner: $mount is not a directory"
  id postgres >/dev/null 2>&1 || die "postgres-owner: no postgres user (install postgresql-common first)"
  if [[ $(stat -c %U -- "$mount") != postgres ]]; then chown postgres:postgres -- "$mount"; fi
  if [[ -n $(find "$mount" -mindepth 1 -maxdepth 3 ! -user postgres ! -name lost+found -print -quit) ]]; then
    log "giving the existing data under $mount to postgres"
    find "$mount" -mindepth 1 ! -path "$mount/lost+found*" -exec chown -h postgres:postgres {} +
  fi
}

# DNS-01 needs no inbound port (only 443 is open, NET-3); certbot.timer renews it and the deploy
# hook reloads nginx in place (TLS-4).
cmd_acme() {
  local domain=${1:-} email=${2:-} staging=()
  # One name per database (issue 16): certbot's --domain takes them comma-separated; the lineage
  # keeps the first one's name, so run again with a longer list it re-issues the same lineage
  # (the paths nginx and the expiry metric read) with every name as a SAN.
  [[ $domain =~ ^[a-z0-9.-]+(,[a-z0-9.-]+)*$ && $email == *@* ]] || die "acme: invalid domain or email"
  if [[ ${3:-} == --staging ]]; then staging=(--staging); fi
  certbot certonly --non-interactive --agree-tos --email "$email" --dns-route53 \
    --cert-name "${domain%%,*}" --domain "$domain" --keep-until-expiring "${staging[@]}" \
    --deploy-hook 'systemctl reload nginx'
}

# The apply script is a file of every host's manifest: fetched from the host's own prefix and
# checked against the manifest's sha256. So user data stays far below EC2's 16 KB limit, and a
# fix of the script reaches running hosts through S3 instead of replacing them.
cmd_fetch_apply() {
  local bucket=${1:-} host=${2:-} region=${3:-} path=${4:-} aws=${ODOO_STACK_AWS:-aws} tmp sha actual deadline
  [[ $bucket =~ ^[a-z0-9][a-z0-9.-]+$ && $host =~ ^[a-z0-9-]+$ && $region =~ ^[a-z0-9-]+$ && $path == /* ]] ||
    die "fetch-apply: usage: fetch-apply BUCKET HOST_ID REGION PATH"
  tmp=$(mktemp -d)
  deadline=$((SECONDS + ${ODOO_STACK_FETCH_WAIT:-900}))
  # Pulumi may upload the host's files after the instance has booted.
  until "$aws" s3 cp --only-show-errors --region "$region" "s3://$bucket/hosts/$host/manifest.json" "$tmp/manifest.json"; do
    ((SECONDS < deadline)) || die "fetch-apply: no s3://$bucket/hosts/$host/manifest.json"
    log "waiting for s3://$bucket/hosts/$host/manifest.json"
    sleep 10
  done
  sha=$(jq -r --arg p "$path" '.files[] | select(.path == $p) | .sha256' "$tmp/manifest.json")
  [[ $sha =~ ^[0-9a-f]{64}$ ]] || die "fetch-apply: the manifest lists no $path"
  "$aws" s3 cp --only-show-errors --region "$region" "s3://$bucket/hosts/$host/${path#/}" "$tmp/script"
  actual=$(sha256sum -- "$tmp/script")
  [[ ${actual%% *} == "$sha" ]] || die "fetch-apply: $path does not match the manifest's sha256"
  mkdir -p -- "${ODOO_STACK_ROOT:-}${path%/*}"
  install -m 0755 -- "$tmp/script" "${ODOO_STACK_ROOT:-}$path"
  rm -rf -- "$tmp"
  log "installed $path"
}

# The first boot: each line of the steps file is one subcommand of this script with its words.
# A step done is recorded under the state directory and not run again; the first failing step
# stops the run (the service fails and systemd starts it again).
readonly STEPS_FILE_DEFAULT=/etc/odoo-stack/firstboot.steps
cmd_firstboot() {
  local steps=${1:-$STEPS_FILE_DEFAULT} state line n=0 name started
  local -a words
  state=${ODOO_STACK_STATE_DIR:-/var/lib/odoo-stack}/firstboot
  [[ -f $steps ]] || die "firstboot: no steps file $steps"
  mkdir -p -- "$state"
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == \#* ]] && continue
    n=$((n + 1))
    read -r -a words <<<"$line"
    name=$(printf '%02d-%s' "$n" "${words[0]}")
    if [[ -f $state/$name.done ]]; then
      log "step $name: done before"
      continue
    fi
    [[ ${words[0]} != firstboot ]] || die "firstboot: a step cannot be firstboot"
    log "step $name: ${words[*]}"
    started=$SECONDS
    # A process of its own: `set -e` holds inside the step (it would not in a subshell that is
    # an `if` condition), and a step's `exit` fails the step, not this loop.
    if ! "${BASH_SOURCE[0]}" "${words[@]}"; then
      die "step $name failed after $((SECONDS - started)) s; odoo-stack-firstboot.service retries it"
    fi
    printf '%s\n' "$((SECONDS - started))" >"$state/$name.done"
    log "step $name: done in $((SECONDS - started)) s"
  done <"$steps"
  log "first boot complete: $n steps"
}

cmd_apply() {
  "${ODOO_STACK_ROOT:-}/usr/local/sbin/odoo-stack-apply" --bootstrap
}

# Right after the apply step started PostgreSQL with archive_mode on: the stanza must exist for
# the first WAL segment to be archived (not only once the first backup timer fires), and `check`
# proves a segment reaches the repository. Both are idempotent.
cmd_pgbackrest_stanza() {
  local config=${1:-} stanza=${2:-}
  [[ $config == /* && $stanza =~ ^[A-Za-z0-9_-]+$ ]] || die "pgbackrest-stanza: usage: pgbackrest-stanza CONFIG STANZA"
  runuser -u postgres -- pgbackrest "--config=$config" "--stanza=$stanza" --log-level-console=info stanza-create
  runuser -u postgres -- pgbackrest "--config=$config" "--stanza=$stanza" --log-level-console=info check
}

# A script the host received through its manifest, e.g. the Odoo database's first install.
cmd_run() {
  local path=${1:-}
  [[ $path == /usr/local/sbin/odoo-stack-* && -x ${ODOO_STACK_ROOT:-}$path ]] || die "run: not a delivered odoo-stack script: '$path'"
  shift
  "${ODOO_STACK_ROOT:-}$path" "$@"
}

main() {
  local command=${1:-}
  (($#)) && shift
  case $command in
    firstboot) cmd_firstboot "$@" ;;
    packages) cmd_packages "$@" ;;
    public-ip) cmd_public_ip "$@" ;;
    install) cmd_install "$@" ;;
    apply) cmd_apply "$@" ;;
    pgbackrest-stanza) cmd_pgbackrest_stanza "$@" ;;
    run) cmd_run "$@" ;;
    aws-agents) cmd_aws_agents "$@" ;;
    odoo-repo) cmd_odoo_repo "$@" ;;
    data-volume) cmd_data_volume "$@" ;;
    postgres-owner) cmd_postgres_owner "$@" ;;
    odoo-owner) cmd_odoo_owner "$@" ;;
    efs-mount) cmd_efs_mount "$@" ;;
    rds-ca-bundle) cmd_rds_ca_bundle "$@" ;;
    acme) cmd_acme "$@" ;;
    fetch-apply) cmd_fetch_apply "$@" ;;
    *)
      sed -n '/^# Usage:/,/^# Overrides/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
