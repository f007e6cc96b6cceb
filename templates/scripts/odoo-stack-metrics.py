#!/usr/bin/python3
# odoo-stack-metrics: publish this host's odoo-stack metrics to CloudWatch, once per run.
# Installed by odoo-stack from templates/scripts/odoo-stack-metrics.py; do not edit on the host.
# Run by odoo-stack-metrics.timer every 60 s. Every metric name, path, route rule and log
# pattern comes from the rendered config (templates/metrics.ts), so nothing is spelled twice.
#
# Sources, by what the config holds (CHECKLIST §9, PG-4, TLS-4):
#   pgbouncer   SHOW POOLS / SHOW STATS via the Unix socket as the stats user (OBS-1, OBS-2).
#               Columns are read BY NAME from psql's CSV header: PgBouncer adds and removes
#               columns between releases (1.18 has cl_active_cancel_req, not cl_cancel_req),
#               which is exactly what breaks exporters that index columns by position.
#   postgres    pg_stat_activity, pg_stat_user_tables, pg_database, pg_stat_statements (OBS-7, PG-4),
#               pg_settings.pending_restart (PG-1, database host only):
#               on the database host through its Unix socket; for RDS from the PgBouncer host
#               through a libpq service file (verify-full, the monitor role)
#   accessLog   nginx's JSON access log: p95/p99 per route class, 5xx %, 504s (OBS-4, OBS-5)
#   odooLog     Odoo's log: worker kills, pool full, deadlocks, cron duration/overlap (OBS-5, OBS-6)
#   always      certificate days to expiry (TLS-4), fd use vs limit, TCP retransmits (OBS-8)
#
# Environment (defaults are the host's; tests override them):
#   ODOO_STACK_METRICS_CONFIG  config file (default /etc/odoo-stack/metrics.json)
#   ODOO_STACK_METRICS_STATE   state directory (default $STATE_DIRECTORY, else /var/lib/odoo-stack-metrics)
#   ODOO_STACK_METRICS_OUTPUT  when set, write {"namespace", "metricData"} JSON lines to this
#                              file ("-" for stdout) instead of calling the AWS CLI
#   ODOO_STACK_METRICS_AWS     the AWS CLI (default /usr/bin/aws)
#   ODOO_STACK_PSQL            psql (default /usr/bin/psql); PGPASSFILE holds the reader's password
#   ODOO_STACK_METRICS_NOW     the current time as a Unix timestamp (tests)
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

PROG = "odoo-stack-metrics"


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr)


def now():
    override = os.environ.get("ODOO_STACK_METRICS_NOW")
    return float(override) if override else time.time()


def percentile(values, p):
    """Nearest rank, as templates/metrics.ts percentile()."""
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil(p/100 * n) without float error for integer p
    return ordered[int(rank) - 1]


class Collector:
    def __init__(self, config, state):
        self.config = config
        self.state = state
        self.data = {}  # namespace -> [MetricDatum]
        self.errors = 0
        self.timestamp = now()
        self.names = config["metrics"]
        self.dim = config["dimensions"]

    # --- publishing ---------------------------------------------------------------------------

    def put(self, area, metric, value, unit="None", **dimensions):
        dims = [{"Name": self.dim["stack"], "Value": self.config["stack"]}]
        for key in sorted(dimensions):
            dims.append({"Name": self.dim[key], "Value": str(dimensions[key])})
        datum = {
            "MetricName": self.names[metric],
            "Dimensions": dims,
            "Value": float(value),
            "Unit": unit,
            "Timestamp": datetime.fromtimestamp(self.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.data.setdefault(self.config["namespaces"][area], []).append(datum)

    def publish(self):
        output = os.environ.get("ODOO_STACK_METRICS_OUTPUT")
        for namespace in sorted(self.data):
            data = self.data[namespace]
            # PutMetricData takes at most 1000 metrics per call.
            for start in range(0, len(data), 500):
                batch = {"namespace": namespace, "metricData": data[start:start + 500]}
                if output:
                    text = json.dumps(batch, sort_keys=True) + "\n"
                    if output == "-":
                        sys.stdout.write(text)
                    else:
                        with open(output, "a", encoding="utf-8") as f:
                            f.write(text)
                    continue
                aws = os.environ.get("ODOO_STACK_METRICS_AWS", "/usr/bin/aws")
                subprocess.run(
                    [aws, "cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-data", json.dumps(batch["metricData"])],
                    check=True,
                    timeout=20,
                    stdout=subprocess.DEVNULL,
                )

    # --- sources ------------------------------------------------------------------------------

    def run_source(self, name, fn):
        try:
            fn()
        except Exception as e:  # one broken source must not silence the others
            self.errors += 1
            log(f"{name}: {e}")

    def psql_rows(self, c, database, sql):
        """Rows of `sql` in `database`, connected as `c` says: a Unix socket (password from
        PGPASSFILE) or a libpq service (RDS: host, TLS and password in the service file)."""
        psql = os.environ.get("ODOO_STACK_PSQL", "/usr/bin/psql")
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5", "PGAPPNAME": PROG}
        if "service" in c:
            # Database names are validated identifiers: nothing in them needs conninfo quoting.
            target = ["-d", f"service={c['service']} dbname={database}"]
            env["PGSERVICEFILE"] = c["serviceFile"]
            who = f"service {c['service']}"
        else:
            target = ["-h", c["socketDir"], "-p", str(c["port"]), "-U", c["user"], "-d", database]
            who = f"-U {c['user']}"
        r = subprocess.run([psql, "-X", "-w", "--csv", *target, "-c", sql], capture_output=True, text=True, timeout=15, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"psql {who} -d {database}: {r.stderr.strip()}")
        # By name, from the header: never by position.
        return list(csv.DictReader(io.StringIO(r.stdout)))

    def pgbouncer(self):
        c = self.config["pgbouncer"]
        q = lambda sql: self.psql_rows(c, c["database"], sql)
        pools = {}
        for row in q("SHOW POOLS"):
            db = row["database"]
            if db == c["database"]:
                continue
            p = pools.setdefault(db, {"cl_active": 0, "cl_waiting": 0, "sv_active": 0, "sv_idle": 0, "sv_used": 0, "maxwait": 0.0})
            for key in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used"):
                p[key] += int(row[key])
            # maxwait is whole seconds; maxwait_us the microseconds part (PgBouncer ≥ 1.8).
            wait = int(row["maxwait"]) + int(row.get("maxwait_us") or 0) / 1e6
            p["maxwait"] = max(p["maxwait"], wait)
        for db, p in sorted(pools.items()):
            self.put("pgbouncer", "clientsActive", p["cl_active"], "Count", database=db)
            self.put("pgbouncer", "clientsWaiting", p["cl_waiting"], "Count", database=db)
            self.put("pgbouncer", "serversActive", p["sv_active"], "Count", database=db)
            self.put("pgbouncer", "serversIdle", p["sv_idle"], "Count", database=db)
            self.put("pgbouncer", "serversUsed", p["sv_used"], "Count", database=db)
            self.put("pgbouncer", "maxWaitSeconds", p["maxwait"], "Seconds", database=db)

        previous = self.state.get("pgbouncerStats", {})
        current = {"at": self.timestamp, "databases": {}}
        for row in q("SHOW STATS"):
            db = row["database"]
            if db == c["database"]:
                continue
            totals = {k: int(row[k]) for k in ("total_xact_count", "total_query_count")}
            current["databases"][db] = totals
            self.put("pgbouncer", "avgTransactionMicroseconds", int(row["avg_xact_time"]), "Microseconds", database=db)
            self.put("pgbouncer", "avgQueryMicroseconds", int(row["avg_query_time"]), "Microseconds", database=db)
            self.put("pgbouncer", "avgWaitMicroseconds", int(row["avg_wait_time"]), "Microseconds", database=db)
            before = previous.get("databases", {}).get(db)
            elapsed = self.timestamp - previous.get("at", self.timestamp)
            # Totals reset when PgBouncer restarts: a negative delta is no rate.
            if before and elapsed > 0 and totals["total_xact_count"] >= before["total_xact_count"]:
                self.put("pgbouncer", "transactionsPerSecond", (totals["total_xact_count"] - before["total_xact_count"]) / elapsed, "Count/Second", database=db)
                self.put("pgbouncer", "queriesPerSecond", (totals["total_query_count"] - before["total_query_count"]) / elapsed, "Count/Second", database=db)
        self.state["pgbouncerStats"] = current

    def postgres(self):
        c = self.config["postgres"]
        q = lambda db, sql: self.psql_rows(c, db, sql)
        cluster = c["maintenanceDatabase"]
        # Client backends only: autovacuum and walsender are not Odoo's transactions.
        activity = q(cluster, """
            SELECT coalesce(datname, '') AS datname, coalesce(state, 'unknown') AS state,
                   coalesce(extract(epoch FROM now() - xact_start), 0)::float8 AS xact_age,
                   (wait_event_type = 'Lock')::int AS waiting_on_lock
            FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()""")
        max_connections = int(q(cluster, "SELECT current_setting('max_connections') AS max_connections")[0]["max_connections"])
        oldest = {db: 0.0 for db in c["databases"]}
        states = {}
        waiting = 0
        for row in activity:
            age = float(row["xact_age"])
            if row["datname"]:
                oldest[row["datname"]] = max(oldest.get(row["datname"], 0.0), age)
            states[row["state"]] = states.get(row["state"], 0) + 1
            waiting += int(row["waiting_on_lock"])
        self.put("postgres", "oldestTransactionSeconds", max(oldest.values(), default=0.0), "Seconds")
        for db, age in sorted(oldest.items()):
            self.put("postgres", "oldestTransactionSeconds", age, "Seconds", database=db)
        self.put("postgres", "sessionsWaitingOnLocks", waiting, "Count")
        self.put("postgres", "connections", len(activity) + 1, "Count")
        self.put("postgres", "connectionsUsedPercent", 100.0 * (len(activity) + 1) / max_connections, "Percent")
        for state in ("active", "idle", "idle in transaction", "idle in transaction (aborted)"):
            self.put("postgres", "connectionsByState", states.get(state, 0), "Count", state=state)
        if "socketDir" in c:
            # On the database host: a changed postmaster-context setting the apply script installed
            # and reloaded waits for a restart the operator schedules (PG-1). RDS does not report
            # its pending-reboot parameters here, so there it is not published.
            pending = q(cluster, "SELECT count(*) AS pending FROM pg_settings WHERE pending_restart")[0]["pending"]
            self.put("postgres", "pendingRestartSettings", int(pending), "Count")

        for row in q(cluster, "SELECT datname, age(datfrozenxid) AS xid_age FROM pg_database WHERE datallowconn"):
            if row["datname"] in c["databases"]:
                self.put("postgres", "transactionIdAge", int(row["xid_age"]), "Count", database=row["datname"])
        for db in c["databases"]:
            row = q(db, """
                SELECT coalesce(sum(n_dead_tup), 0)::bigint AS dead,
                       coalesce(sum(n_live_tup), 0)::bigint AS live,
                       coalesce(max(extract(epoch FROM now() - coalesce(greatest(last_autovacuum, last_vacuum), pg_postmaster_start_time())))
                                FILTER (WHERE n_dead_tup > 0), 0)::float8 AS vacuum_age
                FROM pg_stat_user_tables""")[0]
            dead, live = int(row["dead"]), int(row["live"])
            self.put("postgres", "deadTuples", dead, "Count", database=db)
            self.put("postgres", "deadTuplesPercent", 100.0 * dead / (dead + live) if dead + live else 0.0, "Percent", database=db)
            self.put("postgres", "lastAutovacuumAgeSeconds", float(row["vacuum_age"]), "Seconds", database=db)
        self.top_queries(q, cluster, c)

    def top_queries(self, q, database, c):
        rows = q(database, f"""
            SELECT d.datname, s.queryid, s.calls, s.total_exec_time, s.mean_exec_time, s.rows,
                   left(regexp_replace(s.query, '\\s+', ' ', 'g'), 300) AS query
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            ORDER BY s.total_exec_time DESC LIMIT {int(c['topQueries'])}""")
        total = float(q(database, "SELECT coalesce(sum(total_exec_time), 0)::float8 AS total FROM pg_stat_statements")[0]["total"])
        before = self.state.get("statementsTotalMs")
        if before is not None and total >= before:
            self.put("postgres", "statementsExecMilliseconds", total - before, "Milliseconds")
        self.state["statementsTotalMs"] = total
        stamp = datetime.fromtimestamp(self.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(c["topQueriesLog"], "a", encoding="utf-8") as f:
            for rank, row in enumerate(rows, 1):
                f.write(json.dumps({"time": stamp, "rank": rank, **row}, sort_keys=True) + "\n")

    def new_lines(self, key, path):
        """Lines appended to `path` since the last run; the cluster run starts at the end."""
        st = os.stat(path)
        seen = self.state.get(key)
        start = st.st_size
        if seen and seen.get("inode") == st.st_ino and seen.get("offset", 0) <= st.st_size:
            start = seen["offset"]
        elif seen:
            start = 0  # rotated (new inode) or truncated (copytruncate): read the new file whole
        with open(path, "rb") as f:
            f.seek(start)
            chunk = f.read()
        # A line still being written stays for the next run.
        end = chunk.rfind(b"\n") + 1
        self.state[key] = {"inode": st.st_ino, "offset": start + end}
        return chunk[:end].decode("utf-8", "replace").splitlines()

    def access_log(self):
        c = self.config["accessLog"]
        routes = [(r["class"], re.compile(r["pattern"])) for r in c["routes"]]
        long_lived = [re.compile(p) for p in c["longLived"]]
        times = {k: [] for k in c["classes"]}
        requests = errors = timeouts = 0
        for line in self.new_lines("accessLog", c["path"]):
            try:
                entry = json.loads(line)
                uri, status, seconds = entry["uri"], int(entry["status"]), float(entry["request_time"])
            except (ValueError, KeyError, TypeError):
                continue
            if any(p.search(uri) for p in long_lived):
                continue
            requests += 1
            errors += status >= 500
            timeouts += status == 504
            for route_class, pattern in routes:
                if pattern.search(uri):
                    times[route_class].append(seconds)
                    break
        self.put("odoo", "requests", requests, "Count")
        self.put("odoo", "http5xxPercent", 100.0 * errors / requests if requests else 0.0, "Percent")
        self.put("odoo", "upstreamTimeouts", timeouts, "Count")
        for route_class, values in sorted(times.items()):
            if values:
                self.put("odoo", "requests", len(values), "Count", routeClass=route_class)
                self.put("odoo", "latencyP95", percentile(values, 95), "Seconds", routeClass=route_class)
                self.put("odoo", "latencyP99", percentile(values, 99), "Seconds", routeClass=route_class)

    def odoo_log(self):
        c = self.config["odooLog"]
        events = [(e["metric"], re.compile(e["pattern"])) for e in c["events"]]
        counts = {metric: 0 for metric, _ in events}
        line_re = re.compile(c["cron"]["line"])
        start_re, done_re = re.compile(c["cron"]["start"]), re.compile(c["cron"]["done"])
        running = self.state.get("cronRunning", {})
        completed, longest_done, overlaps = 0, 0.0, 0
        for line in self.new_lines("odooLog", c["path"]):
            for metric, pattern in events:
                if pattern.search(line):
                    counts[metric] += 1
            m = line_re.match(line)
            if not m:
                continue
            at = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
            database, message = m.group(3), m.group(4)
            started, done = start_re.match(message), done_re.match(message)
            if started:
                key = f"{database}\t{started.group(1)}"
                # The same job starting again before it finished: two workers run it (OBS-6).
                if key in running:
                    overlaps += 1
                running[key] = at
            elif done:
                key = f"{database}\t{done.group(1)}"
                if key in running:
                    completed += 1
                    longest_done = max(longest_done, at - running.pop(key))
        limit = float(c["cronMaxSeconds"])
        # Past its kill limit a job is no longer running: its worker was killed without "done".
        running = {k: v for k, v in running.items() if self.timestamp - v <= limit}
        self.state["cronRunning"] = running
        for metric, _ in events:
            self.put("odoo", metric, counts[metric], "Count")
        self.put("odoo", "cronJobsCompleted", completed, "Count")
        self.put("odoo", "cronJobMaxSeconds", longest_done, "Seconds")
        self.put("odoo", "cronOverlaps", overlaps, "Count")
        self.put("odoo", "cronLongestRunningSeconds", max((self.timestamp - v for v in running.values()), default=0.0), "Seconds")

    def certificates(self):
        for cert in self.config["certificates"]:
            r = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", cert["path"]], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                raise RuntimeError(f"certificate {cert['path']}: {r.stderr.strip()}")
            not_after = datetime.strptime(r.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)
            days = (not_after.timestamp() - self.timestamp) / 86400
            self.put("tls", "certificateDaysToExpiry", round(days, 2), "Count", host=self.config["host"], certificate=cert["name"])

    def file_descriptors(self):
        for proc in self.config["processes"]:
            worst, found = 0.0, False
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
                        if f.read().strip() != proc["comm"]:
                            continue
                    used = len(os.listdir(f"/proc/{pid}/fd"))
                    with open(f"/proc/{pid}/limits", encoding="utf-8") as f:
                        soft = next(line.split()[3] for line in f if line.startswith("Max open files"))
                except (FileNotFoundError, ProcessLookupError, StopIteration):
                    continue  # the process ended while we looked
                found = True
                if soft.isdigit() and int(soft) > 0:
                    worst = max(worst, 100.0 * used / int(soft))
            if found:
                self.put("host", "fdUsedPercent", round(worst, 2), "Percent", host=self.config["host"], process=proc["name"])

    def tcp_retransmits(self):
        with open("/proc/net/snmp", encoding="utf-8") as f:
            tcp = [line.split()[1:] for line in f if line.startswith("Tcp:")]
        values = dict(zip(tcp[0], map(int, tcp[1])))
        previous = self.state.get("tcp")
        self.state["tcp"] = {"out": values["OutSegs"], "retrans": values["RetransSegs"]}
        if previous and values["OutSegs"] > previous["out"] and values["RetransSegs"] >= previous["retrans"]:
            rate = 100.0 * (values["RetransSegs"] - previous["retrans"]) / (values["OutSegs"] - previous["out"])
            self.put("host", "tcpRetransmitPercent", round(rate, 3), "Percent", host=self.config["host"])


def main():
    config_path = os.environ.get("ODOO_STACK_METRICS_CONFIG", "/etc/odoo-stack/metrics.json")
    state_dir = os.environ.get("ODOO_STACK_METRICS_STATE") or os.environ.get("STATE_DIRECTORY") or "/var/lib/odoo-stack-metrics"
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    state_path = os.path.join(state_dir, "state.json")
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
    except (FileNotFoundError, ValueError):
        state = {}
    c = Collector(config, state)
    sources = [("tls", c.certificates), ("file descriptors", c.file_descriptors), ("tcp", c.tcp_retransmits)]
    for name, fn in (("pgbouncer", c.pgbouncer), ("postgres", c.postgres), ("accessLog", c.access_log), ("odooLog", c.odoo_log)):
        if name in config:
            sources.append((name, fn))
    for name, fn in sources:
        c.run_source(name, fn)
    c.put("collector", "collectorRuns", 1, "Count", host=config["host"])
    c.put("collector", "collectorErrors", c.errors, "Count", host=config["host"])
    c.publish()
    os.makedirs(state_dir, exist_ok=True)
    tmp = state_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(c.state, f, sort_keys=True)
    os.replace(tmp, state_path)
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())
