/**
 * Benchmarks, printed as medians and ratios against references measured
 * side by side in the same run (never absolute thresholds):
 *
 * (a) the CLI's run form `-pmI -u x /bin/true` and `--version`, each as
 *     `deno run main.ts` and through `./invoke_ns`, against an empty
 *     `deno run` (the Deno start-up floor), and the run form against
 *     `unshare -pmiu --fork --mount-proc true` (docs/performance.md says
 *     where the time goes);
 * (b) 1,000 launches of /bin/true through `launch()` in this process (same
 *     namespaces and a fresh /proc), per launch, against one `unshare` run;
 * (c) the CLI's peak memory (the same rows) against the empty `deno run`'s, each measured
 *     from outside by GNU `/usr/bin/time -v`, which forks: a child started
 *     with CLONE_VM (Deno.Command's posix_spawn, our own engine) inherits its
 *     spawner's high-water RSS at exec, so its own rusage overstates it;
 * (d) resolving the dependency closures of /usr/bin against `ldd` on each;
 * (e) the launcher `./invoke_ns` against the plain `deno run` it execs (its
 *     cost per call), measured alongside (a);
 * (f) `launch()` with `--memory 64M --pids 50` (its own cgroups: made,
 *     joined, emptied, read and removed) against the same launch without,
 *     interleaved: what the cgroup work adds per launch;
 * (g) the `launch()` RSS soak (bench/soak.ts): VmRSS and V8's heap sampled
 *     over many launches in one process, reported, not asserted;
 * (h) `launch()` with `contain` against the same launch without, side by
 *     side (interleaved batches), and the planning alone (the filter compile,
 *     cached after the first);
 * (i) the OCI lifecycle create → start → exit → delete of a /bin/true
 *     bundle, each verb, against runc (bench/oci.ts).
 *
 * Run as root: `deno task bench`.
 * @module
 */

import { launch } from "../mod.ts";
import { type LaunchSpec, planLaunch } from "../lib/plan.ts";
import { CONTAIN_MASKED_PATHS, CONTAIN_READONLY_PATHS } from "../lib/masks.ts";
import { benchOci } from "./oci.ts";
import { benchResolve } from "./resolve.ts";
import { NO_CONFIG_FLAGS, PERMISSION_FLAGS } from "../lib/deno_run.ts";
import { printSoak, soak } from "./soak.ts";

const deno = Deno.execPath();
const here = new URL(".", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
const RUNS = 21;
const LAUNCHES = 1000;
const SOAK_LAUNCHES = 10_000;
const LIMIT_LAUNCHES = 300;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeCommand(argv: string[]): number {
  const start = performance.now();
  const { code } = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "null",
    env: { DENO: deno }, // ./invoke_ns runs this very deno
  }).outputSync();
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

const GNU_TIME = "/usr/bin/time";

/**
 * Peak RSS (KiB) of `argv`, as GNU time reports it for the process it forked
 * and exec'd (median of `RUNS` runs); null when GNU time is not installed.
 */
function peakKiB(argv: string[]): number | null {
  const peaks: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let out;
    try {
      out = new Deno.Command(GNU_TIME, {
        args: ["-v", ...argv],
        cwd: root, // in the project folder, so both read the same deno.json
        stdout: "null",
        stderr: "piped",
      }).outputSync();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    const text = new TextDecoder().decode(out.stderr);
    const peak = text.match(/Maximum resident set size \(kbytes\): (\d+)/);
    if (!out.success || !peak) throw new Error(`${argv.join(" ")}: ${text}`);
    peaks.push(Number(peak[1]));
  }
  return median(peaks);
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

/** Runs the launcher benchmarks and prints the results. */
export async function benchLaunch(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("launch benchmarks skipped: they compare against unshare(1), which needs root");
    return;
  }
  const flags = PERMISSION_FLAGS;
  const runForm = ["-pmI", "-u", "x", "/bin/true"];
  const commands = {
    emptyDeno: [deno, "run", `${here}empty.ts`],
    cli: [deno, "run", ...flags, `${root}main.ts`, ...runForm],
    version: [deno, "run", ...flags, `${root}main.ts`, "--version"],
    unshare: ["unshare", "-pmiu", "--fork", "--mount-proc", "true"],
    // the same runs through ./invoke_ns, and the plain deno run it execs
    plain: [deno, "run", ...NO_CONFIG_FLAGS, ...flags, `${root}main.ts`, ...runForm],
    launcher: [`${root}invoke_ns`, ...runForm],
    launcherVersion: [`${root}invoke_ns`, "--version"],
  };
  const medians = interleaved(commands);
  const floor = medians.emptyDeno;
  const against = (ms: number, target: string) => `${fmt(ms)} = ${ratio(ms, floor)} ${target}`;
  console.log(`(a) CLI start to finish, median of ${RUNS} interleaved runs:`);
  console.log(`    empty deno run (the floor)       ${fmt(floor)}`);
  console.log(`    unshare -pmiu --fork ...         ${fmt(medians.unshare)}`);
  console.log(
    `    deno run main.ts -pmI -u x       ${against(medians.cli, "(target <= 1.25x)")}, ${
      ratio(medians.cli, medians.unshare)
    } unshare`,
  );
  console.log(`    deno run main.ts --version       ${against(medians.version, "")}`);
  console.log(`    ./invoke_ns -pmI -u x            ${against(medians.launcher, "")}`);
  console.log(`    ./invoke_ns --version            ${against(medians.launcherVersion, "")}`);
  console.log(
    `(e) the launcher: ./invoke_ns -pmI -u x ${fmt(medians.launcher)} = ${
      fmt(medians.launcher - medians.plain)
    } over the same deno run (${fmt(medians.plain)}; target <= 5 ms)`,
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

  console.log(`(c) peak memory (max RSS of each process, GNU time -v, median of ${RUNS}):`);
  const floorKiB = peakKiB(commands.emptyDeno);
  if (floorKiB === null) {
    console.log(`    skipped: ${GNU_TIME} is missing (Debian package "time")`);
  } else {
    console.log(`    empty deno run (the floor)       ${floorKiB} KiB`);
    const rows: [string, string[], string][] = [
      ["deno run main.ts -pmI -u x", commands.cli, " (target <= 1.2x)"],
      ["deno run main.ts --version", commands.version, ""],
      ["./invoke_ns -pmI -u x", commands.launcher, ""],
    ];
    for (const [name, argv, target] of rows) {
      const kib = peakKiB(argv)!;
      console.log(`    ${name.padEnd(32)} ${kib} KiB = ${ratio(kib, floorKiB)}${target}`);
    }
  }

  console.log(`(g) launch() RSS soak, ${SOAK_LAUNCHES} launches in one process (reported only):`);
  printSoak(await soak(SOAK_LAUNCHES));
}

/** (f): launches with and without limits, interleaved; prints the cost of the cgroup work. */
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
    `(f) launch() with --memory 64M --pids 50 against without, median of ${LIMIT_LAUNCHES}:`,
  );
  console.log(
    `    without ${fmt(a)}, with ${fmt(b)} = ${ratio(b, a)}: the cgroup work costs ${
      fmt(b - a)
    } per launch (target <= 0.5 ms)`,
  );
}

/** (h): what `contain` adds to a launch, per launch, and which layer costs what. */
export async function benchContain(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("(h) skipped: needs root, as the launches above");
    return;
  }
  const plain: LaunchSpec = { command: ["/bin/true"], pid: true, mount: true };
  const variants: Record<string, LaunchSpec> = {
    "without": plain,
    "with contain": { ...plain, contain: true, pty: false },
    "  seccomp default only": { ...plain, seccomp: "default", noNewPrivs: true },
    "  capabilities only": { ...plain, capabilities: { drop: ["MKNOD", "SYS_ADMIN"] } },
    "  masked paths only": {
      ...plain,
      maskedPaths: CONTAIN_MASKED_PATHS.filter(exists),
      readonlyPaths: CONTAIN_READONLY_PATHS.filter(exists),
    },
    "  new session only": { ...plain, newSession: true },
  };
  const samples: Record<string, number[]> = {};
  for (let run = -1; run < 7; run++) { // the first round warms up
    for (const [name, spec] of Object.entries(variants)) {
      const start = performance.now();
      for (let i = 0; i < 40; i++) {
        const { code } = await launch(spec);
        if (code !== 0) throw new Error(`launch exited ${code}`);
      }
      if (run >= 0) (samples[name] ??= []).push((performance.now() - start) / 40);
    }
  }
  const base = median(samples.without);
  console.log("(h) launch() with contain against without (pid, mount+proc), per launch:");
  for (const [name, list] of Object.entries(samples)) {
    const value = median(list);
    const delta = name === "without" ? "" : `  +${fmt(value - base)}`;
    console.log(`    ${name.padEnd(24)} ${fmt(value)}${delta}`);
  }
  const plan = async (spec: LaunchSpec) => {
    const start = performance.now();
    for (let i = 0; i < 200; i++) await planLaunch(spec);
    return (performance.now() - start) / 200;
  };
  await plan(variants["with contain"]);
  const planA = await plan(plain), planB = await plan(variants["with contain"]);
  console.log(
    `    planning alone (the filter compiled once, then cached): +${
      fmt(planB - planA)
    } (target: compile and extra steps <= 0.3 ms)`,
  );
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  await benchLaunch();
  await benchContain();
  console.log("(d) dependency closures of /usr/bin, against ldd:");
  await benchResolve();
  if (Deno.uid() === 0) await benchOci();
}
