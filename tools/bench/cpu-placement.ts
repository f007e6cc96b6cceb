// Where scenario 1's processes run. In production PostgreSQL has a host of its own, and
// PgBouncer, Odoo and the users run on others (lib/model.ts: one host per role). On one
// machine the benchmark keeps that shape by CPU affinity: PostgreSQL on the first CPUs in every
// configuration, PgBouncer and the load generator on the rest. The database's CPU is then what
// the configurations compete for, as in production, instead of PgBouncer's and the generator's
// work being taken out of PostgreSQL's share only in the configurations that have a PgBouncer.
import { execFileSync } from "child_process";
import { processTree } from "./cpu";

export interface CpuPlacement {
  /** taskset(1) CPU list for PostgreSQL (the postmaster; backends inherit it when forked). */
  readonly database: string;
  /** taskset(1) CPU list for PgBouncer and the load generator. */
  readonly others: string;
  /** Every CPU, to give the generator back when the scenario ends. */
  readonly all: string;
}

const cpuList = (first: number, last: number): string => (first === last ? `${first}` : `${first}-${last}`);

/** Half the CPUs (rounded down) for PostgreSQL, the rest for everything else; none on one CPU. */
export function cpuPlacement(cpus: number): CpuPlacement | undefined {
  if (!(cpus >= 2)) return undefined;
  const database = Math.floor(cpus / 2);
  return { database: cpuList(0, database - 1), others: cpuList(database, cpus - 1), all: cpuList(0, cpus - 1) };
}

/** Binds every thread of `pid` to `cpus`; false when the process has gone meanwhile. */
function bind(pid: number, cpus: string): boolean {
  try {
    execFileSync("taskset", ["--all-tasks", "--pid", "--cpu-list", cpus, String(pid)], { stdio: "ignore" });
    return true;
  } catch (err) {
    try {
      process.kill(pid, 0);
    } catch {
      return false; // exited (a backend that finished): nothing to bind
    }
    throw new Error(`taskset could not bind pid ${pid} to CPUs ${cpus}: ${(err as Error).message}`);
  }
}

/** Binds `roots` and every descendant (a daemon, its workers, its backends) to `cpus`. */
export function bindProcessTree(roots: readonly number[], cpus: string): void {
  for (const pid of processTree(roots).keys()) bind(pid, cpus);
}

/** Binds this process (the load generator, all its threads) to `cpus`. */
export function bindThisProcess(cpus: string): void {
  bind(process.pid, cpus);
}
