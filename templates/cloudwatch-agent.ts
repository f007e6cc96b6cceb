// The CloudWatch agent's config per host role (OBS-8 host metrics; the logs OBS-3..OBS-7 read):
// CPU, memory, swap, disk space and inodes, disk I/O time and latency, network drops and TCP
// states, per-process CPU/RSS/fds, and the logs shipped to one log group per stack and source.
// Pure: no Pulumi import. The bootstrap installs the agent (odoo-stack-bootstrap aws-agents);
// the apply script checks this JSON and loads it with `amazon-cloudwatch-agent-ctl -a
// fetch-config` (templates/manifest.ts: the "cloudwatch-agent" service owns this directory).
// The agent's schema rejects unknown keys, so this file carries no "generated" marker: its
// path (odoo-stack.json) says where it comes from.
// Reference: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html
import { PATHS, POSTGRES_CLUSTER, type HostId, type HostRole, type StackModel } from "../lib/model";
import { renderSortedJson, type HostFile } from "./format";
import { DIMENSIONS, METRIC_NAMESPACES, METRICS_INTERVAL_SECONDS, TOP_QUERIES_LOG, WATCHED_PROCESSES } from "./metrics";
import { nginxMainSettings } from "./nginx";
import { PGBOUNCER_DEBIAN } from "./pgbouncer";
import { rdsPostgresqlLogGroupName } from "./rds";

export const CLOUDWATCH_AGENT_CONFIG_PATH = "/opt/aws/amazon-cloudwatch-agent/etc/odoo-stack.json";

/** Debian's pg_ctlcluster sends the server's stderr log here (postgresql-common). */
export const POSTGRES_LOG_FILE = `/var/log/postgresql/postgresql-${POSTGRES_CLUSTER.version}-${POSTGRES_CLUSTER.name}.log`;

/**
 * Every log source the stack ships, with the role whose host writes it and how an entry's first
 * line starts: a multi-line entry (a Python traceback under an Odoo line, PostgreSQL's DETAIL and
 * STATEMENT under its error) continues on lines without it. JSON-lines sources have no pattern.
 */
const ISO_DATE = "^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}";
export const LOG_SOURCES = {
  odoo: { role: "odoo", file: PATHS.odooLogFile, firstLine: ISO_DATE, checklist: "ODOO-5, OBS-5, OBS-6" },
  "nginx-access": { role: "proxy", file: nginxMainSettings().accessLogPath, firstLine: undefined, checklist: "OBS-4, OBS-5" },
  // nginx's error log writes dates with slashes: "2026/11/26 12:00:00 [error] ...".
  "nginx-error": {
    role: "proxy",
    file: nginxMainSettings().errorLogPath,
    firstLine: "^\\d{4}/\\d{2}/\\d{2} \\d{2}:\\d{2}:\\d{2}",
    checklist: "PROXY-5",
  },
  pgbouncer: { role: "pgbouncer", file: PGBOUNCER_DEBIAN.logFile, firstLine: ISO_DATE, checklist: "OBS-3" },
  postgresql: { role: "postgres", file: POSTGRES_LOG_FILE, firstLine: ISO_DATE, checklist: "PG-3, PG-4, OBS-7" },
  "top-queries": { role: "postgres", file: TOP_QUERIES_LOG, firstLine: undefined, checklist: "OBS-7" },
} as const satisfies Record<string, { role: HostRole; file: string; firstLine: string | undefined; checklist: string }>;
export type LogSource = keyof typeof LOG_SOURCES;
export const LOG_SOURCE_NAMES = Object.keys(LOG_SOURCES).sort() as LogSource[];

/**
 * The role whose hosts ship `source`: as LOG_SOURCES says, except that with RDS the collector
 * (and so its top-queries log) runs on the PgBouncer host, there being no database host.
 */
export function logSourceRole(model: StackModel, source: LogSource): HostRole {
  return source === "top-queries" && model.settings.postgresEngine === "rds" ? "pgbouncer" : LOG_SOURCES[source].role;
}

/**
 * The log group of a source: one per stack and source, created (with retention) by Monitoring.
 * With RDS, PostgreSQL's log is the group RDS exports to, so the log metric filters see it.
 */
export const logGroupName = (model: StackModel, source: LogSource): string =>
  source === "postgresql" && model.settings.postgresEngine === "rds"
    ? rdsPostgresqlLogGroupName(model)
    : `/${model.project}/${model.stack}/${source}`;

/** The file systems whose space and inodes are watched per role; alarms name the same paths. */
export function watchedMounts(role: HostRole): readonly string[] {
  return role === "postgres" ? ["/", PATHS.postgresDataMount] : ["/"];
}
/** Debian 12's root and the data volume (odoo-stack-bootstrap mkfs.ext4): the disk metrics' fstype dimension. */
export const WATCHED_FSTYPE = "ext4";

/** The agent's metric names (its plugin_measurement naming) that the alarms and dashboard use. */
export const AGENT_METRICS = {
  cpuActive: "cpu_usage_active",
  cpuIowait: "cpu_usage_iowait",
  memUsedPercent: "mem_used_percent",
  swapUsedPercent: "swap_used_percent",
  diskUsedPercent: "disk_used_percent",
  diskInodesFree: "disk_inodes_free",
  diskioIoTime: "diskio_io_time",
  diskioReadTime: "diskio_read_time",
  diskioWriteTime: "diskio_write_time",
  netDropIn: "net_drop_in",
  netDropOut: "net_drop_out",
  procstatNumFds: "procstat_num_fds",
} as const;

/** Appended to every agent metric: the stack and host, as the collector's metrics carry them. */
const hostDimensions = (model: StackModel, host: HostId) => ({ [DIMENSIONS.stack]: model.stack, [DIMENSIONS.host]: host.id });

export function cloudWatchAgentConfig(model: StackModel, host: HostId): Record<string, unknown> {
  const append = hostDimensions(model, host);
  const section = (measurement: readonly string[], extra: Record<string, unknown> = {}) => ({
    measurement,
    metrics_collection_interval: METRICS_INTERVAL_SECONDS,
    append_dimensions: append,
    ...extra,
  });
  const logs = LOG_SOURCE_NAMES.filter((source) => logSourceRole(model, source) === host.role).map((source) => ({
    file_path: LOG_SOURCES[source].file,
    log_group_name: logGroupName(model, source),
    log_stream_name: host.id,
    timezone: "UTC",
    ...(LOG_SOURCES[source].firstLine === undefined ? {} : { multi_line_start_pattern: LOG_SOURCES[source].firstLine }),
  }));
  return {
    agent: {
      metrics_collection_interval: METRICS_INTERVAL_SECONDS,
      // Odoo's, PostgreSQL's and PgBouncer's logs are 0640 to their own users.
      run_as_user: "root",
      // The Host dimension names the host; the EC2 hostname would add a dimension alarms cannot predict.
      omit_hostname: true,
      logfile: "/opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log",
    },
    metrics: {
      namespace: METRIC_NAMESPACES.host,
      metrics_collected: {
        cpu: section(["usage_active", "usage_iowait", "usage_steal"], { totalcpu: true }),
        mem: section(["used_percent", "available"]),
        swap: section(["used_percent"]),
        disk: section(["used_percent", "inodes_free", "inodes_used"], { resources: [...watchedMounts(host.role)], drop_device: true }),
        // io_time: ms the device was busy (utilisation); read_time/write_time over reads/writes:
        // latency per operation (OBS-8).
        diskio: section(["io_time", "read_time", "write_time", "reads", "writes", "iops_in_progress"], { resources: ["*"] }),
        net: section(["drop_in", "drop_out", "err_in", "err_out"], { resources: ["*"] }),
        netstat: section(["tcp_established", "tcp_time_wait", "tcp_close_wait"]),
        // Open fds per process next to the collector's FdUsedPercent (fds over the limit).
        procstat: WATCHED_PROCESSES[host.role].map((p) => ({
          exe: `^${p.comm}$`,
          measurement: ["cpu_usage", "memory_rss", "num_fds", "pid_count"],
          metrics_collection_interval: METRICS_INTERVAL_SECONDS,
          append_dimensions: append,
        })),
      },
    },
    logs: {
      logs_collected: { files: { collect_list: logs } },
      force_flush_interval: 15,
    },
  };
}

/** The agent config as the host receives it: deterministic JSON, keys sorted. */
export function renderCloudWatchAgentConfig(model: StackModel, host: HostId): string {
  return renderSortedJson(cloudWatchAgentConfig(model, host));
}

export function cloudWatchAgentHostFile(model: StackModel, host: HostId): HostFile {
  return {
    path: CLOUDWATCH_AGENT_CONFIG_PATH,
    content: renderCloudWatchAgentConfig(model, host),
    mode: "0644",
    owner: "root",
    group: "root",
  };
}
