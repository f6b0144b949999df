/**
 * Imported first by main.ts: checks the CLI's permissions as it loads, before
 * any module that binds libc is evaluated, and without a prompt
 * (`Deno.permissions.querySync`). Without them: one line naming the four
 * flags (lib/deno_run.ts, the README explains each), exit 2.
 * @module
 */

import { PERMISSION_FLAGS, TOOL_PERMISSIONS } from "../lib/deno_run.ts";
import { writeErrorLine } from "./output.ts";

const missing = TOOL_PERMISSIONS.filter((permission) =>
  Deno.permissions.querySync(permission.descriptor).state !== "granted"
).map((permission) => permission.flag);
if (missing.length) {
  writeErrorLine(
    `invoke_ns: needs the permissions ${PERMISSION_FLAGS.join(" ")} (missing: ${
      missing.join(" ")
    }): run it as './invoke_ns ARGS' or 'deno task start ARGS', or with those four flags`,
  );
  Deno.exit(2);
}
