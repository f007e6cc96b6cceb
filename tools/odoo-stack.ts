// `odoo-stack rotate <password>`: the whole password rotation (AUTH-4) from the operator's laptop,
// one command. It runs the host steps of templates/procedures.ts — the same table the runbooks
// print and odoo-stack-rotate.sh follows — through SSM Run Command (AWS-RunShellScript), in the
// proven order: each step is sent to its host, waited for, and its exit status and output checked
// (the step's `expect`: e.g. "installed /etc/pgbouncer/userlist.txt" proves the new verifier
// arrived). The first failure stops the run with what failed, what already ran and how to resume.
// Before any command is sent, every host is resolved (by its odoo-stack tags) and must be online.
//
//   npx tsx tools/odoo-stack.ts rotate odoo --stack prod [--region eu-west-1] [--from STEP[@HOST]] [--dry-run]
//
// The keeper step (`passwordRotation.<name>` + `pulumi up`) is yours, before: this command never
// changes the stack. Why the SDK and not the aws CLI: one pinned dependency (24 packages, ~21 MB,
// ~3 s of `npm ci`) instead of whatever CLI version each laptop has; its calls are typed, its
// errors named (InvocationDoesNotExist right after SendCommand is retried, not parsed from text),
// and the tests drive it against a stand-in SSM endpoint over the real wire protocol. It reads
// credentials like the aws CLI (environment, profiles, SSO).
import * as path from "path";
import { DescribeInstanceInformationCommand, GetCommandInvocationCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { TAG_KEYS } from "../components/tags";
import type { StackModel } from "../lib/model";
import { ROTATABLE_PASSWORD_NAMES, type RotatablePassword } from "../lib/rotation";
import { rotationProcedure, stepHosts, type ProcedureStep } from "../templates/procedures";
import { readStackConfig, stackModelOf } from "./stack-config";

const ROOT = path.resolve(__dirname, "..");

/** The three SSM calls the rotation makes; the SDK's client in production, anything in tests. */
export interface SsmCalls {
  describeInstanceInformation(input: {
    Filters: { Key: string; Values: string[] }[];
  }): Promise<{ InstanceInformationList?: { InstanceId?: string; PingStatus?: string }[] }>;
  sendCommand(input: {
    DocumentName: string;
    InstanceIds: string[];
    Parameters: Record<string, string[]>;
    Comment: string;
    TimeoutSeconds: number;
  }): Promise<{ Command?: { CommandId?: string } }>;
  getCommandInvocation(input: {
    CommandId: string;
    InstanceId: string;
  }): Promise<{ Status?: string; ResponseCode?: number; StandardOutputContent?: string; StandardErrorContent?: string }>;
}

/** SsmCalls over the AWS SDK's SSM client. */
export function sdkCalls(client: SSMClient): SsmCalls {
  return {
    describeInstanceInformation: (input) => client.send(new DescribeInstanceInformationCommand(input)),
    sendCommand: (input) => client.send(new SendCommandCommand(input)),
    getCommandInvocation: (input) => client.send(new GetCommandInvocationCommand(input)),
  };
}

export interface RotateOptions {
  readonly model: StackModel;
  readonly password: RotatablePassword;
  /** Start at this step, STEP or STEP@HOST (after a failure was fixed). Optional. Defaults to the first host step. */
  readonly from?: string;
  /** Print the plan, send nothing. Optional. Defaults to false. */
  readonly dryRun?: boolean;
  /** Seconds between polls of a running command. Optional. Defaults to 2. */
  readonly pollSeconds?: number;
  /** Seconds a step may run on its host (AWS-RunShellScript executionTimeout). Optional. Defaults to 600. */
  readonly stepTimeoutSeconds?: number;
  readonly log?: (line: string) => void;
}

/** The run stopped: `message` says what failed, what ran and how to resume. */
export class RotationError extends Error {}

const TERMINAL = new Set([
  "Success",
  "Cancelled",
  "TimedOut",
  "Failed",
  "Cancelling",
  "DeliveryTimedOut",
  "ExecutionTimedOut",
  "Undeliverable",
  "Terminated",
]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tail = (text: string | undefined, n = 15): string =>
  (text ?? "")
    .trimEnd()
    .split("\n")
    .slice(-n)
    .map((l) => `      ${l}`)
    .join("\n");

interface PlannedStep {
  readonly step: ProcedureStep;
  readonly hostId: string;
}

/** The host steps of the rotation, one per host, in order; from `from` on when given. */
export function rotationPlan(
  model: StackModel,
  password: RotatablePassword,
  from?: string,
): { readonly before: readonly ProcedureStep[]; readonly steps: readonly PlannedStep[] } {
  const proc = rotationProcedure(model, password);
  const all = proc.steps.filter((s) => s.where !== "laptop").flatMap((s) => stepHosts(model, s).map((h) => ({ step: s, hostId: h.id })));
  // STEP resumes at the step's first host; STEP@HOST at that host (one Odoo host of several).
  const start = from === undefined ? 0 : all.findIndex((p) => p.step.id === from || `${p.step.id}@${p.hostId}` === from);
  if (start < 0)
    throw new RotationError(
      `--from ${from}: the ${password} rotation has no such step; its steps are ${all.map((p) => `${p.step.id}@${p.hostId}`).join(", ")}`,
    );
  return { before: proc.steps.filter((s) => s.where === "laptop"), steps: all.slice(start) };
}

/** Runs the rotation's host steps through SSM; throws RotationError at the first failure. */
export async function rotate(opts: RotateOptions, ssm: SsmCalls): Promise<void> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const { model, password } = opts;
  const plan = rotationPlan(model, password, opts.from);
  const pollMs = (opts.pollSeconds ?? 2) * 1000;
  const timeout = opts.stepTimeoutSeconds ?? 600;
  log(`odoo-stack rotate ${password}: stack ${model.stack}, ${plan.steps.length} host step(s) through SSM Run Command`);
  for (const b of plan.before) log(`  before (yours, done already): ${b.title} — ${b.commands.join(" && ")}`);
  plan.steps.forEach((p, i) => log(`  ${i + 1}. ${p.step.id} on ${p.hostId}: ${p.step.commands.join("; ")}`));
  if (opts.dryRun) return;

  // Every host first: a missing or offline host stops the run before anything changed.
  const instances = new Map<string, string>();
  for (const hostId of [...new Set(plan.steps.map((p) => p.hostId))]) {
    const found = await ssm.describeInstanceInformation({
      Filters: [
        { Key: `tag:${TAG_KEYS.stack}`, Values: [model.stack] },
        { Key: `tag:${TAG_KEYS.host}`, Values: [hostId] },
        { Key: "PingStatus", Values: ["Online"] },
      ],
    });
    const ids = (found.InstanceInformationList ?? []).map((i) => i.InstanceId).filter((x): x is string => typeof x === "string");
    if (ids.length !== 1) {
      throw new RotationError(
        `host ${hostId} of stack ${model.stack}: ${ids.length === 0 ? "no instance online in SSM" : `${ids.length} instances online (${ids.join(", ")})`}; nothing was sent. Check the instance and its SSM agent (aws ssm describe-instance-information).`,
      );
    }
    instances.set(hostId, ids[0]);
  }

  const done: string[] = [];
  for (const [i, p] of plan.steps.entries()) {
    const instanceId = instances.get(p.hostId) as string;
    const label = `step ${i + 1}/${plan.steps.length} (${p.step.id} on ${p.hostId}, ${instanceId})`;
    const resume = () =>
      `Done before it: ${done.length ? done.join(", ") : "nothing"}. Not run: ${plan.steps
        .slice(i)
        .map((x) => `${x.step.id}@${x.hostId}`)
        .join(", ")}. ` +
      `Fix the cause, then resume with: odoo-stack rotate ${password} --stack ${model.stack} --from ${p.step.id}@${p.hostId}`;
    const sent = await ssm.sendCommand({
      DocumentName: "AWS-RunShellScript",
      InstanceIds: [instanceId],
      Parameters: { commands: [...p.step.commands], executionTimeout: [String(timeout)] },
      Comment: `odoo-stack rotate ${password}: ${p.step.id} on ${p.hostId}`.slice(0, 100),
      TimeoutSeconds: 60,
    });
    const commandId = sent.Command?.CommandId;
    if (!commandId) throw new RotationError(`${label}: SSM returned no command id. ${resume()}`);
    log(`${label}: sent (${commandId})`);
    let result: Awaited<ReturnType<SsmCalls["getCommandInvocation"]>> | undefined;
    for (const deadline = Date.now() + (timeout + 120) * 1000; ;) {
      await sleep(pollMs);
      try {
        result = await ssm.getCommandInvocation({ CommandId: commandId, InstanceId: instanceId });
      } catch (err) {
        // Right after SendCommand the invocation may not exist yet: SSM's documented behaviour.
        if ((err as { name?: string }).name !== "InvocationDoesNotExist") throw err;
        result = undefined;
      }
      if (result?.Status && TERMINAL.has(result.Status)) break;
      if (Date.now() > deadline)
        throw new RotationError(`${label}: still ${result?.Status ?? "not started"} after ${timeout + 120} s. ${resume()}`);
    }
    const r = result as NonNullable<typeof result>;
    if (r.Status !== "Success" || r.ResponseCode !== 0) {
      throw new RotationError(
        `${label} FAILED: status ${r.Status}, exit ${r.ResponseCode}.\n    stderr:\n${tail(r.StandardErrorContent)}\n    stdout:\n${tail(r.StandardOutputContent)}\n${resume()}`,
      );
    }
    const missing = (p.step.expect ?? []).filter((re) => !re.test(r.StandardOutputContent ?? ""));
    if (missing.length > 0) {
      throw new RotationError(
        `${label} ran but did not do what it must: its output lacks ${missing.map(String).join(", ")} (checks: ${p.step.checks}).` +
          (p.step.id === "pgbouncer" || i === 0
            ? ' "nothing changed" here means SSM holds no new password: was the keeper changed and `pulumi up` run?'
            : "") +
          `\n    stdout:\n${tail(r.StandardOutputContent)}\n${resume()}`,
      );
    }
    done.push(`${p.step.id}@${p.hostId}`);
    log(`${label}: ok — ${p.step.checks}`);
  }
  log(`odoo-stack rotate ${password}: done (${done.join(", ")})`);
}

/** The stack's model from Pulumi.<stack>.yaml, as the program builds it (static instance specs). */
export function modelOfStack(stack: string, region?: string, root = ROOT): StackModel {
  return stackModelOf(readStackConfig(root, stack), region);
}

const USAGE = `usage: npx tsx tools/odoo-stack.ts rotate <${ROTATABLE_PASSWORD_NAMES.join("|")}> [--stack NAME] [--region REGION] [--from STEP[@HOST]] [--dry-run]`;

export interface CliArgs {
  readonly command: "rotate";
  readonly password: RotatablePassword;
  readonly stack: string;
  readonly region?: string;
  readonly from?: string;
  readonly dryRun: boolean;
}

export function parseCliArgs(argv: readonly string[]): CliArgs {
  const [command, password, ...rest] = argv;
  if (command !== "rotate") throw new Error(`unknown command ${JSON.stringify(command ?? "")}\n${USAGE}`);
  if (!(ROTATABLE_PASSWORD_NAMES as readonly string[]).includes(password ?? ""))
    throw new Error(`rotate what? ${JSON.stringify(password ?? "")} is not one of ${ROTATABLE_PASSWORD_NAMES.join(", ")}\n${USAGE}`);
  const values: Record<string, string> = {};
  let dryRun = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--dry-run") {
      dryRun = true;
      continue;
    }
    const [flag, inline] = rest[i].split(/=(.*)/s, 2);
    if (!["--stack", "--region", "--from"].includes(flag)) throw new Error(`unknown argument ${rest[i]}\n${USAGE}`);
    const value = inline ?? rest[++i];
    if (value === undefined || value === "") throw new Error(`${flag} needs a value\n${USAGE}`);
    values[flag] = value;
  }
  return {
    command: "rotate",
    password: password as RotatablePassword,
    stack: values["--stack"] ?? "prod",
    region: values["--region"],
    from: values["--from"],
    dryRun,
  };
}

async function main(): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  try {
    const model = modelOfStack(args.stack, args.region);
    const client = new SSMClient({ region: model.settings.region });
    await rotate({ model, password: args.password, from: args.from, dryRun: args.dryRun }, sdkCalls(client));
    return 0;
  } catch (err) {
    console.error(`odoo-stack rotate ${args.password}: stopped\n${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  main().then((code) => process.exit(code));
}
