/**
 * What the command inherits, whatever state the caller is in: only fds 0-2,
 * default signal dispositions and an empty mask, NoNewPrivs as asked; and a
 * setuid binary grants nothing under --no-new-privs.
 */
import assert from "node:assert/strict";
import { launch } from "../mod.ts";
import {
  buildTestJail,
  cliCommand,
  mountTable,
  NOBODY,
  privilegedTest,
  runCli,
  skipped,
  withTempDir,
} from "./helpers.ts";

const decoder = new TextDecoder();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The non-empty lines of `stderr`. */
function stderrLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line !== "");
}

/** Quotes `word` for sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A field of /proc/<pid>/status, e.g. "SigIgn". */
function statusField(pid: number | "self", field: string): string {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(new RegExp(`^${field}:\\s+(\\S+)$`, "m"));
  assert.ok(match, `no ${field} in /proc/${pid}/status`);
  return match[1];
}

/** The bit of signal `n` in a /proc/<pid>/status mask. */
const bit = (n: number) => 1n << BigInt(n - 1);
const mask = (hex: string) => BigInt(`0x${hex}`);

function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

function childOf(pid: number): number {
  try {
    return Number(Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(" ")[0]);
  } catch {
    return 0;
  }
}

privilegedTest(
  "safety: no fd above 2 reaches the command, with 50 open in the caller",
  async () => {
    // The CLI's parent shell opens fds 3-52 before exec'ing the CLI, which inherits them.
    const opens = Array.from({ length: 50 }, (_, i) => `${i + 3}</etc/hostname`).join(" ");
    const cli = cliCommand().map(shellQuote).join(" ");
    for (const flags of [[], ["-pm"], ["-pmnu", "fds"]]) {
      // The shell that execs the CLI lists its own fds first (on stderr).
      const script = `exec ${opens} bash -c 'echo $(ls /proc/$$/fd) >&2; exec "$@"' bash ` +
        `${cli} ${flags.join(" ")} sh -c 'ls /proc/$$/fd'`;
      const out = await new Deno.Command("bash", {
        args: ["-c", script],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(30_000),
      }).output();
      const [callerFds, ...rest] = decoder.decode(out.stderr).split("\n");
      assert.equal(out.code, 0, decoder.decode(out.stderr));
      const open = callerFds.split(" ").map(Number);
      for (let fd = 3; fd <= 52; fd++) {
        assert.ok(open.includes(fd), `fd ${fd} not open in the caller`);
      }
      assert.deepEqual(stderrLines(rest.join("\n")), []);
      const fds = decoder.decode(out.stdout).trim().split("\n").sort();
      assert.deepEqual(fds, ["0", "1", "2"], `invoke_ns ${flags.join(" ")}`);
    }
  },
);

privilegedTest("safety: launch() with 50 files open passes only fds 0-2", async () => {
  await withTempDir(async (dir) => {
    const files = await Promise.all(
      Array.from({ length: 50 }, () => Deno.open("/etc/hostname")),
    );
    try {
      const result = await launch({
        command: ["sh", "-c", `exec > ${dir}/fds; ls /proc/$$/fd`],
        pid: true,
        mount: true,
      });
      assert.deepEqual(result, { code: 0 });
      assert.ok([...Deno.readDirSync("/proc/self/fd")].length > 50, "the files are open here");
      const fds = (await Deno.readTextFile(`${dir}/fds`)).trim().split("\n").sort();
      assert.deepEqual(fds, ["0", "1", "2"]);
    } finally {
      for (const file of files) file.close();
    }
  });
});

/** Perl, used to start the CLI with signals blocked and ignored; null when missing. */
async function perlWithPosix(): Promise<boolean> {
  try {
    const out = await new Deno.Command("perl", {
      args: ["-MPOSIX", "-e", "exit 0"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

privilegedTest(
  "safety: the command keeps the signals its caller ignored; every other disposition and the mask are defaults",
  async () => {
    const perl = await perlWithPosix();
    if (!perl) console.log("perl with POSIX missing: only ignoring (trap), not blocking, checked");
    // The caller of the CLI ignores INT, HUP, QUIT and USR2 and blocks USR1, USR2 and ALRM
    // (the CLI itself then handles INT, QUIT, TERM and HUP: see lib/supervise.ts).
    const blocker = perl
      ? [
        "perl",
        "-MPOSIX",
        "-e",
        "sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR1, SIGUSR2, SIGALRM)) or die; " +
        "$SIG{INT} = $SIG{HUP} = $SIG{QUIT} = $SIG{USR2} = 'IGNORE'; exec @ARGV or die",
      ]
      : ["sh", "-c", `trap '' INT HUP QUIT USR2; exec "$@"`, "sh"];
    for (const flags of [[], ["-pm"]]) {
      const cli = new Deno.Command(blocker[0], {
        args: [...blocker.slice(1), ...cliCommand(), ...flags, "sleep", "1000"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(30_000),
      }).spawn();
      let sleeper = 0;
      try {
        for (let i = 0; i < 1000 && cmdline(sleeper = childOf(cli.pid)) !== "sleep 1000"; i++) {
          await pause(10);
        }
        assert.equal(cmdline(sleeper), "sleep 1000", "the container did not start");
        // The CLI really runs with USR2 ignored (and USR1 blocked).
        const ignored = mask(statusField(cli.pid, "SigIgn"));
        assert.equal(ignored & bit(12), bit(12), "SIGUSR2 is not ignored by the CLI");
        if (perl) {
          assert.equal(mask(statusField(cli.pid, "SigBlk")) & bit(10), bit(10), "USR1 not blocked");
        }
        // What the caller ignored stays ignored (as nohup needs), though the CLI catches
        // INT, QUIT, TERM and HUP meanwhile; Deno's own SIGPIPE is not passed on.
        const callerIgnored = ignored & ~bit(13); // what the CLI ignores, but Deno's SIGPIPE
        assert.equal(
          callerIgnored & (bit(1) | bit(2) | bit(3) | bit(12)),
          bit(1) | bit(2) | bit(3) | bit(12),
          "the CLI ignores what its caller ignored",
        );
        assert.equal(
          mask(statusField(sleeper, "SigIgn")),
          callerIgnored,
          `SigIgn of the command (invoke_ns ${flags.join(" ")})`,
        );
        for (const field of ["SigBlk", "SigCgt", "SigPnd", "ShdPnd"]) {
          assert.equal(
            mask(statusField(sleeper, field)),
            0n,
            `${field} of the command (invoke_ns ${flags.join(" ")})`,
          );
        }
      } finally {
        if (sleeper > 0) Deno.kill(sleeper, "SIGKILL");
        else cli.kill("SIGKILL");
      }
      const out = await cli.output();
      assert.equal(out.code, 137, decoder.decode(out.stderr));
      assert.deepEqual(stderrLines(decoder.decode(out.stderr)), []);
    }
  },
);

privilegedTest("safety: --no-new-privs sets NoNewPrivs: 1, and only then", async (t) => {
  const here = statusField("self", "NoNewPrivs");
  const script = "grep '^NoNewPrivs:' /proc/self/status";
  const flagSets = [[], ["-pm"], ["-pmU", "-u", "nnp"]];
  for (const flags of flagSets) {
    const set = await runCli([...flags, "--no-new-privs", "sh", "-c", script]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, "NoNewPrivs:\t1\n", `invoke_ns ${flags.join(" ")} --no-new-privs`);
  }
  const UNSET = "without --no-new-privs the command has NoNewPrivs: 0";
  await t.step({
    name: UNSET,
    ignore: skipped(UNSET, here === "0" ? null : "the tests run with no_new_privs set"),
    fn: async () => {
      for (const flags of flagSets) {
        const unset = await runCli([...flags, "sh", "-c", script]);
        assert.equal(unset.code, 0, unset.stderr);
        assert.equal(unset.stdout, "NoNewPrivs:\t0\n", `invoke_ns ${flags.join(" ")}`);
      }
    },
  });
  await withTempDir(async (dir) => {
    const result = await launch({
      command: ["sh", "-c", `${script} > ${dir}/s`],
      noNewPrivs: true,
    });
    assert.deepEqual(result, { code: 0 });
    assert.equal(await Deno.readTextFile(`${dir}/s`), "NoNewPrivs:\t1\n");
  });
});

privilegedTest(
  "safety: --no-new-privs: a setuid-root copy of id grants nothing to an unprivileged user",
  async () => {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o755);
      const id = `${dir}/id`;
      await Deno.copyFile("/usr/bin/id", id);
      await Deno.chown(id, 0, 0);
      await Deno.chmod(id, 0o4755);
      // Without it the setuid bit works (effective UID 0): the check below is real.
      const plain = await runCli([id, "-u"], { asUser: NOBODY });
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stdout, "0\n", "the setuid copy does not work here (nosuid /tmp?)");
      const guarded = await runCli(["--no-new-privs", id, "-u"], { asUser: NOBODY });
      assert.equal(guarded.code, 0, guarded.stderr);
      assert.equal(guarded.stdout, `${NOBODY}\n`);
    });
  },
  statusField("self", "NoNewPrivs") === "0"
    ? null
    : "the tests run with no_new_privs set, so setuid never works here",
);

privilegedTest(
  "safety: -m --dev without a jail gives real device nodes, root and rootless",
  async () => {
    // The tmpfs covers the very /dev the nodes come from: they must be held before it goes up.
    const probe = "test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && " +
      "test ! -e /dev/sda && head -c 4 /dev/zero | od -An -tx1 && echo > /dev/null && echo devices-ok";
    const mountsBefore = mountTable();
    for (const asUser of [undefined, NOBODY]) {
      const ran = await runCli(["-m", "--dev", "sh", "-c", probe], { asUser });
      assert.equal(ran.code, 0, `${ran.stdout}${ran.stderr}`);
      assert.equal(ran.stdout, " 00 00 00 00\ndevices-ok\n");
    }
    assert.deepEqual(mountTable(), mountsBefore);
  },
);

privilegedTest(
  "safety: nohup invoke_ns CMD survives SIGHUP, sent to the tool and to the command",
  async () => {
    // The init stage too (ID ranges), in a jail with no procfs: the caller's ignored
    // signals must be known before the jail hides /proc.
    await withTempDir(async (dir) => {
      Deno.chmodSync(dir, 0o755); // the mapped root inside is not the owner
      await buildTestJail(`${dir}/jail`, ["/bin/sh"]);
      Deno.mkdirSync(`${dir}/jail/proc`); // a mount point, left empty: no procfs inside
      const ranges = ["--map-users", "0:100000:65536", "--map-groups", "0:100000:65536"];
      for (const flags of [[], ["-pm"], ["-m", ...ranges, "-c", `${dir}/jail`]]) {
        await nohupSurvives(flags);
      }
    });
  },
);

/** Runs `nohup invoke_ns FLAGS sh -c …`, sends SIGHUP to the tool and the command, checks both live. */
async function nohupSurvives(flags: string[]): Promise<void> {
  const cli = new Deno.Command("nohup", {
    args: [...cliCommand(), ...flags, "sh", "-c", "read line; echo survived $line"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).spawn();
  let shell = 0;
  for (let i = 0; i < 1000 && !cmdline(shell = childOf(cli.pid)).startsWith("sh -c"); i++) {
    await pause(10);
  }
  assert.match(cmdline(shell), /^sh -c read line/, "the command did not start");
  // The tool must not forward a HUP it was started ignoring, and the command
  // must still be ignoring it; both are sent one, before the command reads its line.
  Deno.kill(cli.pid, "SIGHUP");
  Deno.kill(shell, "SIGHUP");
  const writer = cli.stdin.getWriter();
  await writer.write(new TextEncoder().encode("after-hup\n"));
  await writer.close();
  const out = await cli.output();
  assert.equal(out.code, 0, `invoke_ns ${flags.join(" ")}: ${decoder.decode(out.stderr)}`);
  assert.equal(decoder.decode(out.stdout), "survived after-hup\n");
}
