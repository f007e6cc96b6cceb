// The internal CA's generations (TLS-2, TLS-4): which CA signs the hosts' certificates and which
// CAs every host trusts, from internalCaGeneration and internalCaNext. Pure: the InternalCa
// component, the rotation procedure and the fleet suite read the same answer.
//
// Why generations: every host trusts one CA file, and a CA re-issued in place reaches the hosts
// one apply at a time, so between two hosts' steps a new TLS connection from a host that has
// the new CA to one still serving a certificate of the old (or the reverse) fails verify-full.
// A rotation that never breaks a connection trusts the next CA everywhere before it signs
// anything, and stops trusting the old one only after nothing it signed is served:
//   none     → trusted [g],      issuing g     (steady state)
//   trusted  → trusted [g, g+1], issuing g     (step 1: the next CA reaches every trust store)
//   issuing  → trusted [g, g+1], issuing g+1   (step 2: new host certificates, either CA accepted)
//   generation g+1, none → trusted [g+1], issuing g+1   (step 3: the old CA is dropped)
import type { StackSettings } from "./config";

export type InternalCaNext = StackSettings["internalCaNext"];

export interface InternalCaGenerations {
  /** The generation whose CA signs every host certificate. */
  readonly issuing: number;
  /** Generations every host trusts, the issuing one first (the CA file's first certificate is the one whose expiry the collector publishes). */
  readonly trusted: readonly number[];
}

export function internalCaGenerations(settings: Pick<StackSettings, "internalCaGeneration" | "internalCaNext">): InternalCaGenerations {
  const g = settings.internalCaGeneration;
  switch (settings.internalCaNext) {
    case "none":
      return { issuing: g, trusted: [g] };
    case "trusted":
      return { issuing: g, trusted: [g, g + 1] };
    case "issuing":
      return { issuing: g + 1, trusted: [g + 1, g] };
  }
}

/**
 * The Pulumi name of a generation's CA resource (`part` is "key" or "cert"). Generation 1 keeps
 * the names the stack had before generations existed, so an existing stack replaces nothing.
 */
export const internalCaResourceName = (component: string, generation: number, part: "key" | "cert"): string =>
  generation === 1 ? `${component}-ca-${part}` : `${component}-ca${generation}-${part}`;

/** The trusted CAs' PEMs as one file, in `trusted` order (each PEM ends with a newline). */
export const internalCaBundle = (pems: readonly string[]): string => pems.map((p) => (p.endsWith("\n") ? p : `${p}\n`)).join("");
