#!/bin/bash
# odoo-stack-apply: installs this host's rendered configuration and applies it IN PLACE
# (DESIGN principle 6). Installed by odoo-stack from templates/scripts/odoo-stack-apply.sh;
# do not edit it on the host.
#
# Usage: odoo-stack-apply [--bootstrap] [--allow-restart] [--config FILE] [--bucket NAME]
#                         [--host HOST_ID] [--region REGION] [--manifest-sha256 HEX]
#                         [--parameters-sha256 HEX]
#   --bootstrap      first boot (odoo-stack-firstboot.service): wait for the manifest, treat every file as changed,
#                    restart services instead of reloading them, run the bootstrap SQL.
#   --allow-restart  restart a service when a changed setting needs it (PostgreSQL
#                    pending_restart, PgBouncer's systemd limits). Without it, only reported.
#   --manifest-sha256  the manifest Pulumi uploaded (the SSM association passes it, so a changed
#                    file re-runs the association); a different manifest in S3 is refused.
#   --parameters-sha256  the versions of the parameters this host reads (the association passes
#                    it, so a rotated secret or a re-issued certificate re-runs it); only logged.
#   --bucket, --host, --region  override the settings file.
# Exit status: 0 applied or nothing to do; 1 failed (see the ERROR line); 2 usage.
#
# Steps: fetch hosts/<hostId>/ (manifest.json + files) from the config bucket; check every file's
# sha256 against the manifest; resolve secretRef() placeholders from SSM (SecureString,
# decrypted; values never printed); stage the files with the manifest's mode and owner; VALIDATE
# each changed service's staged config with the daemon's own parser; install atomically
# (temp file + rename); reload (nginx, PgBouncer RELOAD, PostgreSQL), restart only Odoo (its
# config is read at start) or what --bootstrap/--allow-restart permits. A config that fails
# validation leaves the installed files and the running daemon untouched.
#
# Settings come from /etc/odoo-stack/apply.env (KEY=VALUE, written by cloud-init; the
# environment wins over the file): ODOO_STACK_HOST_ID, ODOO_STACK_REGION, ODOO_STACK_BUCKET,
# ODOO_STACK_PARAMETER_PREFIX. Every path and command is overridable, so the integration tests
# run this very script in a sandbox (defaults are production's):
#   ODOO_STACK_ROOT          prefix of every installed path (default: none)
#   ODOO_STACK_FETCH_DIR     local directory laid out like the bucket prefix, instead of S3
#   ODOO_STACK_SSM_DIR       directory of files named by parameter path, instead of SSM
#   ODOO_STACK_AWS ODOO_STACK_NGINX ODOO_STACK_PGBOUNCER ODOO_STACK_PG_BINDIR ODOO_STACK_PYTHON
#   ODOO_STACK_SYSTEMD_ANALYZE
#   ODOO_STACK_PSQL          psql command prefix (split on blanks) for the PostgreSQL checks and SQL
#   ODOO_STACK_PG_CONF_DIR ODOO_STACK_PG_USER ODOO_STACK_PGBOUNCER_USER ODOO_STACK_LOCK_FILE
#   ODOO_STACK_STATE_DIR     holds the "bootstrapped" marker (default /var/lib/odoo-stack)
#   ODOO_STACK_FETCH_WAIT    seconds to wait for the manifest (default 900 with --bootstrap, else 0)
#   hooks, run with bash -c (a file path, where relevant, is $1): ODOO_STACK_RELOAD_NGINX,
#   ODOO_STACK_RELOAD_PGBOUNCER, ODOO_STACK_RESTART_PGBOUNCER, ODOO_STACK_RELOAD_POSTGRESQL,
#   ODOO_STACK_RESTART_POSTGRESQL, ODOO_STACK_RESTART_ODOO, ODOO_STACK_UPDATE_CA,
#   ODOO_STACK_DAEMON_RELOAD, ODOO_STACK_APPLY_CLOUDWATCH, ODOO_STACK_ODOO_RELEASE
#
# Secrets: umask 077, no xtrace, values are substituted by bash itself (never on a command line),
# and the temporary directory is removed on exit.
set -Eeuo pipefail
umask 077
export LC_ALL=C
# bash 5.2 expands '&' in ${var//pattern/replacement}; a secret containing '&' must stay literal.
shopt -u patsub_replacement 2>/dev/null || true

PROG=odoo-stack-apply
readonly MANIFEST_FORMAT=1
readonly SERVICES_KNOWN=" ca-certificates postgresql sql pgbouncer odoo odoo-release nginx logrotate cloudwatch-agent systemd none "
readonly PATH_RE='^(/[A-Za-z0-9._@+-]+)+$'
# The ERE spelling of SECRET_REF in lib/secret-ref.ts; tests/unit/secret-ref.test.ts runs both on
# one corpus (tests/fixtures/ssm-placeholders.json).
readonly PLACEHOLDER_RE='[{][{]ssm:(/[A-Za-z0-9_./-]+)[}][}]'

log() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: NOTICE: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: ERROR: %s\n' "$PROG" "$*" >&2
  exit 1
}

# Settings: defaults resolved once; the caller may have set any of them in the environment.
init_settings() {
  ROOT=${ODOO_STACK_ROOT:-}
  CONFIG_FILE=${ODOO_STACK_CONFIG:-$ROOT/etc/odoo-stack/apply.env}
  BOOTSTRAP=${BOOTSTRAP:-0}
  ALLOW_RESTART=${ALLOW_RESTART:-0}
}

init_commands() {
  HOST_ID=${ODOO_STACK_HOST_ID:-}
  REGION=${ODOO_STACK_REGION:-}
  BUCKET=${ODOO_STACK_BUCKET:-}
  PARAMETER_PREFIX=${ODOO_STACK_PARAMETER_PREFIX:-}
  FETCH_DIR=${ODOO_STACK_FETCH_DIR:-}
  SSM_DIR=${ODOO_STACK_SSM_DIR:-}
  AWS=${ODOO_STACK_AWS:-aws}
  NGINX=${ODOO_STACK_NGINX:-nginx}
  NGINX_CONF_DIR=/etc/nginx
  PGBOUNCER=${ODOO_STACK_PGBOUNCER:-pgbouncer}
  PGBOUNCER_CONF_DIR=/etc/pgbouncer
  PGBOUNCER_USER=${ODOO_STACK_PGBOUNCER_USER:-postgres}
  PG_BINDIR=${ODOO_STACK_PG_BINDIR:-/usr/lib/postgresql/15/bin}
  PG_CONF_DIR=${ODOO_STACK_PG_CONF_DIR:-/etc/postgresql/15/main}
  PG_USER=${ODOO_STACK_PG_USER:-postgres}
  PYTHON=${ODOO_STACK_PYTHON:-python3}
  SYSTEMD_ANALYZE=${ODOO_STACK_SYSTEMD_ANALYZE:-systemd-analyze}
  read -r -a PSQL <<<"${ODOO_STACK_PSQL:-runuser -u postgres -- psql -X -q -d postgres}"
  LOCK_FILE=${ODOO_STACK_LOCK_FILE:-$ROOT/run/lock/odoo-stack-apply.lock}
  STATE_DIR=${ODOO_STACK_STATE_DIR:-$ROOT/var/lib/odoo-stack}
  APPLIED_MANIFEST=$ROOT/etc/odoo-stack/manifest.json
  FETCH_WAIT=${ODOO_STACK_FETCH_WAIT:-}
  if [[ -z $FETCH_WAIT ]]; then
    if ((BOOTSTRAP)); then FETCH_WAIT=900; else FETCH_WAIT=0; fi
  fi
  HOOK_RELOAD_NGINX=${ODOO_STACK_RELOAD_NGINX:-systemctl reload-or-restart nginx}
  HOOK_RELOAD_PGBOUNCER=${ODOO_STACK_RELOAD_PGBOUNCER:-systemctl reload pgbouncer}
  HOOK_RESTART_PGBOUNCER=${ODOO_STACK_RESTART_PGBOUNCER:-systemctl restart pgbouncer}
  HOOK_RELOAD_POSTGRESQL=${ODOO_STACK_RELOAD_POSTGRESQL:-pg_ctlcluster 15 main reload}
  HOOK_RESTART_POSTGRESQL=${ODOO_STACK_RESTART_POSTGRESQL:-pg_ctlcluster 15 main restart}
  HOOK_RESTART_ODOO=${ODOO_STACK_RESTART_ODOO:-systemctl restart odoo}
  HOOK_ODOO_RELEASE=${ODOO_STACK_ODOO_RELEASE:-\"\$1\" \"\$2\"}
  HOOK_UPDATE_CA=${ODOO_STACK_UPDATE_CA:-update-ca-certificates}
  HOOK_DAEMON_RELOAD=${ODOO_STACK_DAEMON_RELOAD:-systemctl daemon-reload}
  HOOK_ENABLE_TIMER=${ODOO_STACK_ENABLE_TIMER:-systemctl enable --now \"\$1\"}
  HOOK_APPLY_CLOUDWATCH=${ODOO_STACK_APPLY_CLOUDWATCH:-/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c \"file:\$1\"}
}

# KEY=VALUE lines; only known keys; a value already in the environment wins.
load_config_file() {
  local file=$1 line key value
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == \#* ]] && continue
    key=${line%%=*}
    value=${line#*=}
    case $key in
      ODOO_STACK_HOST_ID | ODOO_STACK_REGION | ODOO_STACK_BUCKET | ODOO_STACK_PARAMETER_PREFIX)
        if [[ -z ${!key:-} ]]; then printf -v "$key" '%s' "$value"; fi
        ;;
      *) die "unknown key '$key' in $file" ;;
    esac
  done <"$file"
}

run_hook() {
  local what=$1 hook=$2
  shift 2
  log "$what: $hook"
  # 9>&-: a daemon a hook starts must not inherit (and hold) the run lock.
  bash -c "$hook" odoo-stack-hook "$@" 9>&- || die "$what failed: $hook"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Sets RUN_AS to the command prefix that runs a program as a service user, without a session:
# setpriv execs, so a program started in the background is $! itself.
RUN_AS=()
run_as_prefix() {
  RUN_AS=()
  if is_root && [[ $1 != root ]]; then
    RUN_AS=(setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups --)
  fi
}

# ---------------------------------------------------------------------------------------------
# Temporary state
TMP=''
CHECK_PID=''
cleanup() {
  if [[ -n $CHECK_PID ]]; then kill -INT "$CHECK_PID" 2>/dev/null || true; fi
  if [[ -n $TMP && -d $TMP ]]; then rm -rf -- "$TMP"; fi
}

make_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$PROG.XXXXXXXX")
  trap cleanup EXIT
  trap 'die "interrupted"' INT TERM
  # Traversable (not listable) so a service user can read its own validation copy below; every
  # file inside is created 0600/0700 (umask 077) unless given to that user on purpose.
  chmod 0711 "$TMP"
  mkdir "$TMP/fetch" "$TMP/staged" "$TMP/backup"
}

# ---------------------------------------------------------------------------------------------
# Fetch and manifest
fetch_once() {
  local dest=$1
  if [[ -n $FETCH_DIR ]]; then
    [[ -d $FETCH_DIR ]] || return 1
    cp -R -- "$FETCH_DIR/." "$dest/"
  else
    [[ -n $HOST_ID && -n $BUCKET && -n $REGION ]] ||
      die "ODOO_STACK_HOST_ID, ODOO_STACK_BUCKET and ODOO_STACK_REGION are required (see $CONFIG_FILE)"
    "$AWS" s3 cp --recursive --only-show-errors --region "$REGION" \
      "s3://$BUCKET/hosts/$HOST_ID/" "$dest/"
  fi
}

manifest_matches() {
  local actual
  [[ -f $1 ]] || return 1
  [[ -n $EXPECTED_MANIFEST_SHA256 ]] || return 0
  actual=$(sha256sum -- "$1")
  [[ ${actual%% *} == "$EXPECTED_MANIFEST_SHA256" ]]
}

fetch() {
  local dest=$TMP/fetch deadline=$((SECONDS + FETCH_WAIT))
  while true; do
    if fetch_once "$dest" && manifest_matches "$dest/manifest.json"; then return 0; fi
    if ((SECONDS >= deadline)); then
      [[ -f $dest/manifest.json ]] ||
        die "no manifest.json for host '${HOST_ID:-?}' (${FETCH_DIR:-s3://$BUCKET/hosts/$HOST_ID/})"
      die "the manifest in the bucket is not the one expected (sha256 $EXPECTED_MANIFEST_SHA256): a newer deployment is in progress; its own run applies it"
    fi
    log "waiting for the host's manifest"
    sleep 10
  done
}

# Manifest rows, indexed together.
F_PATH=() F_SHA=() F_MODE=() F_OWNER=() F_GROUP=() F_SERVICE=()
SERVICES=()

valid_path() {
  [[ $1 =~ $PATH_RE && /$1/ != */../* && /$1/ != */./* ]]
}

read_manifest() {
  local manifest=$1 path sha mode owner group service count host
  jq -e --argjson f "$MANIFEST_FORMAT" '.format == $f' "$manifest" >/dev/null ||
    die "$manifest: unsupported or invalid manifest (expected format $MANIFEST_FORMAT)"
  host=$(jq -r '.hostId' "$manifest")
  [[ -z $HOST_ID || $host == "$HOST_ID" ]] || die "manifest is for host '$host', this is '$HOST_ID'"
  count=$(jq '.files | length' "$manifest")
  while IFS=$'\t' read -r path sha mode owner group service; do
    valid_path "$path" || die "manifest: invalid path '$path'"
    [[ $sha =~ ^[0-9a-f]{64}$ ]] || die "manifest: invalid sha256 for $path"
    [[ $mode =~ ^0[0-7]{3}$ ]] || die "manifest: invalid mode '$mode' for $path"
    [[ $owner =~ ^[a-z_][a-z0-9_-]*$ && $group =~ ^[a-z_][a-z0-9_-]*$ ]] ||
      die "manifest: invalid owner/group '$owner:$group' for $path"
    [[ $SERVICES_KNOWN == *" $service "* ]] || die "manifest: unknown service '$service' for $path"
    F_PATH+=("$path") F_SHA+=("$sha") F_MODE+=("$mode") F_OWNER+=("$owner") F_GROUP+=("$group")
    F_SERVICE+=("$service")
  done < <(jq -r '.files[] | [.path, .sha256, .mode, .owner, .group, .service] | @tsv' "$manifest")
  ((${#F_PATH[@]} == count)) || die "manifest: could not read every file entry"
  while IFS= read -r service; do
    [[ $SERVICES_KNOWN == *" $service "* ]] || die "manifest: unknown service '$service'"
    SERVICES+=("$service")
  done < <(jq -r '.services[]' "$manifest")
}

verify_checksums() {
  local i src actual
  for i in "${!F_PATH[@]}"; do
    src=$TMP/fetch${F_PATH[i]}
    [[ -f $src ]] || die "${F_PATH[i]} is listed in the manifest but was not delivered"
    actual=$(sha256sum -- "$src")
    actual=${actual%% *}
    [[ $actual == "${F_SHA[i]}" ]] ||
      die "${F_PATH[i]}: sha256 $actual does not match the manifest (upload in progress? retry)"
  done
}

# ---------------------------------------------------------------------------------------------
# Placeholders
declare -A SSM_CACHE=()

# Prints a parameter's value on stdout; callers only ever capture it.
ssm_value() {
  local name=$1
  [[ -n $PARAMETER_PREFIX && $name == "$PARAMETER_PREFIX"* ]] ||
    die "parameter $name is outside this stack's prefix '${PARAMETER_PREFIX:-unset}'"
  if [[ -n $SSM_DIR ]]; then
    [[ -f $SSM_DIR$name ]] || die "parameter $name not found in $SSM_DIR"
    cat -- "$SSM_DIR$name"
  else
    [[ -n $REGION ]] || die "ODOO_STACK_REGION is required to read SSM parameters"
    "$AWS" ssm get-parameter --region "$REGION" --with-decryption --name "$name" \
      --query Parameter.Value --output text
  fi
}

# Loads a parameter into SSM_CACHE. A value loses its trailing newlines, in both sources.
cache_parameter() {
  local name=$1 value
  [[ -n ${SSM_CACHE[$name]+set} ]] && return 0
  value=$(ssm_value "$name") || die "cannot read parameter $name"
  SSM_CACHE[$name]=$value
}

# Spelled in two parts: this script is itself a managed file, and its own text must not look
# like a placeholder when it is staged.
readonly PLACEHOLDER_OPEN='{{'ssm:
check_literal() {
  [[ $1 != *"$PLACEHOLDER_OPEN"* ]] || die "$2: malformed secret placeholder (see lib/secret-ref.ts)"
}

# Copies src to dest with every placeholder replaced. Bash does the substitution, so no value
# appears in a command line (ps) or a log.
resolve_file() {
  local src=$1 dest=$2 label=$3 rest='' out='' token name literal
  IFS= read -r -d '' rest <"$src" || true
  while [[ $rest =~ $PLACEHOLDER_RE ]]; do
    token=${BASH_REMATCH[0]}
    name=${BASH_REMATCH[1]}
    literal=${rest%%"$token"*}
    check_literal "$literal" "$label"
    cache_parameter "$name"
    out+=$literal${SSM_CACHE[$name]}
    rest=${rest#*"$token"}
  done
  check_literal "$rest" "$label"
  out+=$rest
  printf '%s' "$out" >"$dest"
}

stage_files() {
  local i staged
  for i in "${!F_PATH[@]}"; do
    staged=$TMP/staged${F_PATH[i]}
    mkdir -p -- "${staged%/*}"
    resolve_file "$TMP/fetch${F_PATH[i]}" "$staged" "${F_PATH[i]}"
  done
}

# ---------------------------------------------------------------------------------------------
# Change detection
declare -A CHANGED_SERVICE=()
F_CONTENT_CHANGED=() F_META_CHANGED=()
REMOVED_PATH=() REMOVED_SERVICE=()

mode_differs() {
  local dest=$1 mode=$2 owner=$3 group=$4 current
  current=$(stat -c '%a %U %G' -- "$dest")
  [[ $((8#${current%% *})) -ne $((8#$mode)) || ${current#* } != "$owner $group" ]]
}

detect_changes() {
  local i dest path service known
  for i in "${!F_PATH[@]}"; do
    dest=$ROOT${F_PATH[i]}
    F_CONTENT_CHANGED[i]=0
    F_META_CHANGED[i]=0
    if [[ ! -f $dest ]] || ! cmp -s -- "$TMP/staged${F_PATH[i]}" "$dest"; then
      F_CONTENT_CHANGED[i]=1
    elif mode_differs "$dest" "${F_MODE[i]}" "${F_OWNER[i]}" "${F_GROUP[i]}"; then
      F_META_CHANGED[i]=1
    fi
    if ((BOOTSTRAP || F_CONTENT_CHANGED[i])); then CHANGED_SERVICE[${F_SERVICE[i]}]=1; fi
  done
  # Files the previous manifest installed and this one no longer lists (e.g. a removed site).
  [[ -f $APPLIED_MANIFEST ]] || return 0
  while IFS=$'\t' read -r path service; do
    valid_path "$path" || continue
    [[ $SERVICES_KNOWN == *" $service "* ]] || continue
    known=0
    for i in "${!F_PATH[@]}"; do [[ ${F_PATH[i]} == "$path" ]] && known=1 && break; done
    if ((!known)) && [[ -e $ROOT$path ]]; then
      REMOVED_PATH+=("$path") REMOVED_SERVICE+=("$service")
      CHANGED_SERVICE[$service]=1
    fi
  done < <(jq -r '.files[]? | [.path, .service] | @tsv' "$APPLIED_MANIFEST" 2>/dev/null || true)
}

service_changed() { [[ -n ${CHANGED_SERVICE[$1]+set} ]]; }

# ---------------------------------------------------------------------------------------------
# Validation trees: a copy of the service's installed config directory, overlaid with every
# staged file at its own path, and absolute references rewritten into the copy. The daemon's
# own parser then reads exactly what would be installed, includes and certificates included.

# Rewrites, in one pass, each absolute path token that lies under confdir or names a managed
# file, so "/etc/nginx/conf.d/*.conf" or "auth_file = /etc/pgbouncer/userlist.txt" point into
# the tree. Tokens elsewhere (/var/log/..., URLs) are left alone.
rewrite_paths() {
  local file=$1 tree=$2 confdir=$3 rest='' out='' token path i re='(/[A-Za-z0-9._@+-]+)+'
  IFS= read -r -d '' rest <"$file" || true
  while [[ $rest =~ $re ]]; do
    token=${BASH_REMATCH[0]}
    out+=${rest%%"$token"*}
    rest=${rest#*"$token"}
    path=$token
    if [[ -n $ROOT ]]; then
      if [[ $token == "$ROOT"/* ]]; then path=${token#"$ROOT"}; else out+=$token && continue; fi
    fi
    if [[ $path == "$confdir" || $path == "$confdir"/* ]]; then
      token=$tree$path
    else
      for i in "${!F_PATH[@]}"; do
        if [[ ${F_PATH[i]} == "$path" ]]; then token=$tree$path && break; fi
      done
    fi
    out+=$token
  done
  out+=$rest
  printf '%s' "$out" >"$file"
}

install_copy() { # src dest mode owner group: a plain copy with the manifest's metadata
  local src=$1 dest=$2 mode=$3 owner=$4 group=$5
  cp -- "$src" "$dest"
  chmod "$mode" -- "$dest"
  if is_root; then chown "$owner:$group" -- "$dest"; fi
}

build_tree() {
  local service=$1 confdir=$2 tree=$TMP/check-$1 i f
  mkdir -p -- "$tree$confdir"
  if [[ -d $ROOT$confdir ]]; then cp -a -- "$ROOT$confdir/." "$tree$confdir/"; fi
  for i in "${!REMOVED_PATH[@]}"; do rm -f -- "$tree${REMOVED_PATH[i]}"; done
  for i in "${!F_PATH[@]}"; do
    mkdir -p -- "$tree$(dirname -- "${F_PATH[i]}")"
    install_copy "$TMP/staged${F_PATH[i]}" "$tree${F_PATH[i]}" "${F_MODE[i]}" "${F_OWNER[i]}" "${F_GROUP[i]}"
  done
  find "$tree" -type d -exec chmod 0755 {} +
  while IFS= read -r -d '' f; do
    if grep -qI -- / "$f"; then rewrite_paths "$f" "$tree" "$confdir"; fi
  done < <(find "$tree$confdir" -type f -print0)
  TREE=$tree
}

check_output() { # service file: fails with the daemon's own messages
  local service=$1 out=$2
  if grep -E '(ERROR|FATAL|emerg|\[error\])' -- "$out" >&2; then
    die "$service: the new configuration is invalid (nothing was installed or reloaded)"
  fi
}

validate_nginx() {
  build_tree nginx "$NGINX_CONF_DIR"
  if ! "$NGINX" -t -q -c "$TREE$NGINX_CONF_DIR/nginx.conf" >"$TREE/nginx-t.out" 2>&1; then
    cat -- "$TREE/nginx-t.out" >&2
    die "nginx: the new configuration is invalid (nothing was installed or reloaded)"
  fi
}

# PgBouncer 1.18 has no config-test flag, and a reload of a broken file applies it partially.
# So: start a throwaway pgbouncer on the staged files, as the service user, with only its
# sockets, pidfile and log moved into the tree and TCP disabled; it must come up, and its log
# must hold no ERROR/FATAL (a broken userlist or a missing auth_file is only logged).
readonly PGBOUNCER_CHECK_KEYS=" listen_addr unix_socket_dir pidfile logfile syslog "
validate_pgbouncer() {
  local ini line key lower in_section=0 out deadline
  build_tree pgbouncer "$PGBOUNCER_CONF_DIR"
  ini=$TREE$PGBOUNCER_CONF_DIR/pgbouncer.ini
  [[ -f $ini ]] || die "pgbouncer: $PGBOUNCER_CONF_DIR/pgbouncer.ini is not in the manifest nor installed"
  mkdir -m 0700 "$TREE/run"
  if is_root; then chown "$PGBOUNCER_USER:" "$TREE/run"; fi
  # A second [pgbouncer] section would reset the first one's keys, so the overrides replace the
  # keys in place, right after the section header.
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^[[:space:]]*\[([^]]*)\] ]]; then
      lower=${BASH_REMATCH[1],,}
      printf '%s\n' "$line"
      if [[ $lower == pgbouncer ]]; then
        in_section=1
        printf 'listen_addr =\nunix_socket_dir = %s\npidfile = %s\nlogfile =\nsyslog = 0\n' \
          "$TREE/run" "$TREE/run/pgbouncer.pid"
      else
        in_section=0
      fi
      continue
    fi
    key=${line%%=*}
    key=${key//[[:space:]]/}
    if ((in_section)) && [[ $PGBOUNCER_CHECK_KEYS == *" ${key,,} "* ]]; then continue; fi
    printf '%s\n' "$line"
  done <"$ini" >"$TREE/check.ini"
  if is_root; then chown "$PGBOUNCER_USER:" "$TREE/check.ini"; fi
  out=$TREE/pgbouncer-check.out
  # Created before the background start: its redirection happens after the fork, and the first
  # grep below may run before it.
  : >"$out"
  run_as_prefix "$PGBOUNCER_USER"
  "${RUN_AS[@]}" "$PGBOUNCER" "$TREE/check.ini" >"$out" 2>&1 9>&- &
  CHECK_PID=$!
  deadline=$((SECONDS + 15))
  until grep -q 'process up' -- "$out"; do
    if ! kill -0 "$CHECK_PID" 2>/dev/null; then
      wait "$CHECK_PID" || true
      CHECK_PID=''
      cat -- "$out" >&2
      die "pgbouncer: the new configuration is invalid (nothing was installed or reloaded)"
    fi
    ((SECONDS < deadline)) || die "pgbouncer: the check instance did not start within 15 s"
    sleep 0.2
  done
  kill -INT "$CHECK_PID" 2>/dev/null || true
  wait "$CHECK_PID" || true
  CHECK_PID=''
  check_output pgbouncer "$out"
}

# PostgreSQL: pg_file_settings does not flag invalid values, so before installing, run
# `postgres --check` (GUC parsing as at server start) on the staged tree against an empty
# skeleton data directory. After installing, pg_file_settings / pg_hba_file_rules report what the
# running server would reject (unknown keys, syntax, pg_hba errors); those roll the files back.
validate_postgresql() {
  local skeleton d version
  build_tree postgresql "$PG_CONF_DIR"
  [[ -f $TREE$PG_CONF_DIR/postgresql.conf ]] || return 0 # first boot before the cluster exists
  skeleton=$TREE/skeleton
  version=$(basename -- "$(dirname -- "$PG_CONF_DIR")")
  for d in global pg_wal pg_xact pg_commit_ts pg_dynshmem pg_notify pg_serial pg_snapshots \
    pg_subtrans pg_twophase pg_multixact/members pg_multixact/offsets base pg_replslot pg_tblspc \
    pg_stat pg_stat_tmp pg_logical; do
    mkdir -p -- "$skeleton/$d"
  done
  printf '%s\n' "$version" >"$skeleton/PG_VERSION"
  chmod -R go-rwx "$skeleton"
  if is_root; then chown -R "$PG_USER:" "$skeleton"; fi
  run_as_prefix "$PG_USER"
  if ! (cd / && "${RUN_AS[@]}" "$PG_BINDIR/postgres" --check \
    -c "config_file=$TREE$PG_CONF_DIR/postgresql.conf" -c "data_directory=$skeleton") \
    >"$TREE/postgres-check.out" 2>&1; then
    grep -v 'skipping missing configuration file' -- "$TREE/postgres-check.out" >&2 || true
    die "postgresql: the new configuration is invalid (nothing was installed or reloaded)"
  fi
}

validate_odoo() {
  local i
  for i in "${!F_PATH[@]}"; do
    # odoo.conf only: the systemd drop-in of the odoo service is a .conf file too.
    [[ ${F_SERVICE[i]} == odoo && ${F_PATH[i]} == /etc/odoo/*.conf ]] || continue
    # Odoo reads odoo.conf with ConfigParser: a duplicate key or a line outside a section is
    # fatal at start, so it is caught here, before the restart.
    "$PYTHON" - "$TMP/staged${F_PATH[i]}" <<'PY' || die "odoo: ${F_PATH[i]} is invalid (nothing was installed or restarted)"
import configparser, sys
parser = configparser.RawConfigParser()
with open(sys.argv[1], encoding="utf-8") as f:
    parser.read_file(f)
if not parser.has_section("options"):
    sys.exit("odoo.conf has no [options] section")
PY
  done
}

validate_logrotate() {
  local i out=$TMP/logrotate.out
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == logrotate ]] || continue
    if ! logrotate --debug --state "$TMP/logrotate.state" "$TMP/staged${F_PATH[i]}" >"$out" 2>&1 ||
      grep -E '^error:' -- "$out" >&2; then
      die "logrotate: ${F_PATH[i]} is invalid (nothing was installed)"
    fi
  done
}

# A trust file holds one CA, or two while the internal CA rotates (lib/internal-ca.ts): every
# PEM block in it must parse as a certificate, not only the first one openssl x509 reads.
validate_ca_certificates() {
  local i file blocks parsed
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == ca-certificates ]] || continue
    file=$TMP/staged${F_PATH[i]}
    blocks=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$file" || true)
    parsed=$(openssl crl2pkcs7 -nocrl -certfile "$file" 2>/dev/null | openssl pkcs7 -print_certs -noout 2>/dev/null | grep -c '^subject=' || true)
    [[ $blocks -ge 1 && $parsed -eq $blocks ]] ||
      die "ca-certificates: ${F_PATH[i]} is not a PEM certificate bundle ($blocks certificate blocks, not all of them parse; nothing was installed)"
  done
}

validate_cloudwatch_agent() {
  local i
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == cloudwatch-agent ]] || continue
    jq empty "$TMP/staged${F_PATH[i]}" ||
      die "cloudwatch-agent: ${F_PATH[i]} is not valid JSON (nothing was installed)"
  done
}

# Units and timers: `systemd-analyze verify` on the staged copies, together (unknown keys, bad
# values, a timer with no trigger). Every such finding about the staged units fails; findings
# about the system's own units are not ours to judge. A missing command is the host's packages'
# business, not the unit's, and one this manifest delivers is installed after validation: those
# are only reported (a NOTICE), never fatal.
validate_systemd() {
  local i out=$TMP/systemd-verify.out line ours
  local -a units=() names=()
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == systemd && (${F_PATH[i]} == *.service || ${F_PATH[i]} == *.timer) ]] || continue
    units+=("$TMP/staged${F_PATH[i]}")
    names+=("${F_PATH[i]##*/}")
  done
  ((${#units[@]})) || return 0
  (cd / && "$SYSTEMD_ANALYZE" verify --man=no -- "${units[@]}") >"$out" 2>&1 || true
  local -a findings=()
  while IFS= read -r line || [[ -n $line ]]; do
    ours=0
    [[ $line == *"$TMP/staged/"* ]] && ours=1
    for i in "${names[@]}"; do [[ $line == "$i:"* ]] && ours=1; done
    ((ours)) || continue
    if [[ $line =~ :\ Command\ (/[^ ]+)\ is\ not\ executable: ]]; then
      for i in "${F_PATH[@]}"; do [[ $i == "${BASH_REMATCH[1]}" ]] && continue 2; done
      warn "systemd: ${line//"$TMP/staged"/}"
      continue
    fi
    findings+=("${line//"$TMP/staged"/}")
  done <"$out"
  if ((${#findings[@]})); then
    printf '%s\n' "${findings[@]}" >&2
    die "systemd: the new units are invalid (nothing was installed or reloaded)"
  fi
}

validate_service() {
  case $1 in
    nginx) validate_nginx ;;
    pgbouncer) validate_pgbouncer ;;
    postgresql) validate_postgresql ;;
    odoo) validate_odoo ;;
    logrotate) validate_logrotate ;;
    ca-certificates) validate_ca_certificates ;;
    cloudwatch-agent) validate_cloudwatch_agent ;;
    systemd) validate_systemd ;;
    # odoo-release: the release script checks the artifact itself, before it stops Odoo.
    sql | odoo-release | none) ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Install
INSTALLED=()

# Atomic: a temp file in the destination directory, metadata set, then rename over the target.
install_file() {
  local i=$1 path=${F_PATH[$1]} dest dir tmpfile
  dest=$ROOT$path
  dir=${dest%/*}
  if [[ ! -d $dir ]]; then (umask 022 && mkdir -p -- "$dir"); fi
  if ((F_META_CHANGED[i] && !F_CONTENT_CHANGED[i])); then
    chmod "${F_MODE[i]}" -- "$dest"
    if is_root; then chown "${F_OWNER[i]}:${F_GROUP[i]}" -- "$dest"; fi
    log "updated mode/owner of $path"
    return 0
  fi
  if [[ -e $dest ]]; then
    mkdir -p -- "$TMP/backup${path%/*}"
    cp -p -- "$dest" "$TMP/backup$path"
  fi
  tmpfile=$(mktemp "$dir/.${path##*/}.odoo-stack.XXXXXX")
  cat -- "$TMP/staged$path" >"$tmpfile"
  chmod "${F_MODE[i]}" -- "$tmpfile"
  if is_root; then chown "${F_OWNER[i]}:${F_GROUP[i]}" -- "$tmpfile"; fi
  mv -f -- "$tmpfile" "$dest"
  INSTALLED+=("$path")
  log "installed $path"
}

install_service_files() {
  local service=$1 i
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == "$service" ]] || continue
    if ((F_CONTENT_CHANGED[i] || F_META_CHANGED[i])); then install_file "$i"; fi
  done
  for i in "${!REMOVED_PATH[@]}"; do
    [[ ${REMOVED_SERVICE[i]} == "$service" ]] || continue
    mkdir -p -- "$TMP/backup$(dirname -- "${REMOVED_PATH[i]}")"
    cp -p -- "$ROOT${REMOVED_PATH[i]}" "$TMP/backup${REMOVED_PATH[i]}"
    rm -f -- "$ROOT${REMOVED_PATH[i]}"
    INSTALLED+=("${REMOVED_PATH[i]}")
    log "removed ${REMOVED_PATH[i]} (no longer in the manifest)"
  done
}

# Puts back what install_service_files replaced for a service (used by PostgreSQL's
# post-install check, which can only read installed files).
rollback_service_files() {
  local service=$1 path tmpfile
  for path in "${INSTALLED[@]}"; do
    if ! service_owns "$service" "$path"; then continue; fi
    if [[ -e $TMP/backup$path ]]; then
      tmpfile=$(mktemp "$(dirname -- "$ROOT$path")/.rollback.XXXXXX")
      cp -p -- "$TMP/backup$path" "$tmpfile"
      mv -f -- "$tmpfile" "$ROOT$path"
    else
      rm -f -- "$ROOT$path"
    fi
    log "rolled back $path"
  done
}

service_owns() {
  local service=$1 path=$2 i
  for i in "${!F_PATH[@]}"; do
    [[ ${F_PATH[i]} == "$path" && ${F_SERVICE[i]} == "$service" ]] && return 0
  done
  for i in "${!REMOVED_PATH[@]}"; do
    [[ ${REMOVED_PATH[i]} == "$path" && ${REMOVED_SERVICE[i]} == "$service" ]] && return 0
  done
  return 1
}

service_file_changed() { # service glob: true when a changed file of the service matches
  local service=$1 glob=$2 i
  for i in "${!F_PATH[@]}"; do
    # shellcheck disable=SC2053 # $glob is a pattern on purpose
    [[ ${F_SERVICE[i]} == "$service" && ${F_PATH[i]} == $glob ]] || continue
    ((BOOTSTRAP || F_CONTENT_CHANGED[i])) && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Apply
PENDING=()

psql_query() { "${PSQL[@]}" -v ON_ERROR_STOP=1 -At -c "$1"; }

apply_postgresql() {
  local errors before after pending deadline
  # A changed postmaster-context key (shared_buffers, max_connections) shows as "setting could
  # not be applied" until a restart: not an error, it is reported as pending after the reload.
  errors=$(psql_query "SELECT format('%s:%s: %s%s', f.sourcefile, f.sourceline, coalesce(f.name || ': ', ''), f.error)
      FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name
      WHERE f.error IS NOT NULL
        AND NOT (s.context = 'postmaster' AND f.error = 'setting could not be applied')
    UNION ALL
    SELECT format('pg_hba.conf:%s: %s', line_number, error) FROM pg_hba_file_rules WHERE error IS NOT NULL") ||
    errors="cannot query pg_file_settings/pg_hba_file_rules"
  if [[ -n $errors ]]; then
    printf '%s\n' "$errors" >&2
    rollback_service_files postgresql
    die "postgresql: the new configuration is invalid; files rolled back, server not reloaded"
  fi
  if ((BOOTSTRAP)); then
    run_hook "postgresql restart (bootstrap)" "$HOOK_RESTART_POSTGRESQL"
    return 0
  fi
  before=$(psql_query "SELECT pg_conf_load_time()")
  run_hook "postgresql reload" "$HOOK_RELOAD_POSTGRESQL"
  # The reload is asynchronous: wait until a new session sees the postmaster's new load time.
  deadline=$((SECONDS + 30))
  after=$before
  while [[ $after == "$before" ]] && ((SECONDS < deadline)); do
    sleep 0.2
    after=$(psql_query "SELECT pg_conf_load_time()")
  done
  [[ $after != "$before" ]] || die "postgresql: the server did not reload within 30 s"
  pending=$(psql_query "SELECT string_agg(name, ', ' ORDER BY name) FROM pg_settings WHERE pending_restart")
  if [[ -n $pending ]]; then
    if ((ALLOW_RESTART)); then
      run_hook "postgresql restart (changed: $pending)" "$HOOK_RESTART_POSTGRESQL"
    else
      PENDING+=("postgresql (restart needed for: $pending)")
    fi
  fi
}

# RDS has no database host: the PgBouncer host runs the bootstrap SQL against the RDS endpoint as
# the master user, through this libpq service file (verify-full, password resolved from SSM).
# psql reads the staged copy (resolved, 0600 root), so the SQL does not wait for the file's own
# installation, which comes later ("none" is the last service).
readonly RDS_ADMIN_SERVICE_FILE=/etc/odoo-stack/rds-admin.pg_service.conf
readonly RDS_ADMIN_SERVICE=odoo-stack-rds-admin

apply_sql() {
  local i
  local -a psql=("${PSQL[@]}")
  if [[ -f $TMP/staged$RDS_ADMIN_SERVICE_FILE ]]; then
    psql=(env "PGSERVICEFILE=$TMP/staged$RDS_ADMIN_SERVICE_FILE" "PGSERVICE=$RDS_ADMIN_SERVICE" psql -X -q)
  fi
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == sql ]] || continue
    ((BOOTSTRAP || F_CONTENT_CHANGED[i] || F_META_CHANGED[i])) || continue
    log "running ${F_PATH[i]}"
    # From stdin: the resolved SQL (it may carry verifiers) never is a file the server user reads.
    "${psql[@]}" -v ON_ERROR_STOP=1 -f - <"$TMP/staged${F_PATH[i]}" >/dev/null ||
      die "sql: ${F_PATH[i]} failed (not recorded as applied; the next run retries it)"
    install_file "$i"
  done
}

apply_pgbouncer() {
  local needs_restart=0
  if service_file_changed pgbouncer '/etc/systemd/*'; then
    run_hook "systemd daemon-reload" "$HOOK_DAEMON_RELOAD"
    needs_restart=1 # LimitNOFILE and the like apply at process start only
  fi
  if ((BOOTSTRAP)); then
    run_hook "pgbouncer restart (bootstrap)" "$HOOK_RESTART_PGBOUNCER"
  elif ((needs_restart && ALLOW_RESTART)); then
    run_hook "pgbouncer restart (systemd limits changed)" "$HOOK_RESTART_PGBOUNCER"
  else
    # SIGHUP = RELOAD: config and auth_file re-read, client connections kept (AUTH-4).
    run_hook "pgbouncer reload" "$HOOK_RELOAD_PGBOUNCER"
    if ((needs_restart)); then PENDING+=("pgbouncer (restart needed for its systemd limits)"); fi
  fi
}

apply_cloudwatch_agent() {
  local i
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == cloudwatch-agent ]] || continue
    ((BOOTSTRAP || F_CONTENT_CHANGED[i])) || continue
    run_hook "cloudwatch agent" "$HOOK_APPLY_CLOUDWATCH" "${F_PATH[i]}"
  done
}

# The stack's jobs (backups, restore drill, metrics): load the units, then enable and start
# every delivered timer — a timer that is only installed never fires.
apply_systemd() {
  local i
  run_hook "systemd daemon-reload" "$HOOK_DAEMON_RELOAD"
  for i in "${!F_PATH[@]}"; do
    [[ ${F_SERVICE[i]} == systemd && ${F_PATH[i]} == *.timer ]] || continue
    run_hook "enable ${F_PATH[i]##*/}" "$HOOK_ENABLE_TIMER" "${F_PATH[i]##*/}"
  done
}

apply_service() {
  local service=$1
  case $service in
    sql)
      apply_sql
      return 0
      ;;
  esac
  install_service_files "$service"
  case $service in
    ca-certificates) run_hook "ca-certificates" "$HOOK_UPDATE_CA" ;;
    postgresql) apply_postgresql ;;
    pgbouncer) apply_pgbouncer ;;
    # Odoo reads odoo.conf only at start; systemd stops it gracefully (workers finish).
    odoo)
      if service_file_changed odoo '/etc/systemd/*'; then run_hook "systemd daemon-reload" "$HOOK_DAEMON_RELOAD"; fi
      run_hook "odoo restart" "$HOOK_RESTART_ODOO"
      ;;
    # The pinned package and the addons artifact (issue 12 item 7): the release script, installed
    # just before as a file of the `none` service's kind, verifies and switches (or rolls back).
    odoo-release) run_hook "odoo release" "$HOOK_ODOO_RELEASE" "$ROOT/usr/local/sbin/odoo-stack-odoo-release" "$ROOT/etc/odoo-stack/odoo-release.env" ;;
    nginx) run_hook "nginx reload" "$HOOK_RELOAD_NGINX" ;;
    # Odoo's drop-in must be loaded before the restart reads it.
    cloudwatch-agent) apply_cloudwatch_agent ;;
    systemd) apply_systemd ;;
    logrotate | none) ;;
  esac
}

record_manifest() {
  local dir=${APPLIED_MANIFEST%/*} tmpfile
  if [[ ! -d $dir ]]; then (umask 022 && mkdir -p -- "$dir"); fi
  tmpfile=$(mktemp "$dir/.manifest.XXXXXX")
  cat -- "$TMP/fetch/manifest.json" >"$tmpfile"
  chmod 0644 -- "$tmpfile"
  mv -f -- "$tmpfile" "$APPLIED_MANIFEST"
}

usage() {
  sed -n '/^# Usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  local service i metadata_only=0
  EXPECTED_MANIFEST_SHA256=''
  while (($#)); do
    case $1 in
      --bootstrap) BOOTSTRAP=1 ;;
      --allow-restart) ALLOW_RESTART=1 ;;
      --config | --bucket | --host | --region | --manifest-sha256 | --parameters-sha256)
        (($# >= 2)) || usage
        case $1 in
          --config) ODOO_STACK_CONFIG=$2 ;;
          --bucket) ODOO_STACK_BUCKET=$2 ;;
          --host) ODOO_STACK_HOST_ID=$2 ;;
          --region) ODOO_STACK_REGION=$2 ;;
          --manifest-sha256) EXPECTED_MANIFEST_SHA256=$2 ;;
          --parameters-sha256)
            [[ $2 =~ ^[0-9a-f]{64}$ ]] || die "--parameters-sha256 must be 64 hex digits"
            log "parameters version $2"
            ;;
        esac
        shift
        ;;
      -h | --help) usage ;;
      *) usage ;;
    esac
    shift
  done
  init_settings
  load_config_file "$CONFIG_FILE"
  init_commands

  mkdir -p -- "$(dirname -- "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  flock -w 600 9 || die "another $PROG run holds $LOCK_FILE"

  # State Manager runs the association as soon as the SSM agent registers, which is while
  # cloud-init is still installing packages. Until the bootstrap run has finished, that run must
  # not apply anything: it would reload daemons still on their package defaults, and the
  # bootstrap run would then find nothing changed and restart nothing.
  if ((!BOOTSTRAP)) && [[ ! -f $STATE_DIR/bootstrapped ]]; then
    warn "first boot not finished (no $STATE_DIR/bootstrapped): cloud-init's '$PROG --bootstrap' applies this configuration; nothing done"
    return 0
  fi

  make_tmp
  fetch
  read_manifest "$TMP/fetch/manifest.json"
  verify_checksums
  stage_files
  detect_changes

  # Validate every changed service before touching anything.
  for service in "${SERVICES[@]}"; do
    if service_changed "$service"; then validate_service "$service"; fi
  done
  for service in "${SERVICES[@]}"; do
    if service_changed "$service"; then
      apply_service "$service"
    else
      for i in "${!F_PATH[@]}"; do
        if [[ ${F_SERVICE[i]} == "$service" ]] && ((F_META_CHANGED[i])); then
          install_file "$i"
          metadata_only=1
        fi
      done
    fi
  done
  record_manifest
  if ((BOOTSTRAP)); then
    (umask 022 && mkdir -p -- "$STATE_DIR" && : >"$STATE_DIR/bootstrapped")
  fi

  if ((${#CHANGED_SERVICE[@]} == 0 && !metadata_only)); then
    log "nothing changed"
  else
    log "applied: ${!CHANGED_SERVICE[*]}"
  fi
  for i in "${PENDING[@]}"; do
    warn "$i; run '$PROG --allow-restart' in a maintenance window"
  done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
