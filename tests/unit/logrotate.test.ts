// logrotate for Odoo's log (ODOO-5): golden, the invariants that make rotation safe with
// Odoo's WatchedFileHandler, and the checks that keep values inside logrotate's syntax.
import { PATHS } from "../../lib/model";
import { GENERATED } from "../../templates/format";
import { checkLogrotateSettings, odooLogrotateFile, odooLogrotateSettings, renderLogrotate } from "../../templates/logrotate";
import { odooConfSettingsFor, renderOdooConf } from "../../templates/odoo-conf";
import { expectGolden } from "../helpers/golden";
import { modelWith } from "../helpers/fixtures";

/** The stanza's target paths and its directives (first word → the rest). */
function parseStanza(text: string): { files: string[]; directives: Map<string, string> } {
  const body = text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  const open = /^(.+) \{$/.exec(body[0]);
  if (!open || body[body.length - 1] !== "}") throw new Error(`not one stanza:\n${text}`);
  const directives = new Map<string, string>();
  for (const line of body.slice(1, -1)) {
    const [name, ...rest] = line.trim().split(/\s+/);
    if (directives.has(name)) throw new Error(`${name} appears twice`);
    directives.set(name, rest.join(" "));
  }
  return { files: open[1].split(" "), directives };
}

describe("logrotate", () => {
  const text = renderLogrotate(odooLogrotateSettings());
  const { files, directives } = parseStanza(text);

  it("golden", () => expectGolden("logrotate/odoo", text));

  it("starts with the generated header", () => expect(text.split("\n")[0]).toBe(`# ${GENERATED}`));

  it.each(["16.0", "17.0", "18.0"])("rotates exactly the logfile odoo.conf names (Odoo %s, ODOO-5)", (odooVersion) => {
    const model = modelWith({ odooVersion });
    const logfile = /^logfile = (.*)$/m.exec(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])))?.[1];
    expect(files).toEqual([logfile]);
    expect(files).toEqual([PATHS.odooLogFile]);
  });

  it("renames and creates the file: Odoo's WatchedFileHandler reopens it, so no copytruncate and no signal", () => {
    expect(directives.has("copytruncate")).toBe(false);
    expect(directives.has("postrotate")).toBe(false);
    expect(directives.get("create")).toBe("0640 odoo adm");
    // Yesterday's file stays uncompressed while a worker may still finish a line in it.
    expect(directives.has("delaycompress")).toBe(true);
  });

  it("rotates as the owner of the log directory, not as root", () => {
    expect(directives.get("su")).toBe("odoo adm");
  });

  it("bounds local history and size", () => {
    expect(directives.get("rotate")).toBe("14");
    expect(directives.get("maxsize")).toBe("512M");
    expect(directives.has("daily")).toBe(true);
  });

  it("is delivered to /etc/logrotate.d, owned by root", () => {
    const file = odooLogrotateFile();
    expect([file.path, file.mode, file.owner, file.group, file.content]).toEqual([PATHS.odooLogrotate, "0644", "root", "root", text]);
  });

  it.each([
    ["a path with a space", { logFiles: ["/var/log/odoo/a b.log"] }, /logFiles: "\/var\/log\/odoo\/a b\.log" must be an absolute path/],
    ["a path with a newline", { logFiles: ["/var/log/odoo/x.log {\n}\n/etc/shadow"] }, /must be an absolute path/],
    ["a relative path", { logFiles: ["odoo.log"] }, /must be an absolute path/],
    ["a path climbing out", { logFiles: ["/var/log/../../etc/shadow"] }, /must be an absolute path/],
    ["no file", { logFiles: [] }, /at least one file must be rotated/],
    ["a user with a newline", { user: "odoo\nroot" }, /user = "odoo\\nroot": must be a Unix account name/],
    ["a non-octal mode", { mode: "640" }, /mode = "640": must be octal/],
    ["zero days", { rotateDays: 0 }, /rotateDays = 0: must be a whole number ≥ 1/],
  ])("refuses %s", (_what, change, message) => {
    const settings = { ...odooLogrotateSettings(), ...change };
    expect(checkLogrotateSettings(settings).join("\n")).toMatch(message);
    expect(() => renderLogrotate(settings)).toThrow(message);
  });
});
