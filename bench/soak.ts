/**
 * The `launch()` RSS soak: many launches in one process, the resident set
 * (VmRSS from /proc/self/status) and V8's heap sampled at intervals. Reported,
 * not asserted. Run alone: `deno run -A bench/soak.ts [LAUNCHES]` (as root).
 * @module
 */

import { getHeapSpaceStatistics } from "node:v8";
import { readFile } from "../ffi/libc.ts";
import { launch } from "../mod.ts";

/** One sample of the soak. */
export interface SoakSample {
  /** Launches done so far. */
  launches: number;
  /** VmRSS in MiB. */
  rssMiB: number;
  /** V8's used heap in MiB (live JavaScript data, after a GC when exposed). */
  heapMiB: number;
  /** Memory held by ArrayBuffers and other external objects, in MiB. */
  externalMiB: number;
  /** The size V8 has given its young generation (new space), in MiB. */
  youngMiB: number;
}

const MIB = 1024 * 1024;

function vmRssMiB(): number {
  // Through libc: Deno wants --allow-all for /proc/self paths.
  const field = readFile("/proc/self/status").match(/^VmRSS:\s+(\d+) kB$/m);
  return field ? Number(field[1]) / 1024 : NaN;
}

function sample(launches: number): SoakSample {
  const memory = Deno.memoryUsage();
  return {
    launches,
    rssMiB: vmRssMiB(),
    heapMiB: memory.heapUsed / MIB,
    externalMiB: memory.external / MIB,
    youngMiB: (getHeapSpaceStatistics().find((space) => space.space_name === "new_space")
      ?.space_size ?? NaN) / MIB,
  };
}

/** Runs `launches` launches of /bin/true (pid, mount + /proc, ipc, uts), sampling `samples` times. */
export async function soak(launches: number, samples = 10): Promise<SoakSample[]> {
  const spec = { command: ["/bin/true"], pid: true, mount: true, ipc: true, hostname: "x" };
  await launch(spec);
  const taken = [sample(0)];
  const every = Math.max(1, Math.floor(launches / samples));
  for (let i = 1; i <= launches; i++) {
    const { code } = await launch(spec);
    if (code !== 0) throw new Error(`launch ${i} exited ${code}`);
    if (i % every === 0) taken.push(sample(i));
  }
  return taken;
}

/** Prints a soak's samples as a table, and the growth. */
export function printSoak(samples: SoakSample[]): void {
  const f = (n: number) => n.toFixed(1).padStart(7);
  console.log("    launches   VmRSS MiB   heap used MiB   external MiB   young gen MiB");
  for (const s of samples) {
    console.log(
      `    ${String(s.launches).padStart(8)}   ${f(s.rssMiB)}     ${f(s.heapMiB)}         ${
        f(s.externalMiB)
      }        ${f(s.youngMiB)}`,
    );
  }
  const first = samples[0], last = samples[samples.length - 1];
  const perLaunch = (last.rssMiB - first.rssMiB) * 1024 / Math.max(1, last.launches);
  console.log(
    `    RSS ${first.rssMiB.toFixed(1)} -> ${last.rssMiB.toFixed(1)} MiB over ${last.launches} ` +
      `launches (${perLaunch.toFixed(2)} KiB a launch); heap ${first.heapMiB.toFixed(1)} -> ` +
      `${last.heapMiB.toFixed(1)} MiB`,
  );
}

if (import.meta.main) {
  printSoak(await soak(Number(Deno.args[0] ?? 5000)));
}
