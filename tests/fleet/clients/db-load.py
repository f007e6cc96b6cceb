# Odoo's database traffic while a procedure runs, for the fleet suite (runs on an Odoo host):
# THREADS workers, each holding one connection through PgBouncer as Odoo's pool does
# (odoo/sql_db.py ConnectionPool: connections are kept and reused), running short transactions
# until stdin closes. A failed transaction is counted; the worker then connects again with the
# password odoo.conf holds at that moment (what Odoo does after its restart). Prints one JSON
# line: transactions, failed, reconnects, the longest gap between two commits, the errors.
import configparser, json, os, sys, threading, time
import psycopg2

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
DB = sys.argv[2] if len(sys.argv) > 2 else "erp"
stop = threading.Event()
lock = threading.Lock()
stats = {"transactions": 0, "failed": 0, "reconnects": 0, "longestGapMs": 0, "errors": []}

def connect():
    conf = configparser.RawConfigParser()
    conf.read("/etc/odoo/odoo.conf")
    o = dict(conf.items("options"))
    return psycopg2.connect(host=o["db_host"], port=o["db_port"], user=o["db_user"], password=o["db_password"],
                            sslmode=o.get("db_sslmode", "prefer"), dbname=DB, application_name="fleet-db-load")

def worker():
    conn, last = None, time.monotonic()
    while not stop.is_set():
        try:
            if conn is None:
                conn = connect()
            with conn.cursor() as cr:
                cr.execute("SELECT count(*) FROM res_users")
                cr.execute("SELECT pg_sleep(0.02)")
            conn.commit()
            now = time.monotonic()
            with lock:
                stats["transactions"] += 1
                stats["longestGapMs"] = max(stats["longestGapMs"], round((now - last) * 1000))
            last = now
        except psycopg2.Error as e:
            with lock:
                stats["failed"] += 1
                stats["reconnects"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(str(e).strip().splitlines()[0])
            try:
                conn and conn.close()
            except psycopg2.Error:
                pass
            conn = None
            time.sleep(0.2)

threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
for t in threads:
    t.start()
print(json.dumps({"started": THREADS}), flush=True)
sys.stdin.read()
stop.set()
for t in threads:
    t.join(5)
print(json.dumps(stats), flush=True)
