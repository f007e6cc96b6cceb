// lib/cidr.ts: the IPv4 arithmetic behind the config's network checks (NET-4) and the default
// subnet layout.
import { cidrSize, contains, formatCidr, hostAddress, isPrivate, overlaps, parseCidr, subnet, type Cidr } from "../../lib/cidr";

const c = (text: string): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`test CIDR ${text} does not parse`);
  return parsed;
};

describe("parseCidr / formatCidr", () => {
  it.each(["10.40.0.0/16", "0.0.0.0/0", "192.168.1.128/25", "255.255.255.255/32", "172.16.0.0/12"])("round-trips %s", (text) => {
    expect(formatCidr(c(text))).toBe(text);
  });

  it.each([
    ["host bits set", "10.40.0.1/16"],
    ["no prefix", "10.40.0.0"],
    ["prefix over 32", "10.0.0.0/33"],
    ["octet over 255", "10.256.0.0/16"],
    ["three octets", "10.40.0/16"],
    ["blank around", " 10.40.0.0/16"],
    ["IPv6", "fd00::/8"],
    ["empty", ""],
  ])("refuses %s (%s)", (_why, text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it("keeps the base unsigned for addresses above 128.0.0.0", () => {
    expect(c("192.168.0.0/16").base).toBe(0xc0a80000);
  });
});

describe("containment and overlap", () => {
  it.each([
    ["10.40.0.0/16", "10.40.16.0/20", true],
    ["10.40.0.0/16", "10.40.0.0/16", true],
    ["10.40.0.0/16", "10.41.0.0/20", false],
    ["10.40.16.0/20", "10.40.0.0/16", false],
    ["0.0.0.0/0", "203.0.113.0/24", true],
  ])("contains(%s, %s) = %s", (outer, inner, expected) => {
    expect(contains(c(outer), c(inner))).toBe(expected);
  });

  it.each([
    ["10.40.0.0/20", "10.40.16.0/20", false],
    ["10.40.0.0/20", "10.40.15.0/24", true],
    ["10.40.15.0/24", "10.40.0.0/20", true],
    ["10.40.0.0/16", "10.40.0.0/16", true],
  ])("overlaps(%s, %s) = %s", (a, b, expected) => {
    expect(overlaps(c(a), c(b))).toBe(expected);
  });
});

describe("isPrivate (RFC 1918, NET-4)", () => {
  it.each([
    ["10.0.0.0/8", true],
    ["10.8.0.0/16", true],
    ["172.16.0.0/12", true],
    ["172.31.255.0/24", true],
    ["172.32.0.0/16", false],
    ["192.168.1.0/24", true],
    ["192.169.0.0/16", false],
    ["8.0.0.0/7", false],
    ["0.0.0.0/0", false],
    ["100.64.0.0/10", false],
  ])("%s → %s", (text, expected) => {
    expect(isPrivate(c(text))).toBe(expected);
  });
});

describe("sizes, subnets and host addresses", () => {
  it("cidrSize", () => {
    expect([cidrSize(c("10.40.0.0/16")), cidrSize(c("10.40.0.0/26")), cidrSize(c("10.40.0.1/32")), cidrSize(c("0.0.0.0/0"))]).toEqual([
      65536,
      64,
      1,
      2 ** 32,
    ]);
  });

  it("subnet carves consecutive blocks (the default /20 layout: public 0.., private 8..)", () => {
    const vpc = c("10.40.0.0/16");
    expect([0, 1, 8, 9, 15].map((i) => formatCidr(subnet(vpc, 20, i)))).toEqual([
      "10.40.0.0/20",
      "10.40.16.0/20",
      "10.40.128.0/20",
      "10.40.144.0/20",
      "10.40.240.0/20",
    ]);
    expect(formatCidr(subnet(c("192.168.0.0/16"), 24, 255))).toBe("192.168.255.0/24");
  });

  it("hostAddress offsets inside a subnet, carrying into the next octet", () => {
    expect(hostAddress(c("10.40.128.0/20"), 10)).toBe("10.40.128.10");
    expect(hostAddress(c("10.40.128.0/20"), 2)).toBe("10.40.128.2");
    expect(hostAddress(c("10.40.0.0/16"), 258)).toBe("10.40.1.2");
    expect(hostAddress(c("192.168.255.0/24"), 255)).toBe("192.168.255.255");
  });
});
