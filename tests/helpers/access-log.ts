// Access-log lines in the exact JSON format templates/nginx.ts renders (odoo_json: keys sorted,
// escape=json, every value a string), and a known latency distribution per route class, shared
// by the unit test of the classifier and the integration test that runs the shipped collector.
import type { RouteClass } from "../../templates/metrics";

/** An access-log line exactly as templates/nginx.ts's odoo_json format writes it (keys sorted, escape=json). */
export function accessLogLine(uri: string, status: number, requestTime: number): string {
  const fields: Record<string, string> = {
    bytes_sent: "512",
    client: "203.0.113.7",
    host: "erp.example.com",
    method: "POST",
    protocol: "HTTP/1.1",
    request_length: "420",
    request_time: requestTime.toFixed(3),
    status: String(status),
    time: "2026-11-26T12:00:00+00:00",
    upstream_addr: "10.40.10.20:8069",
    upstream_connect_time: "0.001",
    upstream_response_time: requestTime.toFixed(3),
    upstream_status: String(status),
    uri,
    user_agent: "Mozilla/5.0",
  };
  return `{${Object.entries(fields)
    .map(([k, v]) => `"${k}":"${v}"`)
    .join(",")}}`;
}

/**
 * A known distribution per class: login 1..200 ms, list 1..400 × 5 ms, writes 1..100 × 20 ms,
 * reports 1..50 s; plus 5xx and 504 answers, a WebSocket and a garbage line.
 */
export function knownDistribution(): {
  lines: string[];
  expected: Record<RouteClass, { count: number; p95: number; p99: number }>;
  requests: number;
  errors: number;
  timeouts: number;
} {
  const lines: string[] = [];
  const push = (uri: string, n: number, seconds: (i: number) => number) => {
    for (let i = 1; i <= n; i++) lines.push(accessLogLine(uri, 200, seconds(i)));
  };
  push("/web/login", 200, (i) => i / 1000);
  push("/web/dataset/call_kw/res.partner/web_search_read", 400, (i) => (i * 5) / 1000);
  push("/web/dataset/call_kw/sale.order/web_save", 100, (i) => (i * 20) / 1000);
  push("/report/pdf/sale.report_saleorder/7", 50, (i) => i);
  for (let i = 0; i < 6; i++) lines.push(accessLogLine("/web/image/res.partner/3/avatar_128", 500, 0.01));
  for (let i = 0; i < 4; i++) lines.push(accessLogLine("/web/action/load", 504, 600));
  lines.push(accessLogLine("/websocket", 101, 3600));
  lines.push("not json at all");
  return {
    lines,
    expected: {
      login: { count: 200, p95: 0.19, p99: 0.198 },
      list: { count: 400, p95: 1.9, p99: 1.98 },
      write: { count: 100, p95: 1.9, p99: 1.98 },
      report: { count: 50, p95: 48, p99: 50 },
    },
    requests: 760,
    errors: 10,
    timeouts: 4,
  };
}
