// index.ts refuses placeholder values (example.com, …EXAMPLE zone ids) when it runs under the
// real engine, and accepts them under the offline plan's mocks, where nothing is deployed and
// the plan warns instead (lib/run-mode.ts, lib/config.ts placeholderProblems). The engine's
// monitor is stood in for by a view of the mock monitor that is not a MockMonitor, as the CLI's
// gRPC client is not: the program sees a real run, and its invokes still get answers.
import { cliConfig } from "../helpers/mock-run";
import { runUnderMocks } from "../helpers/component-mocks";

// index.ts is a CommonJS `export =` module, as `pulumi up` loads it.
const program: () => Promise<Record<string, unknown>> = require("../../index");
// The SDK's runtime store (not in its typings): where getMonitor() finds the mock monitor.
const runtimeState = require("@pulumi/pulumi/runtime/state") as { getStore(): { settings: { monitor: object } } };

const RUN_TIMEOUT_MS = 60_000;

const PLACEHOLDERS = {
  domain: "erp.example.com",
  tls: { mode: "acme", email: "ops@example.com", hostedZoneId: "Z04417412EXAMPLE" },
  databases: ["erp"],
  alarmEmail: "alarms@example.org",
};
const REAL = {
  domain: "erp.acme-corp.eu",
  tls: { mode: "acme", email: "ops@acme-corp.eu", hostedZoneId: "Z04417412S8KQ3PL1" },
  databases: ["erp"],
  alarmEmail: "alarms@acme-corp.eu",
};

/** Runs index.ts; `real` hides the mock monitor behind a view that is not a MockMonitor. */
async function run(config: Record<string, unknown>, real: boolean) {
  let error: Error | undefined;
  const r = await runUnderMocks(async () => {
    if (real) {
      const settings = runtimeState.getStore().settings;
      settings.monitor = new Proxy(settings.monitor, { getPrototypeOf: () => Object.prototype });
    }
    try {
      await program();
    } catch (err) {
      error = err as Error;
    }
  }, cliConfig(config));
  return { error, registered: r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack").length };
}

describe("placeholder values", () => {
  // odooInstances = 0 stops the program at validation either way; the question is what else is refused.
  it(
    "are accepted under the offline plan's mocks",
    async () => {
      const { error, registered } = await run({ ...PLACEHOLDERS, odooInstances: 0 }, false);
      expect(error?.message.split("\n")).toEqual([
        "odoo-stack: 1 configuration problem; nothing was created:",
        '  1. odoo-stack:odooInstances = "0": must be a whole number from 1 to 16',
      ]);
      expect(registered).toBe(0);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    "are refused under the real engine, every one with the other problems, before any resource",
    async () => {
      const { error, registered } = await run({ ...PLACEHOLDERS, odooInstances: 0 }, true);
      expect(error?.name).toBe("ConfigError");
      const lines = error!.message.split("\n");
      expect(lines[0]).toBe("odoo-stack: 5 configuration problems; nothing was created:");
      for (const [key, value] of [
        ["odooInstances", "0"],
        ["domain", "erp.example.com"],
        ["tls.email", "ops@example.com"],
        ["alarmEmail", "alarms@example.org"],
        ["tls.hostedZoneId", "Z04417412EXAMPLE"],
      ] as const) {
        expect(lines.some((l) => l.includes(`odoo-stack:${key} = ${JSON.stringify(value)}: `))).toBe(true);
      }
      expect(error!.message).toContain("is a placeholder: nothing real answers there (a documentation domain, RFC 2606)");
      expect(error!.message).toContain("a real pulumi preview or up refuses placeholders");
      expect(registered).toBe(0);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    "real values are not refused under the real engine",
    async () => {
      const { error } = await run({ ...REAL, odooInstances: 0 }, true);
      expect(error?.message.split("\n")).toEqual([
        "odoo-stack: 1 configuration problem; nothing was created:",
        '  1. odoo-stack:odooInstances = "0": must be a whole number from 1 to 16',
      ]);
    },
    RUN_TIMEOUT_MS,
  );
});
