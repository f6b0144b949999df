/**
 * The plan as data, without privilege: for representative specs, which
 * namespaces are created and joined, the child's steps in order (with their
 * calls), the parent's steps and clean-up, and each validation error.
 * Runs as any user: the caller is given to the planner.
 */

import assert from "node:assert/strict";
import { CLONE } from "../ffi/constants.ts";
import { planEnter } from "../lib/enter.ts";
import { type Caller, type LaunchOptions, type LaunchSpec, planLaunch } from "../lib/plan.ts";
import { explainPlan, explanationLines } from "../lib/explain.ts";
import { flagNames } from "../lib/step.ts";
import { defaultSeccompFilter } from "../lib/contain.ts";
import { LaunchError } from "../lib/supervise.ts";
import { NOBODY, privilegedTest, readableSources } from "./helpers.ts";

const ROOT: Caller = { uid: 0, gid: 0 };
const USER: Caller = { uid: 1000, gid: 1000 };

const jail = Deno.makeTempDirSync({ prefix: "invoke_ns_plan_" });
globalThis.addEventListener("unload", () => Deno.removeSync(jail, { recursive: true }));
Deno.mkdirSync(`${jail}/proc`);
Deno.mkdirSync(`${jail}/tmp`);
const realJail = Deno.realPathSync(jail);

interface Case {
  what: string;
  spec: LaunchSpec;
  options?: LaunchOptions;
  caller?: Caller;
  create: string[];
  child: string[];
  parent?: string[];
  cleanup?: string[];
}

const CASES: Case[] = [
  {
    what: "no namespace (as the seed without options)",
    spec: { command: [] },
    create: [],
    child: [],
  },
  {
    what: "-v: the seed's PID lines and what it executes",
    spec: { command: ["true"] },
    options: { verbose: true },
    create: [],
    child: ["getpid", "exec"],
  },
  {
    what: "-p (lab step 3)",
    spec: { command: ["bash"], pid: true },
    create: ["pid"],
    child: [],
  },
  {
    what: "-pm (lab step 4): private propagation, then a fresh /proc",
    spec: { command: ["bash"], pid: true, mount: true },
    create: ["pid", "mnt"],
    child: ["mount", "proc"],
  },
  {
    what: "-pmu calculus (lab step 5)",
    spec: { command: ["bash"], pid: true, mount: true, hostname: "calculus" },
    create: ["pid", "mnt", "uts"],
    child: ["mount", "proc", "sethostname"],
  },
  {
    what: "-pmnu calculus (lab step 6)",
    spec: { command: ["bash"], pid: true, mount: true, net: true, hostname: "calculus" },
    create: ["pid", "mnt", "uts", "net"],
    child: ["mount", "proc", "sethostname"],
  },
  {
    what: "-i no (lab step 7): the queue opened by the parent, the demo in the child",
    spec: { command: [] },
    options: { queueDemo: "/invoke_ns_plan_test" },
    create: [],
    child: ["mq"],
    parent: ["mq_open"],
    cleanup: ["mq_unlink"],
  },
  {
    what: "-i yes: the same in a new IPC namespace",
    spec: { command: [], ipc: true },
    options: { queueDemo: "/invoke_ns_plan_test" },
    create: ["ipc"],
    child: ["mq"],
    parent: ["mq_open"],
    cleanup: ["mq_unlink"],
  },
  {
    what: "-pmu -c DIR (lab step 8): pivot_root, /proc mounted before the pivot",
    spec: { command: ["bash"], pid: true, mount: true, hostname: "calculus", jail },
    create: ["pid", "mnt", "uts"],
    child: ["mount", "jail", "proc", "pivot_root", "sethostname"],
    cleanup: ["mount"],
  },
  {
    what: "-c DIR without -m: the seed's chroot",
    spec: { command: ["bash"], jail },
    create: [],
    child: ["chroot"],
  },
  {
    what: "-pm --chroot -c DIR: chroot, then /proc inside",
    spec: { command: ["bash"], pid: true, mount: true, jail, chrootOnly: true },
    create: ["pid", "mnt"],
    child: ["mount", "chroot", "proc"],
  },
  {
    what: "binds in a jail: mounts after the jail's bind, before the pivot",
    spec: {
      command: ["sh"],
      mount: true,
      jail,
      mounts: [{ kind: "tmpfs", target: "/tmp" }, { kind: "dev", target: "/dev" }],
    },
    create: ["mnt"],
    child: ["mount", "jail", "mount", "pivot_root"],
    parent: ["mount"],
    cleanup: ["mount"],
  },
  {
    what: "rootless -pmu: the user namespace implied, the child writes its maps first",
    spec: { command: ["sh"], pid: true, mount: true, hostname: "box" },
    caller: USER,
    create: ["user", "pid", "mnt", "uts"],
    child: ["uid_map", "mount", "proc", "sethostname"],
  },
  {
    what: "rootless without any namespace: no user namespace either",
    spec: { command: ["sh"] },
    caller: USER,
    create: [],
    child: [],
  },
  {
    what: "-U as root, -C, -T, --no-new-privs",
    spec: { command: ["sh"], user: true, cgroup: true, time: { boottime: 60 }, noNewPrivs: true },
    create: ["user", "time", "cgroup"],
    child: ["uid_map", "timens", "prctl", "cgroupns"],
  },
  {
    what: "--json: PIDs and namespaces read before any jail",
    spec: { command: ["sh"], pid: true, mount: true, jail },
    options: { announceStart: true },
    create: ["pid", "mnt"],
    child: ["getpid", "namespaces", "mount", "jail", "proc", "pivot_root"],
    cleanup: ["mount"],
  },
  {
    what: "limits: the launch's cgroups made before clone, joined by the child last",
    spec: { command: ["sh"], pid: true, mount: true, limits: { memory: 32 * 2 ** 20, pids: 16 } },
    create: ["pid", "mnt"],
    parent: ["cgroup"],
    child: ["mount", "proc", "cgroup"],
  },
  {
    what: "limits with -C: joined, then the cgroup namespace (0::/ inside)",
    spec: { command: ["sh"], cgroup: true, limits: { wallTimeMs: 1000, accounting: true } },
    create: ["cgroup"],
    parent: ["cgroup"],
    child: ["cgroup", "cgroupns"],
  },
  {
    what: "limits with ID ranges: the tool moves the child in at a sync point, after setresuid",
    spec: {
      command: ["sh"],
      cgroup: true,
      idRanges: { users: [{ inside: 0, outside: 100000, count: 65536 }], groups: [] },
      limits: { memory: 32 * 2 ** 20 },
    },
    create: ["user", "cgroup"],
    parent: ["cgroup"],
    child: ["uid_map", "setresuid", "capabilities", "cgroup", "cgroupns"],
  },
  // containment (issue 16): where each step goes
  {
    what: "--contain: a fresh /proc masked, no_new_privs, capabilities, a session, the filter last",
    spec: { command: ["sh"], contain: true, pty: false },
    create: ["pid", "mnt"],
    child: [
      "mount",
      "proc",
      "masks",
      "prctl",
      "keyring",
      "bounding",
      "capset",
      "setsid",
      "seccomp",
    ],
  },
  {
    what: "--contain -c DIR: /dev/null taken before the pivot, the masks inside the jail",
    spec: { command: ["sh"], contain: true, pty: false, jail },
    create: ["pid", "mnt"],
    child: [
      "mount",
      "jail",
      "proc",
      "devnull",
      "pivot_root",
      "masks",
      "prctl",
      "keyring",
      "bounding",
      "capset",
      "setsid",
      "seccomp",
    ],
    cleanup: ["mount"],
  },
  {
    what:
      "--contain --uid 1000 --cap-add NET_ADMIN: keep-caps, the user, then the sets and ambient",
    spec: {
      command: ["sh"],
      contain: true,
      pty: false,
      uid: 1000,
      capabilities: { add: ["NET_ADMIN"] },
    },
    create: ["pid", "mnt"],
    child: [
      "mount",
      "proc",
      "masks",
      "prctl",
      "keyring",
      "keepcaps",
      "bounding",
      "user",
      "capset",
      "ambient",
      "setsid",
      "seccomp",
    ],
  },
  {
    what: "--contain rootless: the same after the ID map",
    spec: { command: ["sh"], contain: true, pty: false },
    caller: USER,
    create: ["user", "pid", "mnt"],
    child: [
      "uid_map",
      "mount",
      "proc",
      "masks",
      "prctl",
      "keyring",
      "bounding",
      "capset",
      "setsid",
      "seccomp",
    ],
  },
  {
    what: "--seccomp without --no-new-privs: loaded first, while CAP_SYS_ADMIN is there",
    spec: { command: ["sh"], seccomp: "default", capabilities: { drop: ["ALL"] }, uid: 1000 },
    create: [],
    child: ["seccomp", "keepcaps", "bounding", "user", "capset", "ambient"],
  },
  {
    what: "--contain --pty --rlimit --chdir: limits before the drop, the pty after the user",
    spec: { command: ["sh"], contain: true, pty: true, rlimits: { nofile: 64 }, chdir: "/" },
    create: ["pid", "mnt"],
    child: [
      "mount",
      "proc",
      "masks",
      "prctl",
      "keyring",
      "rlimit",
      "bounding",
      "capset",
      "chdir",
      "pty",
      "seccomp",
    ],
    parent: ["pty"],
  },
  {
    what: "--mask and --remount-ro with -m alone",
    spec: { command: ["sh"], mount: true, maskedPaths: ["/etc/hostname"], readonlyPaths: ["/usr"] },
    create: ["mnt"],
    child: ["mount", "masks"],
  },
];

for (const c of CASES) {
  Deno.test(`plan: ${c.what}`, async () => {
    const plan = await planLaunch(c.spec, c.options, c.caller ?? ROOT);
    assert.deepEqual(plan.create, c.create);
    assert.deepEqual(plan.join, []);
    assert.deepEqual(plan.child.map((step) => step.name), c.child);
    assert.deepEqual(plan.parent.map((step) => step.name), c.parent ?? []);
    assert.deepEqual(plan.cleanup.map((step) => step.name), c.cleanup ?? []);
    assert.equal(plan.execInGrandchild, false);
    assert.equal(plan.dieWithParent, true);
    const flags = { user: CLONE.NEWUSER, pid: CLONE.NEWPID, mnt: CLONE.NEWNS, uts: CLONE.NEWUTS };
    // made by the child's own unshare, after it has joined its cgroups
    assert.equal(plan.cloneFlags & (CLONE.NEWCGROUP | CLONE.NEWTIME), 0);
    for (const [type, flag] of Object.entries(flags)) {
      assert.equal((plan.cloneFlags & flag) !== 0, c.create.includes(type), type);
    }
    for (const step of [...plan.parent, ...plan.child, ...plan.cleanup]) {
      assert.ok(step.why.length > 0, `${step.name} says why`);
    }
  });
}

Deno.test("plan: each step carries its calls with the real arguments", async () => {
  const plan = await planLaunch(
    { command: ["bash"], pid: true, mount: true, hostname: "calculus", jail },
    {},
    USER,
  );
  const calls = plan.child.flatMap((step) => step.calls.map((c) => [step.name, c.fn, ...c.args]));
  assert.deepEqual(calls, [
    ["uid_map", "write", "<fd of /proc/self/setgroups>", "deny", 4],
    ["uid_map", "write", "<fd of /proc/self/uid_map>", "0 1000 1\n", 9],
    ["uid_map", "write", "<fd of /proc/self/gid_map>", "0 1000 1\n", 9],
    ["mount", "mount", "none", "/", null, "MS_REC|MS_PRIVATE", null],
    [
      "jail",
      "openat2",
      "AT_FDCWD",
      realJail,
      "{flags=O_PATH|O_DIRECTORY|O_CLOEXEC, resolve=RESOLVE_NO_SYMLINKS}",
      24,
    ],
    [
      "jail",
      "open_tree",
      `<fd of ${realJail}>`,
      "",
      "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_EMPTY_PATH|AT_RECURSIVE",
    ],
    [
      "jail",
      "move_mount",
      `<clone of ${realJail}>`,
      "",
      `<fd of ${realJail}>`,
      "",
      "MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH",
    ],
    [
      "proc",
      "mount",
      "proc",
      `/proc/self/fd/<fd of ${realJail}/proc>`,
      "proc",
      "MS_NOSUID|MS_NODEV|MS_NOEXEC",
      null,
    ],
    ["pivot_root", "fchdir", `<clone of ${realJail}>`],
    ["pivot_root", "pivot_root", ".", "."],
    ["pivot_root", "umount2", ".", "MNT_DETACH"],
    ["pivot_root", "chdir", "/"],
    ["sethostname", "sethostname", "calculus", 8],
  ]);
  assert.deepEqual(plan.exec?.argv, ["bash"]);
  assert.ok(plan.exec?.env.some((entry) => entry.startsWith("PATH=")));
});

Deno.test("plan: the default seccomp program is compiled once per capability set", async () => {
  const plan = await planLaunch(
    { command: ["sh"], seccomp: "default", noNewPrivs: true },
    {},
    ROOT,
  );
  assert.equal(plan.child.at(-1)?.name, "seccomp", "with no_new_privs the filter is the last step");
  const all = (1n << 41n) - 1n;
  const first = defaultSeccompFilter(all);
  assert.equal(defaultSeccompFilter(all), first, "the same compiled program, from the cache");
  const contained = defaultSeccompFilter(0xa00425fbn);
  assert.notEqual(contained, first);
  // without CAP_SYS_ADMIN the profile filters clone's flags: a longer program
  assert.ok(contained.compiled.length > first.compiled.length);
  assert.equal(contained.prepared.filter.length, contained.compiled.program.length);
});

Deno.test("plan: flag names as C writes them", () => {
  assert.equal(flagNames(CLONE.NEWPID | CLONE.NEWNS, CLONE, "CLONE_"), "CLONE_NEWNS|CLONE_NEWPID");
  assert.equal(flagNames(0, CLONE, "CLONE_"), "0");
  assert.equal(flagNames(CLONE.NEWUTS | 1, CLONE, "CLONE_"), "CLONE_NEWUTS|0x1");
});

const ERRORS: {
  what: string;
  spec: LaunchSpec;
  options?: LaunchOptions;
  caller?: Caller;
  step: string;
  code: number;
  message: RegExp;
}[] = [
  {
    what: "a memory limit of 0 bytes (limits through launch())",
    spec: { command: ["true"], limits: { memory: 0 } },
    step: "usage",
    code: 2,
    message: /^--memory: 0 is not a whole number of bytes/,
  },
  {
    what: "--memory-swap below --memory",
    spec: { command: ["true"], limits: { memory: 2 ** 25, memorySwap: 2 ** 24 } },
    step: "usage",
    code: 2,
    message: /--memory-swap: is the total of memory and swap/,
  },
  {
    what: "a wall time limit that is not whole milliseconds",
    spec: { command: ["true"], limits: { wallTimeMs: 0.5 } },
    step: "usage",
    code: 2,
    message: /^--wall-time: 0.5 is not a whole number of milliseconds/,
  },
  {
    what: "limits that are not an object",
    spec: { command: ["true"], limits: 5 as unknown as LaunchSpec["limits"] },
    step: "usage",
    code: 2,
    message: /limits: must be an object/,
  },
  {
    what: "a hostname too long",
    spec: { command: [], hostname: "x".repeat(65) },
    step: "usage",
    code: 2,
    message: /65 bytes long \(at most 64\)/,
  },
  {
    what: "an empty hostname",
    spec: { command: [], hostname: "" },
    step: "usage",
    code: 2,
    message: /hostname is empty/,
  },
  {
    what: "a NUL in an argument",
    spec: { command: ["echo", "a\0b"] },
    step: "usage",
    code: 2,
    message: /NUL byte/,
  },
  {
    what: "an empty command name",
    spec: { command: [""] },
    step: "usage",
    code: 2,
    message: /empty name/,
  },
  {
    what: "mounts without -m",
    spec: { command: [], mounts: [{ kind: "tmpfs", target: "/tmp" }] },
    step: "usage",
    code: 2,
    message: /need -m/,
  },
  {
    what: "a relative mount target",
    spec: { command: [], mount: true, mounts: [{ kind: "tmpfs", target: "tmp" }] },
    step: "mount",
    code: 125,
    message: /absolute path/,
  },
  {
    what: "a missing bind source",
    spec: {
      command: [],
      mount: true,
      mounts: [{ kind: "bind", source: "/no/such/source", target: "/x" }],
    },
    step: "mount",
    code: 125,
    message: /no such file/,
  },
  {
    what: "a missing jail",
    spec: { command: [], jail: "/no/such/jail" },
    step: "jail",
    code: 125,
    message: /no such directory/,
  },
  {
    what: "--chroot without a jail",
    spec: { command: [], chrootOnly: true },
    step: "usage",
    code: 2,
    message: /--chroot needs a jail/,
  },
  {
    what: "--veth rootless",
    spec: { command: [], veth: {} },
    caller: USER,
    step: "veth",
    code: 125,
    message: /needs root/,
  },
  {
    what: "a mapped ID out of range",
    spec: { command: [], user: { uid: -1 } },
    step: "usage",
    code: 2,
    message: /not a valid user or group ID/,
  },
  {
    what: "a fractional time offset",
    spec: { command: [], time: { boottime: 1.5 } },
    step: "usage",
    code: 2,
    message: /not an integer/,
  },
  {
    what: "a bad variable name",
    spec: { command: [], env: { "A=B": "c" } },
    step: "usage",
    code: 2,
    message: /not a variable name/,
  },
  {
    what: "a bad queue name",
    spec: { command: [] },
    options: { queueDemo: "no-slash" },
    step: "usage",
    code: 2,
    message: /a queue name is/,
  },
  // containment (issue 16)
  {
    what: "--contain --chroot",
    spec: { command: [], contain: true, chrootOnly: true, jail },
    step: "usage",
    code: 2,
    message: /--contain jails by pivot_root only/,
  },
  {
    what: "an unknown capability, with the list",
    spec: { command: [], capabilities: { add: ["NET_ADMN"] } },
    step: "usage",
    code: 2,
    message: /unknown capability 'NET_ADMN' \(valid: ALL, CHOWN, .*NET_ADMIN/,
  },
  {
    what: "--uid not mapped in a rootless user namespace",
    spec: { command: [], uid: 1000 },
    caller: USER,
    step: "usage",
    code: 2,
    message: /uid 1000 is not mapped in the user namespace/,
  },
  {
    what: "--groups where setgroups is denied",
    spec: { command: [], groups: [0] },
    caller: USER,
    step: "usage",
    code: 2,
    message: /setgroups is denied/,
  },
  {
    what: "--rlimit nproc for root",
    spec: { command: [], rlimits: { nproc: 10 } },
    step: "usage",
    code: 2,
    message: /does not bind uid 0.*--pids/,
  },
  {
    what: "a malformed seccomp profile",
    spec: { command: [], seccomp: '{"defaultAction": 1}' },
    step: "seccomp",
    code: 125,
    message: /^profile: defaultAction/,
  },
  {
    what: "--mask without -m",
    spec: { command: [], maskedPaths: ["/etc/hostname"] },
    step: "usage",
    code: 2,
    message: /need -m/,
  },
  {
    what: "--pty with a start FIFO (the init stage)",
    spec: { command: ["sh"], pty: true, startFifo: "/run/x.fifo" },
    step: "usage",
    code: 2,
    message: /--pty cannot be combined/,
  },
  {
    what: "maskedPaths that is not an array (library input)",
    spec: { command: [], mount: true, maskedPaths: "/etc" as unknown as string[] },
    step: "usage",
    code: 2,
    message: /maskedPaths: must be an array of strings/,
  },
  {
    what: "rlimits that is not an object of limits",
    spec: { command: [], rlimits: [64] as unknown as Record<string, number> },
    step: "usage",
    code: 2,
    message: /rlimits: must be an object/,
  },
];

for (const c of ERRORS) {
  Deno.test(`plan: refused: ${c.what}`, async () => {
    await assert.rejects(
      () => planLaunch(c.spec, c.options, c.caller ?? ROOT),
      (error: unknown) => {
        assert.ok(error instanceof LaunchError);
        assert.equal(error.step, c.step);
        assert.equal(error.exitCode, c.code);
        assert.match(error.message, c.message);
        return true;
      },
    );
  });
}

Deno.test("plan: enter by PID joins what differs, a PID namespace through the grandchild", async () => {
  // A process of our own in new UTS and user namespaces (unshare(1) needs no privilege then).
  const child = new Deno.Command("unshare", {
    args: ["--user", "--map-root-user", "--uts", "--pid", "--fork", "sleep", "30"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    let target = 0;
    for (let i = 0; i < 200 && target === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      const found = [...Deno.readDirSync("/proc")].find((entry) => {
        try {
          return /^\d+$/.test(entry.name) &&
            Deno.readTextFileSync(`/proc/${entry.name}/status`).includes(`PPid:\t${child.pid}\n`);
        } catch {
          return false;
        }
      });
      if (found) target = Number(found.name);
    }
    assert.ok(target > 0, "the sleep inside exists");
    const plan = planEnter(target, { command: ["hostname"] });
    const types = plan.join.map((join) => join.type);
    assert.ok(
      types.includes("uts") && types.includes("user") && types.includes("pid"),
      String(types),
    );
    assert.ok(!types.includes("net"), "the same network namespace is not joined");
    assert.equal(plan.execInGrandchild, true);
    assert.deepEqual(plan.create, []);
    assert.equal(plan.cloneFlags, 0);
    assert.deepEqual(plan.parent.map((step) => step.name), ["enter"]);
    assert.ok(plan.child.every((step) => step.name === "enter"));
    assert.equal(
      plan.child.filter((step) => step.calls[0].fn === "setns").length,
      plan.join.length,
    );
    assert.deepEqual(plan.exec?.argv, ["hostname"]);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stderr.cancel();
  }
});

Deno.test("plan: enter by namespace file joins that one namespace", () => {
  const plan = planEnter("/proc/self/ns/uts", { command: ["true"] });
  assert.deepEqual(plan.join, [{ type: "uts", path: "/proc/self/ns/uts" }]);
  assert.equal(plan.execInGrandchild, false);
  assert.deepEqual(plan.child[0].calls[0], {
    fn: "setns",
    args: ["<fd of /proc/self/ns/uts>", "CLONE_NEWUTS"],
  });
});

Deno.test("plan: enter refuses a missing process and a time namespace by name", () => {
  assert.throws(() => planEnter(2 ** 22 + 7, {}), /no such process/);
  assert.throws(() => planEnter("/no/such/file", {}), /no such process or file/);
});

// The same tests as an unprivileged user, once (not again from within).
if (Deno.env.get("INVOKE_NS_PLAN_AS") === undefined) {
  privilegedTest("plan: every plan test passes as nobody too", async () => {
    const sources = readableSources();
    const output = await new Deno.Command("setpriv", {
      args: [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        "--clear-groups",
        "env",
        "HOME=/tmp",
        `DENO_DIR=/tmp/invoke_ns_deno_dir_${NOBODY}`,
        "INVOKE_NS_PLAN_AS=nobody",
        "NO_COLOR=1",
        `${sources}/deno`,
        "test",
        "--allow-all",
        `${sources}/tests/plan_test.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text);
    assert.match(text, /ok \| \d+ passed \| 0 failed/);
  });
}

Deno.test("plan: --explain prints what docs/how-it-works.md shows", async () => {
  const plan = await planLaunch(
    { command: ["bash"], pid: true, mount: true, hostname: "calculus" },
    {},
    ROOT,
  );
  const lines = explanationLines(explainPlan(plan), false).map((line) => line.split("  # ")[0]);
  assert.deepEqual(lines, [
    "parent     clone         clone(<setcontext>, <stack>, CLONE_VM|CLONE_VFORK|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWPID|CLONE_PARENT_SETTID|SIGCHLD, <setup context>, &<child-pid>)",
    "child      prctl         prctl(PR_SET_PDEATHSIG, SIGKILL)",
    'child      mount         mount("none", "/", NULL, MS_REC|MS_PRIVATE, NULL)',
    'child      proc          mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)',
    'child      sethostname   sethostname("calculus", 8)',
    "child      exec          rt_sigaction(<each signal the tool changed>, SIG_DFL)",
    "child      exec          close_range(3, 4294967295, 0)",
    "child      prctl         prctl(PR_SET_PDEATHSIG, SIGKILL)",
    'child      exec          execve(<path of bash>, ["bash"], <environment>)',
  ]);
  // (the copy the unprivileged run uses holds the sources only)
  if (Deno.env.get("INVOKE_NS_PLAN_AS") !== undefined) return;
  const docs = Deno.readTextFileSync(new URL("../docs/how-it-works.md", import.meta.url));
  for (const line of lines) assert.ok(docs.includes(line), line);
});

// ---- OCI containers (issue 18) ----

Deno.test("plan: an OCI container's steps, in order, from a config.json", async () => {
  const { parseConfig } = await import("../lib/oci/config.ts");
  const config = parseConfig(
    {
      ociVersion: "1.2.0",
      root: { path: realJail, readonly: true },
      process: {
        args: ["sh"],
        cwd: "/tmp",
        env: ["PATH=/bin", "A=1"],
        user: { uid: 1000, gid: 1000, umask: 0o22 },
      },
      hostname: "box",
      domainname: "lab",
      mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
      linux: {
        namespaces: [
          { type: "pid" },
          { type: "mount" },
          { type: "uts" },
          { type: "network", path: "/run/netns/x" },
        ],
        sysctl: { "kernel.shmmax": "1" },
        rootfsPropagation: "rslave",
      },
    },
    "/bundle",
    { apparmor: false, selinux: false },
  );
  const fifo = `${realJail}/tmp/exec.fifo`;
  const plan = await planLaunch(
    { ...config.spec, startFifo: fifo, cgroups: [] },
    { dieWithParent: false },
    ROOT,
  );
  assert.equal(plan.stage, "init");
  assert.deepEqual(plan.create, ["pid", "mnt", "uts"]);
  assert.deepEqual(plan.parent.map((step) => step.name), ["setns"]);
  assert.deepEqual(plan.parent[0].calls.map((c) => [c.fn, ...c.args]), [
    ["open", "/run/netns/x", "O_RDONLY"],
    ["setns", "<fd of /run/netns/x>", "CLONE_NEWNET"],
  ]);
  assert.equal(
    plan.parent[0].undoAfterClone,
    true,
    "the tool's thread goes back once the child exists",
  );
  assert.deepEqual(plan.child.map((step) => step.name), [
    "mount",
    "jail",
    "mount",
    "start",
    "mounts",
    "pivot_root",
    "sethostname",
    "rootfsPropagation",
    "readonly",
    "setdomainname",
    "sysctl",
    "chdir",
    "user",
    "umask",
    "created",
    "start",
  ]);
  assert.deepEqual(plan.exec?.env, ["PATH=/bin", "A=1"], "the config's environment, exactly");
  assert.equal(plan.dieWithParent, false);
});
