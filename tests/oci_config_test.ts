/**
 * The config.json codec (lib/oci/config.ts), without privilege: each bad
 * value is one line naming its JSON path, each unhonoured field is refused
 * by name, and good configs map onto the engine's LaunchSpec.
 */

import assert from "node:assert/strict";
import { type HostFacts, parseConfig } from "../lib/oci/config.ts";
import { ConfigError, UnsupportedError } from "../lib/oci/spec.ts";
import { bindAttributes } from "../lib/oci/setup.ts";
import { MOUNT_ATTR, MOUNT_ATTR_ATIME } from "../ffi/mountapi.ts";

const host: HostFacts = { apparmor: false, selinux: false };

const assertEquals = (actual: unknown, expected: unknown) =>
  assert.deepStrictEqual(actual, expected);

/** The error `fn` throws, checked to be a `kind`. */
function assertThrows<E extends Error>(fn: () => unknown, kind: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof kind, `threw ${error}, not a ${kind.name}`);
    return error;
  }
  throw new assert.AssertionError({ message: "did not throw" });
}

// deno-lint-ignore no-explicit-any
type Config = Record<string, any>;

/** A minimal valid config; `change` edits a copy. */
function config(change: (c: Config) => void = () => {}): Record<string, unknown> {
  const c: Config = {
    ociVersion: "1.2.0",
    root: { path: "rootfs" },
    process: { args: ["sh"], cwd: "/", user: { uid: 0, gid: 0 }, env: ["PATH=/bin"] },
    linux: { namespaces: [{ type: "pid" }, { type: "mount" }] },
  };
  change(c);
  return c;
}

Deno.test("a minimal config maps onto a launch in the bundle's root", () => {
  const parsed = parseConfig(config(), "/b", host);
  assertEquals(parsed.spec.command, ["sh"]);
  assertEquals(parsed.spec.jail, "/b/rootfs");
  assertEquals(parsed.spec.pid, true);
  assertEquals(parsed.spec.mount, true);
  assertEquals(parsed.spec.container?.env, ["PATH=/bin"]);
  assertEquals(parsed.spec.container?.devices.map((d) => d.path), [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
  ]);
});

/** Bad values: [what, change, the one line]. */
const INVALID: [string, (c: Config) => void, string][] = [
  [
    "args missing",
    (c) => delete c.process.args,
    "process.args: must be a non-empty array of strings",
  ],
  [
    "args empty",
    (c) => (c.process.args = []),
    "process.args: must be a non-empty array of strings",
  ],
  [
    "args not strings",
    (c) => (c.process.args = ["sh", 1]),
    "process.args: must be a non-empty array of strings",
  ],
  ["no root", (c) => delete c.root, "root: must be an object"],
  [
    "version 2",
    (c) => (c.ociVersion = "2.0.0"),
    "ociVersion: 2.0.0: only runtime-spec 1.x is understood",
  ],
  ["relative cwd", (c) => (c.process.cwd = "tmp"), "process.cwd: must be an absolute path"],
  ["env without =", (c) => (c.process.env = ["PATH"]), "process.env[0]: must be KEY=VALUE"],
  [
    "uid negative",
    (c) => (c.process.user.uid = -1),
    "process.user.uid: must be an integer from 0 to 4294967295",
  ],
  [
    "bad gid",
    (c) => (c.process.user.additionalGids = [1, "x"]),
    "process.user.additionalGids[1]: must be an integer from 0 to 4294967295",
  ],
  [
    "namespace type",
    (c) => c.linux.namespaces.push({ type: "nope" }),
    "linux.namespaces[2].type: must be one of pid, network, mount, ipc, uts, user, cgroup, time",
  ],
  [
    "namespace twice",
    (c) => c.linux.namespaces.push({ type: "pid" }),
    "linux.namespaces[2].type: pid is given twice",
  ],
  [
    "no mount namespace",
    (c) => (c.linux.namespaces = [{ type: "pid" }]),
    "linux.namespaces: must create a mount namespace",
  ],
  [
    "user without maps",
    (c) => c.linux.namespaces.push({ type: "user" }),
    "linux.uidMappings: a new user namespace needs them",
  ],
  [
    "maps without user",
    (c) => (c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]),
    "linux.uidMappings: only with a new user namespace",
  ],
  ["map size 0", (c) => {
    c.linux.namespaces.push({ type: "user" });
    c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 0 }];
  }, "linux.uidMappings[0].size: must be an integer from 1 to 4294967295"],
  ["hostname without uts", (c) => (c.hostname = "box"), "hostname: needs a new uts namespace"],
  [
    "mount without destination",
    (c) => (c.mounts = [{ type: "proc" }]),
    "mounts[0].destination: must be a string",
  ],
  [
    "mount with ..",
    (c) => (c.mounts = [{ destination: "/a/../b", type: "tmpfs" }]),
    'mounts[0].destination: may not contain ".."',
  ],
  [
    "bind relative source",
    (c) => (c.mounts = [{ destination: "/a", type: "bind", source: "x" }]),
    "mounts[0].source: a bind needs an absolute source path",
  ],
  [
    "mount without type",
    (c) => (c.mounts = [{ destination: "/a", source: "x" }]),
    "mounts[0].type: needed unless it is a bind",
  ],
  [
    "options not strings",
    (c) => (c.mounts = [{ destination: "/a", type: "tmpfs", options: [3] }]),
    "mounts[0].options: must be an array of strings",
  ],
  [
    "device type",
    (c) => (c.linux.devices = [{ type: "x", path: "/dev/x" }]),
    'linux.devices[0].type: must be "c", "b", "u" or "p"',
  ],
  [
    "device relative",
    (c) => (c.linux.devices = [{ type: "c", path: "dev/x", major: 1, minor: 3 }]),
    "linux.devices[0].path: must be an absolute path",
  ],
  [
    "propagation",
    (c) => (c.linux.rootfsPropagation = "sideways"),
    "linux.rootfsPropagation: must be one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable",
  ],
  [
    "sysctl name",
    (c) => (c.linux.sysctl = { "../x": "1" }),
    "linux.sysctl.../x: not a sysctl name",
  ],
  [
    "hook relative",
    (c) => (c.hooks = { poststart: [{ path: "x" }] }),
    "hooks.poststart[0].path: must be an absolute path",
  ],
  [
    "hook timeout",
    (c) => (c.hooks = { prestart: [{ path: "/x", timeout: 0 }] }),
    "hooks.prestart[0].timeout: must be an integer from 1 to 86400",
  ],
  [
    "offsets without time",
    (c) => (c.linux.timeOffsets = { monotonic: { secs: 1 } }),
    "linux.timeOffsets: needs a new time namespace",
  ],
  [
    "cgroupsPath ..",
    (c) => (c.linux.cgroupsPath = "/a/../b"),
    'linux.cgroupsPath: may not contain ".."',
  ],
  [
    "personality",
    (c) => (c.linux.personality = { domain: "BSD" }),
    'linux.personality.domain: must be "LINUX" or "LINUX32"',
  ],
  [
    "oomScoreAdj",
    (c) => (c.process.oomScoreAdj = 2000),
    "process.oomScoreAdj: must be an integer from -1000 to 1000",
  ],
  ["not an object", (c) => (c.process = []), "process: must be an object"],
];

for (const [what, change, line] of INVALID) {
  Deno.test(`invalid config (${what}): ${line}`, () => {
    const error = assertThrows(() => parseConfig(config(change), "/b", host), ConfigError);
    assertEquals(error.message, line);
  });
}

/** Fields that cannot be honoured: [field, change, the one line]. */
const REFUSED: [string, (c: Config) => void, string][] = [
  [
    "seccomp listener",
    (c) => (c.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/l.sock" }),
    "unsupported: linux.seccomp.listenerPath (not implemented)",
  ],
  [
    "seccomp flags",
    (
      c,
    ) => (c.linux.seccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      flags: ["SECCOMP_FILTER_FLAG_LOG"],
    }),
    "unsupported: linux.seccomp.flags (not implemented)",
  ],
  [
    "resources without a cgroup",
    (c) => (c.linux.resources = { pids: { limit: 10 } }),
    "unsupported: linux.resources (needs a linux.cgroupsPath to write them to)",
  ],
  [
    "blockIO",
    (c) => {
      c.linux.cgroupsPath = "/x";
      c.linux.resources = { blockIO: { weight: 10 } };
    },
    "unsupported: linux.resources.blockIO (not implemented)",
  ],
  [
    "memory.kernel",
    (c) => {
      c.linux.cgroupsPath = "/x";
      c.linux.resources = { memory: { kernel: 1 } };
    },
    "unsupported: linux.resources.memory.kernel (not implemented)",
  ],
  [
    "cpu.realtimeRuntime",
    (c) => {
      c.linux.cgroupsPath = "/x";
      c.linux.resources = { cpu: { realtimeRuntime: 1 } };
    },
    "unsupported: linux.resources.cpu.realtimeRuntime (not implemented)",
  ],
  [
    "apparmor",
    (c) => (c.process.apparmorProfile = "x"),
    "unsupported: process.apparmorProfile (AppArmor is absent)",
  ],
  [
    "selinux",
    (c) => (c.process.selinuxLabel = "x"),
    "unsupported: process.selinuxLabel (SELinux is absent)",
  ],
  [
    "mountLabel",
    (c) => (c.linux.mountLabel = "x"),
    "unsupported: linux.mountLabel (SELinux is absent)",
  ],
  [
    "intelRdt",
    (c) => (c.linux.intelRdt = { closID: "x" }),
    "unsupported: linux.intelRdt (not implemented)",
  ],
  [
    "join pid by path",
    (c) => (c.linux.namespaces[0].path = "/proc/1/ns/pid"),
    "unsupported: linux.namespaces[0].path (joining a pid namespace by path)",
  ],
  [
    "idmap mount",
    (c) => (c.mounts = [{ destination: "/a", type: "bind", source: "/a", options: ["idmap"] }]),
    'unsupported: mounts[0].options[0] ("idmap" is not implemented)',
  ],
  [
    "overlay mount",
    (c) => (c.mounts = [{ destination: "/a", type: "overlay", source: "x" }]),
    'unsupported: mounts[0].type ("overlay" is not one of proc, sysfs, tmpfs, devpts, mqueue, cgroup, cgroup2)',
  ],
  [
    "systemd cgroupsPath",
    (c) => (c.linux.cgroupsPath = "machine.slice:libpod:abc"),
    "unsupported: linux.cgroupsPath (a systemd slice:prefix:name path; use podman --cgroup-manager=cgroupfs)",
  ],
  ["nanosecond offsets", (c) => {
    c.linux.namespaces.push({ type: "time" });
    c.linux.timeOffsets = { monotonic: { secs: 1, nanosecs: 5 } };
  }, "unsupported: linux.timeOffsets.monotonic.nanosecs (offsets are whole seconds here)"],
];

for (const [what, change, line] of REFUSED) {
  Deno.test(`refused field (${what}): ${line}`, () => {
    const error = assertThrows(() => parseConfig(config(change), "/b", host), UnsupportedError);
    assertEquals(error.message, line);
  });
}

/** Containment fields and what the launch gets: [what, change, the spec's fields]. */
const CONTAINMENT: [string, (c: Config) => void, Record<string, unknown>][] = [
  [
    "root's capabilities: those in bounding, permitted and effective",
    (c) => (c.process.capabilities = {
      bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
      permitted: ["CAP_CHOWN", "CAP_KILL"],
      effective: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
    }),
    { capabilities: { drop: ["ALL"], add: ["CAP_CHOWN", "CAP_KILL"] }, uid: 0, gid: 0 },
  ],
  [
    "another user's: the ambient ones",
    (c) => {
      c.process.user = { uid: 1000, gid: 100, additionalGids: [5] };
      c.process.capabilities = {
        bounding: ["CAP_CHOWN", "CAP_KILL"],
        permitted: ["CAP_CHOWN", "CAP_KILL"],
        effective: ["CAP_CHOWN", "CAP_KILL"],
        inheritable: ["CAP_KILL"],
        ambient: ["CAP_KILL"],
      };
    },
    { capabilities: { drop: ["ALL"], add: ["CAP_KILL"] }, uid: 1000, gid: 100, groups: [5] },
  ],
  [
    "another user's: an ambient one not inheritable is not granted (the kernel would refuse it)",
    (c) => {
      c.process.user = { uid: 1000, gid: 100 };
      c.process.capabilities = {
        bounding: ["CAP_NET_ADMIN"],
        permitted: ["CAP_NET_ADMIN"],
        ambient: ["CAP_NET_ADMIN"],
      };
    },
    { capabilities: { drop: ["ALL"], add: [] }, uid: 1000 },
  ],
  [
    "podman --cap-drop=all: none",
    (c) => (c.process.capabilities = {}),
    { capabilities: { drop: ["ALL"], add: [] }, uid: 0, gid: 0 },
  ],
  [
    "rlimits as [soft, hard], 2^64-1 as unlimited",
    (c) => (c.process.rlimits = [
      { type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 },
      { type: "RLIMIT_CORE", soft: 0, hard: 18446744073709551615 },
    ]),
    { rlimits: { nofile: [1024, 4096], core: [0, "unlimited"] } },
  ],
  [
    "seccomp, masked and read-only paths (missing ones skipped)",
    (c) => {
      c.linux.seccomp = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [] };
      c.linux.maskedPaths = ["/proc/kcore"];
      c.linux.readonlyPaths = ["/proc/sys"];
    },
    {
      seccomp: { defaultAction: "SCMP_ACT_ERRNO", syscalls: [] },
      maskedPaths: ["/proc/kcore"],
      readonlyPaths: ["/proc/sys"],
      skipMissingPaths: true,
    },
  ],
];

for (const [what, change, fields] of CONTAINMENT) {
  Deno.test(`containment field (${what})`, () => {
    const spec = parseConfig(config(change), "/b", host).spec as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(fields)) assertEquals(spec[key], value);
  });
}

Deno.test("linux.resources: swap below the memory limit is refused by name", () => {
  const error = assertThrows(
    () =>
      parseConfig(
        config((c) => {
          c.linux.cgroupsPath = "/x";
          c.linux.resources = { memory: { limit: 2048, swap: 1024 } };
        }),
        "/b",
        host,
      ),
    ConfigError,
  );
  assertEquals(
    error.message,
    "linux.resources.memory.swap: must be at least memory.limit (it counts memory plus swap)",
  );
});

Deno.test("linux.resources map onto cgroup fields; -1 and 0 are none (runc's unset)", () => {
  const parsed = parseConfig(
    config((c) => {
      c.linux.cgroupsPath = "/x";
      c.linux.resources = {
        memory: { limit: 1048576, swap: 0, reservation: 4096 },
        pids: { limit: 0 },
        cpu: { quota: 50000, period: 100000, shares: 512, cpus: "0", mems: "" },
        devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3 }],
      };
    }),
    "/b",
    host,
  );
  const devices = parsed.resources!.devices;
  // the container's devices (/dev/null …) stay usable after its own rules, as runc allows them
  assertEquals(devices[2], { allow: true, type: "c", major: 1, minor: 3, access: "rwm" });
  assertEquals({ ...parsed.resources, devices: devices.slice(0, 2) }, {
    memoryLimit: 1048576,
    memoryReservation: 4096,
    cpuQuota: 50000,
    cpuPeriod: 100000,
    cpuShares: 512,
    cpus: "0",
    devices: [
      { allow: false, type: "a", major: "*", minor: "*", access: "rwm" },
      { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
    ],
  });
});

Deno.test("empty containment fields are not refusals", () => {
  const parsed = parseConfig(
    config((c) => {
      c.process.rlimits = [];
      c.linux.maskedPaths = [];
      c.linux.resources = {};
      c.process.noNewPrivileges = true;
    }),
    "/b",
    host,
  );
  assertEquals(parsed.spec.noNewPrivs, true);
});

Deno.test("namespaces, maps, hostname, hooks and the rest map onto the launch", () => {
  const parsed = parseConfig(
    config((c) => {
      c.root = { path: "/abs/root", readonly: true };
      c.hostname = "box";
      c.domainname = "lan";
      c.linux.namespaces.push(
        { type: "uts" },
        { type: "network", path: "/run/netns/x" },
        { type: "user" },
        { type: "time" },
        { type: "ipc" },
        { type: "cgroup" },
      );
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.timeOffsets = { boottime: { secs: 3600 } };
      c.linux.sysctl = { "net.ipv4.ip_forward": "1" };
      c.linux.rootfsPropagation = "rslave";
      c.linux.cgroupsPath = "/invoke_ns/x";
      c.linux.personality = { domain: "LINUX32" };
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 6], umask: 0o22 };
      c.process.oomScoreAdj = 100;
      c.hooks = {
        prestart: [{ path: "/p" }],
        createRuntime: [{ path: "/r", args: ["r", "1"], timeout: 5 }],
        createContainer: [{ path: "/c" }],
        startContainer: [{ path: "/s" }],
        poststart: [{ path: "/ps" }],
        poststop: [{ path: "/pt", env: ["A=1"] }],
      };
      c.annotations = { a: "b" };
    }),
    "/b",
    host,
  );
  const spec = parsed.spec;
  assertEquals(spec.jail, "/abs/root");
  assertEquals(spec.hostname, "box");
  assertEquals(spec.ipc, true);
  assertEquals(spec.cgroup, true);
  assertEquals(spec.net, undefined);
  assertEquals(spec.time, { boottime: 3600 });
  assertEquals(spec.idRanges, {
    users: [{ inside: 0, outside: 100000, count: 65536 }],
    groups: [{ inside: 0, outside: 100000, count: 65536 }],
  });
  assertEquals(spec.container?.joins, [{ spec: "network", type: "net", path: "/run/netns/x" }]);
  assertEquals(spec.container?.namespaces, ["uts"]);
  assertEquals(spec.container?.domainname, "lan");
  assertEquals(spec.container?.readonlyRoot, true);
  assertEquals(spec.container?.rootfsPropagation, 0x80000 | 0x4000);
  assertEquals(spec.container?.sysctl, { "net.ipv4.ip_forward": "1" });
  assertEquals(spec.container?.personality, 8);
  assertEquals(spec.container?.oomScoreAdj, 100);
  assertEquals(spec.container?.user, { uid: 1000, gid: 1000, additionalGids: [5, 6], umask: 0o22 });
  assertEquals(spec.hooks?.createRuntime?.map((h) => h.path), ["/p", "/r"]);
  assertEquals(spec.hooks?.createContainer?.map((h) => h.path), ["/c"]);
  assertEquals(spec.hooks?.startContainer?.map((h) => h.path), ["/s"]);
  assertEquals(parsed.poststart.map((h) => h.path), ["/ps"]);
  assertEquals(parsed.poststop, [{ path: "/pt", env: ["A=1"] }]);
  assertEquals(parsed.cgroupsPath, "/invoke_ns/x");
  assertEquals(parsed.annotations, { a: "b" });
});

/** Mount options: [options, the parsed mount]. */
const MOUNTS: [Record<string, unknown>, Record<string, unknown>][] = [
  [
    { destination: "/proc", type: "proc", source: "proc" },
    {
      destination: "/proc",
      kind: "fs",
      type: "proc",
      source: "proc",
      flags: 0,
      propagation: [],
      data: [],
    },
  ],
  [
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev",
      kind: "fs",
      type: "tmpfs",
      source: "tmpfs",
      flags: 0x2 | 0x1000000,
      propagation: [],
      data: ["mode=755", "size=65536k"],
    },
  ],
  [
    { destination: "etc/x", type: "bind", source: "/etc", options: ["rbind", "ro", "rprivate"] },
    {
      destination: "/etc/x",
      kind: "bind",
      source: "/etc",
      recursive: true,
      flags: 1,
      propagation: [0x40000 | 0x4000],
    },
  ],
  [
    { destination: "/x", type: "none", source: "/x", options: ["bind", "ro", "rw", "noexec"] },
    { destination: "/x", kind: "bind", source: "/x", recursive: false, flags: 8, propagation: [] },
  ],
];

for (const [given, parsed] of MOUNTS) {
  Deno.test(`mount ${JSON.stringify(given)}`, () => {
    const result = parseConfig(config((c) => (c.mounts = [given])), "/b", host);
    assertEquals(result.spec.container?.mounts, [parsed]);
  });
}

Deno.test("a bind's flags become mount_setattr attributes, the atime mode cleared first", () => {
  assertEquals(bindAttributes(0), { set: 0n, clear: 0n });
  assertEquals(bindAttributes(0x1 | 0x2 | 0x4 | 0x8), {
    set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC,
    clear: 0n,
  });
  assertEquals(bindAttributes(0x400), {
    set: MOUNT_ATTR_ATIME.NOATIME,
    clear: MOUNT_ATTR_ATIME.MASK,
  });
  assertEquals(bindAttributes(0x200000), { set: 0n, clear: MOUNT_ATTR_ATIME.MASK });
});

Deno.test("a device overrides the default of its path", () => {
  const parsed = parseConfig(
    config((
      c,
    ) => (c.linux.devices = [{
      type: "c",
      path: "/dev/null",
      major: 1,
      minor: 3,
      fileMode: 0o600,
    }])),
    "/b",
    host,
  );
  const nulls = parsed.spec.container!.devices.filter((d) => d.path === "/dev/null");
  assertEquals(nulls.length, 1);
  assertEquals(nulls[0].fileMode, 0o600);
});
