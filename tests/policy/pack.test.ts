// The pack as a whole, without starting it: the conventions every policy follows (STYLE.md),
// and a valid stack with no finding from any policy. The policies' own cases live in
// <area>.test.ts; the gRPC route in grpc-route.test.ts and mutations.test.ts.
import * as fs from "fs";
import * as path from "path";
import { policies as auth } from "../../policy/auth";
import { policies as compute } from "../../policy/compute";
import { policies as limits } from "../../policy/limits";
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "../../policy/lib/sdk";
import { policies as network } from "../../policy/network";
import { policies as observability } from "../../policy/observability";
import { policies as odoo } from "../../policy/odoo";
import { policies as pool } from "../../policy/pool";
import { policies as postgres } from "../../policy/postgres";
import { policies as proxy } from "../../policy/proxy";
import { policies as secrets } from "../../policy/secrets";
import { policies as stack } from "../../policy/stack";
import { policies as storage } from "../../policy/storage";
import { policies as tls } from "../../policy/tls";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { validateResource, validateStack } from "./fakes";
import { stackFixture } from "./stack-fixture";

const AREAS: Readonly<Record<string, Policies>> = {
  network,
  proxy,
  odoo,
  limits,
  pool,
  auth,
  tls,
  postgres,
  observability,
  compute,
  secrets,
  storage,
  stack,
};
const ALL = Object.values(AREAS).flat();
const isStack = (p: ResourceValidationPolicy | StackValidationPolicy): p is StackValidationPolicy => "validateStack" in p;

/** The checklist items marked P (a resource can show them): the pack must reject each. */
const CHECKLIST_P_ITEMS = [
  "NET-1",
  "NET-2",
  "NET-3",
  "NET-4",
  "NET-5",
  "NET-6",
  "PROXY-1",
  "PROXY-2",
  "PROXY-3",
  "PROXY-4",
  "PROXY-5",
  "ODOO-1",
  "ODOO-2",
  "ODOO-3",
  "ODOO-5",
  "LIMIT-1",
  "LIMIT-2",
  "LIMIT-3",
  "POOL-1",
  "POOL-2",
  "POOL-3",
  "POOL-4",
  "POOL-5",
  "AUTH-1",
  "AUTH-2",
  "TLS-1",
  "TLS-2",
  "TLS-3",
  "PG-1",
  "PG-2",
  "PG-3",
  "OBS-3",
];
/** The specification, where the checkout has it beside the repository (../shared/CHECKLIST.md). */
const CHECKLIST_FILE = path.join(__dirname, "..", "..", "..", "shared", "CHECKLIST.md");

describe("the policy pack's conventions", () => {
  it("names every policy once, in kebab-case, with a description that starts 'Checks whether'", () => {
    const names = ALL.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const p of ALL) {
      expect(p.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(p.description).toMatch(/^Checks whether /);
    }
  });

  it("leaves every policy at the pack's default (mandatory) except the one advisory recommendation", () => {
    expect(ALL.filter((p) => p.enforcementLevel !== undefined).map((p) => [p.name, p.enforcementLevel])).toEqual([
      ["odoo-db-sslmode-verify-full", "advisory"],
    ]);
  });

  it("index.ts assembles every area file and nothing else", () => {
    const index = fs.readFileSync(path.join(__dirname, "..", "..", "policy", "index.ts"), "utf8");
    for (const area of Object.keys(AREAS)) expect(index).toContain(`import { policies as ${area} } from "./${area}";`);
    expect(index).toContain('enforcementLevel: "mandatory"');
  });

  it("covers every checklist item marked P with at least one policy citing it", () => {
    const cited = new Set(ALL.flatMap((p) => [...p.description.matchAll(/\b([A-Z]+-\d+)\b/g)].map((m) => m[1])));
    // Ranges such as "PROXY-1..5" are not used in descriptions: each ID is written out.
    expect(CHECKLIST_P_ITEMS.filter((id) => !cited.has(id))).toEqual([]);
  });

  (fs.existsSync(CHECKLIST_FILE) ? it : it.skip)("lists exactly the items CHECKLIST.md marks P", () => {
    const text = fs.readFileSync(CHECKLIST_FILE, "utf8");
    const marked = [...text.matchAll(/^- ([A-Z]+-\d+) \(([^)]*)\)/gm)].filter((m) => m[2].split(",").includes("P")).map((m) => m[1]);
    expect(CHECKLIST_P_ITEMS).toEqual(marked);
  });
});

describe("policy-config.example.json", () => {
  const example = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "policy", "policy-config.example.json"), "utf8")) as Record<
    string,
    unknown
  >;

  it("documents every tunable setting of the pack with its default", () => {
    const tunable = ALL.filter((p) => p.configSchema !== undefined);
    for (const p of tunable) {
      const defaults = Object.fromEntries(
        Object.entries(p.configSchema?.properties ?? {}).map(([k, s]) => [k, (s as { default?: unknown }).default]),
      );
      expect([p.name, example[p.name]]).toEqual([p.name, defaults]);
    }
  });

  it("names only policies of the pack, at their own level", () => {
    for (const [name, value] of Object.entries(example)) {
      const policy = ALL.find((p) => p.name === name);
      expect([name, policy !== undefined]).toEqual([name, true]);
      if (typeof value === "string") expect(value).toBe(policy?.enforcementLevel ?? "mandatory");
    }
  });
});

describe.each([
  ["the default test stack", modelWith()],
  ["three Odoo hosts, two databases", modelWith({ odooInstances: 3, ...databasesAt("erp", "erptest") })],
])("%s passes every policy", (_name, model) => {
  const fixture = stackFixture(model);

  it.each(ALL.filter((p) => !isStack(p)).map((p) => [p.name, p] as const))("%s: no resource is in violation", async (_n, policy) => {
    for (const r of fixture.resources)
      expect([r.name, await validateResource(policy as ResourceValidationPolicy, r)]).toEqual([r.name, []]);
  });

  it.each(ALL.filter(isStack).map((p) => [p.name, p] as const))("%s: the stack is not in violation", async (_n, policy) => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });
});
