// The VPC's resolver (VPC base + 2) as the fleet sees it: the private hosted zone's records from
// the plan, the public names the hosts reach (AWS endpoints, Odoo's and Debian's archives, Let's
// Encrypt) pointing at the edge's stand-ins, and NXDOMAIN for everything else, so a host that
// tries to reach a name the suite does not stand in for fails loudly instead of leaving.
import * as dgram from "dgram";

export interface DnsZone {
  /** Exact names (lower case, no trailing dot) → IPv4; the Route 53 stand-in adds and removes A records. */
  readonly records: Record<string, string>;
  /** A name and every name below it → IPv4 (e.g. the S3 endpoint's virtual-hosted buckets). */
  readonly suffixes: Readonly<Record<string, string>>;
  /** TXT records, set by the Route 53 stand-in (ACME DNS-01). */
  readonly txt: Map<string, string[]>;
}

function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  for (;;) {
    const len = msg[i];
    if (len === 0) return { name: labels.join("."), end: i + 1 };
    if ((len & 0xc0) === 0xc0) throw new Error("compressed names are not expected in questions");
    labels.push(msg.subarray(i + 1, i + 1 + len).toString("ascii"));
    i += 1 + len;
  }
}

function encodeName(name: string): Buffer {
  const parts = name
    .split(".")
    .filter(Boolean)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "ascii")]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

export function lookup(zone: DnsZone, name: string): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, "");
  if (zone.records[n]) return zone.records[n];
  for (const [suffix, ip] of Object.entries(zone.suffixes)) if (n === suffix || n.endsWith(`.${suffix}`)) return ip;
  return undefined;
}

/** One DNS answer to one query: A and TXT records, NOERROR/NODATA for other types of a known name. */
export function answer(zone: DnsZone, query: Buffer): Buffer {
  const id = query.readUInt16BE(0);
  const { name, end } = readName(query, 12);
  const qtype = query.readUInt16BE(end);
  const question = query.subarray(12, end + 4);
  const n = name.toLowerCase();
  const ip = lookup(zone, n);
  const txt = zone.txt.get(n) ?? [];
  const answers: Buffer[] = [];
  const rr = (type: number, data: Buffer) => {
    const head = Buffer.alloc(10);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(1, 2);
    head.writeUInt32BE(60, 4);
    head.writeUInt16BE(data.length, 8);
    answers.push(Buffer.concat([encodeName(n), head, data]));
  };
  if (qtype === 1 && ip) rr(1, Buffer.from(ip.split(".").map(Number)));
  if (qtype === 16) for (const t of txt) rr(16, Buffer.concat([Buffer.from([Buffer.byteLength(t)]), Buffer.from(t)]));
  const known = ip !== undefined || txt.length > 0;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  // QR, opcode 0, AA, RD copied, RA; rcode NXDOMAIN (3) for unknown names.
  header.writeUInt16BE(0x8000 | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

export function startDns(zone: DnsZone, address: string, onQuery: (name: string, found: boolean) => void): Promise<dgram.Socket> {
  const socket = dgram.createSocket("udp4");
  socket.on("message", (msg, rinfo) => {
    try {
      const reply = answer(zone, msg);
      onQuery(readName(msg, 12).name, (reply.readUInt16BE(2) & 0x000f) === 0);
      socket.send(reply, rinfo.port, rinfo.address);
    } catch {
      /* a malformed query gets no answer */
    }
  });
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(53, address, () => resolve(socket));
  });
}
