// lib/sizing.ts: instance shape → Odoo workers and limits → PgBouncer pools → PostgreSQL
// max_connections. Known values for the named formulas, invariants over every plausible Odoo
// host × hosts × databases, and overrides that break an invariant reported with their key.
import { INSTANCE_TYPES, type InstanceSpec } from "../../lib/instance-types";
import {
  checkSizing,
  computeSizing,
  EXPECTED_PROCESS_MIB,
  LIMIT_MEMORY_HARD_FLOOR_MIB,
  LIMIT_MEMORY_SOFT_FLOOR_MIB,
  limitMemoryHardMiB,
  minimumOdooUsableMiB,
  ODOO_PROCESS_AT_REST,
  odooHostTooSmall,
  httpMaxConns,
  maxClientConn,
  migrationTimeouts,
  odooClientConnections,
  osReserveMiB,
  postgresListeners,
  postgresPoolSize,
  postgresReservePoolSize,
  postgresShortLived,
  POSTGRES_RESERVED,
  proxyTimeoutSeconds,
  reservePoolSize,
  workersFromCpu,
  type SizingInput,
} from "../../lib/sizing";

const MiB = 1024 * 1024;
const POSTGRES = INSTANCE_TYPES["r6i.large"];
const spec = (name: string): InstanceSpec => {
  const s = INSTANCE_TYPES[name];
  if (!s) throw new Error(`no instance type ${name}`);
  return s;
};
const input = (odooType: string, odooInstances = 1, databaseCount = 1, extra: Partial<SizingInput> = {}): SizingInput => ({
  odoo: spec(odooType),
  postgres: POSTGRES,
  odooInstances,
  databaseCount,
  ...extra,
});
const reservedSlots = Object.values(POSTGRES_RESERVED).reduce((a, b) => a + b, 0);

describe("named formulas", () => {
  it("workersFromCpu: Odoo's (#CPU × 2) + 1", () => {
    expect([1, 2, 4, 8].map(workersFromCpu)).toEqual([3, 5, 9, 17]);
  });

  it("osReserveMiB: max(1 GiB, 10 % of RAM)", () => {
    expect(osReserveMiB(4096)).toBe(1024);
    expect(osReserveMiB(10240)).toBe(1024);
    expect(osReserveMiB(16384)).toBe(1639);
  });

  // Issue 12 item 10: Odoo applies limit_memory_hard as RLIMIT_AS and compares limit_memory_soft
  // with the virtual size (odoo/service/server.py 17.0 set_limit_memory_hard, memory_info); the
  // old formula divided physical RAM and gave t3.small 256 MiB, below a worker at rest (~240 MiB).
  it("limitMemoryHardMiB: Odoo's 2560 MiB default, lowered only so that one process at it and the others at rest fit", () => {
    expect(limitMemoryHardMiB(16384, 11)).toBe(2560);
    expect(limitMemoryHardMiB(32768, 11)).toBe(2560);
    // 4 GiB, 2 workers + cron + gevent: 3072 usable − 3 × 134 at rest = 2670 > 2560.
    expect(limitMemoryHardMiB(4096, 4)).toBe(2560);
    // 4 GiB with 7 processes: 3072 − 6 × 134 = 2268.
    expect(limitMemoryHardMiB(4096, 7)).toBe(2268);
  });

  it("the floors come from what an Odoo process maps at rest plus a request (ODOO-FACTS, Odoo's deploy guide)", () => {
    expect(ODOO_PROCESS_AT_REST).toEqual({ virtualMiB: 240, residentMiB: 134 });
    expect(LIMIT_MEMORY_HARD_FLOOR_MIB).toBe(240 + 1024);
    expect(LIMIT_MEMORY_SOFT_FLOOR_MIB).toBe(240 + 150);
    expect(EXPECTED_PROCESS_MIB).toBe(325); // ⌈0.8 × 150 + 0.2 × 1024⌉
    // One worker + 1 cron + gevent: one at the hard floor, two at rest.
    expect(minimumOdooUsableMiB(1)).toBe(1264 + 2 * 134);
    expect(minimumOdooUsableMiB(2)).toBe(1264 + 3 * 134);
  });

  it.each(["t3.micro", "t3.small", "t3a.small"])(
    "odooHostTooSmall rejects %s (RAM for one worker + cron + gevent) with the reason",
    (name) => {
      const why = odooHostTooSmall(spec(name), 1);
      expect(why).toMatch(/too little for Odoo/);
      expect(why).toContain("RLIMIT_AS");
      expect(why).toContain(`need ${minimumOdooUsableMiB(1)} MiB`);
      expect(why).toMatch(/t3\.medium/);
    },
  );

  it("odooHostTooSmall accepts every type with 4 GiB or more", () => {
    for (const [name, s] of Object.entries(INSTANCE_TYPES).filter(([, x]) => x.memoryMiB >= 4096)) {
      expect([name, odooHostTooSmall(s, 2)]).toEqual([name, undefined]);
    }
  });

  it("reservePoolSize: 25 %, at least 2 (POOL-3)", () => {
    expect([1, 8, 10, 28].map(reservePoolSize)).toEqual([2, 2, 3, 7]);
  });

  it("odooClientConnections: every process's pool on every host (the gevent worker's own), plus one CLI process (POOL-4)", () => {
    // 1 host: 9 workers × 8 + gevent 64 + 1 cron × 8 + a CLI 8.
    expect(odooClientConnections(9, 1, 1, 8, 64)).toBe(72 + 64 + 8 + 8);
    // Crons run on one host only.
    expect(odooClientConnections(9, 1, 3, 8, 64)).toBe(3 * (72 + 64) + 8 + 8);
  });

  it("maxClientConn: the clients + 25 % + admin clients (POOL-4)", () => {
    expect(maxClientConn(152)).toBe(190 + 10);
    expect(maxClientConn(1)).toBe(2 + 10);
  });

  it("the `postgres` session pool: LISTENers and short-lived sessions of every process, a reserve of one host's listeners + 1 (DESIGN 7)", () => {
    expect(postgresListeners(1, 1)).toBe(2); // gevent bus + 1 cron worker
    expect(postgresListeners(2, 3)).toBe(5); // 3 buses + 2 cron workers on the cron host
    expect(postgresShortLived(9, 1, 1)).toBe(11); // 9 workers + gevent + 1 cron
    expect(postgresShortLived(17, 1, 3)).toBe(55);
    expect(postgresPoolSize(9, 1, 1)).toBe(13);
    expect(postgresReservePoolSize(1)).toBe(3);
    expect(postgresReservePoolSize(2)).toBe(4);
  });

  it("httpMaxConns: workers + 4 waiting per worker, inside Odoo's backlog of 8 per worker (PROXY-5)", () => {
    expect(httpMaxConns(9)).toBe(45);
    expect(httpMaxConns(9)).toBeLessThan(9 + 8 * 9);
  });

  it("migrationTimeouts: statement and idle-in-transaction lifted, lock_timeout kept", () => {
    expect(migrationTimeouts(30_000)).toEqual({ statementTimeoutMs: 0, lockTimeoutMs: 30_000, idleInTransactionSessionTimeoutMs: 0 });
  });

  it("proxyTimeoutSeconds outlives limit_time_real (PROXY-5)", () => {
    expect(proxyTimeoutSeconds(1200)).toBe(1230);
  });
});

describe("computeSizing: known values", () => {
  it("m6i.xlarge (4 vCPU, 16 GiB), 1 host, r6i.large database", () => {
    const s = computeSizing(input("m6i.xlarge"));
    // CPU bound: 9 = 4 × 2 + 1 (memory allows floor(14745 / 1024) − 2 = 12).
    expect(s.odoo.workers).toBe(9);
    expect(s.odoo.maxCronThreads).toBe(1);
    expect(s.odoo.processesPerHost).toBe(11);
    // Odoo's own defaults: the host has room for one process at 2560 MiB and ten at rest.
    expect(s.odoo.limitMemoryHardBytes).toBe(2560 * MiB);
    expect(s.odoo.limitMemorySoftBytes).toBe(2048 * MiB); // 80 %
    expect([
      s.odoo.limitTimeCpu,
      s.odoo.limitTimeReal,
      s.odoo.limitTimeRealCron,
      s.odoo.limitRequest,
      s.odoo.dbMaxconn,
      s.odoo.dbMaxconnGevent,
    ]).toEqual([600, 1200, 1200, 65536, 8, 64]);
    expect(s.odoo.httpMaxConns).toBe(45);
    expect(s.pgbouncer).toEqual({
      defaultPoolSize: 11, // (9 workers + gevent) × 1 host + 1 cron
      reservePoolSize: 3,
      reservePoolTimeoutSeconds: 3,
      maxClientConn: 200, // ceil((72 + 64 + 8 + 8) × 1.25) + 10
      maxDbConnections: 14,
      maxUserConnections: 14,
      postgresPoolSize: 13, // 2 listeners + 11 short-lived
      postgresReservePoolSize: 3, // gevent + cron listeners + a start-up
      migrationConnections: 2,
      limitNofile: 4096,
    });
    expect(s.postgres.maxConnections).toBe(14 + 16 + 2 + reservedSlots);
    expect(s.postgres.migration).toEqual({ statementTimeoutMs: 0, lockTimeoutMs: 30_000, idleInTransactionSessionTimeoutMs: 0 });
    expect(s.postgres.sharedBuffersMiB).toBe(4096);
    expect(s.postgres.effectiveCacheSizeMiB).toBe(12288);
    expect(s.postgres.maintenanceWorkMemMiB).toBe(1024);
    expect(s.postgres.workMemMiB).toBe(Math.floor(12288 / (46 * 3)));
    expect(s.postgres.idleInTransactionSessionTimeoutMs).toBe(1_200_000);
    expect(checkSizing(s, input("m6i.xlarge"))).toEqual([]);
  });

  it("m6i.xlarge × 3 hosts: pools grow with the hosts, crons stay on one", () => {
    const s = computeSizing(input("m6i.xlarge", 3));
    expect(s.pgbouncer.defaultPoolSize).toBe(31);
    expect(s.pgbouncer.reservePoolSize).toBe(8);
    expect(s.pgbouncer.postgresPoolSize).toBe(4 + 31); // 3 buses + 1 cron listening; 3 × 10 + 1 short-lived
    expect(s.pgbouncer.postgresReservePoolSize).toBe(3);
    expect(s.pgbouncer.maxClientConn).toBe(Math.ceil((3 * 136 + 16) * 1.25) + 10);
    expect(s.postgres.maxConnections).toBe(39 + 38 + 2 + reservedSlots);
  });

  it("m6i.xlarge, two databases: each its own full pool and cap, PostgreSQL holds both (issue 16, POOL-5, PG-1)", () => {
    const one = computeSizing(input("m6i.xlarge"));
    const two = computeSizing(input("m6i.xlarge", 1, 2));
    // Every Odoo process serves every database, so each pool is sized for all of them.
    expect(two.pgbouncer.defaultPoolSize).toBe(one.pgbouncer.defaultPoolSize);
    expect(two.pgbouncer.maxDbConnections).toBe(one.pgbouncer.defaultPoolSize + one.pgbouncer.reservePoolSize);
    expect(two.pgbouncer.maxUserConnections).toBe(2 * (one.pgbouncer.defaultPoolSize + one.pgbouncer.reservePoolSize));
    expect(two.postgres.maxConnections - one.postgres.maxConnections).toBe(one.pgbouncer.defaultPoolSize + one.pgbouncer.reservePoolSize);
    expect(two.pgbouncer.postgresPoolSize).toBe(one.pgbouncer.postgresPoolSize);
    expect(checkSizing(two, input("m6i.xlarge", 1, 2))).toEqual([]);
  });

  it("c5.xlarge (4 vCPU, 8 GiB): memory bound, 5 workers of 1 GiB", () => {
    const s = computeSizing(input("c5.xlarge"));
    expect(s.odoo.workers).toBe(5); // floor(7168 / 1024) − 1 cron − 1 gevent
    expect(s.odoo.limitMemoryHardBytes).toBe(2560 * MiB);
  });

  it("t3.medium (2 vCPU, 4 GiB): the floor of 2 workers, each allowed a heavy request", () => {
    const s = computeSizing(input("t3.medium"));
    expect(s.odoo.workers).toBe(2);
    expect(s.odoo.limitMemoryHardBytes).toBe(2560 * MiB);
    expect(checkSizing(s, input("t3.medium"))).toEqual([]);
  });

  it("t3.small (2 GiB) is no longer sized to 256 MiB limits: the memory checks give way to the one too-small reason", () => {
    const i = input("t3.small");
    const s = computeSizing(i);
    expect(s.odoo.limitMemoryHardBytes / MiB).toBeLessThan(LIMIT_MEMORY_HARD_FLOOR_MIB);
    expect(odooHostTooSmall(i.odoo, s.odoo.maxCronThreads)).toBeDefined();
    expect(checkSizing(s, i).filter((p) => p.key.startsWith("odoo.limitMemoryHard"))).toEqual([]);
  });

  it("m6i.2xlarge (8 vCPU, 32 GiB): 17 workers", () => {
    expect(computeSizing(input("m6i.2xlarge")).odoo.workers).toBe(17);
  });

  it("r6i.xlarge (4 vCPU, 32 GiB): hard limit capped at Odoo's 2560 MiB", () => {
    const s = computeSizing(input("r6i.xlarge"));
    expect(s.odoo.workers).toBe(9);
    expect(s.odoo.limitMemoryHardBytes).toBe(2560 * MiB);
  });

  it("overrides win where given", () => {
    const s = computeSizing(
      input("m6i.xlarge", 1, 1, {
        odooOverrides: { workers: 6, dbMaxconn: 4 },
        pgbouncerOverrides: { maxClientConn: 500 },
        postgresOverrides: { lockTimeoutMs: 5000 },
      }),
    );
    expect(s.odoo.workers).toBe(6);
    expect(s.odoo.dbMaxconn).toBe(4);
    expect(s.pgbouncer.defaultPoolSize).toBe(8);
    expect(s.pgbouncer.maxClientConn).toBe(500);
    expect(s.postgres.lockTimeoutMs).toBe(5000);
  });
});

// Every type in the table a person would run Odoo on (≥ 4 GiB) × 1..4 hosts × 1..3 databases.
const ODOO_HOSTS = Object.entries(INSTANCE_TYPES).filter(([, s]) => s.memoryMiB >= 4096);

describe("invariants over every plausible Odoo host", () => {
  it("covers the table", () => {
    expect(ODOO_HOSTS.length).toBeGreaterThan(50);
  });

  it.each(ODOO_HOSTS)("%s × 1..4 hosts × 1..3 databases", (name, odooSpec) => {
    for (let hosts = 1; hosts <= 4; hosts++) {
      for (let dbs = 1; dbs <= 3; dbs++) {
        const i = input(name, hosts, dbs);
        const s = computeSizing(i);
        const where = `${name}, ${hosts} hosts, ${dbs} databases`;
        expect([where, checkSizing(s, i)]).toEqual([where, []]);

        const { odoo, pgbouncer: b, postgres: p } = s;
        const hardMiB = odoo.limitMemoryHardBytes / MiB;
        // LIMIT-1: never more workers than the CPU rule allows, at least 2.
        expect(odoo.workers).toBeLessThanOrEqual(2 * odooSpec.vcpu + 1);
        expect(odoo.workers).toBeGreaterThanOrEqual(2);
        // LIMIT-1, LIMIT-3: the limits are virtual (RLIMIT_AS, vms): a process at rest plus a
        // heavy request fits under hard, a process at rest stays under soft; in RAM, one process
        // at its hard limit with the others at rest fits, and so do all at Odoo's expected mix.
        const usable = odooSpec.memoryMiB - osReserveMiB(odooSpec.memoryMiB);
        expect(odoo.processesPerHost).toBe(odoo.workers + odoo.maxCronThreads + 1);
        expect(hardMiB).toBeGreaterThanOrEqual(ODOO_PROCESS_AT_REST.virtualMiB + 1024);
        expect(odoo.limitMemorySoftBytes / MiB).toBeGreaterThanOrEqual(ODOO_PROCESS_AT_REST.virtualMiB + 150);
        expect(hardMiB + (odoo.processesPerHost - 1) * ODOO_PROCESS_AT_REST.residentMiB).toBeLessThanOrEqual(usable);
        expect(odoo.processesPerHost * EXPECTED_PROCESS_MIB).toBeLessThanOrEqual(usable);
        expect(odoo.limitMemorySoftBytes).toBeLessThan(odoo.limitMemoryHardBytes);
        expect(odoo.limitTimeCpu).toBeLessThanOrEqual(odoo.limitTimeReal);
        // PG-1: the Odoo role's server connections (pools + reserves, capped per role), the
        // LISTEN session pool and the reserved slots all fit max_connections.
        expect(b.maxUserConnections).toBeGreaterThanOrEqual(b.defaultPoolSize + b.reservePoolSize);
        expect(p.slots.pools).toBe(b.maxUserConnections);
        expect(p.slots.postgresPool).toBe(b.postgresPoolSize + b.postgresReservePoolSize);
        expect(p.slots.migration).toBe(b.migrationConnections);
        expect(p.slots.pools + p.slots.postgresPool + p.slots.migration + reservedSlots).toBeLessThanOrEqual(p.maxConnections);
        // POOL-2: a transaction slot for every process that can hold one (the gevent worker too).
        expect(b.defaultPoolSize).toBeGreaterThanOrEqual((odoo.workers + 1) * hosts + odoo.maxCronThreads);
        // DESIGN 7: a `postgres` session for every LISTENer and every process's short one at once.
        expect(b.postgresPoolSize).toBe(hosts + odoo.maxCronThreads + (odoo.workers + 1) * hosts + odoo.maxCronThreads);
        expect(b.postgresReservePoolSize).toBeGreaterThanOrEqual(odoo.maxCronThreads + 2);
        // POOL-3, POOL-4, POOL-5.
        expect(b.reservePoolSize).toBeGreaterThanOrEqual(1);
        expect(b.maxClientConn).toBeGreaterThanOrEqual(
          hosts * (odoo.workers * odoo.dbMaxconn + odoo.dbMaxconnGevent) + odoo.maxCronThreads * odoo.dbMaxconn,
        );
        expect(b.maxDbConnections).toBeGreaterThanOrEqual(b.defaultPoolSize);
        expect(b.limitNofile).toBeGreaterThanOrEqual(
          b.maxClientConn + b.maxUserConnections + b.postgresPoolSize + b.postgresReservePoolSize,
        );
        // PG-2: a transaction may stay idle no longer than a request or a cron may live.
        expect(p.idleInTransactionSessionTimeoutMs).toBe(Math.max(odoo.limitTimeReal, odoo.limitTimeRealCron) * 1000);
        // The proxy's queue per host stays inside Odoo's listen backlog (8 × workers).
        expect(odoo.httpMaxConns).toBeLessThan(odoo.workers * 9);
        expect(p.statementTimeoutMs).toBeGreaterThanOrEqual(1000);
        expect(p.lockTimeoutMs).toBeGreaterThanOrEqual(1000);
        expect(p.workMemMiB).toBeGreaterThanOrEqual(4);
        // PROXY-5: Odoo, not nginx, ends a long request.
        expect(proxyTimeoutSeconds(odoo.limitTimeReal)).toBeGreaterThan(odoo.limitTimeReal);
      }
    }
  });
});

describe("checkSizing: overrides that break an invariant", () => {
  // On m6i.xlarge, 1 host: 9 workers, 11 processes, hard 2560 MiB, pool 11, 152 client
  // connections needed, 46 server connections needed.
  const CASES: [string, Partial<SizingInput>, string[]][] = [
    ["workers 1 (LIMIT-1)", { odooOverrides: { workers: 1 } }, ["odoo.workers"]],
    ["workers 10 > 4 × 2 + 1 (LIMIT-1)", { odooOverrides: { workers: 10 } }, ["odoo.workers"]],
    ["no cron thread (LIMIT-2)", { odooOverrides: { maxCronThreads: 0 } }, ["odoo.maxCronThreads"]],
    ["workers and crons both wrong", { odooOverrides: { workers: 10, maxCronThreads: 3 } }, ["odoo.maxCronThreads", "odoo.workers"]],
    [
      "hard limit past one runaway + 10 at rest: 14745 − 1340 = 13405 MiB (LIMIT-3)",
      { odooOverrides: { limitMemoryHardMiB: 13406 } },
      ["odoo.limitMemoryHardMiB"],
    ],
    [
      "hard limit below a process at rest + a heavy request (LIMIT-3)",
      { odooOverrides: { limitMemoryHardMiB: 1263 } },
      ["odoo.limitMemoryHardMiB"],
    ],
    [
      "the old 256 MiB hard limit (LIMIT-3)",
      { odooOverrides: { limitMemoryHardMiB: 256, limitMemorySoftMiB: 200 } },
      ["odoo.limitMemoryHardMiB", "odoo.limitMemorySoftMiB"],
    ],
    [
      "soft limit below a worker at rest + a light request (LIMIT-3)",
      { odooOverrides: { limitMemorySoftMiB: 389 } },
      ["odoo.limitMemorySoftMiB"],
    ],
    ["soft limit above the computed hard limit (LIMIT-3)", { odooOverrides: { limitMemorySoftMiB: 3000 } }, ["odoo.limitMemorySoftMiB"]],
    ["limit_time_cpu 0", { odooOverrides: { limitTimeCpu: 0 } }, ["odoo.limitTimeCpu"]],
    ["limit_time_real below the default limit_time_cpu", { odooOverrides: { limitTimeReal: 300 } }, ["odoo.limitTimeCpu"]],
    ["db_maxconn 1", { odooOverrides: { dbMaxconn: 1 } }, ["odoo.dbMaxconn"]],
    ["db_maxconn_gevent 4 < db_maxconn 8", { odooOverrides: { dbMaxconnGevent: 4 } }, ["odoo.dbMaxconnGevent"]],
    ["default_pool_size 0 (POOL-2)", { pgbouncerOverrides: { defaultPoolSize: 0 } }, ["pgbouncer.defaultPoolSize"]],
    ["default_pool_size 23 > 2 × 11 (POOL-2)", { pgbouncerOverrides: { defaultPoolSize: 23 } }, ["pgbouncer.defaultPoolSize"]],
    ["reserve_pool_size 0 (POOL-3)", { pgbouncerOverrides: { reservePoolSize: 0 } }, ["pgbouncer.reservePoolSize"]],
    ["max_client_conn 151 < 152 (POOL-4)", { pgbouncerOverrides: { maxClientConn: 151 } }, ["pgbouncer.maxClientConn"]],
    ["max_db_connections 10 < pool 11 (POOL-5)", { pgbouncerOverrides: { maxDbConnections: 10 } }, ["pgbouncer.maxDbConnections"]],
    ["max_connections 45 < 46 (PG-1)", { postgresOverrides: { maxConnections: 45 } }, ["postgres.maxConnections"]],
    ["max_connections 5001 (PG-1)", { postgresOverrides: { maxConnections: 5001 } }, ["postgres.maxConnections"]],
    ["statement_timeout 999 ms (PG-2)", { postgresOverrides: { statementTimeoutMs: 999 } }, ["postgres.statementTimeoutMs"]],
    ["lock_timeout 0 (PG-2)", { postgresOverrides: { lockTimeoutMs: 0 } }, ["postgres.lockTimeoutMs"]],
    // Boundaries that hold.
    ["hard limit 13405 MiB: one runaway + 10 at rest fill the usable RAM exactly", { odooOverrides: { limitMemoryHardMiB: 13405 } }, []],
    ["hard limit at the floor, soft at its floor", { odooOverrides: { limitMemoryHardMiB: 1264, limitMemorySoftMiB: 390 } }, []],
    ["default_pool_size 22 = 2 × 11", { pgbouncerOverrides: { defaultPoolSize: 22 } }, []],
    ["max_client_conn 152", { pgbouncerOverrides: { maxClientConn: 152 } }, []],
    ["max_connections 46", { postgresOverrides: { maxConnections: 46 } }, []],
    ["db_maxconn_gevent 8 = db_maxconn", { odooOverrides: { dbMaxconnGevent: 8 } }, []],
    ["2 cron threads", { odooOverrides: { maxCronThreads: 2 } }, []],
  ];

  it.each(CASES)("%s", (_name, overrides, keys) => {
    const i = input("m6i.xlarge", 1, 1, overrides);
    const problems = checkSizing(computeSizing(i), i);
    expect(problems.map((p) => p.key).sort()).toEqual(keys);
    for (const p of problems) expect(p.message.length).toBeGreaterThan(10);
  });

  it("reports the offending value", () => {
    const i = input("m6i.xlarge", 1, 1, { pgbouncerOverrides: { maxClientConn: 151 } });
    expect(checkSizing(computeSizing(i), i)).toEqual([
      { key: "pgbouncer.maxClientConn", value: 151, message: expect.stringContaining("= 152 (POOL-4)") },
    ]);
  });
});
