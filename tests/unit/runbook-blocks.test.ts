// The runbooks' machine-readable shell blocks (templates/runbook-blocks.ts): what the writer
// produces the reader gives back; an unmarked, doubly marked or unclosed block is an error, never
// a block silently run in the wrong place; the fleet suite's selection and script are exact.
import {
  blockScript,
  extractShellBlocks,
  hostBlock,
  hostBlocksOf,
  infoString,
  laptopBlock,
  RunbookBlockError,
  shellBlock,
} from "../../templates/runbook-blocks";

describe("writing blocks", () => {
  it.each([
    [{ kind: "laptop" } as const, {}, "sh laptop"],
    [
      { kind: "host", hosts: ["pgbouncer"] } as const,
      { procedure: "rotate-odoo", step: "pgbouncer" },
      "sh host=pgbouncer procedure=rotate-odoo step=pgbouncer",
    ],
    [
      { kind: "host", hosts: ["odoo-1", "odoo-2"] } as const,
      { procedure: "long-transactions", step: "cancel", params: ["PID"] },
      "sh host=odoo-1,odoo-2 procedure=long-transactions step=cancel params=PID",
    ],
  ])("info string %#", (target, meta, expected) => {
    expect(infoString(target, meta)).toBe(expected);
  });

  it("refuses names that would not read back, and commands that would close the fence", () => {
    expect(() => hostBlock("Odoo 1", ["true"])).toThrow(/host id "Odoo 1"/);
    expect(() => hostBlock([], ["true"])).toThrow(/at least one host/);
    expect(() => laptopBlock(["true"], { params: ["pid"] })).toThrow(/param "pid"/);
    expect(() => laptopBlock(["true"], { step: "Step 1" })).toThrow(/step "Step 1"/);
    expect(() => laptopBlock(["echo", "```"])).toThrow(/must not start with a fence/);
    expect(() => laptopBlock([])).toThrow(/no commands/);
  });
});

describe("extractShellBlocks", () => {
  const doc = [
    "# Title",
    "",
    laptopBlock(["aws ssm start-session --target i-1"], { procedure: "shell" }),
    "text between",
    hostBlock("pgbouncer", ["sudo systemctl reload pgbouncer", "sudo tail -n 20 /var/log/postgresql/pgbouncer.log"], {
      procedure: "reload-auth-file",
      step: "reload",
    }),
    "",
    hostBlock(["odoo-1", "odoo-2"], ["sudo grep -n PoolError /var/log/odoo/odoo-server.log"]),
    hostBlock("postgres", ['sudo -u postgres psql -X -d erp -At -c "SELECT pg_cancel_backend($PID)"'], {
      procedure: "long-transactions",
      step: "cancel",
      params: ["PID"],
    }),
  ].join("\n");

  it("reads back every block with its target, procedure, step, params, commands and line", () => {
    expect(extractShellBlocks(doc)).toEqual([
      { target: { kind: "laptop" }, procedure: "shell", commands: ["aws ssm start-session --target i-1"], line: 3 },
      {
        target: { kind: "host", hosts: ["pgbouncer"] },
        procedure: "reload-auth-file",
        step: "reload",
        commands: ["sudo systemctl reload pgbouncer", "sudo tail -n 20 /var/log/postgresql/pgbouncer.log"],
        line: 7,
      },
      {
        target: { kind: "host", hosts: ["odoo-1", "odoo-2"] },
        commands: ["sudo grep -n PoolError /var/log/odoo/odoo-server.log"],
        line: 12,
      },
      {
        target: { kind: "host", hosts: ["postgres"] },
        procedure: "long-transactions",
        step: "cancel",
        params: ["PID"],
        commands: ['sudo -u postgres psql -X -d erp -At -c "SELECT pg_cancel_backend($PID)"'],
        line: 15,
      },
    ]);
  });

  it("keeps here-documents and blank lines inside a block", () => {
    const text = hostBlock("postgres", ["sudo -u postgres psql -X -d erp <<'SQL'", "SELECT 1;", "", "SQL"]);
    expect(extractShellBlocks(text)[0].commands).toEqual(["sudo -u postgres psql -X -d erp <<'SQL'", "SELECT 1;", "", "SQL"]);
  });

  it.each([
    ["an unmarked block", "```sh\nls\n```", /says neither laptop nor host=<id>/],
    ["a block with no language", "```\nls\n```", /every block is a shell block/],
    ["a SQL block", "```sql\nSELECT 1;\n```", /every block is a shell block/],
    ["a block marked laptop and host", "```sh laptop host=pgbouncer\nls\n```", /one target per block/],
    ["two hosts keys", "```sh host=a host=b\nls\n```", /one target per block/],
    ["an unknown word", "```sh laptop as=root\nls\n```", /unknown word "as=root"/],
    ["a block never closed", "```sh laptop\nls\n", /line 1: block never closed/],
    ["a host id with capitals", "```sh host=PgBouncer\nls\n```", /host id "PgBouncer"/],
  ])("refuses %s", (_name, text, error) => {
    expect(() => extractShellBlocks(text)).toThrow(RunbookBlockError);
    expect(() => extractShellBlocks(text)).toThrow(error);
  });

  it("selects a procedure's host blocks, optionally on one host, in order", () => {
    const twoSteps = [
      hostBlock("pgbouncer", ["a"], { procedure: "rotate-odoo", step: "pgbouncer" }),
      laptopBlock(["b"], { procedure: "rotate-odoo", step: "keeper" }),
      hostBlock("odoo-1", ["c"], { procedure: "rotate-odoo", step: "odoo" }),
      hostBlock("odoo-2", ["d"], { procedure: "rotate-odoo", step: "odoo" }),
      hostBlock("odoo-1", ["e"], { procedure: "upgrade-odoo", step: "package" }),
    ].join("\n\n");
    expect(hostBlocksOf(twoSteps, "rotate-odoo").map((b) => b.commands[0])).toEqual(["a", "c", "d"]);
    expect(hostBlocksOf(twoSteps, "rotate-odoo", "odoo-1").map((b) => b.commands[0])).toEqual(["c"]);
  });

  it("turns a block into a script with its params set and quoted, and refuses a missing one", () => {
    const [block] = extractShellBlocks(shellBlock({ kind: "host", hosts: ["postgres"] }, ['echo "$PID"'], { params: ["PID"] }));
    expect(blockScript(block, { PID: "12'3" })).toBe(`PID='12'\\''3'\necho "$PID"\n`);
    expect(() => blockScript(block)).toThrow(/needs PID/);
  });
});
