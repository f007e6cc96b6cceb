// Which checklist item each configuration key carries, for the policies that find a key set
// where it overrides the checked one (a duplicate, a command-line option, a later file, ALTER
// SYSTEM): their messages cite the item the override breaks.

/** odoo.conf options (names after Odoo's own aliases, lib/parse.ts ODOO_OPTION_ALIASES). */
export const ODOO_OPTION_ITEMS: Readonly<Record<string, string>> = {
  http_interface: "NET-1",
  http_enable: "PROXY-1",
  http_port: "PROXY-1",
  gevent_port: "PROXY-2",
  longpolling_port: "PROXY-2",
  proxy_mode: "PROXY-4",
  admin_passwd: "ODOO-1",
  list_db: "ODOO-2",
  dbfilter: "ODOO-3",
  db_name: "ODOO-3",
  logfile: "ODOO-5",
  workers: "LIMIT-1",
  max_cron_threads: "LIMIT-2",
  limit_time_cpu: "LIMIT-3",
  limit_time_real: "LIMIT-3",
  limit_time_real_cron: "LIMIT-3",
  limit_memory_soft: "LIMIT-3",
  limit_memory_hard: "LIMIT-3",
  db_maxconn: "POOL-4",
  db_maxconn_gevent: "POOL-4",
  db_host: "NET-5",
  db_port: "NET-5",
  db_sslmode: "TLS-2",
};

/**
 * Odoo 17's command-line options (odoo/tools/config.py) that override an odoo.conf option:
 * "if defined do not take the configfile value". `-c`/`--config` swaps the whole file.
 */
export const ODOO_CLI_OPTIONS: Readonly<Record<string, string>> = {
  "--http-interface": "http_interface",
  "--xmlrpc-interface": "http_interface",
  "--http-port": "http_port",
  "--xmlrpc-port": "http_port",
  "-p": "http_port",
  "--no-http": "http_enable",
  "--no-xmlrpc": "http_enable",
  "--gevent-port": "gevent_port",
  "--longpolling-port": "gevent_port",
  "--db-filter": "dbfilter",
  "-d": "db_name",
  "--database": "db_name",
  "--logfile": "logfile",
  "--workers": "workers",
  "--max-cron-threads": "max_cron_threads",
  "--limit-time-cpu": "limit_time_cpu",
  "--limit-time-real": "limit_time_real",
  "--limit-time-real-cron": "limit_time_real_cron",
  "--limit-memory-soft": "limit_memory_soft",
  "--limit-memory-hard": "limit_memory_hard",
  "--db_maxconn": "db_maxconn",
  "--db_maxconn_gevent": "db_maxconn_gevent",
  "--db_host": "db_host",
  "--db_port": "db_port",
  "--db_sslmode": "db_sslmode",
};

/** The items odoo.conf as a whole carries (a swapped config file breaks them all). */
export const ODOO_CONF_ITEMS = [
  "NET-1",
  "PROXY-4",
  "ODOO-1",
  "ODOO-2",
  "ODOO-3",
  "ODOO-5",
  "LIMIT-1",
  "LIMIT-2",
  "LIMIT-3",
  "TLS-2",
] as const;

/** The items pgbouncer.ini carries. */
export const PGBOUNCER_INI_ITEMS = ["POOL-1", "POOL-2", "POOL-3", "POOL-4", "POOL-5", "AUTH-1", "AUTH-2", "TLS-1", "OBS-3"] as const;

/**
 * PostgreSQL settings the checklist fixes server-wide (the stack's conf.d drop-in writes them
 * last, "so that nothing above can change them"): a later file, ALTER SYSTEM or a command-line
 * `-c` would win over the drop-in.
 */
export const POSTGRES_KEY_ITEMS: Readonly<Record<string, string>> = {
  ssl: "TLS-1",
  ssl_cert_file: "TLS-1",
  ssl_key_file: "TLS-1",
  ssl_ca_file: "TLS-1",
  ssl_min_protocol_version: "TLS-1",
  password_encryption: "AUTH-1",
  max_connections: "PG-1",
  superuser_reserved_connections: "PG-1",
  statement_timeout: "PG-2",
  lock_timeout: "PG-2",
  idle_in_transaction_session_timeout: "PG-2",
  log_lock_waits: "PG-3",
  deadlock_timeout: "PG-3",
  listen_addresses: "NET-6",
};

/** The items postgresql.conf carries (a swapped data directory or config breaks them all). */
export const POSTGRES_CONF_ITEMS = ["NET-6", "AUTH-1", "TLS-1", "PG-1", "PG-2", "PG-3"] as const;
