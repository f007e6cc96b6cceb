// Stub Odoo upstreams and HTTPS clients for the nginx checks (PROXY-1..5). The stubs stand
// for Odoo's HTTP workers (8069) and gevent worker (8072) and record every request they see,
// so a test asserts what reached Odoo, not only what the client got back.
import * as http from "http";
import * as https from "https";
import type { AddressInfo } from "net";
import * as tls from "tls";
import { WebSocketServer, WebSocket, type ClientOptions } from "ws";

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly upgrade: boolean;
}

export interface StubUpstream {
  /** Which Odoo port the stub stands for, echoed in every answer ("8069", "8072"). */
  readonly label: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/** Path on the 8069 stub that answers after `slowResponseMs` (PROXY-5: long reports). */
export const SLOW_PATH = "/report/slow";

/**
 * Odoo HTTP stub: answers every request with 200 and a JSON body naming the stub; SLOW_PATH
 * answers only after `slowResponseMs`.
 */
export function startHttpStub(label: string, port: number, slowResponseMs: number): Promise<StubUpstream> {
  const seen: SeenRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, upgrade: false });
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ upstream: label, url: req.url }));
    };
    if (req.url?.startsWith(SLOW_PATH)) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, slowResponseMs);
      timers.add(timer);
    } else {
      answer();
    }
  });
  return listen(server, port).then(() => ({
    label,
    port,
    seen,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }));
}

/**
 * Odoo gevent stub: a real WebSocket server. On connect it sends "hello from <label>"; every
 * message it receives comes back as "echo:<message>". Plain requests get 200 with the label.
 */
export function startWebSocketStub(label: string, port: number): Promise<StubUpstream & { readonly received: string[] }> {
  const seen: SeenRequest[] = [];
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, upgrade: false });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ upstream: label, url: req.url }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, upgrade: true });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data) => {
        const text = data.toString();
        received.push(text);
        ws.send(`echo:${text}`);
      });
      ws.send(`hello from ${label}`);
    });
  });
  return listen(server, port).then(() => ({
    label,
    port,
    seen,
    received,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }));
}

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      if ((server.address() as AddressInfo).port !== port) reject(new Error(`stub listens on the wrong port`));
      else resolve();
    });
  });
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly elapsedMs: number;
}

export interface TlsTarget {
  readonly port: number;
  /** SNI and Host: the public name nginx's server_name carries. */
  readonly serverName: string;
  readonly caPem: string;
}

/** An HTTPS request to 127.0.0.1 that verifies nginx's certificate against `serverName`. */
export function httpsGet(
  target: TlsTarget,
  path: string,
  options: { headers?: Record<string, string>; timeoutMs?: number; servername?: string | false } = {},
): Promise<HttpAnswer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port: target.port,
        path,
        method: "GET",
        // `false` sends no SNI at all, like a scanner connecting by IP.
        servername: options.servername === false ? "" : (options.servername ?? target.serverName),
        ca: target.caPem,
        // Node verifies the certificate against `servername` (the public name), not the IP dialled.
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(target.serverName, cert),
        headers: { host: target.serverName, ...(options.headers ?? {}) },
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => collect(res, started, resolve, reject),
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** A plain-text HTTP request (no TLS) to 127.0.0.1:port. */
export function plainHttpGet(port: number, path: string, host: string): Promise<HttpAnswer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "GET", headers: { host }, agent: false, timeout: 10_000 }, (res) =>
      collect(res, started, resolve, reject),
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 10000 ms")));
    req.on("error", reject);
    req.end();
  });
}

function collect(res: http.IncomingMessage, started: number, resolve: (a: HttpAnswer) => void, reject: (e: Error) => void): void {
  let body = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => (body += c));
  res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, elapsedMs: Date.now() - started }));
  res.on("error", reject);
}

export interface WebSocketExchange {
  readonly handshakeStatus: number;
  /** Messages the client received, in order. */
  readonly received: string[];
}

/**
 * Opens wss://<serverName>/<path> through nginx, waits for the upstream's greeting, sends
 * `message`, waits for its echo, closes. Rejects on a non-101 answer.
 */
export function webSocketRoundTrip(target: TlsTarget, path: string, message: string, timeoutMs = 10_000): Promise<WebSocketExchange> {
  return new Promise((resolve, reject) => {
    let handshakeStatus = 0;
    const received: string[] = [];
    // ws hands its options to tls.connect, which sends `servername` as SNI and checks the
    // certificate against it (the public name) although we dial 127.0.0.1; @types/ws omits it.
    const options: ClientOptions & { servername: string } = {
      servername: target.serverName,
      ca: target.caPem,
      headers: { host: target.serverName },
      handshakeTimeout: timeoutMs,
    };
    const ws = new WebSocket(`wss://127.0.0.1:${target.port}${path}`, options);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`WebSocket exchange incomplete after ${timeoutMs} ms; received ${JSON.stringify(received)}`));
    }, timeoutMs);
    ws.on("upgrade", (res) => (handshakeStatus = res.statusCode ?? 0));
    ws.on("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket handshake answered ${res.statusCode}, not 101`));
    });
    ws.on("message", (data) => {
      received.push(data.toString());
      if (received.length === 1) ws.send(message);
      if (received.includes(`echo:${message}`)) ws.close(1000);
    });
    ws.on("close", () => {
      clearTimeout(timer);
      resolve({ handshakeStatus, received });
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
