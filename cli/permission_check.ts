/**
 * Imported first by main.ts: checks the CLI's permissions as it loads, before
 * any module that binds libc is evaluated, and without a prompt. Without
 * them: one line naming the four flags, exit 2.
 * @module
 */

import { writeErrorLine } from "./output.ts";
import { missingFlags, missingPermissionsMessage } from "./permissions.ts";

const missing = missingFlags();
if (missing.length) {
  writeErrorLine(missingPermissionsMessage(missing));
  Deno.exit(2);
}
