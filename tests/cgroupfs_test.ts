/**
 * The cgroup hierarchy mechanics: mountinfo and /proc/self/cgroup parsing
 * into v2, v1 and hybrid layouts, flat-keyed files and owner names as
 * tables (no privilege); as root, on this machine's real v1 controllers and
 * its v2 unified hierarchy: a launch's cgroups made under the caller's own,
 * joined, emptied by killAll (a double-forked process and a fork loop
 * included, by every method offered: v2 cgroup.kill, v2 cgroup.freeze, the
 * v1 freezer, plain signals), removed
 * (idempotently), swept when their owner is dead and empty, the v2 events
 * and the no-internal-processes leaf move; rootless, the refusal.
 * @module
 */

import assert from "node:assert/strict";
import {
  CGROUP_PREFIX,
  CgroupError,
  type CgroupLayout,
  cgroupLayout,
  cgroupName,
  createCgroupSet,
  delegationProblem,
  type Hierarchy,
  hierarchyOf,
  layoutOf,
  ownerAlive,
  ownerOf,
  parseFlatKeyed,
  parseMountinfo,
  parseProcCgroup,
  parseSingleValue,
  processStartTime,
  sweepOrphans,
} from "../lib/cgroupfs.ts";
import { createLaunchCgroup, parseSize } from "../lib/limits.ts";
import { isRoot, NOBODY, privilegedTest, readableSources } from "./helpers.ts";
import {
  assertNoCgroupLeft,
  finish,
  running,
  spawnIn,
  waitFor,
  withLaunchCgroup,
} from "./cgroup_helpers.ts";

// This machine's layout (hybrid), a v2-only one (systemd on Debian 12) and a
// v1-only one with co-mounted controllers (Debian 10, Ubuntu 18.04).
const HYBRID_MOUNTINFO =
  `22 27 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/43990e6b
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;
const V2_MOUNTINFO =
  `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V2_CGROUP = "0::/user.slice/user-1000.slice/session-2.scope\n";
const V1_MOUNTINFO =
  `25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/weird\\040dir rw,relatime - cgroup cgroup rw,memory
`;
const V1_CGROUP = `5:net_cls,net_prio:/
4:memory:/user.slice
3:pids:/user.slice/user-1000.slice/session-2.scope
2:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
`;

Deno.test("parseMountinfo: fields, optional fields, octal escapes; junk lines skipped", () => {
  const mounts = parseMountinfo(HYBRID_MOUNTINFO + "garbage\n\n");
  assert.equal(mounts.length, 10);
  assert.deepEqual(mounts[2], {
    device: "0:29",
    root: "/",
    mountPoint: "/sys/fs/cgroup/cpu",
    fsType: "cgroup",
    superOptions: ["rw", "cpu"],
  });
  assert.equal(mounts[0].fsType, "sysfs"); // "shared:7" is an optional field before "-"
  assert.equal(parseMountinfo(V1_MOUNTINFO)[4].mountPoint, "/sys/fs/cgroup/weird dir");
  assert.deepEqual(parseMountinfo(V2_MOUNTINFO)[0].superOptions, [
    "rw",
    "nsdelegate",
    "memory_recursiveprot",
  ]);
});

Deno.test("parseProcCgroup: v1 lines, named hierarchies, v2, paths with colons", () => {
  assert.deepEqual(
    parseProcCgroup("4:memory:/a/b\n0::/\n9:name=systemd:/x:y\n2:cpu,cpuacct:/\nbad\n"),
    [
      { hierarchyId: 4, controllers: ["memory"], path: "/a/b" },
      { hierarchyId: 0, controllers: [], path: "/" },
      { hierarchyId: 9, controllers: ["name=systemd"], path: "/x:y" },
      { hierarchyId: 2, controllers: ["cpu", "cpuacct"], path: "/" },
    ],
  );
});

Deno.test("layoutOf: hybrid, v2-only, v1-only; controllers looked up where they are", () => {
  const offered = (controllers: string[]) => (_dir: string) => controllers;
  const hybrid = layoutOf(
    parseMountinfo(HYBRID_MOUNTINFO),
    parseProcCgroup(HYBRID_CGROUP),
    offered(["hugetlb"]),
  );
  assert.equal(hybrid.mode, "hybrid");
  assert.equal(hybrid.unified?.callerDir, "/sys/fs/cgroup/unified");
  assert.deepEqual(hybrid.v1.map((h) => h.controllers.join(",")), [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "freezer",
    "pids",
  ]);
  assert.equal(
    hierarchyOf(hybrid, "memory")?.callerDir,
    "/sys/fs/cgroup/memory/process_api/43990e6b",
  );
  assert.equal(hierarchyOf(hybrid, "hugetlb")?.version, 2);
  assert.equal(hierarchyOf(hybrid, "io"), undefined);

  const v2 = layoutOf(
    parseMountinfo(V2_MOUNTINFO),
    parseProcCgroup(V2_CGROUP),
    offered(["memory", "pids"]),
  );
  assert.equal(v2.mode, "v2");
  assert.deepEqual(v2.v1, []);
  assert.equal(v2.unified?.callerDir, "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");
  assert.equal(hierarchyOf(v2, "memory")?.version, 2);
  assert.equal(hierarchyOf(v2, "cpu"), undefined, "not offered in cgroup.controllers");

  const v1 = layoutOf(parseMountinfo(V1_MOUNTINFO), parseProcCgroup(V1_CGROUP), offered([]));
  assert.equal(v1.mode, "v1");
  assert.equal(v1.unified, undefined);
  assert.equal(hierarchyOf(v1, "cpuacct")?.mountPoint, "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(hierarchyOf(v1, "cpuacct"), hierarchyOf(v1, "cpu"), "co-mounted: one hierarchy");
  assert.equal(
    hierarchyOf(v1, "pids")?.callerDir,
    "/sys/fs/cgroup/pids/user.slice/user-1000.slice/session-2.scope",
  );
  assert.equal(hierarchyOf(v1, "memory")?.callerDir, "/sys/fs/cgroup/weird dir/user.slice");

  assert.equal(layoutOf([], [], offered([])).mode, "none");
});

Deno.test("layoutOf: a cgroup path outside the mount's root, or with '..', is not used", () => {
  // Seen from outside a cgroup namespace, paths start with "/.."; a mount of a subtree has root /a.
  const mounts = parseMountinfo(
    `41 31 0:38 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw
32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
`,
  );
  const outside = layoutOf(mounts, parseProcCgroup("0::/b/c\n8:pids:/../x\n"), () => []);
  assert.equal(outside.unified, undefined);
  assert.deepEqual(outside.v1, []);
  const inside = layoutOf(mounts, parseProcCgroup("0::/a/c\n8:pids:/y\n"), () => []);
  assert.equal(inside.unified?.callerDir, "/sys/fs/cgroup/c");
  assert.equal(inside.v1[0].callerDir, "/sys/fs/cgroup/pids/y");
});

Deno.test("parseFlatKeyed and parseSingleValue: the counter files' shapes", () => {
  assert.deepEqual(parseFlatKeyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), {
    oom_kill_disable: 0,
    under_oom: 0,
    oom_kill: 3,
  });
  assert.deepEqual(parseFlatKeyed("usage_usec 10\nbad line here\nnr_throttled 2\n\n"), {
    usage_usec: 10,
    nr_throttled: 2,
  });
  assert.deepEqual(parseFlatKeyed("populated 1\nfrozen 0\n"), { populated: 1, frozen: 0 });
  assert.equal(parseSingleValue("123\n"), 123);
  assert.equal(parseSingleValue("max\n"), "max");
  assert.equal(parseSingleValue("-1"), undefined);
  assert.equal(parseSingleValue(""), undefined);
});

Deno.test("owner names: invoke_ns-PID-START-N round-trips; other names are not ours", () => {
  const owner = { pid: 4242, startTime: 81212 };
  assert.equal(cgroupName(owner, 7), "invoke_ns-4242-81212-7");
  assert.deepEqual(ownerOf(cgroupName(owner, 7)), owner);
  assert.deepEqual(ownerOf(cgroupName(owner, "supervisor")), owner);
  for (
    const name of [
      "invoke_ns-1-2",
      "invoke_ns-x-2-3",
      "user.slice",
      "invoke_ns-1-2-3/x",
      "memory.stat",
    ]
  ) {
    assert.equal(ownerOf(name), undefined, name);
  }
  const self = { pid: Deno.pid, startTime: processStartTime(Deno.pid)! };
  assert(ownerAlive(self));
  assert(!ownerAlive({ ...self, startTime: self.startTime + 1 }), "a reused PID is not the owner");
  assert.equal(processStartTime(2 ** 22 + 1), undefined);
});

Deno.test("delegationProblem: rootless, v1 is refused and a v2 cgroup must be writable", () => {
  const v1: Hierarchy = {
    version: 1,
    controllers: ["memory"],
    mountPoint: "/sys/fs/cgroup/memory",
    device: "0:1",
    callerDir: "/sys/fs/cgroup/memory",
  };
  const v2: Hierarchy = { ...v1, version: 2, controllers: [], callerDir: "/proc/1" };
  assert.equal(delegationProblem([{ hierarchy: v1 }], 0), undefined);
  assert.match(
    delegationProblem([{ hierarchy: v1 }], 1000)!,
    /^the memory controller is on cgroup v1 \(\/sys\/fs\/cgroup\/memory\), which is never delegated to unprivileged users: run as root$/,
  );
  assert.match(
    delegationProblem([{ hierarchy: v2 }], 1000)!,
    /^no delegated cgroup v2 subtree: \/proc\/1 is not writable by uid 1000; .*systemd-run --user --scope -p Delegate=yes/,
  );
});

// ------------------------------------------------------------------ privileged

const layout = isRoot ? cgroupLayout() : undefined;

function procCgroupOf(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/cgroup`);
}

privilegedTest(
  "a launch's cgroups are made under the caller's own, named after the owner, and joined",
  async () => {
    const owner = { pid: Deno.pid, startTime: processStartTime(Deno.pid)! };
    await withLaunchCgroup(
      { memory: parseSize("64M"), pids: 50, accounting: true },
      async (cgroup) => {
        const nodes = cgroup.set.nodes;
        assert.equal(nodes[0].hierarchy, layout!.unified ?? hierarchyOf(layout!, "freezer"));
        for (const node of nodes) {
          assert(node.dir.startsWith(`${node.hierarchy.callerDir}/`), node.dir);
          const name = node.dir.slice(node.hierarchy.callerDir.length + 1);
          assert.deepEqual(ownerOf(name), owner, name);
          assert(Deno.statSync(node.dir).isDirectory);
        }
        // The memory cgroup sits below the caller's own (here /process_api/…), so its limits still bind.
        const memory = cgroup.set.nodeFor("memory")!;
        assert.equal(
          memory.dir,
          `${hierarchyOf(layout!, "memory")!.callerDir}/${memory.dir.split("/").pop()}`,
        );
        const child = spawnIn(cgroup, "exec sleep 30");
        try {
          assert(await waitFor(() => cgroup.set.pids().includes(child.pid)));
          const seen = procCgroupOf(child.pid);
          for (const node of nodes) {
            const path = node.dir.slice(node.hierarchy.mountPoint.length);
            assert(seen.includes(`:${path}\n`), `${path} in\n${seen}`);
          }
          assert.deepEqual(cgroup.set.pids(), [child.pid]);
          assert.equal(cgroup.usage().peakPids, 1);
        } finally {
          child.kill("SIGKILL");
          await finish(child);
        }
      },
    );
  },
);

privilegedTest(
  "joinSelf: a process moves itself into every cgroup of the set",
  async () => {
    // A Deno subprocess joins itself as the launch child will, prints its /proc/self/cgroup, exits.
    await withLaunchCgroup({ pids: 8 }, async (cgroup) => {
      const script = `
      import { CgroupSet } from "${new URL("../lib/cgroupfs.ts", import.meta.url).pathname}";
      const nodes = JSON.parse(Deno.args[0]);
      new CgroupSet(nodes).joinSelf();
      console.log(Deno.readTextFileSync("/proc/self/cgroup"));
    `;
      const ran = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script, JSON.stringify(cgroup.set.nodes)],
      }).output();
      const seen = new TextDecoder().decode(ran.stdout);
      assert(ran.success, new TextDecoder().decode(ran.stderr));
      for (const node of cgroup.set.nodes) {
        assert(seen.includes(node.dir.slice(node.hierarchy.mountPoint.length)), seen);
      }
    });
  },
);

privilegedTest(
  "killAll (v2 cgroup.kill): every process ends, a double-forked one included",
  async () => {
    await withLaunchCgroup({ pids: 50 }, async (cgroup) => {
      assert(cgroup.set.unified, "this machine has a unified hierarchy");
      const child = spawnIn(
        cgroup,
        "(sleep 300 </dev/null >/dev/null 2>&1 & echo $!); exec sleep 300",
      );
      const reader = child.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      reader.releaseLock();
      const orphan = Number(first.trim());
      assert(await waitFor(() => cgroup.set.pids().length === 2));
      assert(cgroup.set.pids().includes(orphan) && running(orphan));
      await cgroup.killAll();
      assert.deepEqual(cgroup.set.pids(), []);
      assert.equal(cgroup.set.populated(), false);
      assert(await waitFor(() => !running(orphan)), "the double-forked sleep is gone");
      assert.equal((await finish(child)).signal, "SIGKILL");
    });
  },
);

privilegedTest(
  "killAll by each method the kernel offers (v2 and v1 sets): a fork loop and a double fork end",
  async () => {
    const layouts: [string, CgroupLayout][] = [
      ["v2 containment", layout!],
      ["v1 freezer containment", { ...layout!, unified: undefined }],
    ];
    for (const [label, chosen] of layouts) {
      const probe = await createLaunchCgroup({ pids: 500 }, undefined, chosen);
      const methods = probe.set.killMethods();
      await probe.remove();
      assert(methods.length >= 2, `${label}: ${methods}`);
      for (const method of methods) {
        await withLaunchCgroup({ pids: 500 }, async (cgroup) => {
          const child = spawnIn(
            cgroup,
            "(sleep 300 </dev/null >/dev/null 2>&1 &); " +
              "while :; do sleep 300 </dev/null >/dev/null 2>&1 & done",
          );
          assert(await waitFor(() => cgroup.set.pids().length > 20), `${label} ${method}`);
          const before = cgroup.set.pids();
          await cgroup.killAll(method);
          assert.deepEqual(cgroup.set.pids(), [], `${label} ${method}`);
          assert.equal(cgroup.set.populated(), false);
          assert(await waitFor(() => before.every((pid) => !running(pid))), `${label} ${method}`);
          const freezer = cgroup.set.nodeFor("freezer");
          if (freezer) {
            assert.equal(Deno.readTextFileSync(`${freezer.dir}/freezer.state`).trim(), "THAWED");
          }
          if (cgroup.set.unified) {
            const events = Deno.readTextFileSync(`${cgroup.set.unified.dir}/cgroup.events`);
            assert.match(events, /^frozen 0$/m, "thawed again");
          }
          await finish(child);
        }, chosen);
      }
    }
  },
);

privilegedTest(
  "v2 mechanics on the unified hierarchy: mkdir, cgroup.procs, populated 1 then 0, cgroup.kill, rmdir",
  async () => {
    const cgroup = await createLaunchCgroup({});
    const node = cgroup.set.unified!;
    const events = () => parseFlatKeyed(Deno.readTextFileSync(`${node.dir}/cgroup.events`));
    try {
      assert.equal(node.hierarchy.version, 2);
      assert.equal(cgroup.set.nodes.length, 1, "no limit: only the containment cgroup");
      assert.equal(events().populated, 0);
      const child = spawnIn(cgroup, "exec sleep 300");
      assert(await waitFor(() => events().populated === 1));
      assert.equal(Deno.readTextFileSync(`${node.dir}/cgroup.procs`).trim(), String(child.pid));
      Deno.writeTextFileSync(`${node.dir}/cgroup.kill`, "1");
      assert(await waitFor(() => events().populated === 0));
      assert.equal((await finish(child)).signal, "SIGKILL");
    } finally {
      await cgroup.killAll();
      await cgroup.remove();
    }
    assert.throws(() => Deno.statSync(node.dir), Deno.errors.NotFound);
    await cgroup.remove(); // idempotent
    assertNoCgroupLeft();
  },
);

privilegedTest(
  "remove: fails while a process is inside, then succeeds; nothing is left",
  async () => {
    const cgroup = await createLaunchCgroup({ memory: parseSize("64M"), pids: 10 });
    const child = spawnIn(cgroup, "exec sleep 300");
    try {
      // the shell joins one hierarchy after another: wait until it is in every one
      const inEvery = () =>
        cgroup.set.nodes.every((node) =>
          Deno.readTextFileSync(`${node.dir}/cgroup.procs`).trim() !== ""
        );
      assert(await waitFor(inEvery));
      const error = await cgroup.remove().then(() => undefined, (e) => e);
      assert(error instanceof CgroupError, String(error));
      assert.match(error.message, /^cgroup: rmdir \/sys\/fs\/cgroup\/.*invoke_ns-.*: EBUSY/);
    } finally {
      await cgroup.killAll();
      await cgroup.remove();
      await finish(child);
    }
    for (const node of cgroup.set.nodes) assert.throws(() => Deno.statSync(node.dir));
    assertNoCgroupLeft();
  },
);

privilegedTest("a failed step names the file, and nothing made before it is left", async () => {
  // CPU 1 does not exist here: the kernel refuses the cpuset with EINVAL.
  const cpus = Deno.readTextFileSync(
    `${hierarchyOf(layout!, "cpuset")!.callerDir}/cpuset.effective_cpus`,
  );
  assert.equal(cpus.trim(), "0-1", "this test assumes two CPUs");
  const error = await createLaunchCgroup({ pids: 5, memory: parseSize("8M"), cpuset: "7" }).then(
    () => undefined,
    (e) => e,
  );
  assert(error instanceof CgroupError, String(error));
  assert.equal(error.step, "write");
  assert.match(String(error.code), /^(EINVAL|ERANGE)$/);
  assert.match(
    error.message,
    /^cgroup: write \/sys\/fs\/cgroup\/cpuset\/invoke_ns-\d+-\d+-\d+\/cpuset\.cpus: (EINVAL \(Invalid argument\)|ERANGE \(Numerical result out of range\))$/,
  );
  assertNoCgroupLeft();
});

privilegedTest(
  "sweepOrphans: removes a dead owner's empty cgroups, keeps a live owner's and a busy one",
  async () => {
    const spawnOwner = () =>
      new Deno.Command("sleep", { args: ["300"], stdout: "null", stderr: "null" }).spawn();
    const dead = spawnOwner(), live = spawnOwner(), busyOwner = spawnOwner();
    const ownerFor = (child: Deno.ChildProcess) => ({
      pid: child.pid,
      startTime: processStartTime(child.pid)!,
    });
    const requests = [
      layout!.unified!,
      hierarchyOf(layout!, "pids")!,
      hierarchyOf(layout!, "memory")!,
    ]
      .map((hierarchy) => ({ hierarchy }));
    const deadSet = await createCgroupSet(requests, ownerFor(dead));
    const liveSet = await createCgroupSet(requests, ownerFor(live));
    const busySet = await createCgroupSet(requests, ownerFor(busyOwner));
    // A reused PID: the live process's PID with another start time is a dead owner.
    const reusedSet = await createCgroupSet(requests, { ...ownerFor(live), startTime: 1 });
    const inside = new Deno.Command("sh", {
      args: [
        "-c",
        `for f in ${busySet.procsFiles().join(" ")}; do echo 0 > $f; done; exec sleep 300`,
      ],
    }).spawn();
    try {
      assert(await waitFor(() => busySet.pids().length === 1));
      for (const child of [dead, busyOwner]) {
        child.kill("SIGKILL");
        await child.status;
      }
      const result = sweepOrphans();
      const dirs = (set: typeof deadSet) => set.nodes.map((n) => n.dir).sort();
      assert.deepEqual(result.removed.sort(), [...dirs(deadSet), ...dirs(reusedSet)].sort());
      assert.deepEqual(result.kept.sort(), [...dirs(liveSet), ...dirs(busySet)].sort());
      for (const dir of result.removed) assert.throws(() => Deno.statSync(dir));
      for (const dir of result.kept) assert(Deno.statSync(dir).isDirectory);
    } finally {
      inside.kill("SIGKILL");
      await inside.status;
      live.kill("SIGKILL");
      await live.status;
      for (const set of [deadSet, liveSet, busySet, reusedSet]) {
        try {
          await set.killAll();
        } finally {
          await set.remove();
        }
      }
    }
    assertNoCgroupLeft();
  },
);

const hugetlbOnUnified = isRoot && !!layout!.unified?.controllers.includes("hugetlb");
if (!hugetlbOnUnified) {
  console.log(
    "v2 leaf-move test skipped: it enables hugetlb in a nested v2 cgroup, and the unified " +
      "hierarchy here does not offer hugetlb (or not root)",
  );
}

Deno.test({
  name:
    "v2 no-internal-processes: alone in its cgroup the tool moves into a leaf; with others it refuses",
  ignore: !hugetlbOnUnified,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const unified = layout!.unified!;
    const rootControl = `${unified.callerDir}/cgroup.subtree_control`;
    const before = Deno.readTextFileSync(rootControl).trim();
    const parent = `${unified.callerDir}/${CGROUP_PREFIX}-test-parent-${Deno.pid}`;
    Deno.writeTextFileSync(rootControl, "+hugetlb");
    Deno.mkdirSync(parent);
    const limits = "../lib/limits.ts";
    const script = `
    import { createLaunchCgroup } from "${new URL(limits, import.meta.url).pathname}";
    try {
      const cgroup = await createLaunchCgroup({ hugetlb: { "2MB": 2097152 } });
      console.log(JSON.stringify({ dirs: cgroup.set.nodes.map((n) => n.dir), self: Deno.readTextFileSync("/proc/self/cgroup") }));
      await cgroup.remove();
    } catch (error) {
      console.log(JSON.stringify({ error: error.message }));
    }
  `;
    const runIn = async () => {
      const ran = await new Deno.Command("sh", {
        args: [
          "-c",
          `echo $$ > ${parent}/cgroup.procs && exec "$0" eval "$1"`,
          Deno.execPath(),
          script,
        ],
      }).output();
      assert(ran.success, new TextDecoder().decode(ran.stderr));
      return JSON.parse(new TextDecoder().decode(ran.stdout));
    };
    const other = new Deno.Command("sh", {
      args: ["-c", `echo $$ > ${parent}/cgroup.procs && exec sleep 300`],
    }).spawn();
    try {
      // Another process shares the cgroup: refused, saying why and what to do.
      assert(await waitFor(() => Deno.readTextFileSync(`${parent}/cgroup.procs`).trim() !== ""));
      const refused = await runIn();
      assert.match(
        refused.error,
        /^cgroup: enable .*: cannot enable hugetlb: the cgroup holds other processes \(\d+\), and v2 allows no controllers above processes; .*systemd-run --scope -p Delegate=yes/,
      );
      other.kill("SIGKILL");
      await other.status;
      assert(await waitFor(() => Deno.readTextFileSync(`${parent}/cgroup.procs`).trim() === ""));
      // Alone: it moves itself into invoke_ns-PID-START-supervisor and the launch cgroup is its sibling.
      const moved = await runIn();
      assert.equal(moved.error, undefined, moved.error);
      assert.equal(moved.dirs.length, 1);
      assert.match(moved.dirs[0], new RegExp(`^${parent}/invoke_ns-\\d+-\\d+-1$`));
      assert.match(
        moved.self,
        new RegExp(
          `^0::${parent.slice(unified.mountPoint.length)}/invoke_ns-\\d+-\\d+-supervisor$`,
          "m",
        ),
      );
      assert.match(Deno.readTextFileSync(`${parent}/cgroup.subtree_control`), /hugetlb/);
    } finally {
      try {
        other.kill("SIGKILL");
      } catch {
        // already ended
      }
      // The supervisor leaf outlives its process; the sweep removes it (owner dead, empty).
      const swept = sweepOrphans({
        ...layout!,
        v1: [],
        unified: { ...unified, callerDir: parent },
      });
      try {
        Deno.removeSync(parent);
      } finally {
        if (!before.includes("hugetlb")) Deno.writeTextFileSync(rootControl, "-hugetlb");
      }
      assert.equal(swept.kept.length, 0, `kept ${swept.kept}`);
      assert(swept.removed.some((dir) => dir.endsWith("-supervisor")), `swept ${swept.removed}`);
    }
    assertNoCgroupLeft();
  },
});

privilegedTest(
  "rootless: a v1 limit and an undelegated v2 cgroup are refused with what to do",
  async () => {
    const sources = readableSources();
    const script = `
      import { createLaunchCgroup } from "${sources}/lib/limits.ts";
      for (const limits of [{ memory: 33554432 }, {}]) {
        try {
          await createLaunchCgroup(limits);
          console.log("made");
        } catch (error) {
          console.log(error.name + ": " + error.message);
        }
      }
    `;
    const ran = await new Deno.Command("setpriv", {
      args: [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        "--clear-groups",
        "env",
        "HOME=/tmp",
        `DENO_DIR=/tmp/invoke_ns_deno_dir_${NOBODY}`,
        `${sources}/deno`,
        "eval",
        script,
      ],
    }).output();
    const lines = new TextDecoder().decode(ran.stdout).trim().split("\n");
    assert(ran.success, new TextDecoder().decode(ran.stderr));
    assert.match(
      lines[0],
      /^CgroupError: cgroup: delegation: the memory controller is on cgroup v1 \(\/sys\/fs\/cgroup\/memory\), which is never delegated to unprivileged users: run as root$/,
    );
    assert.match(
      lines[1],
      /^CgroupError: cgroup: delegation: no delegated cgroup v2 subtree: \/sys\/fs\/cgroup\/unified is not writable by uid 65534; run the tool in a delegated scope, e\.g\. `systemd-run --user --scope -p Delegate=yes invoke_ns …`$/,
    );
    assertNoCgroupLeft();
  },
);

privilegedTest(
  "attack: a planted symlink or a mount over a cgroup directory is never followed out of cgroupfs",
  async () => {
    // In a private mount namespace, /sys/fs/cgroup overmounted by a tmpfs (mountinfo still
    // lists the cgroup mounts underneath) holding a plain directory where the pids mount
    // was, and a symlink to a writable fake tree where the memory caller directory was.
    const fake = Deno.makeTempDirSync({ prefix: "invoke_ns_fake_cgroup_" });
    const memory = hierarchyOf(layout!, "memory")!;
    const script = `
      import { detectCgroups } from "${new URL("../lib/cgroupfs.ts", import.meta.url).pathname}";
      import { createLaunchCgroup } from "${new URL("../lib/limits.ts", import.meta.url).pathname}";
      const layout = detectCgroups();
      const found = layout.v1.map((h) => h.controllers.join(","));
      let made = "none";
      try {
        const cgroup = await createLaunchCgroup({ memory: 33554432, pids: 5 }, undefined, layout);
        made = cgroup.set.nodes.map((n) => n.dir).join(" ");
        await cgroup.remove();
      } catch (error) {
        made = error.message;
      }
      console.log(JSON.stringify({ found, made }));
    `;
    try {
      Deno.mkdirSync(`${fake}/tree`);
      Deno.writeTextFileSync(`${fake}/tree/cgroup.procs`, "");
      const plant = [
        "mount --make-rprivate /",
        // A tmpfs over /sys/fs/cgroup itself, rebuilt with a symlink where the memory mount was.
        `mkdir ${fake}/keep && mount --bind /sys/fs/cgroup/unified ${fake}/keep`,
        "mount -t tmpfs none /sys/fs/cgroup",
        `mkdir -p /sys/fs/cgroup/unified && mount --move ${fake}/keep /sys/fs/cgroup/unified`,
        "mkdir /sys/fs/cgroup/pids",
        `mkdir -p $(dirname ${memory.callerDir})`,
        `ln -s ${fake}/tree ${memory.callerDir}`,
        `exec "$0" eval "$1"`,
      ].join(" && ");
      const ran = await new Deno.Command("unshare", {
        args: ["-m", "sh", "-c", plant, Deno.execPath(), script],
      }).output();
      assert(ran.success, new TextDecoder().decode(ran.stderr));
      const { found, made } = JSON.parse(new TextDecoder().decode(ran.stdout));
      assert(!found.includes("pids"), `overmounted pids used: ${found}`);
      assert(!found.includes("memory"), `symlinked memory used: ${found}`);
      assert.match(made, /^cgroup: detect: the memory controller is not available/);
      assert.deepEqual([...Deno.readDirSync(`${fake}/tree`)].map((e) => e.name), ["cgroup.procs"]);
    } finally {
      Deno.removeSync(fake, { recursive: true });
    }
    assertNoCgroupLeft();
  },
);

Deno.test({
  name:
    "rootless in a delegated v2 subtree: cgroups are made there, controllers enabled via the leaf move",
  ignore: !hugetlbOnUnified,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Delegation as systemd does it: the directory and its cgroup.procs, cgroup.threads and
    // cgroup.subtree_control owned by the user; root puts the user's process inside.
    const unified = layout!.unified!;
    const rootControl = `${unified.callerDir}/cgroup.subtree_control`;
    const before = Deno.readTextFileSync(rootControl).trim();
    const delegated = `${unified.callerDir}/${CGROUP_PREFIX}-test-delegated-${Deno.pid}`;
    const sources = readableSources();
    const script = `
      import { createLaunchCgroup } from "${sources}/lib/limits.ts";
      const out = [];
      for (const limits of [{}, { hugetlb: { "2MB": 2097152 } }]) {
        try {
          const cgroup = await createLaunchCgroup(limits);
          out.push({ dirs: cgroup.set.nodes.map((n) => n.dir) });
          await cgroup.remove();
        } catch (error) {
          out.push({ error: error.message });
        }
      }
      out.push({ self: Deno.readTextFileSync("/proc/self/cgroup") });
      console.log(JSON.stringify(out));
    `;
    Deno.writeTextFileSync(rootControl, "+hugetlb");
    Deno.mkdirSync(delegated);
    try {
      for (const file of ["", "/cgroup.procs", "/cgroup.threads", "/cgroup.subtree_control"]) {
        Deno.chownSync(`${delegated}${file}`, NOBODY, NOBODY);
      }
      const ran = await new Deno.Command("sh", {
        args: [
          "-c",
          `echo $$ > ${delegated}/cgroup.procs && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} ` +
          `--clear-groups env HOME=/tmp DENO_DIR=/tmp/invoke_ns_deno_dir_${NOBODY} ` +
          `${sources}/deno eval "$0"`,
          script,
        ],
      }).output();
      assert(ran.success, new TextDecoder().decode(ran.stderr));
      const [plain, hugetlb, { self }] = JSON.parse(new TextDecoder().decode(ran.stdout));
      assert.equal(plain.error, undefined, plain.error);
      assert.match(plain.dirs[0], new RegExp(`^${delegated}/invoke_ns-\\d+-\\d+-1$`));
      assert.equal(hugetlb.error, undefined, hugetlb.error);
      assert.match(hugetlb.dirs[0], new RegExp(`^${delegated}/invoke_ns-\\d+-\\d+-2$`));
      assert.match(self, /^0::.*-test-delegated-\d+\/invoke_ns-\d+-\d+-supervisor$/m);
    } finally {
      const swept = sweepOrphans({
        ...layout!,
        v1: [],
        unified: { ...unified, callerDir: delegated },
      });
      try {
        Deno.removeSync(delegated);
      } finally {
        if (!before.includes("hugetlb")) Deno.writeTextFileSync(rootControl, "-hugetlb");
      }
      assert.equal(swept.kept.length, 0, `kept ${swept.kept}`);
    }
    assertNoCgroupLeft();
  },
});

privilegedTest(
  "under the caller's own cgroup: a limit the caller is under (outer pids.max 40) still binds the launch (pids 100)",
  async () => {
    const pids = hierarchyOf(layout!, "pids")!;
    const outer = `${pids.callerDir}/${CGROUP_PREFIX}-test-outer-${Deno.pid}`;
    const script = `
      import { createLaunchCgroup } from "${new URL("../lib/limits.ts", import.meta.url).pathname}";
      const cgroup = await createLaunchCgroup({ pids: 100 });
      try {
        const join = cgroup.procsFiles().map((f) => "echo 0 > " + f).join(" && ");
        const ran = await new Deno.Command("sh", {
          args: ["-c", join + " && for i in $(seq 60); do sleep 30 </dev/null >/dev/null 2>&1 & done"],
        }).output();
        console.log(JSON.stringify({
          dir: cgroup.set.nodeFor("pids").dir,
          stderr: new TextDecoder().decode(ran.stderr),
          usage: cgroup.usage(),
        }));
      } finally {
        await cgroup.killAll();
        await cgroup.remove();
      }
    `;
    Deno.mkdirSync(outer);
    try {
      Deno.writeTextFileSync(`${outer}/pids.max`, "40");
      const ran = await new Deno.Command("sh", {
        args: [
          "-c",
          `echo $$ > ${outer}/cgroup.procs && exec "$0" eval "$1"`,
          Deno.execPath(),
          script,
        ],
      }).output();
      assert(ran.success, new TextDecoder().decode(ran.stderr));
      const { dir, stderr, usage } = JSON.parse(new TextDecoder().decode(ran.stdout));
      assert.match(
        dir,
        new RegExp(`^${outer}/invoke_ns-\\d+-\\d+-1$`),
        "made below the caller's own",
      );
      assert.match(stderr, /fork|Resource temporarily unavailable/i);
      assert(usage.peakPids < 40, `peak ${usage.peakPids}: bound by the outer 40, not the own 100`);
    } finally {
      Deno.removeSync(outer);
    }
    assertNoCgroupLeft();
  },
);
