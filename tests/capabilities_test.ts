/**
 * Capabilities and resource limits: the tables, name parsing, the five sets
 * computed for root and for another user (lib/capabilities.ts), `--rlimit`
 * parsing (lib/rlimits.ts); then the sets and limits applied for real in a
 * clone child (ffi/contain.ts) and read back after exec from
 * `/proc/self/status` and the shell's `ulimit`.
 */
import assert from "node:assert/strict";
import { cloneChild } from "../ffi/clone.ts";
import {
  boundingCapabilities,
  dropBoundingCapabilities,
  getCapabilities,
  getRlimit,
  prlimit,
  setAmbientCapabilities,
  setCapabilities,
  setKeepCapabilities,
  setRlimit,
} from "../ffi/contain.ts";
import { SyscallError } from "../ffi/errors.ts";
import { becomeUser, getpid, waitForExit } from "../ffi/libc.ts";
import {
  ALL_CAPABILITIES,
  CAP_LAST_CAP,
  CAPABILITIES,
  CapabilityError,
  capabilityMask,
  capabilityNames,
  capabilityNumber,
  type CapabilityRequest,
  type CapabilitySets,
  capabilitySets,
  CONTAIN_CAPABILITIES,
  formatCapabilityMask,
  parseCapabilityMask,
  requestedCapabilities,
} from "../lib/capabilities.ts";
import { formatLimit, parseRlimit, RLIM_INFINITY, RlimitError, RLIMITS } from "../lib/rlimits.ts";
import { privilegedTest } from "./helpers.ts";

const bit = (name: string) => 1n << BigInt(CAPABILITIES[name]);

Deno.test("capabilities: the table runs from CAP_CHOWN 0 to CAP_CHECKPOINT_RESTORE 40, no gaps", () => {
  const numbers = Object.values(CAPABILITIES).sort((a, b) => a - b);
  assert.deepEqual(numbers, Array.from({ length: CAP_LAST_CAP + 1 }, (_, i) => i));
  assert.equal(CAPABILITIES.CAP_CHOWN, 0);
  assert.equal(CAPABILITIES.CAP_SYS_ADMIN, 21);
  assert.equal(CAPABILITIES.CAP_MKNOD, 27);
  assert.equal(CAPABILITIES.CAP_CHECKPOINT_RESTORE, 40);
  assert.equal(formatCapabilityMask(ALL_CAPABILITIES), "000001ffffffffff");
});

Deno.test("capabilities: names as CAP_NET_ADMIN or net_admin, any case; unknown ones listed", () => {
  const cases: [string, number][] = [
    ["CAP_NET_ADMIN", 12],
    ["net_admin", 12],
    ["Net_Admin", 12],
    ["cap_sys_admin", 21],
    [" SYS_CHROOT ", 18],
  ];
  for (const [name, number] of cases) assert.equal(capabilityNumber(name), number, name);
  for (const bad of ["NET_ADMINX", "CAP_", "", "ALL", "toString", "__proto__", "CAP_CONSTRUCTOR"]) {
    assert.throws(() => capabilityNumber(bad), (error: unknown) => {
      assert.ok(error instanceof CapabilityError, bad);
      assert.match(
        error.message,
        new RegExp(
          `^unknown capability '${
            bad.replace(/[_$]/g, "\\$&")
          }' \\(valid: ALL, CHOWN, DAC_OVERRIDE, `,
        ),
      );
      assert.match(error.message, /CHECKPOINT_RESTORE, with or without CAP_, any case\)$/);
      return true;
    });
  }
  assert.equal(capabilityMask(["all"]), ALL_CAPABILITIES);
  assert.equal(capabilityMask(["chown", "CAP_KILL"]), 0b100001n);
  assert.equal(capabilityMask([]), 0n);
});

Deno.test("capabilities: --contain's set is docker's default less MKNOD", () => {
  const docker = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
  ];
  assert.equal(capabilityMask(CONTAIN_CAPABILITIES), capabilityMask(docker) & ~bit("CAP_MKNOD"));
  assert.equal(formatCapabilityMask(capabilityMask(CONTAIN_CAPABILITIES)), "00000000a00425fb");
});

Deno.test("capabilities: the five sets for root and for another user", () => {
  const contain = capabilityMask(CONTAIN_CAPABILITIES);
  const cases: [string, CapabilityRequest, number, CapabilitySets][] = [
    ["root, nothing asked: everything", {}, 0, {
      bounding: ALL_CAPABILITIES,
      permitted: ALL_CAPABILITIES,
      effective: ALL_CAPABILITIES,
      inheritable: 0n,
      ambient: 0n,
    }],
    ["root, --cap-drop ALL", { drop: ["ALL"] }, 0, {
      bounding: 0n,
      permitted: 0n,
      effective: 0n,
      inheritable: 0n,
      ambient: 0n,
    }],
    ["root, --cap-drop ALL --cap-add NET_ADMIN", { drop: ["ALL"], add: ["net_admin"] }, 0, {
      bounding: bit("CAP_NET_ADMIN"),
      permitted: bit("CAP_NET_ADMIN"),
      effective: bit("CAP_NET_ADMIN"),
      inheritable: 0n,
      ambient: 0n,
    }],
    ["root, --contain --cap-drop KILL", { base: contain, drop: ["KILL"] }, 0, {
      bounding: contain & ~bit("CAP_KILL"),
      permitted: contain & ~bit("CAP_KILL"),
      effective: contain & ~bit("CAP_KILL"),
      inheritable: 0n,
      ambient: 0n,
    }],
    ["uid 1000, nothing added: no capability, the bounding set as asked", { base: contain }, 1000, {
      bounding: contain,
      permitted: 0n,
      effective: 0n,
      inheritable: 0n,
      ambient: 0n,
    }],
    ["uid 1000 --cap-add NET_BIND_SERVICE: ambient", { add: ["NET_BIND_SERVICE"] }, 1000, {
      bounding: ALL_CAPABILITIES,
      permitted: bit("CAP_NET_BIND_SERVICE"),
      effective: bit("CAP_NET_BIND_SERVICE"),
      inheritable: bit("CAP_NET_BIND_SERVICE"),
      ambient: bit("CAP_NET_BIND_SERVICE"),
    }],
    ["an add wins over a drop of the same name", { drop: ["ALL"], add: ["KILL"] }, 1000, {
      bounding: bit("CAP_KILL"),
      permitted: bit("CAP_KILL"),
      effective: bit("CAP_KILL"),
      inheritable: bit("CAP_KILL"),
      ambient: bit("CAP_KILL"),
    }],
  ];
  for (const [name, request, uid, sets] of cases) {
    assert.deepEqual(capabilitySets(request, uid), sets, name);
  }
  assert.equal(requestedCapabilities({ drop: ["all"], add: ["chown"] }), 1n);
});

Deno.test("capabilities: masks printed as /proc/self/status and as names, and read back", () => {
  const cases: [bigint, string, string[]][] = [
    [0n, "0000000000000000", []],
    [
      0x1fffeffffffn,
      "000001fffeffffff",
      Object.keys(CAPABILITIES).filter((n) => n !== "CAP_SYS_RESOURCE"),
    ],
    [0b101n, "0000000000000005", ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"]],
    [1n << 45n | 1n, "0000200000000001", ["CAP_CHOWN", "cap_45"]],
  ];
  for (const [mask, hex, names] of cases) {
    assert.equal(formatCapabilityMask(mask), hex);
    assert.deepEqual(capabilityNames(mask), names);
    assert.equal(parseCapabilityMask(hex), mask);
  }
  assert.throws(() => parseCapabilityMask("xyz"), /not a capability mask: 'xyz'/);
});

Deno.test("rlimits: prlimit(1)'s names and the RLIMIT_* numbers", () => {
  const expected = {
    cpu: 0,
    fsize: 1,
    data: 2,
    stack: 3,
    core: 4,
    rss: 5,
    nproc: 6,
    nofile: 7,
    memlock: 8,
    as: 9,
    locks: 10,
    sigpending: 11,
    msgqueue: 12,
    nice: 13,
    rtprio: 14,
    rttime: 15,
  };
  assert.deepEqual({ ...RLIMITS }, expected);
});

Deno.test("rlimits: NAME=SOFT[:HARD] parsed, bad values refused in one line", () => {
  const good: [string, string, bigint, bigint][] = [
    ["nofile=64", "nofile", 64n, 64n],
    ["NOFILE=1024:4096", "nofile", 1024n, 4096n],
    ["core=0:unlimited", "core", 0n, RLIM_INFINITY],
    ["as=unlimited", "as", RLIM_INFINITY, RLIM_INFINITY],
    ["stack=8388608:infinity", "stack", 8388608n, RLIM_INFINITY],
  ];
  for (const [text, name, soft, hard] of good) {
    assert.deepEqual(parseRlimit(text), { name, resource: RLIMITS[name], soft, hard }, text);
  }
  const bad: [string, string][] = [
    ["nofile", "--rlimit 'nofile': expected NAME=SOFT[:HARD]"],
    ["nofile=", "--rlimit 'nofile=': expected NAME=SOFT[:HARD]"],
    ["nofile=1:2:3", "--rlimit 'nofile=1:2:3': expected NAME=SOFT[:HARD]"],
    [
      "files=10",
      "--rlimit 'files=10': unknown limit 'files' (valid: cpu, fsize, data, stack, core, rss, " +
      "nproc, nofile, memlock, as, locks, sigpending, msgqueue, nice, rtprio, rttime)",
    ],
    ["nofile=-1", "--rlimit 'nofile=-1': '-1' is not a number or 'unlimited'"],
    ["nofile=1k", "--rlimit 'nofile=1k': '1k' is not a number or 'unlimited'"],
    ["nofile=20:10", "--rlimit 'nofile=20:10': the soft limit is above the hard limit"],
    [
      "nofile=unlimited:10",
      "--rlimit 'nofile=unlimited:10': the soft limit is above the hard limit",
    ],
    [
      "nofile=18446744073709551615",
      "--rlimit 'nofile=18446744073709551615': 18446744073709551615 is too large",
    ],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseRlimit(text), (error: unknown) => {
      assert.ok(error instanceof RlimitError, text);
      assert.equal(error.message, message);
      return true;
    });
  }
  assert.equal(formatLimit(RLIM_INFINITY), "unlimited");
  assert.equal(formatLimit(64n), "64");
});

// ---------------------------------------------------------------------------------------------
// For real: a clone child installs the sets (and limits) and execs a shell that reports them.

const USER = 1000;

/** Runs `script` with /bin/sh in a clone child after `setup`; returns what it wrote to $OUT. */
async function inChild(setup: () => void, script: string): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "invoke_ns_caps_" });
  try {
    Deno.chmodSync(dir, 0o777); // the command may run as another user
    const out = `${dir}/out`;
    const outcome = cloneChild({
      namespaces: 0,
      setup,
      exec: {
        command: "/bin/sh",
        argv: ["/bin/sh", "-c", script],
        env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", `OUT=${out}`],
      },
    });
    assert.equal(outcome.failure, undefined, outcome.failure?.message);
    assert.deepEqual(await waitForExit(outcome.pid), { exited: true, code: 0 });
    return Deno.readTextFileSync(out);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Installs `sets` in the order ffi/contain.ts documents, becoming `uid` on the way when not 0. */
function install(sets: CapabilitySets, uid: number): () => void {
  return () => {
    if (uid !== 0) setKeepCapabilities(true);
    dropBoundingCapabilities(sets.bounding);
    if (uid !== 0) becomeUser(uid, uid);
    setCapabilities(sets);
    setAmbientCapabilities(sets.ambient);
  };
}

function statusCaps(text: string): Record<string, string> {
  return Object.fromEntries(
    text.trim().split("\n").map((line) => line.split(":\t") as [string, string]),
  );
}

privilegedTest(
  "capabilities (kernel): the computed sets are what the command has after exec",
  async () => {
    const host = boundingCapabilities();
    const contain = capabilityMask(CONTAIN_CAPABILITIES);
    const cases: [string, CapabilityRequest, number][] = [
      ["root --cap-drop ALL", { drop: ["ALL"] }, 0],
      ["root --cap-drop ALL --cap-add NET_ADMIN", { drop: ["ALL"], add: ["NET_ADMIN"] }, 0],
      ["root, --contain's set", { base: contain }, 0],
      ["uid 1000", { base: contain }, USER],
      ["uid 1000 --cap-add NET_BIND_SERVICE", { base: contain, add: ["NET_BIND_SERVICE"] }, USER],
      ["uid 1000 --cap-add NET_ADMIN,SYS_PTRACE", { add: ["NET_ADMIN", "SYS_PTRACE"] }, USER],
    ];
    for (const [name, request, uid] of cases) {
      // The host's bounding set limits every request (this machine has no CAP_SYS_RESOURCE).
      const sets = capabilitySets(
        { ...request, base: (request.base ?? ALL_CAPABILITIES) & host },
        uid,
      );
      const text = await inChild(
        install(sets, uid),
        'exec grep Cap /proc/self/status > "$OUT"',
      );
      assert.deepEqual(statusCaps(text), {
        CapInh: formatCapabilityMask(sets.inheritable),
        CapPrm: formatCapabilityMask(sets.permitted),
        CapEff: formatCapabilityMask(sets.effective),
        CapBnd: formatCapabilityMask(sets.bounding),
        CapAmb: formatCapabilityMask(sets.ambient),
      }, name);
    }
  },
);

privilegedTest(
  "capabilities (kernel): what a dropped capability stops, and capget's view",
  async () => {
    // Without CAP_SYS_CHROOT a root shell cannot chroot; with only it, it can.
    const only = (names: string[]) => capabilitySets({ drop: ["ALL"], add: names }, 0);
    const script = 'chroot / /bin/true 2> /dev/null && echo yes > "$OUT" || echo no > "$OUT"';
    assert.equal(await inChild(install(only(["KILL"]), 0), script), "no\n");
    assert.equal(await inChild(install(only(["SYS_CHROOT"]), 0), script), "yes\n");
    let seen: ReturnType<typeof getCapabilities> | undefined;
    await inChild(() => {
      install(only(["KILL", "CHOWN"]), 0)();
      seen = getCapabilities();
    }, 'echo > "$OUT"');
    const mask = capabilityMask(["KILL", "CHOWN"]);
    assert.deepEqual(seen, { effective: mask, permitted: mask, inheritable: 0n });
    assert.equal(getCapabilities(getpid()).permitted & bit("CAP_SYS_ADMIN"), bit("CAP_SYS_ADMIN"));
  },
);

privilegedTest("capabilities (kernel): a failed step names its call", async () => {
  // An ambient capability must be permitted and inheritable: raising one that is not fails.
  const outcome = cloneChild({
    namespaces: 0,
    setup: () => {
      setCapabilities({ effective: 1n, permitted: 1n, inheritable: 0n });
      setAmbientCapabilities(1n);
    },
    exec: { command: "/bin/true", argv: ["/bin/true"], env: [] },
  });
  assert.ok(outcome.failure);
  const cause = outcome.failure.cause as SyscallError;
  assert.ok(cause instanceof SyscallError, String(cause));
  assert.equal(cause.call, "prctl(PR_CAP_AMBIENT_RAISE)");
  assert.equal(cause.code, "EPERM");
  assert.match(cause.message, /^prctl\(PR_CAP_AMBIENT_RAISE\): capability 0 \(EPERM: /);
  // the child ends without exec (its status is the engine's own; the failure is the report)
  assert.deepEqual(await waitForExit(outcome.pid), { exited: true, code: 1 });
});

privilegedTest(
  "rlimits (kernel): set in the child, seen by the command; raising the hard limit fails",
  async () => {
    const nofile = parseRlimit("nofile=64");
    const core = parseRlimit("core=0:unlimited");
    const text = await inChild(() => {
      setRlimit(nofile.resource, nofile);
      setRlimit(core.resource, { soft: core.soft, hard: getRlimit(core.resource).hard });
    }, 'echo "$(ulimit -n) $(ulimit -Hn) $(ulimit -c)" > "$OUT"');
    assert.equal(text, "64 64 0\n");
    // Without CAP_SYS_RESOURCE, a hard limit cannot go back up.
    let failure: unknown;
    await inChild(() => {
      setCapabilities({ effective: 0n, permitted: 0n, inheritable: 0n });
      setRlimit(nofile.resource, nofile);
      try {
        setRlimit(nofile.resource, { soft: 64n, hard: 128n });
      } catch (error) {
        failure = error;
      }
    }, 'echo > "$OUT"');
    assert.ok(failure instanceof SyscallError, String(failure));
    assert.equal(failure.call, "prlimit64");
    assert.equal(failure.code, "EPERM");
    assert.match(failure.message, /^prlimit64: resource 7 \(EPERM: /);
    // prlimit reads another process's limits: this one's, unchanged by the children.
    assert.deepEqual(prlimit(getpid(), nofile.resource), getRlimit(nofile.resource));
  },
);
