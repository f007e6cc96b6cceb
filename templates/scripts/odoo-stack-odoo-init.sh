#!/bin/bash
# odoo-stack-odoo-init: the first install of the stack's Odoo databases, on the cron host. Odoo
# never initializes a database by itself (an empty one logs "Database … not initialized, you can
# force it with `-i base`", ODOO-FACTS.md), and bootstrap.sql creates the databases empty, so
# first boot runs this after the apply step (odoo-stack-firstboot.service, step `run`).
# Installed by odoo-stack from templates/scripts/odoo-stack-odoo-init.sh; do not edit it on the host.
#
# Usage: odoo-stack-odoo-init
# For each database of the stack, through PgBouncer exactly as Odoo connects (odoo.conf's db_*
# keys, verify-full against the internal CA):
#   - initialized already (ir_module_module exists): left untouched;
#   - empty: Odoo is stopped, `odoo -i MODULES --stop-after-init` installs the stack's modules
#     as the migration role (odoo.conf's password, the role's lifted statement and idle timeouts,
#     acting as the odoo role: lib/model.ts DB_ROLES.migrate, as `odoo -u` in the upgrades
#     runbook), the `admin` user's password is set from its SSM parameter (never admin/admin),
#     Odoo starts.
# Exit status: 0 every database initialized (now or before); 1 failed (first boot retries it).
#
# Settings: /etc/odoo-stack/odoo-init.env (KEY=VALUE, 0600 root, resolved by odoo-stack-apply):
#   ODOO_STACK_DATABASES (comma list), ODOO_STACK_ODOO_MODULES (comma list),
#   ODOO_STACK_ADMIN_PASSWORD (the admin user's password), ODOO_STACK_CA (the internal CA file),
#   ODOO_STACK_MIGRATION_ROLE (the role `odoo -i` logs in as).
# Overrides for tests: ODOO_STACK_ODOO_INIT_ENV, ODOO_STACK_ODOO_CONF, ODOO_STACK_ODOO (odoo
# command), ODOO_STACK_PSQL (psql), ODOO_STACK_RESTART_ODOO / ODOO_STACK_STOP_ODOO (hooks),
# ODOO_STACK_RUN_AS_ODOO (command prefix that runs as the odoo user).
set -Eeuo pipefail
umask 077
export LC_ALL=C

readonly PROG=odoo-stack-odoo-init
log() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
  printf '%s: ERROR: %s\n' "$PROG" "$*" >&2
  exit 1
}

ENV_FILE=${ODOO_STACK_ODOO_INIT_ENV:-/etc/odoo-stack/odoo-init.env}
ODOO_CONF=${ODOO_STACK_ODOO_CONF:-/etc/odoo/odoo.conf}
ODOO=${ODOO_STACK_ODOO:-odoo}
PSQL=${ODOO_STACK_PSQL:-psql}
STOP_ODOO=${ODOO_STACK_STOP_ODOO:-systemctl stop odoo}
START_ODOO=${ODOO_STACK_RESTART_ODOO:-systemctl restart odoo}
read -r -a RUN_AS_ODOO <<<"${ODOO_STACK_RUN_AS_ODOO:-runuser -u odoo --}"

# KEY=VALUE lines, known keys only, never evaluated (the file carries a password).
DATABASES='' MODULES='' ADMIN_PASSWORD='' CA='' MIGRATION_ROLE=''
[[ -r $ENV_FILE ]] || die "no settings file $ENV_FILE (is this the cron host? did odoo-stack-apply run?)"
while IFS= read -r line || [[ -n $line ]]; do
  [[ -z $line || $line == \#* ]] && continue
  value=${line#*=}
  case ${line%%=*} in
    ODOO_STACK_DATABASES) DATABASES=$value ;;
    ODOO_STACK_ODOO_MODULES) MODULES=$value ;;
    ODOO_STACK_ADMIN_PASSWORD) ADMIN_PASSWORD=$value ;;
    ODOO_STACK_CA) CA=$value ;;
    ODOO_STACK_MIGRATION_ROLE) MIGRATION_ROLE=$value ;;
    *) die "unknown key '${line%%=*}' in $ENV_FILE" ;;
  esac
done <"$ENV_FILE"
[[ $DATABASES =~ ^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$ ]] || die "ODOO_STACK_DATABASES: invalid '$DATABASES'"
[[ $MODULES =~ ^[a-z0-9_]+(,[a-z0-9_]+)*$ ]] || die "ODOO_STACK_ODOO_MODULES: invalid '$MODULES'"
[[ ${#ADMIN_PASSWORD} -ge 16 ]] || die "ODOO_STACK_ADMIN_PASSWORD is missing or shorter than 16 characters"
[[ -r $CA ]] || die "ODOO_STACK_CA: cannot read '$CA'"
[[ $MIGRATION_ROLE =~ ^[a-z_][a-z0-9_]*$ ]] || die "ODOO_STACK_MIGRATION_ROLE: invalid '$MIGRATION_ROLE'"

# odoo.conf's [options] value of a key (the last one wins, as in Odoo's ConfigParser reading).
conf() { sed -n "s/^$1[[:space:]]*=[[:space:]]*//p" -- "$ODOO_CONF" | tail -n 1; }
[[ -r $ODOO_CONF ]] || die "cannot read $ODOO_CONF"
export PGHOST PGPORT PGUSER PGPASSWORD PGSSLMODE PGSSLROOTCERT PGAPPNAME=$PROG PGCONNECT_TIMEOUT=10
PGHOST=$(conf db_host) PGPORT=$(conf db_port) PGUSER=$(conf db_user) PGPASSWORD=$(conf db_password)
PGSSLMODE=$(conf db_sslmode) PGSSLROOTCERT=$CA

sql() { # database, then SQL on stdin; prints unaligned tuples
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -At -d "$1" -f -
}

initialized() {
  local out
  out=$(sql "$1" <<<"SELECT to_regclass('public.ir_module_module') IS NOT NULL") ||
    die "database $1 is not reachable through $PGHOST:$PGPORT yet"
  [[ $out == t ]]
}

IFS=, read -r -a dbs <<<"$DATABASES"
pending=()
for db in "${dbs[@]}"; do
  if initialized "$db"; then
    log "$db: initialized already; left untouched"
  else
    pending+=("$db")
  fi
done
if ((${#pending[@]} == 0)); then
  log "nothing to do"
  exit 0
fi

# Stopped while the modules install, so no worker caches a registry of the empty database.
log "stopping Odoo for the first install of: ${pending[*]}"
bash -c "$STOP_ODOO"
for db in "${pending[@]}"; do
  log "$db: odoo -i $MODULES as $MIGRATION_ROLE"
  started=$SECONDS
  "${RUN_AS_ODOO[@]}" env "PGSSLROOTCERT=$CA" "$ODOO" -c "$ODOO_CONF" --db_user "$MIGRATION_ROLE" -d "$db" -i "$MODULES" \
    --without-demo=all --stop-after-init --no-http ||
    die "$db: odoo -i $MODULES failed (see Odoo's log); the database is left as it is and the next run retries"
  initialized "$db" || die "$db: odoo -i returned but ir_module_module is still missing"
  # The admin user's password: Odoo's own scheme (pbkdf2_sha512 through passlib, a dependency of
  # the odoo package), so the first login is never admin/admin.
  hash=$(python3 -c 'import sys; from passlib.context import CryptContext; print(CryptContext(["pbkdf2_sha512"]).hash(sys.stdin.read().removesuffix("\n")))' <<<"$ADMIN_PASSWORD")
  [[ $hash =~ ^\$pbkdf2-sha512\$[0-9]+\$[A-Za-z0-9./]+\$[A-Za-z0-9./]+$ ]] || die "$db: could not hash the admin password"
  updated=$(sql "$db" <<<"UPDATE res_users SET password = '$hash' WHERE login = 'admin' RETURNING id")
  [[ -n $updated ]] || die "$db: no 'admin' user to set the password of"
  log "$db: initialized in $((SECONDS - started)) s; admin password set from its parameter"
done
bash -c "$START_ODOO"
log "Odoo started"
