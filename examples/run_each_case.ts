/**
 * Runs every executable test case in a folder in its own fresh namespaces
 * (PID, mount with a fresh /proc, UTS, IPC, network), so that no case can see
 * or disturb another, or the host: a test harness in a dozen lines.
 *
 * Usage: deno run --allow-ffi --allow-read --allow-env examples/run_each_case.ts DIR
 * Exit status: 0 when every case passed, 1 otherwise.
 * @module
 */

import { launch, LaunchError } from "../mod.ts";

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: run_each_case.ts DIR");
  Deno.exit(2);
}
const cases = [...Deno.readDirSync(dir)].filter((entry) => entry.isFile).map((entry) => entry.name)
  .sort();
let failed = 0;
for (const name of cases) {
  let verdict: string;
  try {
    const { code, signal } = await launch({
      command: [`${Deno.realPathSync(dir)}/${name}`],
      pid: true,
      mount: true,
      ipc: true,
      net: true,
      hostname: `case-${name}`.slice(0, 64),
    });
    verdict = code === 0 ? "ok" : `FAILED (${signal ?? `exit ${code}`})`;
  } catch (error) {
    verdict = `FAILED (${error instanceof LaunchError ? error.message : String(error)})`;
  }
  if (verdict !== "ok") failed++;
  console.log(`${name} ... ${verdict}`);
}
console.log(`${cases.length - failed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
