// lib/run-mode.ts: the program tells a mock run (nothing deployed) from a run under the Pulumi
// CLI by the resource monitor the SDK holds: the MockMonitor of pulumi.runtime.setMocks, or the
// gRPC client of the engine's address the language host passes (PULUMI_MONITOR), in a preview
// as in an update. A preview being a dry run changes nothing.
import * as pulumi from "@pulumi/pulumi";
import { runsUnderMocks } from "../../lib/run-mode";

const mocks: pulumi.runtime.Mocks = {
  newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
  call: (args) => args.inputs,
};

afterEach(() => pulumi.runtime.resetOptions("project", "stack", -1, "", "", false, ""));

describe("runsUnderMocks", () => {
  it.each([false, true])("is true under pulumi.runtime.setMocks (preview %s)", async (preview) => {
    await pulumi.runtime.setMocks(mocks, "odoo-stack", "prod", preview);
    expect(pulumi.runtime.isDryRun()).toBe(preview);
    expect(runsUnderMocks()).toBe(true);
  });

  it.each([false, true])("is false with the engine's monitor address, as under the CLI (preview %s)", (preview) => {
    // What the Node.js language host does with PULUMI_MONITOR; the client connects only on its first call.
    pulumi.runtime.resetOptions("odoo-stack", "prod", -1, "127.0.0.1:1", "127.0.0.1:2", preview, "organization");
    const monitor = pulumi.runtime.getMonitor();
    try {
      expect(monitor).toBeDefined();
      expect(pulumi.runtime.isDryRun()).toBe(preview);
      expect(runsUnderMocks()).toBe(false);
    } finally {
      (monitor as unknown as { close(): void }).close();
    }
  });

  it("is false when the runtime has no monitor at all", () => {
    expect(runsUnderMocks(undefined)).toBe(false);
  });
});
