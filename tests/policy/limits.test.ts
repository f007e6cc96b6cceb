// Concurrency and limits (LIMIT-1 … LIMIT-3): the rendered odoo.conf, and odoo.conf joined with
// the instance of its host.
import {
  odooExactlyOneCronHost,
  odooLimitsSet,
  odooMaxCronThreadsConservative,
  odooWorkersFitInstance,
  odooWorkersMultiprocess,
} from "../../policy/limits";
import { modelWith } from "../helpers/fixtures";
import { setLine, validateResource, validateStack, withContent, withProp } from "./fakes";
import { instanceName, replaced, stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const conf = fixture.file("odoo-1", "/etc/odoo/odoo.conf");
const label = `odoo.conf of odoo-1 (${conf.name})`;
const edited = (key: string, line: string | undefined) => withContent(conf, setLine(key, line));

describe("odoo-workers-multiprocess (LIMIT-1)", () => {
  it("passes the sized workers and rejects threaded mode", async () => {
    expect(await validateResource(odooWorkersMultiprocess, conf)).toEqual([]);
    expect(await validateResource(odooWorkersMultiprocess, edited("workers", "workers = 0"))).toEqual([
      `${label} must set workers to at least 2, sized from the instance's vCPUs and RAM; it is "0", and without workers no gevent worker serves /websocket (LIMIT-1, PROXY-2).`,
    ]);
    expect(await validateResource(odooWorkersMultiprocess, edited("workers", undefined))).toEqual([
      `${label} must set workers to at least 2, sized from the instance's vCPUs and RAM; it is absent (Odoo's default 0: threaded mode), and without workers no gevent worker serves /websocket (LIMIT-1, PROXY-2).`,
    ]);
  });
});

describe("odoo-max-cron-threads-conservative (LIMIT-2)", () => {
  it("passes 1 and rejects 3 or an absent key", async () => {
    expect(await validateResource(odooMaxCronThreadsConservative, conf)).toEqual([]);
    expect(await validateResource(odooMaxCronThreadsConservative, edited("max_cron_threads", "max_cron_threads = 3"))).toEqual([
      `${label} must set max_cron_threads to at most 2 until cron load is measured; it is "3" (LIMIT-2).`,
    ]);
    expect(await validateResource(odooMaxCronThreadsConservative, edited("max_cron_threads", undefined))).toEqual([
      `${label} must set max_cron_threads explicitly (1–2 on the cron host, 0 elsewhere); absent, Odoo runs 2 on every host (LIMIT-2).`,
    ]);
  });
});

describe("odoo-limits-set (LIMIT-3)", () => {
  const policy = odooLimitsSet;

  it("passes the rendered limits", async () => {
    expect(await validateResource(policy, conf)).toEqual([]);
  });

  it.each(["limit_time_cpu", "limit_time_real", "limit_memory_soft", "limit_memory_hard"])("rejects a missing %s", async (key) => {
    expect(await validateResource(policy, edited(key, undefined))).toEqual([
      `${label} must set ${key} to a positive integer; it is absent (LIMIT-3).`,
    ]);
  });

  it("rejects a zero limit, a soft limit above the hard one, and CPU time above real time", async () => {
    expect(await validateResource(policy, edited("limit_time_real", "limit_time_real = 0"))).toEqual([
      `${label} must set limit_time_real to a positive integer; it is "0" (LIMIT-3).`,
    ]);
    expect(await validateResource(policy, edited("limit_memory_soft", "limit_memory_soft = 9999999999"))).toEqual([
      `${label} must set limit_memory_soft (9999999999) below limit_memory_hard (2684354560), so workers recycle before they are killed (LIMIT-3).`,
    ]);
    expect(await validateResource(policy, edited("limit_time_cpu", "limit_time_cpu = 5000"))).toEqual([
      `${label} must set limit_time_cpu (5000) at most limit_time_real (1200) (LIMIT-3).`,
    ]);
  });

  // Issue 12 item 10: the limits Odoo applies are virtual (RLIMIT_AS, vms); what the old sizing
  // gave t3.small (256 MiB hard, 204 MiB soft) is below a worker at rest (~240 MiB).
  it("rejects memory limits below what an Odoo process maps at rest plus a request", async () => {
    const tiny = withContent(conf, (text) =>
      setLine("limit_memory_soft", "limit_memory_soft = 214748364")(setLine("limit_memory_hard", "limit_memory_hard = 268435456")(text)),
    );
    expect(await validateResource(policy, tiny)).toEqual([
      `${label} must set limit_memory_hard (268435456) to at least 1264 MiB (1325400064): it caps each process's address space (RLIMIT_AS), which is ~240 MiB at rest, before a heavy request (LIMIT-3).`,
      `${label} must set limit_memory_soft (214748364) to at least 390 MiB (408944640): Odoo compares it with each worker's virtual size, ~240 MiB at rest, and would recycle workers after every request (LIMIT-3).`,
    ]);
  });
});

describe("odoo-workers-fit-instance (LIMIT-1)", () => {
  const policy = odooWorkersFitInstance;
  const instance = fixture.get(instanceName(fixture.model.hosts.odoo[0]));

  it("passes the sized stack", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects more workers than (vCPU × 2) + 1 after the instance shrinks", async () => {
    const smaller = withProp(instance, "instanceType", "m6i.large");
    expect((await validateStack(policy, replaced(fixture.resources, smaller))).map((v) => v.message)).toEqual([
      `${label} on EC2 instance (${instance.name}, m6i.large: 2 vCPU, 8192 MiB) must set workers (9) at most (vCPU × 2) + 1 = 5 (LIMIT-1).`,
    ]);
  });

  it("rejects workers and a hard limit that no longer fit the RAM of a smaller instance", async () => {
    const smaller = withProp(instance, "instanceType", "t3.medium");
    expect((await validateStack(policy, replaced(fixture.resources, smaller))).map((v) => v.message)).toEqual([
      `${label} on EC2 instance (${instance.name}, t3.medium: 2 vCPU, 4096 MiB) must set workers (9) at most (vCPU × 2) + 1 = 5 (LIMIT-1).`,
      `${label} on EC2 instance (${instance.name}, t3.medium: 2 vCPU, 4096 MiB) must fit 11 processes (workers + max_cron_threads + gevent) × 325 MiB (Odoo's expected memory per process) = 3575 MiB in the 3072 MiB left after the OS reserve (LIMIT-1).`,
      `${label} on EC2 instance (${instance.name}, t3.medium: 2 vCPU, 4096 MiB) must set limit_memory_hard (2560 MiB) at most 1732 MiB: one process at its limit and the other 10 at rest (134 MiB each) must fit the 3072 MiB left after the OS reserve (LIMIT-1).`,
    ]);
  });

  it("rejects a hard memory limit that no longer fits the RAM", async () => {
    const hungry = edited("limit_memory_hard", "limit_memory_hard = 17179869184");
    expect((await validateStack(policy, replaced(fixture.resources, hungry))).map((v) => v.message)).toEqual([
      `${label} on EC2 instance (${instance.name}, m6i.xlarge: 4 vCPU, 16384 MiB) must set limit_memory_hard (16384 MiB) at most 13405 MiB: one process at its limit and the other 10 at rest (134 MiB each) must fit the 14745 MiB left after the OS reserve (LIMIT-1).`,
    ]);
  });
});

describe("odoo-exactly-one-cron-host (LIMIT-2)", () => {
  const policy = odooExactlyOneCronHost;
  const three = stackFixture(modelWith({ odooInstances: 3 }));
  const confOf = (id: string) => three.file(id, "/etc/odoo/odoo.conf");

  it("passes three hosts of which odoo-1 runs crons", async () => {
    expect(await validateStack(policy, three.resources)).toEqual([]);
  });

  it("rejects a second cron host, and no cron host at all", async () => {
    const second = withContent(confOf("odoo-2"), setLine("max_cron_threads", "max_cron_threads = 1"));
    expect((await validateStack(policy, replaced(three.resources, second))).map((v) => v.message)).toEqual([
      `odoo.conf of odoo-2 (${second.name}) must set max_cron_threads = 0: odoo-1, odoo-2 all run crons, so every scheduled job would run 2 times at once; only one Odoo host may (LIMIT-2).`,
    ]);
    const none = withContent(confOf("odoo-1"), setLine("max_cron_threads", "max_cron_threads = 0"));
    expect((await validateStack(policy, replaced(three.resources, none))).map((v) => v.message)).toEqual([
      `odoo.conf of odoo-1 (${none.name}) must set max_cron_threads to 1 or 2: no Odoo host (odoo-1, odoo-2, odoo-3) runs crons, so scheduled jobs never run (LIMIT-2).`,
    ]);
  });
});
