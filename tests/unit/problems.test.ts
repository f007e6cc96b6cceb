// The one problems formatter (lib/problems.ts): every check that collects problems and throws
// words them the same way — title, count, every problem numbered (DESIGN principle 4).
import * as fs from "fs";
import * as path from "path";
import { problemsMessage, throwIfAny } from "../../lib/problems";

describe("problemsMessage", () => {
  it.each([
    [["a"], "t: 1 problem:\n  1. a"],
    [["a", "b"], "t: 2 problems:\n  1. a\n  2. b"],
  ])("numbers %j under the title with the count", (problems, expected) => {
    expect(problemsMessage("t", problems)).toBe(expected);
  });

  it("takes the noun and a note (ConfigError's wording)", () => {
    expect(problemsMessage("odoo-stack", ["x", "y"], { noun: "configuration problem", note: "nothing was created" })).toBe(
      "odoo-stack: 2 configuration problems; nothing was created:\n  1. x\n  2. y",
    );
  });
});

describe("throwIfAny", () => {
  it("returns when there is nothing wrong", () => {
    expect(throwIfAny("odoo.conf", [])).toBeUndefined();
  });

  it("throws every problem at once", () => {
    expect(() => throwIfAny("odoo.conf", ["a: must be b", "c: must be d"])).toThrow(
      new Error("odoo.conf: 2 problems:\n  1. a: must be b\n  2. c: must be d"),
    );
  });
});

describe("the program has one formatter", () => {
  // A hand-numbered list or a "problem(s)" wording outside lib/problems.ts is a second copy.
  const ROOT = path.join(__dirname, "..", "..");
  const sources = ["lib", "templates", "components", "tools", "policy", path.join("policy", "lib"), "."].flatMap((dir) =>
    fs
      .readdirSync(path.join(ROOT, dir))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => path.join(dir, f)),
  );

  it.each(sources.filter((f) => f !== path.join("lib", "problems.ts")))("%s does not format problems by hand", (file) => {
    const text = fs.readFileSync(path.join(ROOT, file), "utf8");
    expect(text).not.toMatch(/problem\(s\)|problem\$\{[^}]*=== 1 \? "" : "s"\}|\$\{i \+ 1\}\. \$\{p\}/);
  });
});
