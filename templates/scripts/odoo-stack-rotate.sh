#!/bin/bash
# odoo-stack-rotate: the database password rotation of AUTH-4, one step per host, in order.
# Installed by odoo-stack from templates/scripts/odoo-stack-rotate.sh; do not edit on the host.
#
# Usage: odoo-stack-rotate STEP [--role NAME]... [--verifier-parameter PATH] [--dbname NAME]
#
# Before: put the new password and its SCRAM verifier in their SSM parameters (e.g. `pulumi up`
# after changing the password's keeper). Then run, back to back, each step after the previous
# one succeeded:
#   1. pgbouncer  (PgBouncer host) odoo-stack-apply: the userlist is re-rendered with the new
#                 verifier, checked by a throwaway pgbouncer, installed atomically (0600, AUTH-2),
#                 then RELOAD (SIGHUP): client connections stay, new logins need the new password.
#   2. postgres   (PostgreSQL host; RDS: PgBouncer host) ALTER ROLE <role> PASSWORD '<verifier>'
#                 for each --role (default odoo), in one transaction: the odoo role and the
#                 migration role that shares its password change together or not at all.
#                 Sessions already open stay authenticated: PostgreSQL checks a password only
#                 at login, so PgBouncer's pooled server connections keep working.
#   3. odoo       (each Odoo host, one after another) odoo-stack-apply: odoo.conf gets the new
#                 db_password, is checked, installed, and Odoo restarts gracefully (it reads
#                 odoo.conf at start only); with several hosts the proxy keeps serving.
#   4. check      (an Odoo host) logs in through PgBouncer with odoo.conf's credentials.
# Why this order (measured on PgBouncer 1.18 under 24 clients, tests/integration/rotation.test.ts):
# PgBouncer logs in to PostgreSQL with SCRAM keys it saved from its clients' logins (SCRAM
# pass-through), and every RELOAD closes the pool's server connections. If PostgreSQL had the new
# verifier first, the RELOAD would make PgBouncer log in again with keys of the OLD password:
# every server login fails and the pool stalls for server_login_retry (15 s, clients dropped).
# Reloading PgBouncer first re-opens server connections while PostgreSQL still accepts the old
# keys; the ALTER ROLE then leaves those connections open, and the first login with the new
# password (step 3 or 4) gives PgBouncer the new keys. Remaining window, seconds when the steps
# run back to back: a NEW Odoo connection with the old password is refused from step 1, and if
# the pool must open a server connection between steps 2 and 3 it fails until a client logs in
# with the new password. Run the steps back to back, in a quiet hour; a fully seamless
# rotation would need two alternating login roles.
# With RDS there is no PostgreSQL host: step 2 runs on the PgBouncer host through the master's
# libpq service, and first waits until PgBouncer re-opened the server connections step 1 closed.
# From a laptop, `odoo-stack rotate odoo` (tools/odoo-stack.ts) runs every step through SSM.
#
# Settings and sandbox overrides: as odoo-stack-apply (its functions are reused), plus
#   ODOO_STACK_APPLY      the apply script (default /usr/local/sbin/odoo-stack-apply)
#   ODOO_STACK_ODOO_CONF  odoo.conf read by `check` (default $ODOO_STACK_ROOT/etc/odoo/odoo.conf)
#   ODOO_STACK_PGBOUNCER_CONSOLE  psql command prefix of PgBouncer's admin console (postgres step)
#   ODOO_STACK_ROTATE_WAIT  seconds the postgres step waits for PgBouncer's server connections (60)
set -Eeuo pipefail
umask 077

readonly APPLY=${ODOO_STACK_APPLY:-/usr/local/sbin/odoo-stack-apply}
# shellcheck source-path=SCRIPTDIR source=odoo-stack-apply.sh
source "$APPLY"
PROG=odoo-stack-rotate

# A SCRAM-SHA-256 verifier as PostgreSQL stores it; anything else would be taken by
# ALTER ROLE ... PASSWORD as a plaintext password, so it is refused.
readonly VERIFIER_RE='^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$'

rotate_usage() {
  sed -n '5,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The steps in their proven order: templates/procedures.ts ODOO_ROTATION_ORDER, which renders
# the runbook and drives `odoo-stack rotate`; tests/unit/procedures.test.ts holds this array, the
# header above and the hints below to it.
readonly ROTATE_STEPS=(pgbouncer postgres odoo check)

# "next: odoo-stack-rotate <step>" after STEP, from ROTATE_STEPS.
rotate_next() {
  local i
  for i in "${!ROTATE_STEPS[@]}"; do
    if [[ ${ROTATE_STEPS[i]} == "$1" ]]; then
      if ((i + 1 < ${#ROTATE_STEPS[@]})); then
        printf 'next: odoo-stack-rotate %s' "${ROTATE_STEPS[i + 1]}"
        if [[ ${ROTATE_STEPS[i + 1]} == odoo ]]; then printf ' (on every Odoo host)'; fi
      else
        printf 'rotation complete'
      fi
      return 0
    fi
  done
  return 1
}

# The LISTEN session pool (templates/pgbouncer.ts LISTEN_DATABASE): its server connections stay
# with their clients until Odoo restarts, so the wait below does not wait for them.
readonly LISTEN_DATABASE=postgres
readonly PGBOUNCER_CONSOLE_DEFAULT="runuser -u postgres -- psql -X -q -h /var/run/postgresql -p 6432 -U pgbouncer pgbouncer"

# When this host runs PgBouncer (RDS: the postgres step runs beside it): wait until PgBouncer has
# re-opened the server connections its RELOAD closed (SHOW SERVERS close_needed). They log in with
# the SCRAM keys of the clients already connected, i.e. of the OLD password: the new verifier must
# reach PostgreSQL only after them (AUTH-4; 14-58 ms under 24 clients in
# tests/integration/rotation.test.ts). Columns are read by name; the ones up to close_needed hold
# no comma in PgBouncer 1.18.
wait_pgbouncer_reopened() {
  local rows pending limit=${ODOO_STACK_ROTATE_WAIT:-60} start=$SECONDS started=${EPOCHREALTIME/./}
  local -a console
  read -r -a console <<<"${ODOO_STACK_PGBOUNCER_CONSOLE:-$PGBOUNCER_CONSOLE_DEFAULT}"
  while :; do
    rows=$("${console[@]}" --csv -c 'SHOW SERVERS') || die "cannot read PgBouncer's SHOW SERVERS; nothing was changed"
    pending=$(printf '%s\n' "$rows" | awk -F, -v listen="$LISTEN_DATABASE" '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      $col["database"] != listen && $col["close_needed"] == "1" { n++ }
      END { print n + 0 }')
    if ((pending == 0)); then
      log "PgBouncer has re-opened its server connections ($(((${EPOCHREALTIME/./} - started) / 1000)) ms)"
      return 0
    fi
    ((SECONDS - start < limit)) ||
      die "PgBouncer still has $pending server connection(s) to re-open after $limit s; the role was not changed (run this step again)"
    sleep 0.2
  done
}

# step_postgres PARAMETER ROLE...: every role gets the verifier in PARAMETER, in one transaction.
step_postgres() {
  local parameter=$1 verifier sql rds=0 check='' alter='' role
  shift
  for role in "$@"; do
    [[ $role =~ ^[a-z_][a-z0-9_]*$ ]] || die "invalid role name '$role'"
  done
  [[ -n $parameter ]] || parameter=${PARAMETER_PREFIX}pgbouncer/odoo-scram-verifier
  cache_parameter "$parameter"
  verifier=${SSM_CACHE[$parameter]}
  [[ $verifier =~ $VERIFIER_RE ]] ||
    die "$parameter does not hold a SCRAM-SHA-256 verifier; nothing was changed"
  # RDS has no database host: this step runs on the PgBouncer host, as the master user through
  # its libpq service (verify-full; the file holds the password, root only).
  if [[ -f $ROOT$RDS_ADMIN_SERVICE_FILE ]]; then
    rds=1
    if [[ -z ${ODOO_STACK_PSQL:-} ]]; then
      PSQL=(env "PGSERVICEFILE=$ROOT$RDS_ADMIN_SERVICE_FILE" "PGSERVICE=$RDS_ADMIN_SERVICE" psql -X -q)
    fi
  fi
  if [[ -f $ROOT/etc/pgbouncer/pgbouncer.ini ]]; then wait_pgbouncer_reopened; fi
  # One transaction: every role keeps its old verifier unless PostgreSQL stored the new one as is
  # for all of them. RDS's master may not read pg_authid: there the check step's login proves it.
  for role in "$@"; do
    alter+="ALTER ROLE \"$role\" PASSWORD '$verifier';
"
    if ((!rds)); then
      check+="DO \$check\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_authid WHERE rolname = '$role' AND rolpassword = '$verifier') THEN
    RAISE EXCEPTION 'the stored verifier of role $role differs from the parameter';
  END IF;
END \$check\$;
"
    fi
  done
  sql="BEGIN;
$alter$check
COMMIT;"
  # printf is a builtin: the verifier reaches psql through a pipe, never a command line.
  printf '%s\n' "$sql" | "${PSQL[@]}" -v ON_ERROR_STOP=1 -f - >/dev/null ||
    die "ALTER ROLE $* failed; the old password is still in force"
  for role in "$@"; do log "role $role now has the verifier from $parameter"; done
  log "$(rotate_next postgres)"
}

# libpq connection string value and .pgpass field quoting.
conninfo_value() {
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\\\'}"
}
pgpass_field() {
  local v=${1//\\/\\\\}
  printf '%s' "${v//:/\\:}"
}

step_check() {
  local dbname=$1 conf line key value in_options=0 host='' port='' user='' password='' sslmode=''
  conf=${ODOO_STACK_ODOO_CONF:-$ROOT/etc/odoo/odoo.conf}
  [[ -r $conf ]] || die "cannot read $conf"
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^[[:space:]]*\[(.*)\] ]]; then
      in_options=0
      if [[ ${BASH_REMATCH[1]} == options ]]; then in_options=1; fi
      continue
    fi
    if ((!in_options)) || [[ $line != *=* ]]; then continue; fi
    key=${line%%=*}
    key=${key//[[:space:]]/}
    value=${line#*=}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    case $key in
      db_host) host=$value ;;
      db_port) port=$value ;;
      db_user) user=$value ;;
      db_password) password=$value ;;
      db_sslmode) sslmode=$value ;;
    esac
  done <"$conf"
  [[ -n $host && -n $port && -n $user && -n $password ]] ||
    die "$conf lacks db_host, db_port, db_user or db_password"
  make_tmp
  printf '%s:%s:*:%s:%s\n' "$(pgpass_field "$host")" "$port" "$(pgpass_field "$user")" \
    "$(pgpass_field "$password")" >"$TMP/pgpass"
  if PGPASSFILE=$TMP/pgpass PGSSLROOTCERT=${PGSSLROOTCERT:-/usr/local/share/ca-certificates/odoo-stack-internal-ca.crt} \
    psql -X -At -w -c 'SELECT 1' \
    "host=$(conninfo_value "$host") port=$(conninfo_value "$port") dbname=$(conninfo_value "$dbname") user=$(conninfo_value "$user") sslmode=$(conninfo_value "${sslmode:-prefer}")" \
    >/dev/null; then
    log "login as $user through $host:$port succeeded with the password in $conf; $(rotate_next check)"
  else
    die "login as $user through $host:$port failed with the password in $conf"
  fi
}

rotate_main() {
  local step=${1:-} parameter='' dbname=postgres
  local -a roles=()
  (($#)) || rotate_usage
  shift
  while (($#)); do
    case $1 in
      --role | --verifier-parameter | --dbname)
        (($# >= 2)) || rotate_usage
        case $1 in
          --role) roles+=("$2") ;;
          --verifier-parameter) parameter=$2 ;;
          --dbname) dbname=$2 ;;
        esac
        shift 2
        ;;
      *) rotate_usage ;;
    esac
  done
  case $step in
    postgres | check)
      init_settings
      load_config_file "$CONFIG_FILE"
      init_commands
      if ((${#roles[@]} == 0)); then roles=(odoo); fi
      if [[ $step == postgres ]]; then step_postgres "$parameter" "${roles[@]}"; else step_check "$dbname"; fi
      ;;
    # The userlist and odoo.conf are rendered with the new SSM values by the apply script,
    # which validates them and reloads (PgBouncer) or restarts (Odoo) only what changed.
    pgbouncer | odoo)
      "$APPLY"
      log "$(rotate_next "$step")"
      ;;
    *) rotate_usage ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  rotate_main "$@"
fi
