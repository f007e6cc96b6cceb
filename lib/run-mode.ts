// Whether this run can deploy anything. Under the Pulumi CLI — `pulumi preview` and `pulumi up`
// alike — the language host hands the program the engine's resource monitor (PULUMI_MONITOR) and
// the SDK talks to it over gRPC. Under pulumi.runtime.setMocks (the offline plan, tools/plan.ts,
// and the component tests) the monitor is the SDK's MockMonitor, and nothing reaches a cloud.
// Neither a stack file nor an environment variable can make a CLI run look like a mock run.
// pulumi.runtime.isDryRun() cannot tell the two apart: a preview is a dry run too, and the
// offline plan runs as an update.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";

/** True when the program runs under the SDK's mocks, so nothing it declares is deployed. */
export function runsUnderMocks(monitor: unknown = pulumi.runtime.getMonitor()): boolean {
  return monitor instanceof MockMonitor;
}
