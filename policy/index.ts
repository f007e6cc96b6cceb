// The odoo-stack policy pack: one file per checklist area, each exporting `policies`.
// This file only assembles them; the rules live beside their area.
import { PolicyPack } from "@pulumi/policy";
import { policies as auth } from "./auth";
import { policies as compute } from "./compute";
import { policies as efs } from "./efs";
import { policies as limits } from "./limits";
import { policies as network } from "./network";
import { policies as observability } from "./observability";
import { policies as odoo } from "./odoo";
import { policies as pool } from "./pool";
import { policies as postgres } from "./postgres";
import { policies as proxy } from "./proxy";
import { policies as rds } from "./rds";
import { policies as secrets } from "./secrets";
import { policies as stack } from "./stack";
import { policies as storage } from "./storage";
import { policies as tls } from "./tls";

new PolicyPack("odoo-stack", {
  policies: [
    ...network,
    ...proxy,
    ...odoo,
    ...limits,
    ...pool,
    ...auth,
    ...tls,
    ...postgres,
    ...observability,
    ...compute,
    ...secrets,
    ...storage,
    ...rds,
    ...efs,
    ...stack,
  ],
  enforcementLevel: "mandatory",
});
