/**
 * Limits: the option parsers and the limit-to-file table as tables (no
 * privilege), the usage report from v1 and v2 counter files, and, as root,
 * the limits' real effects on this machine's controllers: a memory hog
 * OOM-killed (known from the cgroup's counter), a fork loop stopped by
 * pids.max, a busy loop throttled by a CPU quota, a cpuset copied, hugetlb
 * on the v2 hierarchy where huge pages exist.
 * @module
 */

import assert from "node:assert/strict";
import { cgroupLayout, type Hierarchy, hierarchyOf } from "../lib/cgroupfs.ts";
import {
  controllersFor,
  cpuQuota,
  formatSize,
  LimitError,
  type Limits,
  limitWrites,
  parseCpus,
  parseCpuset,
  parsePids,
  parseSeconds,
  parseSize,
  planRequests,
  usageFrom,
  validateLimits,
} from "../lib/limits.ts";
import { isRoot, privilegedTest, withTempDir } from "./helpers.ts";
import {
  buildHog,
  finish,
  gccAvailable,
  sleep,
  spawnIn,
  thrown,
  waitFor,
  withLaunchCgroup,
} from "./cgroup_helpers.ts";

const MiB = 2 ** 20;

Deno.test("parseSize: bytes and binary units; junk is one LimitError naming the option", () => {
  const good: [string, number][] = [
    ["1", 1],
    ["1048576", MiB],
    ["512k", 512 * 1024],
    ["512K", 512 * 1024],
    ["64M", 64 * MiB],
    ["64m", 64 * MiB],
    ["64MB", 64 * MiB],
    ["64MiB", 64 * MiB],
    ["1G", 2 ** 30],
    ["1.5G", 1.5 * 2 ** 30],
    ["2T", 2 * 2 ** 40],
    [" 32M ", 32 * MiB],
  ];
  for (const [text, bytes] of good) assert.deepEqual(parseSize(text), bytes, text);
  const bad = ["", "M", "-1", "64X", "64 M", "1e6", "0x10", "abc", "64MM", "1iB", "0", "0k", ".5M"];
  for (const text of bad) {
    const error = thrown(() => parseSize(text, "--memory"), LimitError);
    assert.deepEqual(error.option, "--memory");
    assert.match(
      error.message,
      /^--memory: (invalid size ".*" \(a number of bytes|size ".*" is 0)/,
    );
    assert(!error.message.includes("\n"));
  }
  assert.match(
    thrown(() => parseSize("99999999T", "--memory-swap"), LimitError).message,
    /^--memory-swap: size "99999999T" is too large$/,
  );
});

Deno.test("formatSize: the largest binary unit, short", () => {
  const table: [number, string][] = [
    [0, "0 bytes"],
    [1, "1 byte"],
    [100, "100 bytes"],
    [1024, "1 KiB"],
    [512 * 1024, "512 KiB"],
    [32 * MiB, "32 MiB"],
    [64 * MiB, "64 MiB"],
    [1.5 * 2 ** 30, "1.5 GiB"],
    [2 ** 40, "1 TiB"],
    [parseSize("1000k"), "1000 KiB"],
    [MiB + 1, "1 MiB"],
  ];
  for (const [bytes, text] of table) assert.equal(formatSize(bytes), text, String(bytes));
});

Deno.test("parseSeconds: positive decimal seconds to milliseconds", () => {
  const table: [string, number][] = [["2", 2000], ["0.5", 500], [".25", 250], ["1.", 1000], [
    "0.001",
    1,
  ], ["86400", 86400000]];
  for (const [text, ms] of table) assert.equal(parseSeconds(text, "--cpu-time"), ms, text);
  for (const text of ["", "0", "-1", "1s", "1e3", "0.0001", "abc", "1,5", "99999999"]) {
    const error = thrown(() => parseSeconds(text, "--wall-time"), LimitError, text);
    assert.match(error.message, /^--wall-time: /);
  }
});

Deno.test("parseCpus and cpuQuota: a fraction to quota over a 100000 µs period", () => {
  const table: [string, number, number][] = [
    ["0.2", 0.2, 20000],
    ["0.5", 0.5, 50000],
    ["1", 1, 100000],
    ["1.", 1, 100000],
    [".25", 0.25, 25000],
    ["2", 2, 200000],
    ["0.01", 0.01, 1000],
    ["0.333", 0.333, 33300],
  ];
  for (const [text, cpus, quota] of table) {
    assert.deepEqual(parseCpus(text), cpus, text);
    assert.deepEqual(cpuQuota(cpus), { quotaUs: quota, periodUs: 100000 }, text);
  }
  for (const text of ["", "abc", "-1", "0", "0.001", "1/2", "1e2", "0,5"]) {
    const error = thrown(() => parseCpus(text), LimitError, text);
    assert.match(error.message, /^--cpus: /);
  }
});

Deno.test("parseCpuset: the kernel's list syntax, checked", () => {
  const good: [string, string][] = [["0", "0"], ["0-1,3", "0-1,3"], ["0, 2-3", "0,2-3"], [
    "7-7",
    "7-7",
  ]];
  for (const [text, list] of good) assert.deepEqual(parseCpuset(text), list);
  for (const text of ["", "a", "1-", "-1", "0,,1", "3-1", "0-1,", "9000", "1:2"]) {
    const error = thrown(() => parseCpuset(text), LimitError, text);
    assert.match(error.message, /^--cpuset: invalid CPU list ".*": /);
  }
});

Deno.test("parsePids: a whole number of at least 1", () => {
  assert.deepEqual(parsePids("16"), 16);
  assert.deepEqual(parsePids("1"), 1);
  for (const text of ["0", "", "1.5", "-3", "ten", "1e3"]) {
    assert.match(thrown(() => parsePids(text), LimitError).message, /^--pids: /);
  }
});

Deno.test("validateLimits: values given through the API are checked as the options are", () => {
  validateLimits({ memory: 64 * MiB, memorySwap: 128 * MiB, pids: 5, cpus: 0.5, cpuset: "0" });
  validateLimits({ hugetlb: { "2MB": 2 * MiB, "1GB": 2 ** 30 } });
  const bad: [Limits, RegExp][] = [
    [{ memory: 0 }, /^--memory: 0 is not a whole number/],
    [{ memory: 1.5 }, /^--memory: /],
    [{ memorySwap: MiB }, /^--memory-swap: needs --memory/],
    [{ memory: 2 * MiB, memorySwap: MiB }, /^--memory-swap: .* cannot be below --memory/],
    [{ pids: 0 }, /^--pids: /],
    [{ cpus: 0 }, /^--cpus: /],
    [{ cpus: NaN }, /^--cpus: /],
    [{ cpuset: "2-1" }, /^--cpuset: /],
    [{ hugetlb: { "2M": MiB } }, /^hugetlb: invalid page size "2M"/],
    [{ hugetlb: { "2MB": 0 } }, /^hugetlb 2MB: /],
  ];
  for (const [limits, message] of bad) {
    assert.match(thrown(() => validateLimits(limits), LimitError).message, message);
  }
});

Deno.test("limitWrites: each limit to the v1 and the v2 files, in order", () => {
  const limits: Limits = {
    memory: 32 * MiB,
    pids: 16,
    cpus: 0.2,
    cpuset: "0-1",
    hugetlb: { "2MB": 4 * MiB },
  };
  const short = (version: 1 | 2, l: Limits) =>
    limitWrites(l, () => version).map((w) =>
      `${w.controller} ${w.file}=${w.value}${w.optional ? " optional" : ""}${
        w.ifMissing ? ` unless ${w.ifMissing}` : ""
      }`
    );
  assert.deepEqual(short(1, limits), [
    "memory memory.limit_in_bytes=33554432",
    "memory memory.memsw.limit_in_bytes=33554432 optional",
    "memory memory.swappiness=0 unless memory.memsw.limit_in_bytes",
    "pids pids.max=16",
    "cpu cpu.cfs_period_us=100000",
    "cpu cpu.cfs_quota_us=20000",
    "cpuset cpuset.cpus=0-1",
    "hugetlb hugetlb.2MB.limit_in_bytes=4194304",
  ]);
  assert.deepEqual(short(2, limits), [
    "memory memory.max=33554432",
    "memory memory.swap.max=0 optional",
    "pids pids.max=16",
    "cpu cpu.max=20000 100000",
    "cpuset cpuset.cpus=0-1",
    "hugetlb hugetlb.2MB.max=4194304",
  ]);
  // More swap than memory must be honoured, not skipped: no longer optional, no fallback.
  const swap: Limits = { memory: 32 * MiB, memorySwap: 96 * MiB };
  assert.deepEqual(short(1, swap), [
    "memory memory.limit_in_bytes=33554432",
    "memory memory.memsw.limit_in_bytes=100663296",
  ]);
  assert.deepEqual(short(2, swap), [
    "memory memory.max=33554432",
    "memory memory.swap.max=67108864",
  ]);
  assert.deepEqual(short(1, {}), []);
  assert.deepEqual(short(2, { accounting: true }), []);
});

Deno.test("controllersFor: what each limit needs; accounting adds memory, pids and cpuacct", () => {
  const table: [Limits, string[]][] = [
    [{}, []],
    [{ memory: MiB }, ["memory"]],
    [{ memory: MiB, memorySwap: 2 * MiB }, ["memory"]],
    [{ pids: 3 }, ["pids"]],
    [{ cpus: 1 }, ["cpu"]],
    [{ cpuset: "0" }, ["cpuset"]],
    [{ hugetlb: { "2MB": MiB } }, ["hugetlb"]],
    [{ hugetlb: {} }, []],
    [{ accounting: true }, ["memory", "pids", "cpuacct"]],
    [{ accounting: true, cpus: 1 }, ["memory", "pids", "cpu", "cpuacct"]],
  ];
  for (const [limits, controllers] of table) assert.deepEqual(controllersFor(limits), controllers);
});

Deno.test("planRequests: one cgroup per hierarchy, containment first, v2 controllers enabled, v1 cpuset copied", () => {
  const dir = Deno.makeTempDirSync({ prefix: "invoke_ns_test_" });
  try {
    // Fake hierarchies: only the parent's cpuset files are read.
    Deno.writeTextFileSync(`${dir}/cpuset.cpus`, "0-3\n");
    Deno.writeTextFileSync(`${dir}/cpuset.mems`, "0\n");
    const v1 = (controllers: string[], device: string): Hierarchy => ({
      version: 1,
      controllers,
      mountPoint: `/sys/fs/cgroup/${controllers.join(",")}`,
      device,
      callerDir: dir,
    });
    const unified: Hierarchy = {
      version: 2,
      controllers: ["memory", "pids", "hugetlb"],
      mountPoint: "/sys/fs/cgroup/unified",
      device: "0:9",
      callerDir: "/sys/fs/cgroup/unified/x",
    };
    const layout = {
      mode: "hybrid" as const,
      unified,
      v1: [v1(["cpu", "cpuacct"], "0:1"), v1(["cpuset"], "0:2"), v1(["freezer"], "0:3")],
    };
    const requests = planRequests(
      { memory: MiB, cpus: 0.5, accounting: true, cpuset: "1", hugetlb: { "2MB": 2 * MiB } },
      layout,
    );
    const summary = requests.map((r) =>
      `${r.hierarchy.mountPoint} enable[${r.enable!.join(",")}] ${
        r.writes!.map((w) => `${w.file}=${w.value}`).join(" ")
      }`
    );
    assert.deepEqual(summary, [
      "/sys/fs/cgroup/unified enable[memory,pids,hugetlb] memory.max=1048576 memory.swap.max=0 hugetlb.2MB.max=2097152",
      "/sys/fs/cgroup/cpu,cpuacct enable[] cpu.cfs_period_us=100000 cpu.cfs_quota_us=50000",
      "/sys/fs/cgroup/cpuset enable[] cpuset.cpus=1 cpuset.mems=0",
    ]);
    // Without the unified hierarchy the v1 freezer contains the launch; a co-mounted
    // cpuset is given the parent's CPUs even when no --cpuset was asked for.
    const v1Only = {
      mode: "v1" as const,
      v1: [v1(["cpuset", "pids"], "0:4"), v1(["freezer"], "0:3")],
    };
    assert.deepEqual(
      planRequests({ pids: 4 }, v1Only).map((r) =>
        `${r.hierarchy.mountPoint} ${r.writes!.map((w) => `${w.file}=${w.value}`).join(" ")}`
      ),
      [
        "/sys/fs/cgroup/freezer ",
        "/sys/fs/cgroup/cpuset,pids cpuset.cpus=0-3 pids.max=4 cpuset.mems=0",
      ],
    );
    // On v2 with memory, pids and hugetlb offered: accounting takes memory and pids (CPU time
    // is in every v2 cgroup's cpu.stat); a CPU quota cannot be had and is refused by name.
    assert.deepEqual(
      planRequests({ accounting: true }, { mode: "v2", unified, v1: [] }).map((r) => r.enable),
      [["memory", "pids"]],
    );
    const bare = { ...unified, controllers: ["memory"] };
    assert.deepEqual(
      planRequests({ accounting: true }, { mode: "v2", unified: bare, v1: [] }).map((r) =>
        r.enable
      ),
      [["memory"]],
    );
    // Rootless, accounting alone leaves v1 controllers out (never delegated): the CPU time
    // comes from the v2 cgroup's cpu.stat; a limit on v1 is still asked for (and refused later).
    const hybrid = { ...layout, unified: { ...unified, controllers: [] } };
    hybrid.v1 = [...layout.v1, v1(["memory"], "0:5")];
    assert.deepEqual(
      planRequests({ accounting: true }, hybrid, 1000).map((r) => r.hierarchy.mountPoint),
      ["/sys/fs/cgroup/unified"],
    );
    assert.deepEqual(
      planRequests({ memory: MiB, accounting: true }, hybrid, 1000).map((r) =>
        r.hierarchy.mountPoint
      ),
      ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory"],
    );
    const error = thrown(() => planRequests({ cpus: 1 }, { mode: "v2", unified, v1: [] }));
    assert.match(
      (error as Error).message,
      /^cgroup: detect: the cpu controller is not available \(cgroups v2: /,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("usageFrom: the report from v1 and from v2 counter files", () => {
  const v1: Record<string, string> = {
    "memory.max_usage_in_bytes": "52428800\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    "memory.failcnt": "40\n",
    "cpuacct.usage": "1500000000\n",
    "cpuacct.usage_user": "1200000000\n",
    "cpuacct.usage_sys": "300000000\n",
    "cpu.stat": "nr_periods 20\nnr_throttled 17\nthrottled_time 1700000000\nnr_bursts 0\n",
    "pids.peak": "16\n",
    "pids.events": "max 34\n",
  };
  assert.deepEqual(usageFrom((file) => v1[file]), {
    peakMemoryBytes: 52428800,
    cpuMicros: 1500000,
    userCpuMicros: 1200000,
    systemCpuMicros: 300000,
    oomKills: 2,
    memoryLimitHits: 40,
    peakPids: 16,
    pidsLimitHits: 34,
    throttledPeriods: 17,
    throttledMicros: 1700000,
  });
  const v2: Record<string, string> = {
    "memory.peak": "1048576\n",
    "memory.events": "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
    "cpu.stat":
      "usage_usec 400000\nuser_usec 300000\nsystem_usec 100000\nnr_periods 20\nnr_throttled 18\nthrottled_usec 1600000\n",
    "pids.events": "max 0\n",
  };
  assert.deepEqual(usageFrom((file) => v2[file]), {
    peakMemoryBytes: 1048576,
    cpuMicros: 400000,
    userCpuMicros: 300000,
    systemCpuMicros: 100000,
    oomKills: 1,
    memoryLimitHits: 12,
    pidsLimitHits: 0,
    throttledPeriods: 18,
    throttledMicros: 1600000,
  });
  // A kernel that does not count OOM kills (v1 before 4.13) gives no oomKills, not a guess.
  assert.deepEqual(
    usageFrom((file) => ({ "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n" })[file]),
    {},
  );
  assert.deepEqual(usageFrom(() => undefined), {});
});

// ------------------------------------------------------------------ privileged

if (!isRoot || !gccAvailable) {
  console.log(`memory 32M test skipped: ${isRoot ? "gcc is not installed" : "needs root"}`);
}
Deno.test({
  name: "memory 32M: a hog past it is OOM-killed, known from the counter; one below finishes",
  ignore: !isRoot || !gccAvailable,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTempDir(async (dir) => {
      const hog = await buildHog(dir);
      await withLaunchCgroup({ memory: parseSize("32M") }, async (cgroup) => {
        const over = await finish(spawnIn(cgroup, `exec ${hog} 64`));
        assert.deepEqual(over.signal, "SIGKILL");
        assert(cgroup.oomKilled(), "the cgroup's counter shows the OOM kill");
        assert(cgroup.usage().oomKills! >= 1);
        const peak = cgroup.usage().peakMemoryBytes!;
        assert(peak <= 32 * MiB && peak > 30 * MiB, `peak ${peak} near the 32 MiB limit`);
      });
      await withLaunchCgroup({ memory: parseSize("32M") }, async (cgroup) => {
        const under = await finish(spawnIn(cgroup, `exec ${hog} 16`));
        assert.deepEqual(under.code, 0);
        assert.deepEqual(cgroup.oomKilled(), false);
        assert.deepEqual(cgroup.usage().oomKills, 0);
        const peak = cgroup.usage().peakMemoryBytes!;
        assert(peak >= 16 * MiB && peak < 32 * MiB, `peak ${peak} of a 16 MiB program`);
      });
    }),
});

privilegedTest("memory: a process SIGKILLed from outside is not called an OOM kill", async () => {
  await withLaunchCgroup({ memory: parseSize("32M") }, async (cgroup) => {
    const child = spawnIn(cgroup, "exec sleep 30");
    assert(await waitFor(() => cgroup.set.pids().includes(child.pid)));
    child.kill("SIGKILL");
    const ended = await finish(child);
    assert.deepEqual(ended.code, 137);
    assert.deepEqual(cgroup.oomKilled(), false);
    assert.deepEqual(cgroup.usage().oomKills, 0);
  });
});

privilegedTest(
  "pids 16: a shell spawning 50 sleeps gets fork failures; peak stays at 16",
  async () => {
    await withLaunchCgroup({ pids: 16, accounting: true }, async (cgroup) => {
      const ran = await finish(spawnIn(
        cgroup,
        "for i in $(seq 50); do sleep 30 </dev/null >/dev/null 2>&1 & done; exit 0",
      ));
      assert.match(ran.stderr, /fork|Resource temporarily unavailable/i);
      const usage = cgroup.usage();
      assert(usage.pidsLimitHits! > 0, `pids.events max: ${usage.pidsLimitHits}`);
      assert(usage.peakPids! <= 16 && usage.peakPids! >= 10, `peak pids ${usage.peakPids}`);
    });
  },
);

privilegedTest(
  "cpus 0.2: a busy loop is throttled (nr_throttled grows); its CPU time stays well below the wall time",
  async () => {
    await withLaunchCgroup({ cpus: 0.2, accounting: true }, async (cgroup) => {
      const started = Date.now();
      const child = spawnIn(cgroup, "while :; do :; done");
      try {
        await sleep(600);
        const first = cgroup.usage().throttledPeriods!;
        await sleep(900);
        const second = cgroup.usage().throttledPeriods!;
        const wallMicros = (Date.now() - started) * 1000;
        const cpu = cgroup.cpuTimeMicros()!;
        assert(first > 0 && second > first, `nr_throttled ${first} then ${second}`);
        // 0.2 CPUs: ~20% of the wall time; a generous bound (half) for a noisy machine.
        assert(cpu > 0 && cpu < wallMicros / 2, `CPU ${cpu} µs in ${wallMicros} µs of wall time`);
      } finally {
        child.kill("SIGKILL");
        await finish(child);
      }
    });
  },
);

privilegedTest(
  "cpuset: the v1 cgroup gets the CPU list, the parent's memory nodes, and binds its process",
  async () => {
    const cpuset = hierarchyOf(cgroupLayout(), "cpuset")!;
    const parentMems = Deno.readTextFileSync(`${cpuset.callerDir}/cpuset.mems`).trim();
    await withLaunchCgroup({ cpuset: "0" }, async (cgroup) => {
      const node = cgroup.set.nodeFor("cpuset")!;
      assert.deepEqual(Deno.readTextFileSync(`${node.dir}/cpuset.cpus`).trim(), "0");
      assert.deepEqual(Deno.readTextFileSync(`${node.dir}/cpuset.mems`).trim(), parentMems);
      const ran = await finish(spawnIn(cgroup, "grep Cpus_allowed_list /proc/self/status"));
      assert.match(ran.stdout, /^Cpus_allowed_list:\s+0$/m);
    });
  },
);

const hugePages = (() => {
  try {
    return Number(/HugePages_Total:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
  } catch {
    return 0;
  }
})();
const unifiedHugetlb = isRoot && hierarchyOf(cgroupLayout(), "hugetlb")?.version === 2;

Deno.test({
  name: "hugetlb on the v2 hierarchy: the limit is written to hugetlb.2MB.max",
  ignore: !unifiedHugetlb,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const unified = hierarchyOf(cgroupLayout(), "hugetlb")!;
    const control = `${unified.callerDir}/cgroup.subtree_control`;
    const before = Deno.readTextFileSync(control).trim();
    try {
      await withLaunchCgroup({ hugetlb: { "2MB": 2 * MiB } }, async (cgroup) => {
        const node = cgroup.set.unified!;
        assert.deepEqual(
          Deno.readTextFileSync(`${node.dir}/hugetlb.2MB.max`).trim(),
          String(2 * MiB),
        );
        if (hugePages === 0) {
          console.log(
            "hugetlb: no huge pages are reserved here (HugePages_Total 0), so the limit is " +
              "written and read back but no huge page allocation is tried",
          );
          return;
        }
        // Where huge pages exist, mapping 2 of them under a 1-page limit fails.
        const ran = await finish(spawnIn(
          cgroup,
          "exec python3 -c 'import mmap; m = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40000); m[:] = b\"x\" * (4 << 20)'",
        ));
        assert(ran.code !== 0, "the allocation past the hugetlb limit failed");
      });
    } finally {
      if (!before.includes("hugetlb")) Deno.writeTextFileSync(control, "-hugetlb");
    }
  },
});
if (!unifiedHugetlb) {
  console.log(
    `hugetlb test skipped: ${
      isRoot ? "no hugetlb controller on the v2 hierarchy here" : "needs root"
    }`,
  );
}

const unifiedControllers = isRoot ? cgroupLayout().unified?.controllers ?? [] : [];
for (const controller of ["memory", "pids", "cpu"]) {
  const available = unifiedControllers.includes(controller);
  if (!available) {
    console.log(
      `v2 ${controller} test skipped: ` +
        (isRoot
          ? `the ${controller} controller is not offered on the unified hierarchy here ` +
            `(its cgroup.controllers: "${unifiedControllers.join(" ")}")`
          : "needs root"),
    );
  }
  Deno.test({
    name: `v2 ${controller}: the limit file is written in the unified hierarchy`,
    ignore: !available,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const limits: Limits = controller === "memory"
        ? { memory: 32 * MiB }
        : controller === "pids"
        ? { pids: 16 }
        : { cpus: 0.2 };
      await withLaunchCgroup(limits, async (cgroup) => {
        const node = cgroup.set.nodeFor(controller)!;
        assert.deepEqual(node.hierarchy.version, 2);
        const file = { memory: "memory.max", pids: "pids.max", cpu: "cpu.max" }[controller]!;
        const expected = { memory: String(32 * MiB), pids: "16", cpu: "20000 100000" }[controller];
        assert.deepEqual(Deno.readTextFileSync(`${node.dir}/${file}`).trim(), expected);
        const ran = await finish(spawnIn(cgroup, "cat /proc/self/cgroup"));
        assert.match(ran.stdout, new RegExp(`^0::.*${node.dir.split("/").pop()}$`, "m"));
      });
    },
  });
}

privilegedTest(
  "cpuTimeMicros: the cgroup's total CPU time counts every process, so a fork loop cannot evade it",
  async () => {
    await withLaunchCgroup({ accounting: true }, async (cgroup) => {
      // Each child burns a little CPU and exits: no single process ever holds much CPU time
      // (RLIMIT_CPU, per process, would never fire), but the cgroup's total grows.
      const child = spawnIn(
        cgroup,
        `while :; do sh -c 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done'; done`,
      );
      try {
        const ticks = Number(
          new TextDecoder().decode(
            new Deno.Command("getconf", { args: ["CLK_TCK"] }).outputSync().stdout,
          ),
        );
        assert(await waitFor(() => (cgroup.cpuTimeMicros() ?? 0) > 400_000, 20_000));
        const total = cgroup.cpuTimeMicros()!;
        // The parent shell's own CPU time (utime + stime, fields 14 and 15), and the most any
        // other live process of the cgroup has used.
        const ownMicros = (pid: number) => {
          try {
            const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
            const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
            return (Number(fields[11]) + Number(fields[12])) * 1e6 / ticks;
          } catch {
            return 0;
          }
        };
        const most = Math.max(...cgroup.set.pids().map(ownMicros));
        assert(most < total / 2, `one process used ${most} µs of the cgroup's ${total} µs`);
        assert(cgroup.usage().cpuMicros! >= total);
        // The v2 cgroup keeps the same total in its core cpu.stat, with no cpu controller.
        const unified = cgroup.set.unified;
        if (unified) {
          const stat = Deno.readTextFileSync(`${unified.dir}/cpu.stat`);
          const usage = Number(/^usage_usec (\d+)$/m.exec(stat)?.[1]);
          assert(usage > total / 2, `v2 cpu.stat usage_usec ${usage}, cpuacct ${total}`);
        }
      } finally {
        child.kill("SIGKILL");
        await finish(child);
      }
    });
  },
);
