// The fleet's network: one namespace the suite creates, a bridge standing in for the VPC's
// subnets, the VPC router's addresses (each subnet's base + 1) and resolver (VPC base + 2), the
// edge's "internet" and instance-metadata addresses, and the proxy's Elastic IP translated to
// its private address as AWS's 1:1 NAT does. The namespace has no interface outside itself, so
// nothing the hosts send can leave it.
import { execFileSync } from "child_process";
import { contains, hostAddress, parseCidr, type Cidr } from "../../../lib/cidr";

export const BRIDGE = "br-fleet";
/** The edge's address for every public service (TEST-NET-1, RFC 5737). */
export const EDGE_IP = "192.0.2.10";
export const IMDS_IP = "169.254.169.254";
/** The address the suite's clients on "the internet" use (TEST-NET-3). */
export const CLIENT_IP = "203.0.113.77";

export interface FleetNetworkSpec {
  readonly vpcCidr: string;
  /** Every subnet a host lives in. */
  readonly subnets: readonly string[];
  readonly eip?: { readonly publicIp: string; readonly privateIp: string };
}

export interface FleetNetwork {
  readonly name: string;
  readonly path: string;
  readonly resolverIp: string;
  /** The subnet's router (base + 1) and prefix length, for a host's network configuration. */
  gatewayOf(ip: string): { readonly gateway: string; readonly prefix: number };
  /** Runs a command inside the namespace (the suite's clients). */
  exec(command: string, args: readonly string[], opts?: { input?: string; timeoutMs?: number }): string;
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });

const holds = (c: Cidr, address: string): boolean => contains(c, parseCidr(`${address}/32`) as Cidr);

export function createNetwork(name: string, spec: FleetNetworkSpec): FleetNetwork {
  const nsPath = `/run/netns/${name}`;
  ip("netns", "add", name);
  const inNs = (...args: string[]) => ip("-n", name, ...args);
  try {
    inNs("link", "set", "lo", "up");
    inNs("link", "add", BRIDGE, "type", "bridge");
    const subnets = spec.subnets.map((s) => parseCidr(s) as Cidr);
    for (const s of subnets) inNs("addr", "add", `${hostAddress(s, 1)}/${s.prefix}`, "dev", BRIDGE);
    const vpc = parseCidr(spec.vpcCidr) as Cidr;
    const resolverIp = hostAddress(vpc, 2);
    for (const address of [resolverIp, EDGE_IP, IMDS_IP]) inNs("addr", "add", `${address}/32`, "dev", BRIDGE);
    inNs("addr", "add", `${CLIENT_IP}/32`, "dev", "lo");
    inNs("link", "set", BRIDGE, "up");
    execFileSync("nsenter", [`--net=${nsPath}`, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    if (spec.eip) {
      // The Elastic IP: AWS translates it to the instance's private address both ways.
      const { publicIp, privateIp } = spec.eip;
      const rules = [
        "table ip fleet {",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat;",
        `    ip daddr ${publicIp} dnat to ${privateIp};`,
        "  }",
        "  chain output {",
        "    type nat hook output priority -100;",
        `    ip daddr ${publicIp} dnat to ${privateIp};`,
        "  }",
        "}",
      ].join("\n");
      execFileSync("nsenter", [`--net=${nsPath}`, "nft", "-f", "-"], { input: rules });
      // A route for the public address, so that the namespace's own clients reach the NAT hook.
      inNs("route", "add", `${publicIp}/32`, "dev", BRIDGE);
    }
    return {
      name,
      path: nsPath,
      resolverIp,
      gatewayOf(address: string) {
        const s = subnets.find((c) => holds(c, address));
        if (!s) throw new Error(`${address} is in none of the fleet's subnets ${spec.subnets.join(", ")}`);
        return { gateway: hostAddress(s, 1), prefix: s.prefix };
      },
      exec(command, args, opts = {}) {
        return execFileSync("nsenter", [`--net=${nsPath}`, command, ...args], {
          encoding: "utf8",
          input: opts.input,
          timeout: opts.timeoutMs ?? 60_000,
          stdio: ["pipe", "pipe", "pipe"],
        });
      },
      destroy() {
        try {
          ip("netns", "del", name);
        } catch {
          /* already gone */
        }
      },
    };
  } catch (e) {
    try {
      ip("netns", "del", name);
    } catch {
      /* best effort */
    }
    throw e;
  }
}
