// The one port catalog (DESIGN principle 3): security groups, renderers and policies all
// read these numbers, so a port can never be opened in one place and served on another.

export interface PortSpec {
  readonly port: number;
  readonly protocol: "tcp";
  readonly description: string;
}

export const PORTS = {
  https: { port: 443, protocol: "tcp", description: "HTTPS (reverse proxy, public)" },
  http: { port: 80, protocol: "tcp", description: "HTTP redirect to HTTPS (reverse proxy, public)" },
  odooHttp: { port: 8069, protocol: "tcp", description: "Odoo HTTP (workers)" },
  odooGevent: { port: 8072, protocol: "tcp", description: "Odoo gevent / websocket" },
  pgbouncer: { port: 6432, protocol: "tcp", description: "PgBouncer" },
  postgres: { port: 5432, protocol: "tcp", description: "PostgreSQL" },
  efs: { port: 2049, protocol: "tcp", description: "NFS to EFS (TLS via stunnel)" },
} as const satisfies Record<string, PortSpec>;

export type PortName = keyof typeof PORTS;

/** The host roles of the stack; each has one security group. */
export const ROLES = ["proxy", "odoo", "pgbouncer", "postgres"] as const;
export type Role = (typeof ROLES)[number];

/**
 * Peers that are not hosts but still sit behind a security group of the stack: the EFS mount
 * targets of the shared filestore (issue 8). They accept FLOWS and open nothing themselves.
 */
export const SERVICE_PEERS = ["efs"] as const;
export type ServicePeer = (typeof SERVICE_PEERS)[number];

/**
 * Who may talk to whom, and on which port. Security-group ingress and egress rules are
 * generated from this table and nothing else; the policy pack checks deployed rules
 * against the same table.
 */
export interface Flow {
  readonly from: Role;
  readonly to: Role | ServicePeer;
  readonly port: PortName;
  readonly checklist: string;
}

export const FLOWS: readonly Flow[] = [
  { from: "proxy", to: "odoo", port: "odooHttp", checklist: "NET-4" },
  { from: "proxy", to: "odoo", port: "odooGevent", checklist: "NET-4" },
  { from: "odoo", to: "pgbouncer", port: "pgbouncer", checklist: "NET-5" },
  { from: "pgbouncer", to: "postgres", port: "postgres", checklist: "NET-6" },
  // The shared filestore: only the Odoo hosts mount it (NET-1: nothing else reaches the data).
  { from: "odoo", to: "efs", port: "efs", checklist: "NET-1" },
];

/** The only port the world may reach with content, and only on the proxy (NET-2, NET-3). */
export const PUBLIC_INGRESS: { readonly role: Role; readonly port: PortName } = { role: "proxy", port: "https" };

/**
 * NET-3's one exception: plain HTTP on the proxy, open only while nginx answers it with nothing
 * but a redirect to https:// (settings.httpRedirect; templates/nginx.ts renders that server).
 */
export const PUBLIC_REDIRECT: { readonly role: Role; readonly port: PortName } = { role: "proxy", port: "http" };

/**
 * Ports each role may reach outside the VPC: package mirrors (80), and AWS APIs / SSM / S3 /
 * ACME (443). Inbound is governed by FLOWS alone.
 */
export const WORLD_EGRESS_PORTS: readonly number[] = [80, 443];

/**
 * SMTP ports the Odoo hosts may reach outside the VPC, one of them, only when the stack sets
 * outbound mail (settings.mail.port): submission (587), relay (25), and 2525, which relays such
 * as SES also offer. All STARTTLS: Odoo 17's odoo.conf SMTP speaks nothing else
 * (odoo/addons/base/models/ir_mail_server.py), so 465 is not among them.
 */
export const SMTP_EGRESS_PORTS: readonly number[] = [587, 25, 2525];
export const SMTP_EGRESS_ROLE: Role = "odoo";

/** Which roles may reach `port` on `role`, per FLOWS. */
export function allowedSources(role: Role | ServicePeer, port: number): Role[] {
  return FLOWS.filter((f) => f.to === role && PORTS[f.port].port === port).map((f) => f.from);
}
