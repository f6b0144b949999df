/**
 * What the cgroup work of one launch costs, as root: create the launch's
 * cgroups (with `--memory 64M --pids 50`, with accounting, and with no limit:
 * containment only), move a process in (what the child's `joinSelf` does),
 * and remove them again; per phase, the median and mean over the runs, and
 * the total as a fraction of one `launch()` of /bin/true (pid, mount, uts,
 * ipc namespaces, as bench (b)) measured in the same run. A long-lived
 * `sleep` stands in for the child and is moved back to the caller's cgroups
 * between runs (not counted).
 * Usage: deno run --allow-ffi --allow-read --allow-write --allow-env --allow-run bench/cgroup.ts [RUNS]
 * @module
 */

import { launch } from "../mod.ts";
import { cgroupLayout, writeCgroupFile } from "../lib/cgroupfs.ts";
import { createLaunchCgroup, type Limits } from "../lib/limits.ts";

const runs = Number(Deno.args[0] ?? 200);
const sleeper = new Deno.Command("sleep", { args: ["600"] }).spawn();
const layout = cgroupLayout();
const callerProcs = [layout.unified, ...layout.v1].filter((h) => h !== undefined)
  .map((h) => `${h.callerDir}/cgroup.procs`);

function median(samples: number[]): number {
  return [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}

function summary(samples: number[]): string {
  const mean = samples.reduce((sum, x) => sum + x, 0) / samples.length;
  return `median ${median(samples).toFixed(3)} ms, mean ${mean.toFixed(3)} ms`;
}

let launchMs = 0;

async function measureLaunch(): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await launch({ command: ["/bin/true"], pid: true, mount: true, hostname: "b", ipc: true });
    samples.push(performance.now() - t0);
  }
  launchMs = median(samples);
  console.log(`launch() of /bin/true (${runs} runs): ${summary(samples)}`);
}

async function measure(label: string, limits: Limits): Promise<void> {
  const create: number[] = [], join: number[] = [], remove: number[] = [], total: number[] = [];
  let cgroups = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const cgroup = await createLaunchCgroup(limits);
    const t1 = performance.now();
    cgroups = cgroup.set.nodes.length;
    cgroup.join(sleeper.pid);
    const t2 = performance.now();
    for (const file of callerProcs) writeCgroupFile(file, String(sleeper.pid));
    const t3 = performance.now();
    await cgroup.remove();
    const t4 = performance.now();
    create.push(t1 - t0);
    join.push(t2 - t1);
    remove.push(t4 - t3);
    total.push(t1 - t0 + t2 - t1 + t4 - t3);
  }
  const ratio = (median(total) / launchMs).toFixed(2);
  console.log(
    `${label} (${runs} runs, ${cgroups} cgroups each):\n  create ${summary(create)}\n` +
      `  join   ${summary(join)}\n  remove ${summary(remove)}\n  total  ${summary(total)}` +
      ` (${ratio} of a launch)`,
  );
}

try {
  console.log(`cgroups: ${layout.mode}`);
  await measureLaunch();
  await measure("--memory 64M --pids 50", { memory: 64 * 2 ** 20, pids: 50 });
  await measure("accounting only (--stats)", { accounting: true });
  await measure("no limit (containment only)", {});
} finally {
  sleeper.kill("SIGKILL");
  await sleeper.status;
}
