// Preview: values computed from resources not yet created are unknown, and reading one throws
// the SDK's UnknownValueError, which the SDK reports as an advisory "can't run policy during
// preview" (@pulumi/policy server.js). Resource policies let it through; stack policies check
// every other resource first, report what they found, then let it through (UnknownValues).
// The same over gRPC, with the engine's unknown sentinel, is in mutations.test.ts.
import { odooExactlyOneCronHost } from "../../policy/limits";
import { odooListDbDisabled } from "../../policy/odoo";
import { isUnknownValueError, UnknownValues } from "../../policy/lib/resources";
import type { StackValidationArgs } from "../../policy/lib/sdk";
import { modelWith } from "../helpers/fixtures";
import { setLine, urnOf, validateResource, withContent, type FakeResource } from "./fakes";
import { stackFixture } from "./stack-fixture";

/** Stands in for @pulumi/policy's UnknownValueError (same name and message shape). */
class UnknownValueError extends Error {
  constructor(path: string) {
    super(`String value at .${path} can't be known during preview`);
  }
}

/** The resource with `property` unknown: reading it throws, as the SDK's proxy does. */
function unknownProperty(r: FakeResource, property: string): FakeResource {
  const props = new Proxy(
    { ...r.props },
    {
      get: (target, key) => {
        if (key === property) throw new UnknownValueError(String(key));
        return target[key as string];
      },
    },
  );
  return { ...r, props };
}

describe("UnknownValues", () => {
  it("recognises the SDK's error by name and message, and nothing else", () => {
    expect(isUnknownValueError(new UnknownValueError("content"))).toBe(true);
    expect(isUnknownValueError(new Error("boom"))).toBe(false);
    expect(isUnknownValueError("String value at .x can't be known during preview")).toBe(false);
  });

  it("skips an item on an unknown value, keeps going, and re-throws the first at the end", () => {
    const unknown = new UnknownValues();
    const seen = [1, 2, 3].map((n) =>
      unknown.run(() => {
        if (n === 2) throw new UnknownValueError(`item${n}`);
        return n;
      }),
    );
    expect(seen).toEqual([1, undefined, 3]);
    expect(() => unknown.finish()).toThrow(/item2 can't be known during preview/);
  });

  it("never swallows a real error", () => {
    const unknown = new UnknownValues();
    expect(() =>
      unknown.run(() => {
        throw new TypeError("a bug");
      }),
    ).toThrow("a bug");
  });
});

describe("policies during preview", () => {
  const three = stackFixture(modelWith({ odooInstances: 3 }));
  const conf = (id: string) => three.file(id, "/etc/odoo/odoo.conf");

  it("a resource policy lets the SDK's error through (reported as advisory), never a violation", async () => {
    await expect(validateResource(odooListDbDisabled, unknownProperty(conf("odoo-1"), "content"))).rejects.toThrow(
      /can't be known during preview/,
    );
  });

  it("a stack policy reports what it can check, then the unknown for the SDK's advisory", async () => {
    // odoo-1 and odoo-3 both run crons; odoo-2's odoo.conf is not known yet.
    const second = withContent(conf("odoo-3"), setLine("max_cron_threads", "max_cron_threads = 1"));
    const resources = three.resources.map((r) =>
      r.name === second.name ? second : r.name === conf("odoo-2").name ? unknownProperty(r, "content") : r,
    );
    const violations: string[] = [];
    const args = {
      resources: resources.map((r) => ({
        type: r.type,
        name: r.name,
        urn: urnOf(r),
        props: r.props,
        propertyDependencies: {},
        dependencies: [],
      })),
      getConfig: () => ({}),
      stackTags: new Map(),
      notApplicable: () => {
        throw new Error("not applicable");
      },
    } as unknown as StackValidationArgs;
    await expect((async () => odooExactlyOneCronHost.validateStack(args, (m) => violations.push(m)))()).rejects.toThrow(
      /can't be known during preview/,
    );
    expect(violations).toEqual([
      expect.stringMatching(/^odoo\.conf of odoo-3 \(.*\) must set max_cron_threads = 0: odoo-1, odoo-3 all run crons/),
    ]);
  });
});
