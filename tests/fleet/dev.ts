// Boots the fleet and keeps it up for a look inside, until Ctrl-C (then everything is removed):
//   npx tsx tests/fleet/dev.ts
// A host's shell: nsenter -t <leader pid printed below> -a bash
import { Fleet } from "./lib/fleet";

async function main(): Promise<void> {
  const fleet = await Fleet.up({ log: (l) => console.log(`fleet: ${l}`), odooDeb: process.env.ODOO_STACK_FLEET_ODOO_DEB });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("fleet: destroying");
    await fleet.destroy();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  for (const m of fleet.machines.values()) console.log(`${m.spec.host}: leader pid ${m.leader()} (${m.consoleLog})`);
  console.log(`network namespace ${fleet.network?.name}; edge control socket ${fleet.controlSocket}`);
  try {
    const reports = await fleet.waitForFirstBoot();
    console.log(JSON.stringify(reports, null, 2));
  } catch (e) {
    console.log(String(e));
    console.log(fleet.evidence());
  }
  console.log("fleet: up; Ctrl-C to destroy");
  await new Promise(() => undefined);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
