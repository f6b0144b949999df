/**
 * Benchmarks, printed as medians and ratios against references measured
 * side by side in the same run (never absolute thresholds):
 *
 * (a) the CLI `invoke_ns -pmI -u x /bin/true` against an empty `deno run`
 *     (the Deno start-up floor) and against
 *     `unshare -pmiu --fork --mount-proc true`;
 * (b) 1,000 launches of /bin/true through `launch()` in this process (same
 *     namespaces and a fresh /proc), per launch, against one `unshare` run;
 * (c) the CLI's peak memory against the empty `deno run`'s;
 * (d) resolving the dependency closures of /usr/bin against `ldd` on each;
 * (e) `launch()` with `--memory 64M --pids 50` (its own cgroups: made,
 *     joined, emptied, read and removed) against the same launch without,
 *     interleaved: what the cgroup work adds per launch.
 *
 * Run as root: `deno task bench`.
 * @module
 */

import { launch } from "../mod.ts";
import { benchResolve } from "./resolve.ts";

const deno = Deno.execPath();
const here = new URL(".", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
const RUNS = 21;
const LAUNCHES = 1000;
const LIMIT_LAUNCHES = 300;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeCommand(argv: string[]): number {
  const start = performance.now();
  const { code } = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null" }).outputSync();
  const elapsed = performance.now() - start;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}`);
  return elapsed;
}

/** Median wall time of each command, runs interleaved so noise hits all alike. */
function interleaved(commands: Record<string, string[]>): Record<string, number> {
  const samples: Record<string, number[]> = {};
  for (const name of Object.keys(commands)) {
    samples[name] = [];
    timeCommand(commands[name]); // warm caches
  }
  for (let run = 0; run < RUNS; run++) {
    for (const [name, argv] of Object.entries(commands)) samples[name].push(timeCommand(argv));
  }
  return Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, median(s)]));
}

function peakKiB(argv: string[]): number {
  const out = new Deno.Command(deno, {
    args: ["run", "--allow-run", "--allow-ffi", `${here}maxrss.ts`, ...argv],
    stdout: "piped",
  }).outputSync();
  return JSON.parse(new TextDecoder().decode(out.stdout)).maxrssKiB;
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

/** Runs the launcher benchmarks and prints the results. */
export async function benchLaunch(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("launch benchmarks skipped: they compare against unshare(1), which needs root");
    return;
  }
  const flags = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];
  const commands = {
    emptyDeno: [deno, "run", `${here}empty.ts`],
    cli: [deno, "run", ...flags, `${root}main.ts`, "-pmI", "-u", "x", "/bin/true"],
    unshare: ["unshare", "-pmiu", "--fork", "--mount-proc", "true"],
  };
  const medians = interleaved(commands);
  console.log(`(a) CLI start to finish, median of ${RUNS}:`);
  console.log(`    empty deno run           ${fmt(medians.emptyDeno)}`);
  console.log(`    unshare -pmiu --fork ... ${fmt(medians.unshare)}`);
  console.log(
    `    invoke_ns -pmI -u x      ${fmt(medians.cli)}  = ${
      ratio(medians.cli, medians.emptyDeno)
    } the Deno floor (target <= 1.25x), ${ratio(medians.cli, medians.unshare)} unshare`,
  );

  const spec = { command: ["/bin/true"], pid: true, mount: true, ipc: true, hostname: "x" };
  await launch(spec);
  const start = performance.now();
  for (let i = 0; i < LAUNCHES; i++) {
    const { code } = await launch(spec);
    if (code !== 0) throw new Error(`launch ${i} exited ${code}`);
  }
  const perLaunch = (performance.now() - start) / LAUNCHES;
  console.log(`(b) ${LAUNCHES} launches through launch() (pid, mount+proc, ipc, uts):`);
  console.log(
    `    per launch ${fmt(perLaunch)} = ${
      ratio(perLaunch, medians.unshare)
    } one unshare run (target <= 0.5x)`,
  );

  await benchLimits(spec);

  const floorKiB = peakKiB(commands.emptyDeno);
  const cliKiB = peakKiB(commands.cli);
  console.log("(c) peak memory (max RSS):");
  console.log(
    `    empty deno run ${floorKiB} KiB, invoke_ns ${cliKiB} KiB = ${
      ratio(cliKiB, floorKiB)
    } (target <= 1.3x)`,
  );
}

/** (e): launches with and without limits, interleaved; prints the cost of the cgroup work. */
async function benchLimits(spec: { command: string[] }): Promise<void> {
  const limited = { ...spec, limits: { memory: 64 * 2 ** 20, pids: 50 } };
  const timed = async (s: typeof limited | typeof spec) => {
    const t0 = performance.now();
    const { code } = await launch(s);
    if (code !== 0) throw new Error(`launch exited ${code}`);
    return performance.now() - t0;
  };
  await timed(limited);
  const without: number[] = [], withLimits: number[] = [];
  for (let i = 0; i < LIMIT_LAUNCHES; i++) {
    without.push(await timed(spec));
    withLimits.push(await timed(limited));
  }
  const [a, b] = [median(without), median(withLimits)];
  console.log(
    `(e) launch() with --memory 64M --pids 50 against without, median of ${LIMIT_LAUNCHES}:`,
  );
  console.log(
    `    without ${fmt(a)}, with ${fmt(b)} = ${ratio(b, a)}: the cgroup work costs ${
      fmt(b - a)
    } per launch (target <= 0.5 ms)`,
  );
}

if (import.meta.main) {
  await benchLaunch();
  console.log("(d) dependency closures of /usr/bin, against ldd:");
  await benchResolve();
}
