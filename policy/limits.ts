// Odoo concurrency and limits: CHECKLIST §4 (LIMIT-1 … LIMIT-3), read from each Odoo host's
// odoo.conf and, for sizing, joined with the instance that runs it (odoo-stack:host tag).
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { knownInstanceType } from "../lib/instance-types";
import {
  EXPECTED_PROCESS_MIB,
  LIMIT_MEMORY_HARD_FLOOR_MIB,
  LIMIT_MEMORY_SOFT_FLOOR_MIB,
  ODOO_PROCESS_AT_REST,
  odooMemoryBudget,
  odooProcesses,
  workersFromCpu,
} from "../lib/sizing";
import { odooInt, parseOdooConf } from "./lib/parse";
import {
  fileKindOf,
  fileLabel,
  hostOf,
  renderedFiles,
  TYPES,
  UnknownValues,
  validateRenderedFile,
  type StackResourceView,
} from "./lib/resources";

/** Odoo's own defaults (odoo/tools/config.py), for values a file leaves out. */
const ODOO_DEFAULT_MAX_CRON_THREADS = 2;
const ODOO_DEFAULT_WORKERS = 0;

/**
 * LIMIT-1: multi-process mode. With workers = 0 Odoo runs threaded: no memory or time limit is
 * enforced (LIMIT-3 would be decoration) and no gevent worker serves /websocket (PROXY-2).
 */
export const odooWorkersMultiprocess: ResourceValidationPolicy = {
  name: "odoo-workers-multiprocess",
  description:
    "Checks whether odoo.conf runs Odoo in multi-process mode (workers ≥ 2), where limits apply and the gevent worker serves WebSockets (LIMIT-1, PROXY-2).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const raw = parseOdooConf(file.content).options.get("workers");
    const workers = raw === undefined ? ODOO_DEFAULT_WORKERS : odooInt(raw);
    if (workers === undefined || workers < 2) {
      const now = raw === undefined ? "absent (Odoo's default 0: threaded mode)" : JSON.stringify(raw);
      report(
        `${fileLabel(file)} must set workers to at least 2, sized from the instance's vCPUs and RAM; it is ${now}, and without workers no gevent worker serves /websocket (LIMIT-1, PROXY-2).`,
      );
    }
  }),
};

/** LIMIT-2: cron threads conservative until measured; 0 on every host but the cron host. */
export const odooMaxCronThreadsConservative: ResourceValidationPolicy = {
  name: "odoo-max-cron-threads-conservative",
  description: "Checks whether odoo.conf sets max_cron_threads to 0, 1 or 2 (LIMIT-2).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const raw = parseOdooConf(file.content).options.get("max_cron_threads");
    if (raw === undefined) {
      report(
        `${fileLabel(file)} must set max_cron_threads explicitly (1–2 on the cron host, 0 elsewhere); absent, Odoo runs ${ODOO_DEFAULT_MAX_CRON_THREADS} on every host (LIMIT-2).`,
      );
      return;
    }
    const threads = odooInt(raw);
    if (threads === undefined || threads < 0 || threads > 2) {
      report(
        `${fileLabel(file)} must set max_cron_threads to at most 2 until cron load is measured; it is ${JSON.stringify(raw)} (LIMIT-2).`,
      );
    }
  }),
};

const LIMIT_KEYS = ["limit_time_cpu", "limit_time_real", "limit_memory_soft", "limit_memory_hard"] as const;

const MiB = 1024 * 1024;

/**
 * LIMIT-3: all four limits set to positive integers, and coherent: the soft memory limit below
 * the hard one (a worker is recycled gracefully before it is killed), the CPU limit within the
 * real-time one; and both memory limits above what an Odoo process maps at rest, since Odoo
 * applies them to virtual memory (lib/sizing.ts: RLIMIT_AS and pmem.vms in odoo/service/server.py).
 */
export const odooLimitsSet: ResourceValidationPolicy = {
  name: "odoo-limits-set",
  description: `Checks whether odoo.conf sets ${LIMIT_KEYS.join(", ")} to positive integers, soft below hard and CPU within real time (LIMIT-3).`,
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const options = parseOdooConf(file.content).options;
    const values: Partial<Record<(typeof LIMIT_KEYS)[number], number>> = {};
    for (const key of LIMIT_KEYS) {
      const raw = options.get(key);
      const n = odooInt(raw);
      if (n === undefined || n <= 0) {
        report(
          `${fileLabel(file)} must set ${key} to a positive integer; it is ${raw === undefined ? "absent" : JSON.stringify(raw)} (LIMIT-3).`,
        );
      } else {
        values[key] = n;
      }
    }
    const { limit_memory_soft: soft, limit_memory_hard: hard, limit_time_cpu: cpu, limit_time_real: real } = values;
    if (hard !== undefined && hard < LIMIT_MEMORY_HARD_FLOOR_MIB * MiB) {
      report(
        `${fileLabel(file)} must set limit_memory_hard (${hard}) to at least ${LIMIT_MEMORY_HARD_FLOOR_MIB} MiB (${LIMIT_MEMORY_HARD_FLOOR_MIB * MiB}): it caps each process's address space (RLIMIT_AS), which is ~${ODOO_PROCESS_AT_REST.virtualMiB} MiB at rest, before a heavy request (LIMIT-3).`,
      );
    }
    if (soft !== undefined && soft < LIMIT_MEMORY_SOFT_FLOOR_MIB * MiB) {
      report(
        `${fileLabel(file)} must set limit_memory_soft (${soft}) to at least ${LIMIT_MEMORY_SOFT_FLOOR_MIB} MiB (${LIMIT_MEMORY_SOFT_FLOOR_MIB * MiB}): Odoo compares it with each worker's virtual size, ~${ODOO_PROCESS_AT_REST.virtualMiB} MiB at rest, and would recycle workers after every request (LIMIT-3).`,
      );
    }
    if (soft !== undefined && hard !== undefined && soft >= hard) {
      report(
        `${fileLabel(file)} must set limit_memory_soft (${soft}) below limit_memory_hard (${hard}), so workers recycle before they are killed (LIMIT-3).`,
      );
    }
    if (cpu !== undefined && real !== undefined && cpu > real) {
      report(`${fileLabel(file)} must set limit_time_cpu (${cpu}) at most limit_time_real (${real}) (LIMIT-3).`);
    }
    // Odoo 17: limit_time_real_cron -1 (default) means limit_time_real; 0 means no limit for crons.
    const cron = options.get("limit_time_real_cron");
    const cronSeconds = odooInt(cron);
    if (cron !== undefined && (cronSeconds === undefined || (cronSeconds <= 0 && cronSeconds !== -1))) {
      report(
        `${fileLabel(file)} must set limit_time_real_cron to a positive number of seconds (or -1: limit_time_real); it is ${JSON.stringify(cron)}, which lifts the real-time limit for cron jobs (LIMIT-3).`,
      );
    }
  }),
};

/**
 * LIMIT-1 against the machine: workers ≤ (vCPU × 2) + 1 (Odoo's deployment guide); every process
 * (workers + cron threads + the gevent worker) at the guide's expected memory fits the RAM left
 * after the OS reserve; and one process at limit_memory_hard, the others at rest, fits it too
 * (lib/sizing.ts odooMemoryBudget, the same rule the program sizes with). Joins each odoo.conf
 * with the instance of its host.
 */
export const odooWorkersFitInstance: StackValidationPolicy = {
  name: "odoo-workers-fit-instance",
  description: "Checks whether each Odoo host's workers and memory limits fit the vCPUs and RAM of its instance type (LIMIT-1).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const instances = resources.filter((r) => r.type === TYPES.instance);
    for (const file of renderedFiles(resources, unknown).filter((f) => fileKindOf(f.path) === "odoo.conf")) {
      unknown.run(() => {
        const instance = instances.find((i) => hostOf(i.props) === file.host);
        if (!instance) return; // hosts-receive-checked-config-files pairs files with instances
        const type = instance.props.instanceType;
        const spec = typeof type === "string" ? knownInstanceType(type) : undefined;
        if (!spec) return; // a type the pack cannot size; the program checks it against AWS
        const options = parseOdooConf(file.content).options;
        const workers = odooInt(options.get("workers"));
        const cron = odooInt(options.get("max_cron_threads")) ?? ODOO_DEFAULT_MAX_CRON_THREADS;
        const hard = odooInt(options.get("limit_memory_hard"));
        const subject = `${fileLabel(file)} on EC2 instance (${instance.name}, ${type}: ${spec.vcpu} vCPU, ${spec.memoryMiB} MiB)`;
        if (workers !== undefined && workers > workersFromCpu(spec.vcpu)) {
          reportViolation(
            `${subject} must set workers (${workers}) at most (vCPU × 2) + 1 = ${workersFromCpu(spec.vcpu)} (LIMIT-1).`,
            file.resource.urn,
          );
        }
        if (workers !== undefined && workers >= 0 && cron >= 0) {
          const processes = odooProcesses(workers, cron);
          const budget = odooMemoryBudget(spec.memoryMiB, processes);
          if (budget.expectedMiB > budget.usableMiB) {
            reportViolation(
              `${subject} must fit ${processes} processes (workers + max_cron_threads + gevent) × ${EXPECTED_PROCESS_MIB} MiB (Odoo's expected memory per process) = ${budget.expectedMiB} MiB in the ${budget.usableMiB} MiB left after the OS reserve (LIMIT-1).`,
              file.resource.urn,
            );
          }
          if (hard !== undefined && Math.ceil(hard / MiB) > budget.maxLimitMemoryHardMiB) {
            reportViolation(
              `${subject} must set limit_memory_hard (${Math.ceil(hard / MiB)} MiB) at most ${budget.maxLimitMemoryHardMiB} MiB: one process at its limit and the other ${processes - 1} at rest (${ODOO_PROCESS_AT_REST.residentMiB} MiB each) must fit the ${budget.usableMiB} MiB left after the OS reserve (LIMIT-1).`,
              file.resource.urn,
            );
          }
        }
      });
    }
    unknown.finish();
  },
};

/**
 * LIMIT-2 across hosts: exactly one Odoo host runs crons. Two would run every scheduled job
 * twice at once (duplicate mails, double invoices, lock waits); none would run none.
 */
export const odooExactlyOneCronHost: StackValidationPolicy = {
  name: "odoo-exactly-one-cron-host",
  description: "Checks whether exactly one Odoo host has max_cron_threads above 0 (LIMIT-2).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const confs = renderedFiles(resources, unknown).filter((f) => fileKindOf(f.path) === "odoo.conf");
    if (confs.length === 0) return unknown.finish();
    const cronHosts = confs.filter(
      (f) =>
        unknown.run(() => (odooInt(parseOdooConf(f.content).options.get("max_cron_threads")) ?? ODOO_DEFAULT_MAX_CRON_THREADS) > 0) ===
        true,
    );
    if (cronHosts.length > 1) {
      for (const f of cronHosts.slice(1)) {
        reportViolation(
          `${fileLabel(f)} must set max_cron_threads = 0: ${cronHosts.map((c) => c.host).join(", ")} all run crons, so every scheduled job would run ${cronHosts.length} times at once; only one Odoo host may (LIMIT-2).`,
          f.resource.urn,
        );
      }
    } else if (cronHosts.length === 0) {
      reportViolation(
        `${fileLabel(confs[0])} must set max_cron_threads to 1 or 2: no Odoo host (${confs.map((c) => c.host).join(", ")}) runs crons, so scheduled jobs never run (LIMIT-2).`,
        confs[0].resource.urn,
      );
    }
    unknown.finish();
  },
};

export const policies: Policies = [
  odooWorkersMultiprocess,
  odooMaxCronThreadsConservative,
  odooLimitsSet,
  odooWorkersFitInstance,
  odooExactlyOneCronHost,
];
