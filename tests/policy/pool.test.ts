// PgBouncer pools (POOL-1 … POOL-5) and logging (OBS-3), read from the rendered pgbouncer.ini.
import { pgbouncerLoggingEnabled } from "../../policy/observability";
import {
  MAX_DEAD_PEER_SECONDS,
  pgbouncerDeadPeersFreed,
  pgbouncerDefaultPoolSizeSet,
  pgbouncerMaxClientConnSet,
  pgbouncerMaxDbConnectionsSet,
  pgbouncerReservePoolSet,
  pgbouncerTransactionPooling,
} from "../../policy/pool";
import { setLine, validateResource, withContent } from "./fakes";
import { stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const ini = fixture.file("pgbouncer", "/etc/pgbouncer/pgbouncer.ini");
const label = `pgbouncer.ini of pgbouncer (${ini.name})`;
const edited = (key: string, line: string | undefined) => withContent(ini, setLine(key, line));
const entry = (db: string, edit: (value: string) => string) =>
  withContent(ini, (t) => t.replace(new RegExp(`^${db} = (.*)$`, "m"), (_l, v: string) => `${db} = ${edit(v)}`));

describe("the rendered pgbouncer.ini", () => {
  it.each([
    pgbouncerTransactionPooling,
    pgbouncerDeadPeersFreed,
    pgbouncerDefaultPoolSizeSet,
    pgbouncerReservePoolSet,
    pgbouncerMaxClientConnSet,
    pgbouncerMaxDbConnectionsSet,
    pgbouncerLoggingEnabled,
  ])("passes $name", async (policy) => {
    expect(await validateResource(policy, ini)).toEqual([]);
  });
});

describe("pgbouncer-transaction-pooling (POOL-1)", () => {
  const policy = pgbouncerTransactionPooling;

  it("rejects session pooling for the Odoo database", async () => {
    const r = entry("erp", (v) => v.replace("pool_mode=transaction", "pool_mode=session"));
    expect(await validateResource(policy, r)).toEqual([
      `${label} must pool database erp with pool_mode=transaction; it is session (its own pool_mode) (POOL-1).`,
    ]);
  });

  it("rejects a global pool_mode = session when the entry inherits it", async () => {
    const r = withContent(
      entry("erp", (v) => v.replace(" pool_mode=transaction", "")),
      setLine("pool_mode", "pool_mode = session"),
    );
    expect(await validateResource(policy, r)).toEqual([
      `${label} must pool database erp with pool_mode=transaction; it is session ([pgbouncer] pool_mode) (POOL-1).`,
    ]);
  });

  it("keeps the LISTEN exception narrow: the session entry must be the postgres database", async () => {
    const r = entry("postgres", (v) => v.replace("dbname=postgres", "dbname=erp"));
    expect(await validateResource(policy, r)).toEqual([
      `${label} must point its postgres entry at dbname=postgres: the session-mode exception is for Odoo's LISTEN connections only, not for erp (POOL-1).`,
    ]);
  });

  it("rejects a [users] override that forces session mode", async () => {
    const r = withContent(ini, (t) => `${t}\n[users]\nodoo = pool_mode=session\n`);
    expect(await validateResource(policy, r)).toEqual([
      `${label} must not set pool_mode=session for user odoo in [users]: it overrides every database of that user, the Odoo databases' transaction pool included (POOL-1).`,
    ]);
  });
});

describe("pool sizes (POOL-2, POOL-3, POOL-4, POOL-5)", () => {
  it("POOL-2: rejects a missing default_pool_size and a zero pool_size", async () => {
    expect(await validateResource(pgbouncerDefaultPoolSizeSet, edited("default_pool_size", undefined))).toEqual([
      `${label} must set default_pool_size to the computed pool size (a positive number); it is absent (POOL-2).`,
    ]);
    expect(
      await validateResource(
        pgbouncerDefaultPoolSizeSet,
        entry("erp", (v) => v.replace("pool_size=11", "pool_size=0")),
      ),
    ).toEqual([`${label} must give database erp a positive pool_size; it is "0" (POOL-2).`]);
  });

  it("POOL-3: rejects no reserve, and a disabled reserve timeout", async () => {
    expect(await validateResource(pgbouncerReservePoolSet, edited("reserve_pool_size", "reserve_pool_size = 0"))).toEqual([
      `${label} must set reserve_pool_size to a positive number (0 disables the reserve); it is "0" (POOL-3).`,
    ]);
    expect(await validateResource(pgbouncerReservePoolSet, edited("reserve_pool_timeout", "reserve_pool_timeout = 0"))).toEqual([
      `${label} must keep reserve_pool_timeout above 0 (0 disables the reserve); it is "0" (POOL-3).`,
    ]);
  });

  it("POOL-4: rejects a missing max_client_conn and one below the pool", async () => {
    expect(await validateResource(pgbouncerMaxClientConnSet, edited("max_client_conn", undefined))).toEqual([
      `${label} must set max_client_conn for every Odoo process and peak (a positive number); it is absent (POOL-4).`,
    ]);
    expect(await validateResource(pgbouncerMaxClientConnSet, edited("max_client_conn", "max_client_conn = 5"))).toEqual([
      `${label} must set max_client_conn (5) at least default_pool_size + reserve_pool_size (14): fewer clients than server connections means the pool is never used (POOL-4).`,
    ]);
  });

  it("POOL-5: rejects an uncapped database and a cap below its pool", async () => {
    const uncapped = withContent(
      entry("erp", (v) => v.replace(" max_db_connections=14", "")),
      setLine("max_db_connections", undefined),
    );
    expect(await validateResource(pgbouncerMaxDbConnectionsSet, uncapped)).toEqual([
      `${label} must cap database erp with max_db_connections (in [pgbouncer] or its entry); it is unlimited (POOL-5).`,
    ]);
    expect(
      await validateResource(
        pgbouncerMaxDbConnectionsSet,
        entry("erp", (v) => v.replace("max_db_connections=14", "max_db_connections=4")),
      ),
    ).toEqual([`${label} must set max_db_connections for erp (4) at least its pool size (11), or the pool can never fill (POOL-5).`]);
  });
});

describe("pgbouncer-dead-peers-freed (POOL-2, POOL-3)", () => {
  const policy = pgbouncerDeadPeersFreed;
  const without = (keys: readonly string[]) => withContent(ini, (t) => keys.reduce((text, k) => setLine(k, undefined)(text), t));

  it("passes the rendered keepalive (60 s) and a slower one still within the bound", async () => {
    expect(await validateResource(policy, ini)).toEqual([]);
    const slower = withContent(ini, (t) =>
      setLine("tcp_keepidle", "tcp_keepidle = 300")(setLine("tcp_user_timeout", `tcp_user_timeout = ${MAX_DEAD_PEER_SECONDS * 1000}`)(t)),
    );
    expect(await validateResource(policy, slower)).toEqual([]);
  });

  it("rejects the kernel's defaults: PgBouncer's own tcp_keepalive = 1 alone takes over two hours", async () => {
    expect(await validateResource(policy, without(["tcp_keepidle", "tcp_keepintvl", "tcp_keepcnt", "tcp_user_timeout"]))).toEqual([
      `${label} must detect a dead peer within ${MAX_DEAD_PEER_SECONDS} s: tcp_keepidle 7200 + tcp_keepintvl 75 × tcp_keepcnt 9 = 7875 s (unset values are the kernel's), so a crashed Odoo host's LISTEN sessions hold their postgres pool slots that long (POOL-2, POOL-3).`,
      `${label} must set tcp_user_timeout between 1 and ${MAX_DEAD_PEER_SECONDS * 1000} ms; it is 0 (the kernel's ~15 minutes of retransmissions): a LISTEN socket with a notification unacknowledged by a dead host waits for that instead of keepalive (POOL-2, POOL-3).`,
    ]);
  });

  it("rejects keepalive turned off", async () => {
    expect(await validateResource(policy, edited("tcp_keepalive", "tcp_keepalive = 0"))).toEqual([
      `${label} must keep tcp_keepalive = 1: without it a crashed Odoo host's LISTEN sessions hold their postgres pool slots until PgBouncer restarts (POOL-2, POOL-3).`,
    ]);
  });

  it("rejects a tcp_user_timeout beyond the bound", async () => {
    expect(await validateResource(policy, edited("tcp_user_timeout", "tcp_user_timeout = 900000"))).toEqual([
      `${label} must set tcp_user_timeout between 1 and ${MAX_DEAD_PEER_SECONDS * 1000} ms; it is 900000: a LISTEN socket with a notification unacknowledged by a dead host waits for that instead of keepalive (POOL-2, POOL-3).`,
    ]);
  });
});

describe("pgbouncer-logging-enabled (OBS-3)", () => {
  it.each(["log_connections", "log_disconnections", "log_pooler_errors"])("rejects %s set to 0 or missing", async (key) => {
    expect(await validateResource(pgbouncerLoggingEnabled, edited(key, `${key} = 0`))).toEqual([
      `${label} must set ${key} = 1; it is "0" (OBS-3).`,
    ]);
    expect(await validateResource(pgbouncerLoggingEnabled, edited(key, undefined))).toEqual([
      `${label} must set ${key} = 1; it is absent (OBS-3).`,
    ]);
  });
});
