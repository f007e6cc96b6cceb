// PostgreSQL (PG-1 … PG-3): the conf.d drop-in and the bootstrap SQL's per-role timeouts.
import { postgresLogLockWaits, postgresMaxConnectionsSet, postgresTimeoutsSet } from "../../policy/postgres";
import { parseSqlSettings } from "../../policy/lib/parse";
import { setLine, validateResource, validateStack, withContent } from "./fakes";
import { replaced, stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const conf = fixture.file("postgres", "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf");
const sql = fixture.file("postgres", "/etc/odoo-stack/bootstrap.sql");
const label = `90-odoo-stack.conf of postgres (${conf.name})`;
const fileLabelOf = (r: { readonly name: string }) => `bootstrap.sql of postgres (${r.name})`;

describe("postgres-max-connections-set (PG-1) and postgres-log-lock-waits (PG-3)", () => {
  it("pass the rendered drop-in", async () => {
    expect(await validateResource(postgresMaxConnectionsSet, conf)).toEqual([]);
    expect(await validateResource(postgresLogLockWaits, conf)).toEqual([]);
  });

  it("reject a missing max_connections", async () => {
    expect(await validateResource(postgresMaxConnectionsSet, withContent(conf, setLine("max_connections", undefined)))).toEqual([
      `${label} must set max_connections to the sum PgBouncer's pools and the reserved slots need; it is absent (PostgreSQL's default 100) (PG-1).`,
    ]);
  });

  it.each([
    ["log_lock_waits = off", '"off"'],
    [undefined, "absent (off)"],
  ])("reject %s", async (line, now) => {
    expect(await validateResource(postgresLogLockWaits, withContent(conf, setLine("log_lock_waits", line)))).toEqual([
      `${label} must set log_lock_waits = on; it is ${now} (PG-3).`,
    ]);
  });
});

describe("postgres-timeouts-set (PG-2)", () => {
  const policy = postgresTimeoutsSet;
  const withBoth = (confEdit: (t: string) => string, sqlEdit: (t: string) => string) =>
    replaced(replaced(fixture.resources, withContent(conf, confEdit)), withContent(sql, sqlEdit));

  it("reads the bootstrap's ALTER ROLE statements", () => {
    expect(parseSqlSettings(String(sql.props.content)).filter((s) => s.name === "odoo")).toEqual([
      { scope: "role", name: "odoo", parameter: "statement_timeout", value: "120000" },
      { scope: "role", name: "odoo", parameter: "lock_timeout", value: "30000" },
      { scope: "role", name: "odoo", parameter: "idle_in_transaction_session_timeout", value: "1200000" },
    ]);
  });

  it("passes the stack: per-role timeouts, and the server-wide defaults", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects a missing statement_timeout (neither per role nor server-wide)", async () => {
    const resources = withBoth(setLine("statement_timeout", undefined), (t) =>
      t.replace(/^ALTER ROLE "odoo" SET statement_timeout = \d+;\n/m, ""),
    );
    expect(await validateStack(policy, resources)).toEqual([
      {
        message: `${label} must put a non-zero statement_timeout in force for role odoo in database erp (ALTER ROLE … SET, or server-wide); it is not set anywhere (0: disabled) (PG-2).`,
        urn: expect.stringContaining(conf.name),
      },
    ]);
  });

  it("follows PostgreSQL's precedence: the role's 0 disables the timeout despite the server-wide value", async () => {
    const zero = withContent(sql, (t) => t.replace(/SET lock_timeout = \d+;/, "SET lock_timeout = 0;"));
    expect((await validateStack(policy, replaced(fixture.resources, zero))).map((v) => v.message)).toEqual([
      `${label} must put a non-zero lock_timeout in force for role odoo in database erp (ALTER ROLE … SET, or server-wide); it is "0" (ALTER ROLE odoo in ${fileLabelOf(sql)}) (PG-2).`,
    ]);
  });

  it("accepts the server-wide value alone, and rejects it at 0", async () => {
    const roleless = withContent(sql, (t) => t.replace(/^ALTER ROLE "odoo" SET idle_in_transaction_session_timeout = \d+;\n/m, ""));
    expect(await validateStack(policy, replaced(fixture.resources, roleless))).toEqual([]);
    const resources = replaced(
      replaced(fixture.resources, roleless),
      withContent(conf, setLine("idle_in_transaction_session_timeout", "idle_in_transaction_session_timeout = 0")),
    );
    expect((await validateStack(policy, resources)).map((v) => v.message)).toEqual([
      `${label} must put a non-zero idle_in_transaction_session_timeout in force for role odoo in database erp (ALTER ROLE … SET, or server-wide); it is "0" (${label}) (PG-2).`,
    ]);
  });
});
