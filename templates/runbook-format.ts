// Markdown building blocks shared by the runbook renderers (templates/runbooks.ts,
// runbook-backup.ts): the one code-span escape, the Session Manager command, the shell links,
// and the rendering of an operational procedure (templates/procedures.ts) as marked blocks
// (templates/runbook-blocks.ts). Pure.
import { TAG_KEYS } from "../components/tags";
import type { HostId, StackModel } from "../lib/model";
import { GENERATED } from "./format";
import { stepHosts, type OperationalProcedure } from "./procedures";
import { hostBlock, laptopBlock } from "./runbook-blocks";

/** A markdown code span; names here never contain a backtick, and a newline would break the line. */
export function code(value: string | number): string {
  const s = String(value);
  if (/[`\r\n]/.test(s)) throw new Error(`runbook value must not contain a backtick or a newline: ${JSON.stringify(s)}`);
  return `\`${s}\``;
}

/** Shell on a host of the stack through Session Manager, found by its odoo-stack:host tag (a laptop command). */
export function sessionCommand(model: StackModel, host: HostId): string {
  const lookup = `aws ec2 describe-instances --region ${model.settings.region} --filters Name=tag:${TAG_KEYS.stack},Values=${model.stack} Name=tag:${TAG_KEYS.host},Values=${host.id} Name=instance-state-name,Values=running --query 'Reservations[].Instances[].InstanceId' --output text`;
  return `aws ssm start-session --region ${model.settings.region} --target "$(${lookup})"`;
}

/** The file holding every host's shell (Session Manager) under an anchor `shell-<host>`. */
export const SHELLS_FILE = "hosts.md";
export const shellAnchor = (host: HostId): string => `shell-${host.id}`;
/** "`odoo-1` ([shell](hosts.md#shell-odoo-1))": a host named with the way onto it. */
export const onHost = (host: HostId, from: string): string =>
  `${code(host.id)} ([shell](${from === SHELLS_FILE ? "" : SHELLS_FILE}#${shellAnchor(host)}))`;

export function preamble(model: StackModel, title: string): string[] {
  return [`<!-- ${GENERATED} -->`, `# ${title} — stack ${code(model.stack)}`, ""];
}

/** How `odoo-stack rotate` is run from a checkout of this repository (tools/odoo-stack.ts). */
export const rotateCommand = (model: StackModel, password: string): string =>
  `npx tsx tools/odoo-stack.ts rotate ${password} --stack ${model.stack} --region ${model.settings.region}`;

/**
 * One procedure: its anchor and heading, its notes, then every step as a paragraph ("Step n. …
 * on `host`. Checks: …") and one marked block per host it runs on, in order. A step on every
 * Odoo host becomes one block per host: each block runs on exactly the hosts it names.
 */
export function procedureSection(model: StackModel, p: OperationalProcedure, from: string, level = "##"): string[] {
  const out = [`<a id="${p.id}"></a>`, `${level} ${p.title} (${p.checklist.join(", ")})`, ""];
  for (const n of p.notes) out.push(n, "");
  let n = 0;
  for (const step of p.steps) {
    const params = step.params && step.params.length > 0 ? ` Set ${step.params.map((x) => code(`${x}=…`)).join(", ")} first.` : "";
    const meta = { procedure: p.id, step: step.id, params: step.params };
    const hosts = stepHosts(model, step);
    if (hosts.length === 0) {
      out.push(
        `**Step ${++n}. ${step.title}** — on your laptop.${params} Checks: ${step.checks}`,
        "",
        laptopBlock(step.commands, meta),
        "",
      );
    }
    for (const h of hosts) {
      out.push(
        `**Step ${++n}. ${step.title}** — on ${onHost(h, from)}.${params} Checks: ${step.checks}`,
        "",
        hostBlock(h.id, step.commands, meta),
        "",
      );
    }
  }
  return out;
}
