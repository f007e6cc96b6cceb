// Walks a stack's runbooks against what the program planned (issue 13, "every engine honest"):
// every link resolves to an anchor in a runbook that exists, every block is marked and names only
// hosts that have an instance, every `pulumi stack output X` is an output, every alarm the
// runbooks list is an alarm the stack creates and every alarm it creates is listed, every URN
// given to `pulumi up --replace` and every SSM parameter a command writes is a planned resource,
// and every key `pulumi config set` writes is a key of the settings table, with a value it accepts.
// Returns the problems, so a test shows them all at once.
import { TAG_KEYS } from "../../components/tags";
import { plainValue, type CapturedResource, type WireValue } from "../../tools/mocks";
import { extractShellBlocks } from "../../templates/runbook-blocks";
import { SETTINGS, type SettingKey } from "../../lib/settings";

export interface PlannedStack {
  readonly resources: readonly CapturedResource[];
  readonly outputs: Readonly<Record<string, WireValue>>;
}

export function runbookProblems(
  runbooks: Readonly<Record<string, string>>,
  planned: PlannedStack,
): { problems: string[]; checked: Record<string, number> } {
  const problems: string[] = [];
  const checked = { links: 0, hosts: 0, outputs: 0, alarms: 0, urns: 0, parameters: 0, configKeys: 0 };
  const inputs = (r: CapturedResource) => plainValue(r.inputs) as Record<string, any>;
  const of = (type: string) => planned.resources.filter((r) => r.type === type);
  const hosts = new Set(of("aws:ec2/instance:Instance").map((r) => String(inputs(r).tags?.[TAG_KEYS.host])));
  const alarms = new Set(of("aws:cloudwatch/metricAlarm:MetricAlarm").map((r) => String(inputs(r).name)));
  const parameters = new Set(of("aws:ssm/parameter:Parameter").map((r) => String(inputs(r).name)));
  const urns = new Set(planned.resources.map((r) => r.urn));
  const outputs = new Set(Object.keys(planned.outputs));

  for (const [file, text] of Object.entries(runbooks)) {
    for (const [, target, id] of text.matchAll(/\]\(([A-Za-z0-9._-]*)#([A-Za-z0-9_-]+)\)/g)) {
      checked.links++;
      const doc = target === "" ? text : runbooks[target];
      if (doc === undefined) problems.push(`${file}: links to ${target}, which is not among the runbooks`);
      else if (!doc.includes(`<a id="${id}"></a>`)) problems.push(`${file}: links to ${target || file}#${id}, which has no such anchor`);
    }
    let blocks: ReturnType<typeof extractShellBlocks> = [];
    try {
      blocks = extractShellBlocks(text);
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
    }
    for (const b of blocks) {
      const named =
        b.target.kind === "host"
          ? [...b.target.hosts]
          : [...b.commands.join("\n").matchAll(new RegExp(`Name=tag:${TAG_KEYS.host},Values=([a-z0-9-]+)`, "g"))].map((m) => m[1]);
      for (const h of named) {
        checked.hosts++;
        if (!hosts.has(h)) problems.push(`${file}:${b.line}: names host ${h}, which has no instance in this stack`);
      }
      for (const c of b.commands) {
        for (const [, urn] of c.matchAll(/pulumi up --replace '([^']+)'/g)) {
          checked.urns++;
          if (!urns.has(urn)) problems.push(`${file}:${b.line}: replaces ${urn}, which the stack does not have`);
        }
        for (const [, key, value] of c.matchAll(/pulumi config set (?:--path )?'?(?:odoo-stack:)?([A-Za-z0-9]+)\S* (\S+)/g)) {
          checked.configKeys++;
          const spec = (SETTINGS as Record<string, (typeof SETTINGS)[SettingKey]>)[key];
          if (spec === undefined) problems.push(`${file}:${b.line}: sets config key ${key}, which the settings table does not have`);
          else if (spec.kind === "integer" && !/^\d+$/.test(value))
            problems.push(`${file}:${b.line}: sets ${key} to ${value}, not an integer`);
          else if ("range" in spec && spec.range && "oneOf" in spec.range && !(spec.range.oneOf as readonly string[]).includes(value))
            problems.push(`${file}:${b.line}: sets ${key} to ${value}, not one of ${spec.range.oneOf.join(", ")}`);
        }
        for (const [, name] of c.matchAll(/aws ssm (?:put|get)-parameter .*?--name (\S+)/g)) {
          checked.parameters++;
          if (!parameters.has(name)) problems.push(`${file}:${b.line}: names SSM parameter ${name}, which the stack does not create`);
        }
      }
    }
    for (const [, output] of text.matchAll(/pulumi stack output ([A-Za-z0-9_]+)/g)) {
      checked.outputs++;
      if (!outputs.has(output)) problems.push(`${file}: names stack output ${output}, which the stack does not export`);
    }
  }

  // The alarm index: its headings are exactly the alarms the stack creates.
  const index = runbooks["alarms.md"] ?? "";
  const listed = new Set([...index.matchAll(/^### (\S+)$/gm)].map((m) => m[1]));
  for (const a of listed) {
    checked.alarms++;
    if (!alarms.has(a)) problems.push(`alarms.md: lists alarm ${a}, which the stack does not create`);
  }
  for (const a of alarms) if (!listed.has(a)) problems.push(`alarms.md: the stack creates alarm ${a}, which it does not list`);
  return { problems, checked };
}
