/**
 * Containment through the CLI, as attacks: the capability sets the command
 * really has (/proc/self/status), seccomp filters loaded by a launch (a C
 * probe making one system call per case), podman's profile, and under
 * `--contain` as root each escape a root inside would try — core_pattern,
 * mount, /proc/timer_list, /proc/N/root, mknod of the host's disk, the
 * chroot escape, the seccomp bypasses — each next to a control run without
 * the option that shows the attack works there. rlimits, refusals, and
 * `--pty` through a real terminal (tmux).
 */
import assert from "node:assert/strict";

import { CAPABILITIES, formatCapabilityMask } from "../lib/capabilities.ts";
import { I386, X86_64 } from "../lib/syscalls.ts";
import {
  buildTestJail,
  cliCommand,
  isRoot,
  mountTable,
  NOBODY,
  privilegedTest,
  runCli,
  withTempDir,
} from "./helpers.ts";

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
const buildDir = Deno.makeTempDirSync({ prefix: "invoke_ns_contain_" });
Deno.chmodSync(buildDir, 0o755);
globalThis.addEventListener("unload", () => Deno.removeSync(buildDir, { recursive: true }));

/** Builds the probe (static: it also runs inside jails); the reason it could not, or null. */
function buildProbe(): string | null {
  try {
    const out = new Deno.Command("gcc", {
      args: ["-static", "-O1", "-o", `${buildDir}/probe`, `${fixtures}/seccomp_probe.c`],
      stderr: "piped",
    }).outputSync();
    return out.success ? null : `gcc -static: ${new TextDecoder().decode(out.stderr)}`;
  } catch (error) {
    return `gcc is not installed (${(error as Error).message})`;
  }
}
const probeMissing = buildProbe();
const PROBE = `${buildDir}/probe`;
if (probeMissing) console.log(`skipping the probe tests: ${probeMissing.split("\n")[0]}`);

const PODMAN = "/usr/share/containers/seccomp.json";
const podmanMissing = (() => {
  try {
    Deno.statSync(PODMAN);
    return null;
  } catch {
    return `${PODMAN} is missing (Debian: apt install golang-github-containers-common)`;
  }
})();

const bit = (name: string) => 1n << BigInt(CAPABILITIES[`CAP_${name}`]);
const hostBounding = BigInt(
  `0x${/CapBnd:\s*([0-9a-f]+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]}`,
);
/** docker's default set less MKNOD, as /proc/self/status shows it. */
const CONTAIN_MASK = 0xa00425fbn;

function caps(text: string): Record<string, string> {
  return Object.fromEntries(
    [...text.matchAll(/^(Cap\w+):\s*([0-9a-f]+)$/gm)].map((m) => [m[1], m[2]]),
  );
}

function sets(
  bounding: bigint,
  effective: bigint,
  ambient = 0n,
): Record<string, string> {
  const f = formatCapabilityMask;
  return {
    CapInh: f(ambient),
    CapPrm: f(effective),
    CapEff: f(effective),
    CapBnd: f(bounding),
    CapAmb: f(ambient),
  };
}

const STATUS = ["sh", "-c", "id -u; grep Cap /proc/self/status"];

privilegedTest("contain: the capability sets after exec, as root", async () => {
  const h = hostBounding;
  const cases: [string, string[], string, Record<string, string>][] = [
    ["--cap-drop ALL", ["--cap-drop", "ALL"], "0", sets(0n, 0n)],
    [
      "--cap-drop ALL --cap-add NET_ADMIN",
      ["--cap-drop", "ALL", "--cap-add", "net_admin"],
      "0",
      sets(bit("NET_ADMIN"), bit("NET_ADMIN")),
    ],
    [
      "--cap-drop SYS_ADMIN",
      ["--cap-drop", "CAP_SYS_ADMIN"],
      "0",
      sets(h & ~bit("SYS_ADMIN"), h & ~bit("SYS_ADMIN")),
    ],
    ["--uid 1000", ["--uid", "1000"], "1000", sets(h, 0n)],
    [
      "--uid 1000 --cap-add NET_BIND_SERVICE",
      ["--uid", "1000", "--cap-add", "NET_BIND_SERVICE"],
      "1000",
      sets(h, bit("NET_BIND_SERVICE"), bit("NET_BIND_SERVICE")),
    ],
    ["--contain", ["--contain"], "0", sets(CONTAIN_MASK & h, CONTAIN_MASK & h)],
    [
      "--contain --cap-add NET_ADMIN",
      ["--contain", "--cap-add", "NET_ADMIN"],
      "0",
      sets((CONTAIN_MASK | bit("NET_ADMIN")) & h, (CONTAIN_MASK | bit("NET_ADMIN")) & h),
    ],
  ];
  for (const [what, args, uid, expected] of cases) {
    const ran = await runCli([...args, "--", ...STATUS]);
    assert.equal(ran.code, 0, `${what}: ${ran.stderr}`);
    assert.equal(ran.stdout.split("\n")[0], uid, what);
    assert.deepEqual(caps(ran.stdout), expected, what);
  }
  // the control: without the options, root keeps everything (the lab's behaviour)
  const plain = await runCli(STATUS);
  assert.deepEqual(caps(plain.stdout), sets(h, h));
});

Deno.test({
  name: "contain: the capability sets after exec, rootless (in the user namespace)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const asUser = isRoot ? NOBODY : undefined;
    const h = hostBounding;
    const cases: [string[], Record<string, string>][] = [
      [["--cap-drop", "ALL"], sets(0n, 0n)],
      [["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"], sets(bit("NET_ADMIN"), bit("NET_ADMIN"))],
      [["--contain"], sets(CONTAIN_MASK & h, CONTAIN_MASK & h)],
    ];
    for (const [args, expected] of cases) {
      const ran = await runCli([...args, "--", ...STATUS], { asUser });
      assert.equal(ran.code, 0, `${args.join(" ")}: ${ran.stderr}`);
      assert.equal(ran.stdout.split("\n")[0], "0", "root inside");
      assert.deepEqual(caps(ran.stdout), expected, args.join(" "));
    }
    // the one ID mapped is 0: another needs ranges, said in one line
    const other = await runCli(["--uid", "1000", "true"], { asUser });
    assert.equal(other.code, 2);
    assert.match(
      other.stderr,
      /^invoke_ns: uid 1000 is not mapped in the user namespace: .*--map-users.*\n$/,
    );
  },
});

privilegedTest("contain: -v says which capabilities the command gets", async () => {
  const ran = await runCli(["-v", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "true"]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /^ Child: the command gets capabilities: CAP_NET_ADMIN$/m);
  const none = await runCli(["-v", "--cap-drop", "ALL", "true"]);
  assert.match(none.stdout, /^ Child: the command gets capabilities: none$/m);
  const contain = await runCli(["-v", "--contain", "true"]);
  assert.match(contain.stdout, /--contain without a jail: the host's files are still there/);
});

Deno.test("contain: bad input is one line with the documented status", async () => {
  const cases: [string[], number, RegExp][] = [
    [
      ["--cap-add", "FOO", "true"],
      2,
      /^invoke_ns: unknown capability 'FOO' \(valid: ALL, CHOWN, .*NET_ADMIN.*\)\n$/,
    ],
    [["--cap-drop", "net_admin,bogus", "true"], 2, /unknown capability 'bogus'/],
    [
      ["--contain", "--chroot", "-c", "/", "true"],
      2,
      /^invoke_ns: --contain jails by pivot_root only/,
    ],
    [
      ["--rlimit", "nofile", "true"],
      2,
      /^invoke_ns: --rlimit 'nofile': expected NAME=SOFT\[:HARD\]/,
    ],
    [["--rlimit", "files=1", "true"], 2, /unknown limit 'files' \(valid: cpu, fsize/],
    [
      ["--seccomp", "/nonexistent.json", "true"],
      125,
      /^invoke_ns: seccomp: cannot read the profile "\/nonexistent.json": no such file\n$/,
    ],
    [["--mask", "relative", "-m", "true"], 2, /--mask relative: must be an absolute path/],
    [["--mask", "/etc", "true"], 2, /--mask and --remount-ro need -m/],
    [["--uid", "x", "true"], 2, /--uid: not a valid number/],
  ];
  for (const [args, code, message] of cases) {
    const ran = await runCli(args, { asUser: isRoot ? NOBODY : undefined });
    assert.equal(ran.code, code, `${args.join(" ")}: ${ran.stderr}`);
    assert.match(ran.stderr, message, args.join(" "));
    assert.equal(ran.stderr.split("\n").length, 2, `one line: ${ran.stderr}`);
  }
  await withTempDir(async (dir) => {
    const file = `${dir}/bad.json`;
    Deno.writeTextFileSync(file, '{"defaultAction": "SCMP_ACT_NOPE"}');
    Deno.chmodSync(dir, 0o755);
    Deno.chmodSync(file, 0o644);
    const ran = await runCli(["--seccomp", file, "true"]);
    assert.equal(ran.code, 125);
    assert.match(ran.stderr, /^invoke_ns: seccomp: profile: defaultAction: .*\n$/);
  });
});

Deno.test("contain: rlimits: ulimit -n is --rlimit nofile=64; a hard limit cannot go up", async () => {
  for (const asUser of isRoot ? [undefined, NOBODY] : [undefined]) {
    const ran = await runCli(
      [
        "--rlimit",
        "nofile=64",
        "--rlimit",
        "core=0",
        "--",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -c",
      ],
      { asUser },
    );
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "64\n64\n0\n");
    const hard =
      Deno.readTextFileSync("/proc/self/limits").match(/Max open files\s+\d+\s+(\d+)/)![1];
    const raise = await runCli(["--rlimit", `nofile=64:${BigInt(hard) + 1n}`, "true"], { asUser });
    const lacks = !(ownCapabilities(asUser) & bit("SYS_RESOURCE"));
    if (lacks) {
      assert.equal(raise.code, 125, raise.stderr);
      assert.match(
        raise.stderr,
        /^invoke_ns: rlimit: nofile: raising the hard limit from \d+ to \d+ needs CAP_SYS_RESOURCE, which this process does not have\n$/,
      );
    } else {
      assert.equal(raise.code, 0, raise.stderr);
    }
  }
});

/** The effective capabilities of a process run as `asUser` (this one's without). */
function ownCapabilities(asUser?: number): bigint {
  if (asUser === undefined) {
    return BigInt(
      `0x${/CapEff:\s*([0-9a-f]+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]}`,
    );
  }
  return 0n;
}

privilegedTest(
  "contain: --rlimit nproc as root says it does not bind uid 0, and points to --pids",
  async () => {
    const ran = await runCli(["--rlimit", "nproc=10", "true"]);
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /^invoke_ns: --rlimit nproc does not bind uid 0 .*--pids.*\n$/);
    // for another user it binds: the limit is there
    const user = await runCli([
      "--uid",
      "1000",
      "--rlimit",
      "nproc=10",
      "--",
      "grep",
      "processes",
      "/proc/self/limits",
    ]);
    assert.equal(user.code, 0, user.stderr);
    assert.match(user.stdout, /^Max processes\s+10\s+10\s+processes/);
  },
);

// ---------------------------------------------------------------------------------------------
// seccomp loaded by a launch

const nr = (name: string) => String(X86_64[name]);

Deno.test({
  name: "contain: --seccomp default: Seccomp: 2, denied calls EPERM, an argument-compared rule",
  ignore: probeMissing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const users = isRoot ? [undefined, NOBODY] : [undefined];
    const cases: [string, string[], number, number][] = [
      ["Seccomp: 2", ["status", "Seccomp"], 2, 0],
      ["keyctl: EPERM", ["syscall", nr("keyctl"), "0", "-3"], 1, 0],
      ["kexec_load: EPERM", ["syscall", nr("kexec_load")], 1, 1],
      [
        "personality(READ_IMPLIES_EXEC): EPERM (compared on argument 0)",
        [
          "syscall",
          nr("personality"),
          "0x400000",
        ],
        1,
        0,
      ],
      ["personality(PER_LINUX): allowed", ["syscall", nr("personality"), "0"], 0, 0],
      ["getpid: allowed", ["syscall", nr("getpid")], 0, 0],
    ];
    for (const asUser of users) {
      for (const [what, args, filtered, plain] of cases) {
        const under = await runCli(["--seccomp", "default", "--no-new-privs", PROBE, ...args], {
          asUser,
        });
        assert.equal(
          under.code,
          filtered,
          `${what} (uid ${asUser ?? Deno.uid()}): ${under.stderr}`,
        );
        // unfiltered, kexec_load is EPERM without privilege, else ENOSYS or EINVAL
        if (what !== "kexec_load: EPERM") {
          const control = await runCli([PROBE, ...args], { asUser });
          assert.equal(control.code, plain, `${what}, unfiltered`);
        }
      }
    }
  },
});

privilegedTest(
  "contain: without --no-new-privs the filter loads before the capabilities go and the user changes",
  async () => {
    const cases: [string[], string, number][] = [
      [["--seccomp", "default"], "Seccomp", 2],
      [["--seccomp", "default"], "NoNewPrivs", 0],
      [["--seccomp", "default", "--cap-drop", "ALL", "--uid", "1000"], "Seccomp", 2],
      [
        ["--seccomp", "default", "--no-new-privs", "--cap-drop", "ALL", "--uid", "1000"],
        "Seccomp",
        2,
      ],
    ];
    for (const [args, field, status] of cases) {
      const ran = await runCli([...args, PROBE, "status", field]);
      assert.equal(ran.code, status, `${args.join(" ")} ${field}: ${ran.stderr}`);
    }
    // the filter denies keyctl for uid 1000 too
    const keyctl = await runCli([
      "--seccomp",
      "default",
      "--uid",
      "1000",
      PROBE,
      "syscall",
      nr("keyctl"),
      "0",
      "-3",
    ]);
    assert.equal(keyctl.code, 1);
  },
  probeMissing,
);

Deno.test({
  name: "contain: podman's seccomp.json through --seccomp FILE: a shell works, its rules hold",
  ignore: probeMissing !== null || podmanMissing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const asUser = isRoot ? NOBODY : undefined;
    const shell = await runCli(
      [
        "--seccomp",
        PODMAN,
        "--no-new-privs",
        "--",
        "sh",
        "-c",
        "echo ok; ls / > /dev/null && echo done; grep Seccomp: /proc/self/status",
      ],
      { asUser },
    );
    assert.equal(shell.code, 0, shell.stderr);
    assert.equal(shell.stdout, "ok\ndone\nSeccomp:\t2\n");
    assert.match(shell.stderr, /^invoke_ns: warning: unknown system calls skipped: /);
    const cases: [string[], string[], number, number | undefined][] = [
      [[], ["syscall", nr("add_key")], 38, asUser], // podman's default: ENOSYS
      [[], ["syscall", nr("kexec_load")], 1, asUser],
      // podman allows every ioctl; --contain adds the TIOCSTI rule to any profile
      [["--contain"], ["tiocsti", "0x100005412"], 1, undefined],
      [["--contain"], ["tiocsti", "0x5401"], 0, undefined],
    ];
    // the control: podman's own rules let root type into a terminal
    if (isRoot) cases.push([[], ["tiocsti", "0x5412"], 0, undefined]);
    for (const [extra, args, status, user] of cases) {
      const ran = await runCli([...extra, "--seccomp", PODMAN, "--no-new-privs", PROBE, ...args], {
        asUser: user,
      });
      assert.equal(ran.code, status, `${extra.join(" ")} ${args.join(" ")}: ${ran.stderr}`);
    }
  },
});

// ---------------------------------------------------------------------------------------------
// --contain as root: the escapes

const ESCAPE_C = `
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  mkdir("escape-dir", 0755);
  if (chroot("escape-dir") != 0) { perror("chroot"); return 2; }
  for (int i = 0; i < 64; i++) chdir("..");
  chroot(".");
  FILE *f = fopen(argv[1], "r");
  if (!f) { puts("escape failed"); return 1; }
  char line[256];
  if (fgets(line, sizeof line, f)) printf("ESCAPED: %s", line);
  return 0;
}
`;

/** The host's first disk, as `MAJOR MINOR`, from /sys/dev/block. */
function hostDisk(): string | null {
  for (const entry of Deno.readDirSync("/sys/dev/block")) {
    const device = Deno.readLinkSync(`/sys/dev/block/${entry.name}`);
    if (!device.includes("/virtual/")) return entry.name.replace(":", " ");
  }
  return null;
}

privilegedTest(
  "contain: as root under --contain, every escape fails (and works without)",
  async () => {
    await withTempDir(async (dir) => {
      Deno.chmodSync(dir, 0o755);
      const jail = `${dir}/jail`;
      Deno.mkdirSync(jail);
      await buildTestJail(jail, [
        "/bin/sh",
        "/bin/cat",
        "/bin/mknod",
        "/bin/mount",
        "/usr/bin/head",
        "/bin/mkdir",
      ]);
      Deno.mkdirSync(`${jail}/mnt`);
      Deno.copyFileSync(PROBE, `${jail}/probe`);
      Deno.chmodSync(`${jail}/probe`, 0o755);
      Deno.writeTextFileSync(`${jail}/escape.c`, ESCAPE_C);
      const cc = new Deno.Command("gcc", {
        args: ["-static", "-O1", "-o", `${jail}/escape`, `${jail}/escape.c`],
      })
        .outputSync();
      assert.ok(cc.success, "gcc escape.c");
      const secret = `${dir}/secret`;
      Deno.writeTextFileSync(secret, "host secret\n");
      const corePattern = Deno.readTextFileSync("/proc/sys/kernel/core_pattern");
      const disk = hostDisk();
      const mountsBefore = mountTable();
      const sh = (script: string) => ["sh", "-c", script];
      const clean = () => {
        for (const name of ["mnt/v", "mnt/disk", "mnt/r"]) {
          try {
            Deno.removeSync(`${jail}/${name}`);
          } catch {
            // not made
          }
        }
      };
      // [what, the control's options (the attack works there, as root), the command, what shows it worked]
      type Attack = [string, string[], string[], (r: { code: number; stdout: string }) => boolean];
      const attacks: Attack[] = [
        [
          "write /proc/sys/kernel/core_pattern (writing back the host's own value)",
          ["-pm"],
          sh(
            "cat /proc/sys/kernel/core_pattern > /mnt/v && cat /mnt/v > /proc/sys/kernel/core_pattern && echo WROTE",
          ),
          (r) => r.stdout.includes("WROTE"),
        ],
        [
          "mount a tmpfs",
          ["-m"],
          sh("mount -t tmpfs none /mnt && echo MOUNTED"),
          (r) => r.stdout.includes("MOUNTED"),
        ],
        [
          "read /proc/timer_list",
          ["-pm"],
          sh("head -c 64 /proc/timer_list"),
          (r) => r.stdout.length > 0,
        ],
        [
          "mount -t proc and walk /proc/N/root of a host process (this test) to a host file",
          ["-m"],
          sh(`mkdir -p /p && mount -t proc proc /p && cat /p/${Deno.pid}/root${secret}`),
          (r) => r.stdout.includes("host secret"),
        ],
        [
          "the chroot escape",
          ["-m", "--chroot"],
          ["/escape", secret],
          (r) => r.stdout.includes("ESCAPED"),
        ],
        [
          "ioctl TIOCSTI with high bits set",
          ["-m"],
          ["/probe", "tiocsti", "0xffffffff00005412"],
          (r) => r.code === 0,
        ],
        ["clone3 (flags BPF cannot read)", ["-m"], ["/probe", "clone3"], (r) => r.code === 0],
        [
          "int 0x80 keyctl (the i386 table)",
          ["-m"],
          ["/probe", "int80", String(I386.keyctl), "0", "0xfffffffd"],
          (r) => r.code === 0,
        ],
        [
          "int 0x80 unshare(CLONE_NEWNS)",
          ["-m"],
          ["/probe", "int80", String(I386.unshare), "0x20000"],
          (r) => r.code === 0,
        ],
      ];
      if (disk) {
        attacks.push([
          `mknod of the host's disk (${disk})`,
          ["-m"],
          sh(
            `mount -t tmpfs none /mnt; mknod /mnt/disk b ${disk} && echo MADE`,
          ),
          // (reading it also needs the devices cgroup's leave, which this VM does not give)
          (r) => r.stdout.includes("MADE"),
        ]);
      } else {
        console.log("no block device in /sys/dev/block: the mknod attack is not tried");
      }
      for (const [what, controlArgs, command, worked] of attacks) {
        // the probe's pty needs the host's /dev: that attack runs without a jail
        const where = command[0] === "/probe" && command[1] === "tiocsti" ? [] : ["-c", jail];
        if (where.length === 0) command[0] = PROBE;
        const control = await runCli([...controlArgs, ...where, "--", ...command]);
        assert.ok(
          worked(control),
          `${what}: the control did not work: ${control.stdout} ${control.stderr}`,
        );
        clean();
        const contained = await runCli(["--contain", ...where, "--", ...command]);
        assert.ok(!worked(contained), `${what}: worked under --contain: ${contained.stdout}`);
        clean();
      }
      assert.equal(Deno.readTextFileSync("/proc/sys/kernel/core_pattern"), corePattern);
      assert.deepEqual(mountTable(), mountsBefore);
      // what still works under --contain: a shell, reading its own /proc
      const works = await runCli([
        "--contain",
        "-c",
        jail,
        "--",
        ...sh("cat /proc/self/status | head -c 5; echo"),
      ]);
      assert.equal(works.stdout, "Name:\n");
    });
  },
  probeMissing,
);

privilegedTest("contain: --mask and --remount-ro, explicit paths", async () => {
  await withTempDir(async (dir) => {
    Deno.chmodSync(dir, 0o755);
    Deno.mkdirSync(`${dir}/d`);
    Deno.writeTextFileSync(`${dir}/d/file`, "inside\n");
    Deno.writeTextFileSync(`${dir}/f`, "secret\n");
    Deno.mkdirSync(`${dir}/rw`);
    const script =
      `cat ${dir}/f; ls -A ${dir}/d; touch ${dir}/d/x 2>/dev/null || echo no-write-d; ` +
      `touch ${dir}/rw/x 2>/dev/null || echo no-write-rw`;
    const ran = await runCli([
      "-m",
      "--mask",
      `${dir}/f`,
      "--mask",
      `${dir}/d`,
      "--remount-ro",
      `${dir}/rw`,
      "--",
      "sh",
      "-c",
      script,
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "no-write-d\nno-write-rw\n");
    const missing = await runCli(["-m", "--mask", `${dir}/nothing`, "true"]);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /^invoke_ns: masks: mount: .*nothing \(ENOENT/);
    assert.equal(Deno.readTextFileSync(`${dir}/f`), "secret\n");
  });
});

// ---------------------------------------------------------------------------------------------
// --pty through a real terminal

async function tmuxMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .output();
    return out.success ? null : "tmux -V failed";
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "tmux is not installed" : String(error);
  }
}

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

privilegedTest(
  "contain: --pty gives the command its own terminal, sized and resized as the caller's; TIOCSTI stays in it",
  async () => {
    await withTempDir(async (dir) => {
      const socket = `invoke_ns_pty_${Deno.pid}`;
      const decoder = new TextDecoder();
      const tmux = async (...args: string[]) => {
        const out = await new Deno.Command("tmux", {
          args: ["-L", socket, "-f", "/dev/null", ...args],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(10_000),
        }).output();
        return { ok: out.success, text: decoder.decode(out.stdout) };
      };
      const until = async (what: string, test: () => boolean | Promise<boolean>) => {
        for (let i = 0; i < 200; i++) {
          if (await test()) return;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.fail(
          `timed out waiting for ${what}: ${(await tmux("capture-pane", "-p", "-t", "box")).text}`,
        );
      };
      const out = `${dir}/out`;
      const screen = async () => (await tmux("capture-pane", "-p", "-t", "box")).text;
      try {
        assert.ok((await tmux("new-session", "-d", "-s", "box", "-x", "100", "-y", "30", "sh")).ok);
        const run = async (args: string[], inner: string) => {
          const line = [...cliCommand(), ...args, "--", "sh", "-c", inner].map(quote).join(" ");
          await tmux("send-keys", "-t", "box", `clear; ${line}; echo "exit=$?" >> ${out}`, "Enter");
        };
        // the attack on the caller's terminal works without --pty: the control
        await run([], `${PROBE} tty 0x5412; echo "plain=$?" >> ${out}`);
        await until("the plain probe", () => readOr(out).includes("exit="));
        assert.match(readOr(out), /^plain=0$/m);
        Deno.removeSync(out);
        await tmux("send-keys", "-t", "box", "C-u"); // the x the control typed into the shell
        await run(
          ["--contain"],
          `stty size >> ${out}; tty >> ${out}; ${PROBE} tty 0x5412; echo "tiocsti=$?" >> ${out}; ` +
            `${PROBE} tty 0xffffffff00005412; echo "high=$?" >> ${out}; read line; echo "read=$line" >> ${out}; stty size >> ${out}`,
        );
        await until("the first size", () => readOr(out).includes("high="));
        await tmux("resize-window", "-t", "box", "-x", "80", "-y", "20");
        await until(
          "the resize",
          async () =>
            /\b20\b/.test(
              (await tmux("display-message", "-p", "-t", "box", "#{window_height}")).text,
            ),
        );
        await tmux("send-keys", "-t", "box", "typed", "Enter");
        await until("the command's end", () => readOr(out).includes("exit="));
        const lines = readOr(out).trim().split("\n");
        assert.equal(lines[0], "30 100", "the window size at start");
        assert.match(lines[1], /^\/dev\/pts\/\d+$/);
        assert.equal(lines[2], "tiocsti=1", "TIOCSTI under --contain: EPERM");
        assert.equal(lines[3], "high=1", "TIOCSTI with high bits under --contain: EPERM");
        assert.equal(lines[4], "read=typed", "the keys reach the command through its pty");
        assert.equal(lines[5], "20 80", "the window size after SIGWINCH");
        assert.equal(lines[6], "exit=0");
        // the caller's terminal is back in cooked mode: the shell echoes and runs lines again
        await tmux("send-keys", "-t", "box", "clear; stty -a > " + `${dir}/stty`, "Enter");
        await until("stty", () => readOr(`${dir}/stty`).includes("icanon"));
        assert.match(readOr(`${dir}/stty`), / icanon /);
        assert.match(readOr(`${dir}/stty`), / echo /);
        assert.ok(!(await screen()).includes("tiocsti"), "nothing of the command's leaked");
        // --new-session without the filter: enough for another user (the kernel wants the
        // controlling terminal or CAP_SYS_ADMIN), beside the control where that user types
        const session = `${dir}/session`;
        Deno.chmodSync(dir, 0o755);
        Deno.writeTextFileSync(session, "");
        Deno.chmodSync(session, 0o666); // written by uid 1000
        for (const [args, tag] of [[[], "ctty"], [["--new-session"], "session"]] as const) {
          await tmux("send-keys", "-t", "box", "C-u");
          await run(
            ["--uid", "1000", ...args],
            `${PROBE} tty 0x5412; echo "${tag}=$?" >> ${session}`,
          );
          await until(tag, () => readOr(session).includes(`${tag}=`));
        }
        assert.match(readOr(session), /^ctty=0$/m);
        assert.match(readOr(session), /^session=1$/m);
      } finally {
        await tmux("kill-server");
      }
    });
  },
  (await tmuxMissing()) ?? probeMissing,
);

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

privilegedTest(
  "contain: root in a user namespace is not root on the host: a root-owned file, core_pattern",
  async () => {
    await withTempDir(async (dir) => {
      Deno.chmodSync(dir, 0o755);
      const file = `${dir}/owned-by-root`;
      Deno.writeTextFileSync(file, "host\n");
      Deno.chmodSync(file, 0o644);
      const script = `echo "uid $(id -u)"; echo inside >> ${file} && echo WROTE; ` +
        "cat /proc/sys/kernel/core_pattern > /dev/null; " +
        "(cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern) 2> /dev/null && echo CORE";
      // rootless, -pm: uid 0 inside, a fresh /proc, no --contain at all
      const inside = await runCli(["-pm", "--", "sh", "-c", script], { asUser: NOBODY });
      assert.match(inside.stdout, /^uid 0$/m, inside.stderr);
      assert.match(inside.stderr, /Permission denied/);
      assert.doesNotMatch(inside.stdout, /WROTE|CORE/);
      assert.equal(Deno.readTextFileSync(file), "host\n");
      // the control: real root (in a mount namespace) writes both
      const control = await runCli(["-pm", "--", "sh", "-c", script]);
      assert.match(control.stdout, /WROTE/);
      assert.match(control.stdout, /CORE/);
    });
  },
);

privilegedTest("contain: --mask inside a jail, pivot_root and chroot alike", async () => {
  await withTempDir(async (dir) => {
    Deno.chmodSync(dir, 0o755);
    const jail = `${dir}/jail`;
    Deno.mkdirSync(`${jail}/etc`, { recursive: true });
    await buildTestJail(jail, ["/bin/cat"]);
    Deno.writeTextFileSync(`${jail}/etc/secret`, "secret\n");
    // no /dev in the jail: the /dev/null files are masked with is the host's, taken before
    for (const how of [["-m"], ["-m", "--chroot"]]) {
      const masked = await runCli([
        ...how,
        "-c",
        jail,
        "--mask",
        "/etc/secret",
        "cat",
        "/etc/secret",
      ]);
      assert.equal(masked.code, 0, `${how.join(" ")}: ${masked.stderr}`);
      assert.equal(masked.stdout, "", how.join(" "));
      const plain = await runCli([...how, "-c", jail, "cat", "/etc/secret"]);
      assert.equal(plain.stdout, "secret\n");
    }
  });
});

/** The test user with an /etc/subuid range (.ci/run makes one), for another uid rootless. */
const rangeUser = (() => {
  try {
    const line = Deno.readTextFileSync("/etc/passwd").split("\n")
      .find((entry) => entry.startsWith("invoke-ns-test:"));
    const subuid = Deno.readTextFileSync("/etc/subuid");
    return line && /^invoke-ns-test:/m.test(subuid) ? Number(line.split(":")[2]) : null;
  } catch {
    return null;
  }
})();

Deno.test({
  name: "contain: rootless --uid 1000 (mapped by --map-auto), with and without --cap-add",
  ignore: !isRoot || rangeUser === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const full = formatCapabilityMask((1n << 41n) - 1n); // a new user namespace's bounding set
    const cases: [string[], bigint][] = [
      [[], 0n],
      [["--cap-add", "NET_BIND_SERVICE"], bit("NET_BIND_SERVICE")],
    ];
    for (const [extra, granted] of cases) {
      const ran = await runCli(["--map-auto", "--uid", "1000", ...extra, "--", ...STATUS], {
        asUser: rangeUser!,
      });
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout.split("\n")[0], "1000");
      assert.deepEqual(caps(ran.stdout), { ...sets(0n, granted, granted), CapBnd: full });
    }
  },
});
if (!isRoot || rangeUser === null) {
  console.log("ignoring the rootless --uid test: needs root and the user invoke-ns-test (.ci/run)");
}

Deno.test({
  name: "contain: --contain gives each command a session keyring of its own",
  ignore: probeMissing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // the default filter denies keyctl itself: a profile that allows all, to look
    const allowAll = `${buildDir}/allow-all.json`;
    Deno.writeTextFileSync(allowAll, '{"defaultAction": "SCMP_ACT_ALLOW"}');
    Deno.chmodSync(allowAll, 0o644);
    const asUser = isRoot ? NOBODY : undefined;
    const serial = async (args: string[]) => {
      const ran = await runCli([...args, PROBE, "keyring"], { asUser });
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /^\d+\n$/);
      return ran.stdout;
    };
    const shared = await serial([]);
    assert.equal(await serial([]), shared, "the control: without --contain, the caller's keyring");
    const first = await serial(["--contain", "--seccomp", allowAll]);
    const second = await serial(["--contain", "--seccomp", allowAll]);
    assert.notEqual(first, shared);
    assert.notEqual(second, first);
  },
});
