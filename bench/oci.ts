/**
 * (i) The OCI lifecycle of a `/bin/true` bundle (a static busybox root file
 * system): create → start → exit → delete, each verb timed, median of
 * {@link LIFECYCLES}, invoke_ns and runc side by side in one run (runs
 * interleaved). The bench makes itself a child subreaper, as conmon does,
 * so each container, once its `create` has exited, is its child to wait for.
 * @module
 */

import { defaultConfig } from "../cli/oci.ts";
import { prctl, waitForExit } from "../ffi/libc.ts";
import { NO_CONFIG_FLAGS, PERMISSION_FLAGS } from "../lib/deno_run.ts";

const deno = Deno.execPath();
const root = new URL("..", import.meta.url).pathname;
const LIFECYCLES = 20;
const PODMAN_RUNS = 10;
const PR_SET_CHILD_SUBREAPER = 36;
const VERBS = ["create", "start", "exit", "delete"] as const;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Wall time of `argv` (no pipes: the container keeps `create`'s stdio open while it waits). */
function timed(argv: string[]): number {
  const start = performance.now();
  const { code } = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).outputSync();
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}`);
  return performance.now() - start;
}

/** One lifecycle; returns each verb's wall time. */
async function lifecycle(runtime: string[], bundle: string, id: string) {
  const times: Record<string, number> = {};
  times.create = timed([
    ...runtime,
    "create",
    "--bundle",
    bundle,
    "--pid-file",
    `${bundle}/pid`,
    id,
  ]);
  const pid = Number(Deno.readTextFileSync(`${bundle}/pid`));
  times.start = timed([...runtime, "start", id]);
  const start = performance.now();
  await waitForExit(pid);
  times.exit = performance.now() - start;
  times.delete = timed([...runtime, "delete", id]);
  return times;
}

function which(program: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${program}`).isFile) return `${dir}/${program}`;
    } catch {
      // not here
    }
  }
  return null;
}

/** Runs the lifecycle benchmark and prints it. */
export async function benchOci(): Promise<void> {
  console.log(`(i) OCI lifecycle of a /bin/true bundle, median of ${LIFECYCLES}:`);
  try {
    Deno.statSync("/bin/busybox");
  } catch {
    console.log("    skipped: /bin/busybox is missing (apt install busybox-static)");
    return;
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  const dir = Deno.makeTempDirSync({ prefix: "invoke_ns_bench_oci_" });
  try {
    Deno.mkdirSync(`${dir}/bundle/rootfs/bin`, { recursive: true });
    for (const sub of ["proc", "dev", "sys"]) Deno.mkdirSync(`${dir}/bundle/rootfs/${sub}`);
    Deno.copyFileSync("/bin/busybox", `${dir}/bundle/rootfs/bin/busybox`);
    Deno.chmodSync(`${dir}/bundle/rootfs/bin/busybox`, 0o755);
    Deno.symlinkSync("busybox", `${dir}/bundle/rootfs/bin/true`);
    const config = defaultConfig(false) as { process: { args: string[] } };
    config.process.args = ["/bin/true"];
    Deno.writeTextFileSync(`${dir}/bundle/config.json`, JSON.stringify(config));
    const runtimes: Record<string, string[]> = {
      invoke_ns: [
        deno,
        "run",
        ...NO_CONFIG_FLAGS, // as ./invoke_ns-oci runs it
        ...PERMISSION_FLAGS,
        `${root}main.ts`,
        "oci",
        "--root",
        `${dir}/state-i`,
      ],
    };
    const runc = which("runc");
    if (runc) runtimes.runc = [runc, "--root", `${dir}/state-r`];
    const samples: Record<string, Record<string, number[]>> = {};
    for (const [name, runtime] of Object.entries(runtimes)) {
      samples[name] = Object.fromEntries([...VERBS, "total"].map((verb) => [verb, []]));
      await lifecycle(runtime, `${dir}/bundle`, "warm"); // caches
    }
    for (let i = 0; i < LIFECYCLES; i++) {
      for (const [name, runtime] of Object.entries(runtimes)) {
        const times = await lifecycle(runtime, `${dir}/bundle`, `c${i}`);
        for (const verb of VERBS) samples[name][verb].push(times[verb]);
        samples[name].total.push(VERBS.reduce((sum, verb) => sum + times[verb], 0));
      }
    }
    const line = (name: string) =>
      `${
        [...VERBS, "total"].map((verb) => `${verb} ${median(samples[name][verb]).toFixed(1)} ms`)
          .join(", ")
      }`;
    for (const name of Object.keys(runtimes)) console.log(`    ${name.padEnd(9)} ${line(name)}`);
    if (samples.runc) {
      const ratio = median(samples.invoke_ns.total) / median(samples.runc.total);
      console.log(
        `    invoke_ns/runc, whole lifecycle: ${
          ratio.toFixed(2)
        }x (the start-up work's target: <= 2x)`,
      );
    } else console.log("    runc is not installed: no side-by-side figure (apt install runc)");
    if (runc) benchPodman(dir, runc);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** `podman run --rm IMAGE true` with each runtime, interleaved, median of {@link PODMAN_RUNS}. */
function benchPodman(dir: string, runc: string): void {
  const podman = which("podman");
  console.log(`(i) podman run --rm of a /bin/true image, median of ${PODMAN_RUNS}:`);
  if (!podman) {
    console.log("    skipped: podman is not installed (apt install podman conmon)");
    return;
  }
  // no CAP_SYS_RESOURCE on these machines: podman's default ulimits would fail for any runtime
  Deno.writeTextFileSync(
    `${dir}/containers.conf`,
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]\n',
  );
  const image = `localhost/invoke_ns_bench_${Deno.pid}`;
  const podmanArgs = (runtime: string, ...args: string[]) => [
    "env",
    `CONTAINERS_CONF=${dir}/containers.conf`,
    podman,
    "--cgroup-manager=cgroupfs",
    "--runtime",
    runtime,
    ...args,
  ];
  const runtimes: Record<string, string> = { invoke_ns: `${root}invoke_ns-oci`, runc };
  timed(["tar", "-C", `${dir}/bundle/rootfs`, "-cf", `${dir}/rootfs.tar`, "."]);
  timed(podmanArgs(runc, "import", `${dir}/rootfs.tar`, image));
  try {
    const samples: Record<string, number[]> = { invoke_ns: [], runc: [] };
    for (const runtime of Object.values(runtimes)) {
      timed(podmanArgs(runtime, "run", "--rm", image, "/bin/true")); // caches
    }
    for (let i = 0; i < PODMAN_RUNS; i++) {
      for (const [name, runtime] of Object.entries(runtimes)) {
        samples[name].push(timed(podmanArgs(runtime, "run", "--rm", image, "/bin/true")));
      }
    }
    const ours = median(samples.invoke_ns), theirs = median(samples.runc);
    console.log(
      `    invoke_ns ${ours.toFixed(1)} ms, runc ${theirs.toFixed(1)} ms: ${
        (ours / theirs).toFixed(2)
      }x`,
    );
  } finally {
    timed(podmanArgs(runc, "rmi", "-f", image));
  }
}

if (import.meta.main) await benchOci();
