// `odoo-stack rotate` (tools/odoo-stack.ts) against a stand-in SSM endpoint: the real AWS SDK
// client signs and sends real awsJson1_1 requests to a local HTTP server that answers like SSM
// (DescribeInstanceInformation, SendCommand, and GetCommandInvocation with SSM's
// InvocationDoesNotExist right after the send, then InProgress, then the outcome). The exact call
// order is asserted: every host resolved first, then per step one SendCommand of exactly the
// procedure table's commands and its polls — and at the first failure, nothing after it.
import * as http from "http";
import type { AddressInfo } from "net";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { StackModel } from "../../lib/model";
import { rotationProcedure } from "../../templates/procedures";
import { modelOfStack, parseCliArgs, rotate, rotationPlan, RotationError, sdkCalls } from "../../tools/odoo-stack";
import { modelWith } from "../helpers/fixtures";

interface Outcome {
  readonly status: string;
  readonly code: number;
  readonly stdout: string;
  readonly stderr?: string;
}

/** What the host scripts print when a step does its job (templates/scripts/*.sh `log` lines). */
function realisticOutput(commands: readonly string[]): string {
  const c = commands.join("\n");
  if (/odoo-stack-rotate pgbouncer/.test(c)) {
    return "odoo-stack-apply: installed /etc/pgbouncer/userlist.txt\nodoo-stack-apply: pgbouncer reload: systemctl reload pgbouncer\nodoo-stack-rotate: next: odoo-stack-rotate postgres\n";
  }
  if (/odoo-stack-rotate postgres/.test(c)) {
    // One line per --role (one transaction), then the hint.
    const roles = [...c.matchAll(/--role (\S+)/g)].map((m) => m[1]);
    return `${roles.map((r) => `odoo-stack-rotate: role ${r} now has the verifier from /odoo-stack/prod/pgbouncer/odoo-scram-verifier\n`).join("")}odoo-stack-rotate: next: odoo-stack-rotate odoo (on every Odoo host)\n`;
  }
  if (/odoo-stack-rotate odoo/.test(c))
    return "odoo-stack-apply: installed /etc/odoo/odoo.conf\nodoo-stack-apply: odoo restart: systemctl restart odoo\n";
  if (/odoo-stack-rotate check/.test(c))
    return "odoo-stack-rotate: login as odoo through pgbouncer.odoo.internal:6432 succeeded with the password in /etc/odoo/odoo.conf; rotation complete\n";
  return "";
}

/** A local SSM: instances by odoo-stack:host tag, commands run by `outcome`. */
class StandInSsm {
  readonly calls: { readonly target: string; readonly body: any; readonly authorization: string }[] = [];
  private readonly commands = new Map<string, { instanceId: string; commands: string[]; polls: number }>();
  private server!: http.Server;
  url = "";

  constructor(
    private readonly instances: Readonly<Record<string, string>>,
    private readonly outcome: (hostId: string, commands: readonly string[]) => Outcome = (_h, c) => ({
      status: "Success",
      code: 0,
      stdout: realisticOutput(c),
    }),
  ) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let data = "";
      req.on("data", (d) => (data += d));
      req.on("end", () => {
        const target = String(req.headers["x-amz-target"] ?? "").replace(/^AmazonSSM\./, "");
        const body = JSON.parse(data || "{}");
        this.calls.push({ target, body, authorization: String(req.headers.authorization ?? "") });
        const [status, answer] = this.answer(target, body);
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": `req-${this.calls.length}` });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private hostOf(instanceId: string): string {
    return Object.entries(this.instances).find(([, id]) => id === instanceId)?.[0] ?? "?";
  }

  private answer(target: string, body: any): [number, unknown] {
    switch (target) {
      case "DescribeInstanceInformation": {
        const host = body.Filters.find((f: { Key: string }) => f.Key === "tag:odoo-stack:host")?.Values[0];
        const id = this.instances[host];
        return [200, { InstanceInformationList: id ? [{ InstanceId: id, PingStatus: "Online" }] : [] }];
      }
      case "SendCommand": {
        const commandId = `cmd-${this.commands.size + 1}`;
        this.commands.set(commandId, { instanceId: body.InstanceIds[0], commands: body.Parameters.commands, polls: 0 });
        return [200, { Command: { CommandId: commandId, Status: "Pending" } }];
      }
      case "GetCommandInvocation": {
        const c = this.commands.get(body.CommandId);
        if (!c) return [400, { __type: "InvalidCommandId", message: "no such command" }];
        c.polls++;
        if (c.polls === 1) return [400, { __type: "InvocationDoesNotExist", message: "invocation does not exist yet" }];
        if (c.polls === 2) return [200, { CommandId: body.CommandId, InstanceId: c.instanceId, Status: "InProgress", ResponseCode: -1 }];
        const o = this.outcome(this.hostOf(c.instanceId), c.commands);
        return [
          200,
          {
            CommandId: body.CommandId,
            InstanceId: c.instanceId,
            Status: o.status,
            ResponseCode: o.code,
            StandardOutputContent: o.stdout,
            StandardErrorContent: o.stderr ?? "",
          },
        ];
      }
      default:
        return [400, { __type: "InvalidAction", message: target }];
    }
  }

  /** The calls, condensed: "Describe <host>", "Send <host>: <commands>", "Get <host>". */
  trace(): string[] {
    const byCommand = new Map<string, string>();
    let sent = 0;
    return this.calls.map((c) => {
      if (c.target === "DescribeInstanceInformation")
        return `Describe ${c.body.Filters.find((f: { Key: string }) => f.Key === "tag:odoo-stack:host").Values[0]}`;
      if (c.target === "SendCommand") {
        byCommand.set(`cmd-${++sent}`, this.hostOf(c.body.InstanceIds[0]));
        return `Send ${this.hostOf(c.body.InstanceIds[0])}: ${c.body.Parameters.commands.join("; ")}`;
      }
      return `Get ${byCommand.get(c.body.CommandId)}`;
    });
  }
}

const ec2 = modelWith({ odooInstances: 2 }, "prod");
const INSTANCES = { proxy: "i-0proxy", "odoo-1": "i-0odoo1", "odoo-2": "i-0odoo2", pgbouncer: "i-0pgb", postgres: "i-0pg" };

async function run(model: StackModel, ssm: StandInSsm, extra: { from?: string } = {}): Promise<{ error?: Error; log: string[] }> {
  const client = new SSMClient({
    region: model.settings.region,
    endpoint: ssm.url,
    credentials: { accessKeyId: "AKIDSTANDIN", secretAccessKey: "stand-in-secret" },
    maxAttempts: 1,
  });
  const log: string[] = [];
  try {
    await rotate({ model, password: "odoo", pollSeconds: 0.005, log: (l) => log.push(l), ...extra }, sdkCalls(client));
    return { log };
  } catch (error) {
    return { error: error as Error, log };
  } finally {
    client.destroy();
  }
}

const polls = (host: string) => [`Get ${host}`, `Get ${host}`, `Get ${host}`];

describe("odoo-stack rotate odoo through a stand-in SSM (AUTH-4)", () => {
  let ssm: StandInSsm;
  afterEach(async () => ssm && (await ssm.stop()));

  it("resolves every host, then runs the table's steps in the proven order, each sent once and polled to its end", async () => {
    ssm = new StandInSsm(INSTANCES);
    await ssm.start();
    const { error, log } = await run(ec2, ssm);
    expect(error).toBeUndefined();
    expect(ssm.trace()).toEqual([
      "Describe pgbouncer",
      "Describe postgres",
      "Describe odoo-1",
      "Describe odoo-2",
      "Send pgbouncer: sudo /usr/local/sbin/odoo-stack-rotate pgbouncer",
      ...polls("pgbouncer"),
      "Send postgres: sudo /usr/local/sbin/odoo-stack-rotate postgres --role odoo --role odoo_migrate",
      ...polls("postgres"),
      "Send odoo-1: sudo /usr/local/sbin/odoo-stack-rotate odoo",
      ...polls("odoo-1"),
      "Send odoo-2: sudo /usr/local/sbin/odoo-stack-rotate odoo",
      ...polls("odoo-2"),
      "Send odoo-1: sudo /usr/local/sbin/odoo-stack-rotate check --dbname erp",
      ...polls("odoo-1"),
    ]);
    // Exactly the procedure table's commands, as AWS-RunShellScript parameters, to the resolved instance.
    const sends = ssm.calls.filter((c) => c.target === "SendCommand");
    const table = rotationProcedure(ec2, "odoo").steps.filter((s) => s.where !== "laptop");
    expect(sends.map((s) => s.body.Parameters.commands)).toEqual([table[0], table[1], table[2], table[2], table[3]].map((s) => s.commands));
    expect(sends[0].body).toMatchObject({
      DocumentName: "AWS-RunShellScript",
      InstanceIds: ["i-0pgb"],
      Parameters: { executionTimeout: ["600"] },
      Comment: "odoo-stack rotate odoo: pgbouncer on pgbouncer",
    });
    // Only Online instances of this stack: the filters SSM gets.
    expect(ssm.calls[0].body.Filters).toEqual([
      { Key: "tag:odoo-stack:stack", Values: ["prod"] },
      { Key: "tag:odoo-stack:host", Values: ["pgbouncer"] },
      { Key: "PingStatus", Values: ["Online"] },
    ]);
    // The SDK signed every request for SSM in the stack's region.
    for (const c of ssm.calls)
      expect(c.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDSTANDIN\/\d{8}\/eu-west-1\/ssm\/aws4_request/);
    expect(log.at(-1)).toBe(
      "odoo-stack rotate odoo: done (pgbouncer@pgbouncer, postgres@postgres, odoo@odoo-1, odoo@odoo-2, check@odoo-1)",
    );
  });

  it("stops at the first failing step, sends nothing after it, and says what failed, what ran and how to resume", async () => {
    ssm = new StandInSsm(INSTANCES, (host, commands) =>
      host === "odoo-2"
        ? {
            status: "Failed",
            code: 1,
            stdout: "",
            stderr: "odoo-stack-apply: ERROR: odoo: /etc/odoo/odoo.conf is invalid (nothing was installed or restarted)\n",
          }
        : { status: "Success", code: 0, stdout: realisticOutput(commands) },
    );
    await ssm.start();
    const { error } = await run(ec2, ssm);
    expect(error).toBeInstanceOf(RotationError);
    expect(
      ssm
        .trace()
        .filter((t) => t.startsWith("Send"))
        .map((t) => t.split(":")[0]),
    ).toEqual(["Send pgbouncer", "Send postgres", "Send odoo-1", "Send odoo-2"]);
    expect(ssm.trace().at(-1)).toBe("Get odoo-2");
    expect(error?.message).toContain("step 4/5 (odoo on odoo-2, i-0odoo2) FAILED: status Failed, exit 1.");
    expect(error?.message).toContain("odoo-stack-apply: ERROR: odoo: /etc/odoo/odoo.conf is invalid");
    expect(error?.message).toContain(
      "Done before it: pgbouncer@pgbouncer, postgres@postgres, odoo@odoo-1. Not run: odoo@odoo-2, check@odoo-1.",
    );
    expect(error?.message).toContain("resume with: odoo-stack rotate odoo --stack prod --from odoo@odoo-2");
  });

  it("stops when a step succeeds without doing its job: PgBouncer had nothing new to install (no pulumi up?)", async () => {
    ssm = new StandInSsm(INSTANCES, (host, commands) =>
      host === "pgbouncer"
        ? { status: "Success", code: 0, stdout: "odoo-stack-apply: nothing changed\n" }
        : { status: "Success", code: 0, stdout: realisticOutput(commands) },
    );
    await ssm.start();
    const { error } = await run(ec2, ssm);
    expect(ssm.trace().filter((t) => t.startsWith("Send"))).toEqual(["Send pgbouncer: sudo /usr/local/sbin/odoo-stack-rotate pgbouncer"]);
    expect(error?.message).toContain("its output lacks /installed \\/etc\\/pgbouncer\\/userlist\\.txt/, /pgbouncer reload/");
    expect(error?.message).toContain("was the keeper changed and `pulumi up` run?");
  });

  it("sends nothing when a host is not online in SSM", async () => {
    const { "odoo-2": _missing, ...fewer } = INSTANCES;
    ssm = new StandInSsm(fewer);
    await ssm.start();
    const { error } = await run(ec2, ssm);
    expect(ssm.trace()).toEqual(["Describe pgbouncer", "Describe postgres", "Describe odoo-1", "Describe odoo-2"]);
    expect(error?.message).toBe(
      "host odoo-2 of stack prod: no instance online in SSM; nothing was sent. Check the instance and its SSM agent (aws ssm describe-instance-information).",
    );
  });

  it("on RDS runs the PostgreSQL step on the PgBouncer host (there is no PostgreSQL host)", async () => {
    const rds = modelWith({ odooInstances: 2, postgresEngine: "rds" }, "scale");
    const { postgres: _none, ...withoutPostgres } = INSTANCES;
    ssm = new StandInSsm(withoutPostgres);
    await ssm.start();
    const { error } = await run(rds, ssm);
    expect(error).toBeUndefined();
    expect(ssm.trace().filter((t) => !t.startsWith("Get"))).toEqual([
      "Describe pgbouncer",
      "Describe odoo-1",
      "Describe odoo-2",
      "Send pgbouncer: sudo /usr/local/sbin/odoo-stack-rotate pgbouncer",
      "Send pgbouncer: sudo /usr/local/sbin/odoo-stack-rotate postgres --role odoo --role odoo_migrate",
      "Send odoo-1: sudo /usr/local/sbin/odoo-stack-rotate odoo",
      "Send odoo-2: sudo /usr/local/sbin/odoo-stack-rotate odoo",
      "Send odoo-1: sudo /usr/local/sbin/odoo-stack-rotate check --dbname erp",
    ]);
  });

  it("resumes at one host of a step with --from STEP@HOST", async () => {
    ssm = new StandInSsm(INSTANCES);
    await ssm.start();
    const { error } = await run(ec2, ssm, { from: "odoo@odoo-2" });
    expect(error).toBeUndefined();
    expect(ssm.trace().filter((t) => t.startsWith("Send"))).toEqual([
      "Send odoo-2: sudo /usr/local/sbin/odoo-stack-rotate odoo",
      "Send odoo-1: sudo /usr/local/sbin/odoo-stack-rotate check --dbname erp",
    ]);
  });
});

describe("odoo-stack CLI arguments and plan", () => {
  it("parses rotate <password> with --stack, --region, --from and --dry-run, and refuses the rest", () => {
    expect(parseCliArgs(["rotate", "odoo", "--stack", "scale", "--from=odoo@odoo-2", "--dry-run"])).toEqual({
      command: "rotate",
      password: "odoo",
      stack: "scale",
      region: undefined,
      from: "odoo@odoo-2",
      dryRun: true,
    });
    expect(() => parseCliArgs(["rotate", "backup"])).toThrow(/"backup" is not one of odoo, stats, monitor, admin/);
    expect(() => parseCliArgs(["restart", "odoo"])).toThrow(/unknown command "restart"/);
    expect(() => parseCliArgs(["rotate", "odoo", "--force"])).toThrow(/unknown argument --force/);
  });

  it("plans the repository's stacks from their stack files: prod (EC2) and scale (RDS, 3 Odoo hosts)", () => {
    const ids = (stack: string) => rotationPlan(modelOfStack(stack), "odoo").steps.map((p) => `${p.step.id}@${p.hostId}`);
    expect(ids("prod")).toEqual(["pgbouncer@pgbouncer", "postgres@postgres", "odoo@odoo-1", "check@odoo-1"]);
    expect(ids("scale")).toEqual([
      "pgbouncer@pgbouncer",
      "postgres@pgbouncer",
      "odoo@odoo-1",
      "odoo@odoo-2",
      "odoo@odoo-3",
      "check@odoo-1",
    ]);
    expect(() => rotationPlan(ec2, "odoo", "reload")).toThrow(
      /--from reload: the odoo rotation has no such step; its steps are pgbouncer@pgbouncer, postgres@postgres, odoo@odoo-1, odoo@odoo-2, check@odoo-1/,
    );
  });
});
