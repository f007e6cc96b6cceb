// The CloudWatch agent's config per role (OBS-8, and the logs OBS-3..OBS-7 read): goldens, and
// the invariants — every host ships exactly its role's logs to the stack's log groups, every
// metric an alarm watches is one the agent collects with the dimensions the alarm names,
// hostnames never become a dimension, the file lands where the apply script loads it.
import { monitoringAlarms } from "../../templates/alarms";
import {
  CLOUDWATCH_AGENT_CONFIG_PATH,
  cloudWatchAgentConfig,
  cloudWatchAgentHostFile,
  LOG_SOURCES,
  LOG_SOURCE_NAMES,
  logGroupName,
  logSourceRole,
  renderCloudWatchAgentConfig,
  watchedMounts,
  WATCHED_FSTYPE,
} from "../../templates/cloudwatch-agent";
import { serviceForPath } from "../../templates/manifest";
import { METRIC_NAMESPACES, TOP_QUERIES_LOG, WATCHED_PROCESSES } from "../../templates/metrics";
import { nginxMainSettings } from "../../templates/nginx";
import { modelWith } from "../helpers/fixtures";
import { expectGolden } from "../helpers/golden";

const model = modelWith({ odooInstances: 2 }, "prod");
type Json = Record<string, any>;
const config = (id: string): Json => cloudWatchAgentConfig(model, model.allHosts.find((h) => h.id === id) ?? model.hosts.proxy) as Json;

describe("CloudWatch agent config", () => {
  it.each(["proxy", "odoo-1", "pgbouncer", "postgres"])("renders %s's config (golden), deterministic JSON with sorted keys", (id) => {
    const host = model.allHosts.find((h) => h.id === id) ?? model.hosts.proxy;
    const text = renderCloudWatchAgentConfig(model, host);
    expectGolden(`observability/cloudwatch-agent-${id}.json`, text);
    expect(renderCloudWatchAgentConfig(model, host)).toBe(text);
    const keys = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(keys);
      if (v && typeof v === "object") {
        expect(Object.keys(v)).toEqual(Object.keys(v).sort());
        Object.values(v).forEach(keys);
      }
    };
    keys(JSON.parse(text));
  });

  it("ships the top-queries log from the PgBouncer host when PostgreSQL is RDS: the collector runs there (OBS-7)", () => {
    const rds = modelWith({ odooInstances: 2, postgresEngine: "rds" }, "prod");
    const text = renderCloudWatchAgentConfig(rds, rds.hosts.pgbouncer);
    expectGolden("observability/cloudwatch-agent-pgbouncer-rds.json", text);
    const files = (JSON.parse(text) as Json).logs.logs_collected.files.collect_list as Json[];
    expect(files.map((l) => [l.log_group_name, l.file_path])).toEqual([
      ["/odoo-stack/prod/pgbouncer", "/var/log/postgresql/pgbouncer.log"],
      ["/odoo-stack/prod/top-queries", TOP_QUERIES_LOG],
    ]);
    expect(logSourceRole(rds, "top-queries")).toBe("pgbouncer");
    expect(logSourceRole(model, "top-queries")).toBe("postgres");
  });

  it("is applied by the cloudwatch-agent service of the apply script, root-owned 0644", () => {
    const file = cloudWatchAgentHostFile(model, model.hosts.proxy);
    expect(file).toMatchObject({ path: CLOUDWATCH_AGENT_CONFIG_PATH, mode: "0644", owner: "root", group: "root" });
    expect(serviceForPath(file.path)).toBe("cloudwatch-agent");
  });

  it("ships each host's own logs, and only those, to /<project>/<stack>/<source> with the host as stream (ODOO-5, OBS-3..OBS-7)", () => {
    for (const host of model.allHosts) {
      const list = (cloudWatchAgentConfig(model, host) as Json).logs.logs_collected.files.collect_list as Json[];
      const expected = LOG_SOURCE_NAMES.filter((s) => logSourceRole(model, s) === host.role);
      expect(list.map((l) => l.log_group_name)).toEqual(expected.map((s) => logGroupName(model, s)));
      for (const l of list) expect(l.log_stream_name).toBe(host.id);
    }
    const proxyLogs = config("proxy").logs.logs_collected.files.collect_list as Json[];
    // The JSON access log the nginx renderer writes (OBS-4) is the one shipped.
    expect(proxyLogs.find((l) => l.log_group_name === "/odoo-stack/prod/nginx-access")?.file_path).toBe(nginxMainSettings().accessLogPath);
    expect(proxyLogs.find((l) => l.log_group_name === "/odoo-stack/prod/nginx-access")?.multi_line_start_pattern).toBeUndefined();
    expect((config("odoo-1").logs.logs_collected.files.collect_list as Json[])[0]).toMatchObject({
      file_path: "/var/log/odoo/odoo-server.log",
      multi_line_start_pattern: expect.any(String),
    });
    expect((config("pgbouncer").logs.logs_collected.files.collect_list as Json[])[0].file_path).toBe("/var/log/postgresql/pgbouncer.log");
    expect(LOG_SOURCE_NAMES.map((s) => LOG_SOURCES[s].role).sort()).toEqual([
      "odoo",
      "pgbouncer",
      "postgres",
      "postgres",
      "proxy",
      "proxy",
    ]);
  });

  it.each<[string, string, string]>([
    ["odoo", "2026-11-26 12:00:00,123 811 ERROR erp odoo.http: Exception during request handling.", "Traceback (most recent call last):"],
    [
      "nginx-error",
      "2026/11/26 12:00:00 [error] 812#812: *3 upstream timed out (110: Connection timed out)",
      "    while reading response header from upstream",
    ],
    ["pgbouncer", "2026-11-26 12:00:00.123 UTC [811] LOG C-0x55: erp/odoo@10.40.10.20:41000 login attempt", "  continued"],
    [
      "postgresql",
      "2026-11-26 12:00:00.123 UTC [811] odoo@erp app=odoo-1 ERROR:  deadlock detected",
      "2026-11-26 12:00:00.123 UTC [811] odoo@erp app=odoo-1 DETAIL:  Process 811 waits for ShareLock",
    ],
  ])("starts a %s entry at its first line and keeps continuation lines with it", (source, first, next) => {
    const pattern = LOG_SOURCES[source as keyof typeof LOG_SOURCES].firstLine;
    expect(pattern).toBeDefined();
    expect(new RegExp(pattern as string).test(first)).toBe(true);
    // A DETAIL line is its own entry in PostgreSQL's log format (it carries the prefix); tracebacks are not.
    expect(new RegExp(pattern as string).test(next)).toBe(source === "postgresql");
  });

  it("collects CPU, memory, swap, disk space and inodes, disk time and latency, network drops, TCP states, per-process fds (OBS-8)", () => {
    const m = config("postgres").metrics.metrics_collected;
    expect(m.cpu.measurement).toEqual(expect.arrayContaining(["usage_active", "usage_iowait"]));
    expect(m.mem.measurement).toContain("used_percent");
    expect(m.swap.measurement).toContain("used_percent");
    expect(m.disk.measurement).toEqual(expect.arrayContaining(["used_percent", "inodes_free"]));
    expect(m.disk.resources).toEqual(["/", "/var/lib/postgresql"]);
    expect(m.disk.drop_device).toBe(true);
    expect(m.diskio.measurement).toEqual(expect.arrayContaining(["io_time", "read_time", "write_time", "reads", "writes"]));
    expect(m.net.measurement).toEqual(expect.arrayContaining(["drop_in", "drop_out"]));
    expect(m.netstat.measurement).toContain("tcp_established");
    for (const host of model.allHosts) {
      const p = (cloudWatchAgentConfig(model, host) as Json).metrics.metrics_collected.procstat as Json[];
      expect(p.map((x) => x.exe)).toEqual(WATCHED_PROCESSES[host.role].map((w) => `^${w.comm}$`));
      for (const x of p) expect(x.measurement).toContain("num_fds");
    }
  });

  it("dimensions every metric by Stack and Host and never by the EC2 hostname", () => {
    for (const host of model.allHosts) {
      const c = cloudWatchAgentConfig(model, host) as Json;
      expect(c.agent.omit_hostname).toBe(true);
      expect(c.metrics.namespace).toBe(METRIC_NAMESPACES.host);
      const sections = Object.values(c.metrics.metrics_collected).flatMap((s) => (Array.isArray(s) ? s : [s])) as Json[];
      for (const s of sections) expect(s.append_dimensions).toEqual({ Stack: "prod", Host: host.id });
    }
  });

  it("collects every agent metric an alarm watches, with the alarm's dimensions", () => {
    const agentAlarms = monitoringAlarms(model).filter(
      (a) => a.namespace === METRIC_NAMESPACES.host && /^(disk|mem|swap)_/.test(a.metricName),
    );
    expect(agentAlarms.length).toBe(model.allHosts.length * 2 + model.allHosts.reduce((n, h) => n + watchedMounts(h.role).length, 0));
    for (const a of agentAlarms) {
      const host = model.allHosts.find((h) => h.id === a.dimensions.Host);
      expect(host).toBeDefined();
      const [plugin, ...rest] = a.metricName.split("_");
      const section = (cloudWatchAgentConfig(model, host ?? model.hosts.proxy) as Json).metrics.metrics_collected[plugin];
      expect(section.measurement).toContain(rest.join("_"));
      if (plugin === "disk") {
        expect(section.resources).toContain(a.dimensions.path);
        expect(a.dimensions.fstype).toBe(WATCHED_FSTYPE);
        expect(Object.keys(a.dimensions).sort()).toEqual(["Host", "Stack", "fstype", "path"]);
      } else {
        expect(Object.keys(a.dimensions).sort()).toEqual(["Host", "Stack"]);
      }
    }
  });
});
