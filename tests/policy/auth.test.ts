// Auth (AUTH-1, AUTH-2): pgbouncer.ini, the userlist with its manifest entry, pg_hba.conf and
// postgresql.conf as rendered.
import { randomBytes } from "crypto";
import { scramSha256Verifier } from "../../lib/scram";
import {
  pgbouncerAuthFileProtected,
  pgbouncerAuthFileSet,
  pgbouncerAuthScram,
  pgHbaNoWeakMethods,
  postgresPasswordEncryptionScram,
} from "../../policy/auth";
import { setLine, validateResource, validateStack, withContent, type FakeResource } from "./fakes";
import { replaced, stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const ini = fixture.file("pgbouncer", "/etc/pgbouncer/pgbouncer.ini");
const userlist = fixture.file("pgbouncer", "/etc/pgbouncer/userlist.txt");
const manifest = fixture.get("pgbouncer-host-manifest");
const hba = fixture.file("postgres", "/etc/postgresql/15/main/pg_hba.conf");
const pgConf = fixture.file("postgres", "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf");
const iniLabel = `pgbouncer.ini of pgbouncer (${ini.name})`;
const listLabel = `userlist.txt of pgbouncer (${userlist.name})`;

describe("pgbouncer-auth-scram and pgbouncer-auth-file-set (AUTH-1, AUTH-2)", () => {
  it("pass the rendered file", async () => {
    expect(await validateResource(pgbouncerAuthScram, ini)).toEqual([]);
    expect(await validateResource(pgbouncerAuthFileSet, ini)).toEqual([]);
  });

  it.each([
    ["auth_type = md5", '"md5"'],
    ["auth_type = trust", '"trust"'],
    [undefined, "absent (PgBouncer's default md5)"],
  ])("rejects %s", async (line, now) => {
    expect(await validateResource(pgbouncerAuthScram, withContent(ini, setLine("auth_type", line)))).toEqual([
      `${iniLabel} must set auth_type = scram-sha-256; it is ${now} (AUTH-1).`,
    ]);
  });

  it("rejects a missing or relative auth_file", async () => {
    expect(await validateResource(pgbouncerAuthFileSet, withContent(ini, setLine("auth_file", undefined)))).toEqual([
      `${iniLabel} must set auth_file to the absolute path of the userlist; it is absent (AUTH-2).`,
    ]);
    expect(await validateResource(pgbouncerAuthFileSet, withContent(ini, setLine("auth_file", "auth_file = userlist.txt")))).toEqual([
      `${iniLabel} must set auth_file to the absolute path of the userlist; it is "userlist.txt" (AUTH-2).`,
    ]);
  });
});

describe("pgbouncer-auth-file-protected (AUTH-2)", () => {
  const policy = pgbouncerAuthFileProtected;
  const messages = async (resources: readonly FakeResource[]) => (await validateStack(policy, resources)).map((v) => v.message);
  const subject = `${iniLabel} names auth_file /etc/pgbouncer/userlist.txt, which`;

  it("passes the stack: 0600 in the manifest, SCRAM references only", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects a userlist the manifest installs 0644", async () => {
    const loose = withContent(manifest, (t) => {
      const doc = JSON.parse(t) as { files: { path: string; mode: string }[] };
      for (const f of doc.files) if (f.path === "/etc/pgbouncer/userlist.txt") f.mode = "0644";
      return JSON.stringify(doc, null, 2);
    });
    expect(await messages(replaced(fixture.resources, loose))).toEqual([
      `${subject} must be installed with mode 0600; host pgbouncer's manifest gives it 0644 (AUTH-2).`,
    ]);
  });

  it("rejects an auth_file that is not delivered", async () => {
    expect(await messages(fixture.resources.filter((r) => r !== userlist))).toEqual([
      `${subject} must be delivered to host pgbouncer too: no config object carries it (AUTH-2).`,
    ]);
  });

  it.each([
    ['"odoo" "correct horse battery staple"', "plaintext"],
    ['"odoo" "md5d41d8cd98f00b204e9800998ecf8427e"', "md5"],
  ])("rejects a %s userlist entry", async (line) => {
    const r = withContent(userlist, (t) => t.replace(/^"odoo" .*$/m, line));
    expect(await messages(replaced(fixture.resources, r))).toEqual([
      `${listLabel} must give user odoo a SCRAM-SHA-256 verifier or an {{ssm:…}} reference to one on line 5, never a password or an md5 hash (AUTH-2).`,
    ]);
  });

  it("rejects a '#' comment, where PgBouncer stops reading", async () => {
    const r = withContent(userlist, (t) => t.replace(/^"odoo" /m, '# rotated 2025-01-01\n"odoo" '));
    expect(await messages(replaced(fixture.resources, r))).toEqual([
      `${listLabel} must hold \`"user" "secret"\` (or a ';' comment) on line 5; PgBouncer stops reading the file there (AUTH-2).`,
    ]);
  });

  it("accepts a literal SCRAM verifier", async () => {
    const verifier = scramSha256Verifier(randomBytes(18).toString("base64url"), randomBytes(16));
    const r = withContent(userlist, (t) => t.replace(/^"odoo" .*$/m, `"odoo" "${verifier}"`));
    expect(await messages(replaced(fixture.resources, r))).toEqual([]);
  });
});

describe("pg-hba-no-weak-methods (AUTH-1)", () => {
  const label = `pg_hba.conf of postgres (${hba.name})`;

  it("passes the rendered pg_hba.conf (peer on the local socket is not a network method)", async () => {
    expect(await validateResource(pgHbaNoWeakMethods, hba)).toEqual([]);
  });

  it.each(["md5", "trust", "password"])("rejects %s on a network record", async (method) => {
    const r = withContent(hba, (t) => t.replace(/(hostssl\s+\S+\s+odoo,odoo_migrate\s+\S+\s+)scram-sha-256/, `$1${method}`));
    expect(await validateResource(pgHbaNoWeakMethods, r)).toEqual([
      `${label} must not authenticate \`hostssl erp,postgres odoo,odoo_migrate 10.40.128.11/32\` with ${method} on line 8; use scram-sha-256 (AUTH-1).`,
    ]);
  });
});

describe("postgres-password-encryption-scram (AUTH-1)", () => {
  it("passes scram-sha-256 and rejects md5", async () => {
    expect(await validateResource(postgresPasswordEncryptionScram, pgConf)).toEqual([]);
    expect(
      await validateResource(
        postgresPasswordEncryptionScram,
        withContent(pgConf, setLine("password_encryption", "password_encryption = 'md5'")),
      ),
    ).toEqual([`90-odoo-stack.conf of postgres (${pgConf.name}) must set password_encryption = scram-sha-256; it is "md5" (AUTH-1).`]);
  });
});
