// A browser's WebSocket to Odoo's bus, run by the fleet suite inside the fleet's namespace (from
// "the internet"): wss://<domain>/websocket through the proxy's public address, subscribe to one
// channel as Odoo 17's web client does ({"event_name": "subscribe", "data": {"channels", "last"}}),
// print one JSON line per event, exit 0 on the first notification (2 on timeout).
//   node websocket-client.js URL CA_FILE PUBLIC_IP LOCAL_IP CHANNEL TIMEOUT_SECONDS
"use strict";
const fs = require("fs");
const WebSocket = require("ws");

const [url, caFile, publicIp, localIp, channel, timeoutSeconds] = process.argv.slice(2);
const out = (event) => process.stdout.write(`${JSON.stringify({ at: Date.now(), ...event })}\n`);
const { hostname } = new URL(url);
const ws = new WebSocket(url, {
  ca: fs.readFileSync(caFile),
  servername: hostname,
  localAddress: localIp,
  // The proxy's Elastic IP, as the public record of the domain says.
  lookup: (_host, opts, cb) => (opts && opts.all ? cb(null, [{ address: publicIp, family: 4 }]) : cb(null, publicIp, 4)),
  headers: { Origin: `https://${hostname}` },
});
const timer = setTimeout(
  () => {
    out({ event: "timeout" });
    process.exit(2);
  },
  Number(timeoutSeconds) * 1000,
);
ws.on("upgrade", (res) => out({ event: "upgrade", status: res.statusCode }));
ws.on("open", () => {
  ws.send(JSON.stringify({ event_name: "subscribe", data: { channels: [channel], last: 0 } }));
  out({ event: "subscribed", channel });
});
ws.on("message", (data) => {
  out({ event: "message", data: JSON.parse(data.toString("utf8")) });
  clearTimeout(timer);
  ws.close();
  process.exit(0);
});
ws.on("unexpected-response", (_req, res) => {
  out({ event: "unexpected-response", status: res.statusCode });
  process.exit(1);
});
ws.on("error", (e) => {
  out({ event: "error", message: String(e && e.message) });
  process.exit(1);
});
