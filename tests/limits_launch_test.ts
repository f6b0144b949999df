/**
 * Limits in a launch, as root on this machine's controllers, for real:
 * through the CLI (with exactly the README's four permissions) and through
 * `launch()`. An OOM kill said plainly and known from the counter, a fork
 * bomb held by --pids, a busy loop throttled by --cpus, the time limits
 * (exit 124), peak memory against /usr/bin/time, a SIGKILL from outside
 * not called OOM, -C showing the launch's cgroup as its root, no cgroup
 * left after any run or after the tool is SIGKILLed, the rootless refusal.
 * @module
 */

import assert from "node:assert/strict";
import { launch } from "../mod.ts";
import { SIGNALS } from "../ffi/constants.ts";
import { kill } from "../ffi/libc.ts";
import { cgroupLayout, listInvokeNsCgroups, parseProcCgroup, pidsIn } from "../lib/cgroupfs.ts";
import { cliCommand, isRoot, NOBODY, privilegedTest, runCli, withTempDir } from "./helpers.ts";
import { assertNoCgroupLeft, buildHog, gccAvailable, sleep, waitFor } from "./cgroup_helpers.ts";

const MiB = 2 ** 20;
const timeInstalled = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile;
  } catch {
    return false;
  }
})();
const OOM_LINE = "invoke_ns: killed by the OOM killer: the memory limit (32 MiB) was reached";

/** Registers a root test that also needs gcc (the hog), skipped with the reason otherwise. */
function hogTest(name: string, fn: (hog: string) => Promise<void>, needsTime = false): void {
  const reason = !isRoot
    ? "needs root"
    : !gccAvailable
    ? "gcc is not installed"
    : needsTime && !timeInstalled
    ? "/usr/bin/time is not installed (Debian: apt install time)"
    : undefined;
  if (reason) console.log(`skipping "${name}": ${reason}`);
  Deno.test({
    name,
    ignore: reason !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => withTempDir(async (dir) => await fn(await buildHog(dir))),
  });
}

/** The JSON end event of a `--json` run. */
function endEvent(stdout: string): Record<string, unknown> & { usage: Record<string, number> } {
  const line = stdout.trim().split("\n").find((l) => l.includes('"event":"exit"'));
  assert(line, `no end event in ${stdout}`);
  return JSON.parse(line);
}

hogTest(
  "--memory 32M: a hog past it is OOM-killed and said so (137); one below finishes",
  async (hog) => {
    const over = await runCli(["--memory", "32M", hog, "64"]);
    assert.equal(over.code, 137, over.stderr);
    assert.equal(over.stderr, `${OOM_LINE}\n`);
    assertNoCgroupLeft();
    const under = await runCli(["--memory", "32M", hog, "16"]);
    assert.equal(under.code, 0, under.stderr);
    assert.equal(under.stderr, "");
    assertNoCgroupLeft();

    const killed = await launch({ command: [hog, "64"], limits: { memory: 32 * MiB } });
    assert.equal(killed.code, 137);
    assert.equal(killed.usage?.oom, true);
    assert.equal(killed.usage?.reason, "oom");
    assert(killed.usage!.oomKills! >= 1);
    const fine = await launch({ command: [hog, "16"], limits: { memory: 32 * MiB } });
    assert.equal(fine.code, 0);
    assert.equal(fine.usage?.oom, false);
    assert.equal(fine.usage?.reason, "exit");
    assertNoCgroupLeft();
  },
);

privilegedTest("a container SIGKILLed from outside under --memory is not called OOM", async () => {
  const ran = await runCli(["--memory", "32M", "--stats", "sh", "-c", "kill -KILL $$"]);
  assert.equal(ran.code, 137);
  assert.doesNotMatch(ran.stderr, /OOM killer/);
  assert.match(ran.stderr, /^ {2}ended by {5}signal SIGKILL$/m);
  const result = await launch({ command: ["sleep", "30"], limits: { memory: 32 * MiB } }, {
    onStart: (pid) => kill(pid, SIGNALS.SIGKILL),
  });
  assert.equal(result.signal, "SIGKILL");
  assert.equal(result.usage?.oom, false);
  assert.equal(result.usage?.oomKills, 0);
  assert.equal(result.usage?.reason, "signal");
  assertNoCgroupLeft();
});

/** PIDs of processes running `argv` exactly (from /proc/PID/cmdline). */
function processesRunning(argv: string[]): number[] {
  const wanted = `${argv.join("\0")}\0`;
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/cmdline`) === wanted) {
        found.push(Number(entry.name));
      }
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

privilegedTest(
  "--pids 16: a shell spawning 50 sleeps fails to fork inside; none is left",
  async () => {
    const sleeper = ["sleep", "31.17"];
    const script =
      `for i in $(seq 50); do ${sleeper.join(" ")} </dev/null >/dev/null 2>&1 & done; ` +
      "sleep 0.2; echo started";
    const before = processesRunning(sleeper).length;
    const ran = await runCli(["--pids", "16", "--stats", "sh", "-c", script]);
    // the shell's own error: dash gives up on the script (exit 2)
    assert.match(ran.stderr, /^sh: \d+: Cannot fork$/m);
    assert.equal(ran.code, 2, ran.stderr);
    const peak = Number(/^ {2}peak pids {4}(\d+)$/m.exec(ran.stderr)?.[1]);
    assert(peak <= 16 && peak >= 10, `peak pids ${peak}`);
    // the host's processes: what the shell managed to start is gone with the run
    assert.equal(processesRunning(sleeper).length, before);
    assertNoCgroupLeft();

    const result = await launch({ command: ["sh", "-c", script], limits: { pids: 16 } }, {});
    assert(result.usage!.pidsLimitHits! > 0, `pids.events max ${result.usage?.pidsLimitHits}`);
    assert.equal(processesRunning(sleeper).length, before);
    assertNoCgroupLeft();
  },
);

privilegedTest(
  "--cpus 0.2: a busy loop is throttled; over 2 s of wall time it uses ~0.4 s of CPU",
  async () => {
    const result = await launch({
      command: ["sh", "-c", "while :; do :; done"],
      limits: { cpus: 0.2, wallTimeMs: 2000, accounting: true },
    });
    const usage = result.usage!;
    assert.equal(usage.reason, "wall-time");
    assert(usage.throttledPeriods! > 0, `nr_throttled ${usage.throttledPeriods}`);
    // 0.2 CPUs of 2 s is 0.4 s: a generous bound either side for a busy machine.
    assert(usage.cpuMicros! > 50_000 && usage.cpuMicros! < 1_000_000, `CPU ${usage.cpuMicros} µs`);
    assertNoCgroupLeft();
  },
);

privilegedTest("--wall-time 1 on sleep 10 ends with 124 and says so", async () => {
  const ran = await runCli(["--wall-time", "1", "sleep", "10"]);
  assert.equal(ran.code, 124);
  assert.equal(ran.stderr, "invoke_ns: wall time limit (1 s) exceeded\n");
  const result = await launch({ command: ["sleep", "10"], limits: { wallTimeMs: 300 } });
  assert.equal(result.signal, "SIGKILL");
  assert.equal(result.usage?.reason, "wall-time");
  assertNoCgroupLeft();
});

privilegedTest("--cpu-time 0.3: a fork loop's total CPU time is what counts; 124", async () => {
  // Each process uses little; together they pass the limit (RLIMIT_CPU would not see it).
  const loop = "while :; do sh -c 'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done'; done";
  const ran = await runCli(["--cpu-time", "0.3", "--json", "sh", "-c", loop]);
  assert.equal(ran.code, 124, ran.stderr);
  assert.equal(ran.stderr, "invoke_ns: CPU time limit (0.3 s) exceeded\n");
  const end = endEvent(ran.stdout);
  assert.equal((end.usage as unknown as { reason: string }).reason, "cpu-time");
  assert(end.usage.cpuMicros >= 300_000, `CPU ${end.usage.cpuMicros} µs`);
  assertNoCgroupLeft();
});

hogTest(
  "--stats: the peak memory of a program touching 50 MiB is within 10% of time -v's",
  async (hog) => {
    const time = await new Deno.Command("/usr/bin/time", {
      args: ["-v", hog, "50"],
      stderr: "piped",
    })
      .output();
    const maxRssKiB = Number(
      /Maximum resident set size \(kbytes\): (\d+)/.exec(new TextDecoder().decode(time.stderr))
        ?.[1],
    );
    assert(maxRssKiB > 50 * 1024, `time -v: ${maxRssKiB} KiB`);
    const ran = await runCli(["--stats", "--json", hog, "50"]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stderr, /^invoke_ns: usage\n {2}wall time {4}\d+\.\d{3} s\n/);
    for (const row of ["user CPU", "system CPU", "peak memory", "OOM kills", "ended by"]) {
      assert.match(ran.stderr, new RegExp(`^  ${row} +\\S`, "m"), row);
    }
    const peak = endEvent(ran.stdout).usage.peakMemoryBytes;
    const ratio = peak / (maxRssKiB * 1024);
    assert(Math.abs(ratio - 1) <= 0.1, `cgroup peak ${peak} B, time -v ${maxRssKiB} KiB`);
    assertNoCgroupLeft();
  },
  true,
);

privilegedTest("-C with limits: the container sees its own cgroup as the root", async () => {
  const ran = await runCli(["-C", "--memory", "32M", "--pids", "16", "cat", "/proc/self/cgroup"]);
  assert.equal(ran.code, 0, ran.stderr);
  const lines = parseProcCgroup(ran.stdout);
  assert.equal(lines.find((l) => l.controllers.includes("memory"))?.path, "/");
  assert.equal(lines.find((l) => l.controllers.includes("pids"))?.path, "/");
  if (cgroupLayout().unified) assert.equal(lines.find((l) => l.hierarchyId === 0)?.path, "/");
  assertNoCgroupLeft();
});

privilegedTest(
  "the v2 unified hierarchy: the command is in its own v2 cgroup, killed by cgroup.kill, removed",
  async () => {
    const unified = cgroupLayout().unified;
    assert(unified, "this machine mounts the unified hierarchy");
    let seen: { path: string; populated: boolean } | undefined;
    const result = await launch({ command: ["sleep", "10"], limits: { wallTimeMs: 500 } }, {
      onStart: (pid) => {
        const path = parseProcCgroup(Deno.readTextFileSync(`/proc/${pid}/cgroup`))
          .find((l) => l.hierarchyId === 0)!.path;
        const events = Deno.readTextFileSync(`${unified.mountPoint}${path}/cgroup.events`);
        seen = { path, populated: /^populated 1$/m.test(events) };
      },
    });
    assert.match(seen!.path, /\/invoke_ns-\d+-\d+-\d+$/);
    assert.equal(seen!.populated, true);
    assert.equal(result.usage?.reason, "wall-time");
    assert.equal(result.signal, "SIGKILL");
    await assert.rejects(Deno.stat(`${unified.mountPoint}${seen!.path}`), Deno.errors.NotFound);
    assertNoCgroupLeft();
  },
);

privilegedTest(
  "a SIGKILLed tool's cgroups are swept by the next run (empty, owner dead)",
  async () => {
    const tool = new Deno.Command(cliCommand()[0], {
      args: [...cliCommand().slice(1), "--memory", "32M", "--pids", "16", "sleep", "30"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let found: string[] = [];
    assert(
      await waitFor(() => (found = listInvokeNsCgroups()).some((dir) => pidsIn(dir).length > 0)),
      "the tool made its cgroups",
    );
    tool.kill("SIGKILL");
    await tool.status;
    // The command dies with the tool (PR_SET_PDEATHSIG); its cgroups stay behind, empty.
    assert(await waitFor(() => found.every((dir) => pidsIn(dir).length === 0)));
    assert(found.every((dir) => listInvokeNsCgroups().includes(dir)), "orphans left by SIGKILL");
    const next = await runCli(["--memory", "32M", "true"]);
    assert.equal(next.code, 0, next.stderr);
    assertNoCgroupLeft();
  },
);

privilegedTest("a launch that fails in setup leaves no cgroup behind", async () => {
  const ran = await runCli(["--memory", "32M", "--pids", "16", "no-such-command-i17"]);
  assert.equal(ran.code, 127);
  await assert.rejects(
    launch({ command: ["true"], hostname: "x".repeat(65), limits: { memory: 32 * MiB } }),
  );
  assertNoCgroupLeft();
  await sleep(0);
});

privilegedTest(
  "rootless without a delegated cgroup subtree: one line saying why and what to do, 125",
  async () => {
    const v2 = await runCli(["--wall-time", "5", "true"], { asUser: NOBODY });
    assert.equal(v2.code, 125, v2.stderr);
    assert.match(
      v2.stderr,
      /^invoke_ns: cgroup: delegation: no delegated cgroup v2 subtree: .* is not writable by uid 65534; .*systemd-run --user --scope -p Delegate=yes/,
    );
    assert.equal(v2.stderr.trim().split("\n").length, 1);
    const v1 = await runCli(["--memory", "32M", "true"], { asUser: NOBODY });
    assert.equal(v1.code, 125, v1.stderr);
    assert.match(
      v1.stderr,
      /^invoke_ns: cgroup: delegation: the memory controller is on cgroup v1/,
    );
    assert.equal(v1.stderr.trim().split("\n").length, 1);
    assertNoCgroupLeft();
  },
);

Deno.test("bad limits are usage errors (exit 2), one line", async () => {
  for (
    const [args, message] of [
      [["--memory", "lots", "true"], /^invoke_ns: --memory: invalid size "lots"/],
      [["--pids", "0", "true"], /^invoke_ns: --pids: 0 is not a whole number of at least 1/],
      [["--cpus", "x", "true"], /^invoke_ns: --cpus: invalid number of CPUs "x"/],
      [["--wall-time", "-1", "true"], /^invoke_ns: --wall-time: invalid number of seconds "-1"/],
      [["--memory-swap", "1G", "true"], /^invoke_ns: --memory-swap: needs --memory/],
    ] as const
  ) {
    const ran = await runCli([...args]);
    assert.equal(ran.code, 2, `${args.join(" ")}: ${ran.stderr}`);
    assert.match(ran.stderr, message);
    assert.equal(ran.stderr.trim().split("\n").length, 1);
  }
});

hogTest(
  "ID ranges with limits: the command is moved in by the tool, -C shows memory:/, an OOM is said",
  async (hog) => {
    const ranges = ["--map-users", "0:100000:65536", "--map-groups", "0:100000:65536"];
    const seen = await runCli([...ranges, "-C", "--memory", "32M", "cat", "/proc/self/cgroup"]);
    assert.equal(seen.code, 0, seen.stderr);
    const lines = parseProcCgroup(seen.stdout);
    assert.equal(lines.find((l) => l.controllers.includes("memory"))?.path, "/");
    // the hog runs as the mapped root (UID 100000 outside): its directory must let it in
    Deno.chmodSync(hog.slice(0, hog.lastIndexOf("/")), 0o755);
    const over = await runCli([...ranges, "--memory", "32M", hog, "64"]);
    assert.equal(over.code, 137, over.stderr);
    assert.equal(over.stderr, `${OOM_LINE}\n`);
    assertNoCgroupLeft();
  },
);

privilegedTest(
  "a process the command left behind (no -p, setsid) is killed when the run ends",
  async () => {
    const daemon = ["sleep", "31.19"];
    const ran = await runCli([
      "--memory",
      "32M",
      "sh",
      "-c",
      `setsid ${daemon.join(" ")} </dev/null >/dev/null 2>&1 & echo started`,
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "started\n");
    assert.deepEqual(processesRunning(daemon), []);
    assertNoCgroupLeft();
  },
);
