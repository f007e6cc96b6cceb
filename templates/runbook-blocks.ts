// The runbooks' shell blocks, machine-readable: every fenced block says in its info string where
// it runs — the operator's laptop, or named hosts of the stack — so the fleet-boot suite can pick
// the host blocks of a procedure and run them as written, and a test can prove that no block
// mixes a laptop command (a Session Manager session, `pulumi`) with host commands.
//
//   ```sh laptop procedure=rotate-odoo step=keeper
//   ```sh host=pgbouncer procedure=rotate-odoo step=pgbouncer
//   ```sh host=odoo-1,odoo-2 procedure=upgrade-odoo step=package params=VERSION
//
// Markdown renderers read the first word as the language and ignore the rest. One writer and one
// reader of the format, both here, so they cannot disagree. Pure: no Pulumi import.
import { throwIfAny } from "../lib/problems";

/** Where a block runs: the operator's machine, or one or more hosts of the stack (by host id). */
export type BlockTarget = { readonly kind: "laptop" } | { readonly kind: "host"; readonly hosts: readonly string[] };

export interface BlockMeta {
  /** The procedure the block belongs to (templates/procedures.ts ids, or a runbook anchor). */
  readonly procedure?: string;
  /** The step of the procedure. */
  readonly step?: string;
  /**
   * Shell variables the operator sets before running the block (a pid from a query above, a
   * point in time): the commands use them as "$NAME". The fleet suite sets them in the environment.
   */
  readonly params?: readonly string[];
}

export interface ShellBlock extends BlockMeta {
  readonly target: BlockTarget;
  /** The block's lines, as written. */
  readonly commands: readonly string[];
  /** 1-based line of the opening fence. */
  readonly line: number;
}

const ID = /^[a-z0-9][a-z0-9-]*$/;
const PARAM = /^[A-Z][A-Z0-9_]*$/;

function checkMeta(target: BlockTarget, meta: BlockMeta): void {
  const problems: string[] = [];
  if (target.kind === "host") {
    if (target.hosts.length === 0) problems.push("a host block names at least one host");
    for (const h of target.hosts) if (!ID.test(h)) problems.push(`host id ${JSON.stringify(h)} must be lower-case letters, digits and '-'`);
  }
  for (const [k, v] of [
    ["procedure", meta.procedure],
    ["step", meta.step],
  ] as const) {
    if (v !== undefined && !ID.test(v)) problems.push(`${k} ${JSON.stringify(v)} must be lower-case letters, digits and '-'`);
  }
  for (const p of meta.params ?? [])
    if (!PARAM.test(p)) problems.push(`param ${JSON.stringify(p)} must be an upper-case shell variable name`);
  throwIfAny("runbook block", problems);
}

/** The info string of a shell block: `sh laptop …` or `sh host=a,b …`. */
export function infoString(target: BlockTarget, meta: BlockMeta = {}): string {
  checkMeta(target, meta);
  const words = ["sh", target.kind === "laptop" ? "laptop" : `host=${target.hosts.join(",")}`];
  if (meta.procedure) words.push(`procedure=${meta.procedure}`);
  if (meta.step) words.push(`step=${meta.step}`);
  if (meta.params && meta.params.length > 0) words.push(`params=${meta.params.join(",")}`);
  return words.join(" ");
}

/** A fenced shell block. A command line may not itself open or close a fence. */
export function shellBlock(target: BlockTarget, commands: readonly string[], meta: BlockMeta = {}): string {
  if (commands.length === 0) throw new Error("runbook block: no commands");
  const fence = commands.find((c) => /^\s*```/.test(c));
  if (fence !== undefined) throw new Error(`runbook block: a command must not start with a fence: ${JSON.stringify(fence)}`);
  return ["```" + infoString(target, meta), ...commands, "```"].join("\n");
}

export const laptopBlock = (commands: readonly string[], meta: BlockMeta = {}): string => shellBlock({ kind: "laptop" }, commands, meta);
export const hostBlock = (hosts: string | readonly string[], commands: readonly string[], meta: BlockMeta = {}): string =>
  shellBlock({ kind: "host", hosts: typeof hosts === "string" ? [hosts] : hosts }, commands, meta);

/** Thrown for a fence the format does not allow: unmarked, unknown words, both targets. */
export class RunbookBlockError extends Error {}

function parseInfo(info: string, line: number): { target: BlockTarget; meta: BlockMeta } {
  const [lang, ...words] = info.trim().split(/\s+/);
  const where = `line ${line}: \`\`\`${info}`;
  if (lang !== "sh") throw new RunbookBlockError(`${where}: every block is a shell block (\`\`\`sh), got ${JSON.stringify(lang)}`);
  let target: BlockTarget | undefined;
  const meta: { procedure?: string; step?: string; params?: string[] } = {};
  for (const w of words) {
    const [key, value] = w.includes("=") ? [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)] : [w, undefined];
    if (key === "laptop" && value === undefined) {
      if (target) throw new RunbookBlockError(`${where}: one target per block (laptop or host=…)`);
      target = { kind: "laptop" };
    } else if (key === "host" && value) {
      if (target) throw new RunbookBlockError(`${where}: one target per block (laptop or host=…)`);
      target = { kind: "host", hosts: value.split(",") };
    } else if ((key === "procedure" || key === "step") && value) meta[key] = value;
    else if (key === "params" && value) meta.params = value.split(",");
    else throw new RunbookBlockError(`${where}: unknown word ${JSON.stringify(w)}`);
  }
  if (!target) throw new RunbookBlockError(`${where}: says neither laptop nor host=<id>: where does it run?`);
  try {
    checkMeta(target, meta);
  } catch (err) {
    throw new RunbookBlockError(`${where}: ${(err as Error).message}`);
  }
  return { target, meta };
}

/**
 * Every fenced block of a runbook, in order. Throws RunbookBlockError on a block that is not a
 * marked shell block, or a fence left open: a runbook whose blocks cannot be told apart cannot
 * be run as written.
 */
export function extractShellBlocks(markdown: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  const all = markdown.split("\n");
  let open: { line: number; target: BlockTarget; meta: BlockMeta; commands: string[] } | undefined;
  all.forEach((text, i) => {
    const fence = /^```(.*)$/.exec(text);
    if (!open) {
      if (fence) open = { line: i + 1, ...parseInfo(fence[1], i + 1), commands: [] };
      return;
    }
    if (fence) {
      if (fence[1].trim() !== "") throw new RunbookBlockError(`line ${i + 1}: a block opens inside the block of line ${open.line}`);
      blocks.push({ target: open.target, ...open.meta, commands: open.commands, line: open.line });
      open = undefined;
      return;
    }
    open.commands.push(text);
  });
  if (open) throw new RunbookBlockError(`line ${open.line}: block never closed`);
  return blocks;
}

/** The host blocks of one procedure on `host`, in runbook order: what the fleet suite runs there. */
export function hostBlocksOf(markdown: string, procedure: string, host?: string): ShellBlock[] {
  return extractShellBlocks(markdown).filter(
    (b) => b.procedure === procedure && b.target.kind === "host" && (host === undefined || b.target.hosts.includes(host)),
  );
}

/** A block's commands as one script for `bash -e`, with its params taken from `values`. */
export function blockScript(block: ShellBlock, values: Readonly<Record<string, string>> = {}): string {
  const missing = (block.params ?? []).filter((p) => values[p] === undefined);
  if (missing.length > 0) throw new Error(`block at line ${block.line} needs ${missing.join(", ")}`);
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return [...(block.params ?? []).map((p) => `${p}=${quote(values[p])}`), ...block.commands].join("\n") + "\n";
}
