// Who used the CPU during a measured window: this process (the load generator), the daemons'
// process groups, and the whole machine. On a shared 2-core machine the generator competes
// with the daemons it measures, so every result carries these three numbers.
import * as fs from "fs";
import { processGroupPids } from "../../tests/integration/helpers/sandbox";
import type { CpuUse } from "./results";

/** Linux USER_HZ: /proc/<pid>/stat and /proc/stat count in 1/100 s on every mainstream arch. */
const TICKS_PER_SECOND = 100;

export interface CpuSnapshot {
  readonly atMs: number;
  readonly generatorUs: number;
  readonly groupTicks: number;
  readonly machineBusyTicks: number;
}

function machineBusyTicks(): number {
  const first = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
  // cpu user nice system idle iowait irq softirq steal ...
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  return f.slice(0, 8).reduce((s, v) => s + v, 0) - idle;
}

/** stat(5) fields after "(comm) ": [0] state, [1] ppid, [11] utime, [12] stime. */
function statFields(pid: string): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined; // exited meanwhile
  }
}

/**
 * `roots`, their process groups and every descendant, each with its CPU ticks. By parent, not
 * by process group: PostgreSQL's backends call setsid() (InitPostmasterChild), so they leave
 * the postmaster's group.
 */
export function processTree(roots: readonly number[]): Map<number, number> {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (!f) continue;
    const pid = Number(entry);
    ticks.set(pid, Number(f[11]) + Number(f[12]));
    const ppid = Number(f[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const tree = new Map<number, number>();
  const queue = roots.flatMap((r) => [r, ...processGroupPids(r)]);
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (tree.has(pid) || !ticks.has(pid)) continue;
    tree.set(pid, ticks.get(pid) as number);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

const treeTicks = (roots: readonly number[]): number => [...processTree(roots).values()].reduce((s, t) => s + t, 0);

/** CPU counters now; `pgids` are the daemons' main pids (their process trees are counted). */
export function cpuSnapshot(pgids: readonly number[]): CpuSnapshot {
  const u = process.cpuUsage();
  return { atMs: performance.now(), generatorUs: u.user + u.system, groupTicks: treeTicks(pgids), machineBusyTicks: machineBusyTicks() };
}

/** Cores used between two snapshots (1.0 = one core busy the whole time). */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const seconds = (b.atMs - a.atMs) / 1000;
  if (!(seconds > 0)) return { generatorCores: NaN, serverCores: NaN, machineBusyCores: NaN };
  return {
    generatorCores: (b.generatorUs - a.generatorUs) / 1e6 / seconds,
    // Backends that exited inside the window take their ticks with them: a lower bound.
    serverCores: Math.max(0, b.groupTicks - a.groupTicks) / TICKS_PER_SECOND / seconds,
    machineBusyCores: (b.machineBusyTicks - a.machineBusyTicks) / TICKS_PER_SECOND / seconds,
  };
}
