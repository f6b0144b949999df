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
 * (e) `launch()` with `contain` against the same launch without, side by
 *     side (interleaved batches), and the planning alone (the filter compile,
 *     cached after the first).
 *
 * Run as root: `deno task bench`.
 * @module
 */

import { launch } from "../mod.ts";
import { type LaunchSpec, planLaunch } from "../lib/plan.ts";
import { CONTAIN_MASKED_PATHS, CONTAIN_READONLY_PATHS } from "../lib/masks.ts";
import { benchResolve } from "./resolve.ts";

const deno = Deno.execPath();
const here = new URL(".", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
const RUNS = 21;
const LAUNCHES = 1000;

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

  const floorKiB = peakKiB(commands.emptyDeno);
  const cliKiB = peakKiB(commands.cli);
  console.log("(c) peak memory (max RSS):");
  console.log(
    `    empty deno run ${floorKiB} KiB, invoke_ns ${cliKiB} KiB = ${
      ratio(cliKiB, floorKiB)
    } (target <= 1.3x)`,
  );
}

/** (e): what `contain` adds to a launch, per launch, and which layer costs what. */
export async function benchContain(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("(e) skipped: needs root, as the launches above");
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
  console.log("(e) launch() with contain against without (pid, mount+proc), per launch:");
  for (const [name, list] of Object.entries(samples)) {
    const value = median(list);
    const delta = name === "without" ? "" : `  +${fmt(value - base)}`;
    console.log(`    ${name.padEnd(24)} ${fmt(value)}${delta}`);
  }
  const plan = (spec: LaunchSpec) => {
    const start = performance.now();
    for (let i = 0; i < 200; i++) planLaunch(spec);
    return (performance.now() - start) / 200;
  };
  plan(variants["with contain"]);
  const planA = plan(plain), planB = plan(variants["with contain"]);
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
}
