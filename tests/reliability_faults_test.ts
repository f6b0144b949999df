/**
 * Reliability when things go wrong: the CLI killed, signals sent to it, Ctrl-C
 * in a real terminal, commands killed by signals, and a failure at each setup
 * step. After each, nothing may be left behind (mounts, queues, processes).
 */
import assert from "node:assert/strict";
import { O_CREAT, O_RDWR } from "../ffi/libc.ts";
import { mqClose, mqOpen, mqReceive, mqSend, mqUnlink } from "../ffi/mqueue.ts";
import {
  childrenOf,
  cliCommand,
  mountTable,
  NOBODY,
  privilegedTest,
  queueExists,
  readableSources,
  runCli,
  skipped,
  withTempDir,
} from "./helpers.ts";

const decoder = new TextDecoder();
/** A word in every CLI command line of this file (`-e TAG=...`), to find leftovers by. */
const TAG = `INVOKE_NS_FAULTS=${Deno.pid}`;
/** A queue name of this file's own. */
const QUEUE = `/invoke_ns_faults_${Deno.pid}`;

/** The non-empty lines of `stderr`. */
function stderrLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line !== "");
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a truthy value; fails after `ms`. */
async function waitFor<T>(what: string, probe: () => T, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await pause(10);
  }
}

/** Whether `pid` is alive (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** The live processes in the PID namespace `/proc/<pid>/ns/pid` names. */
function pidNamespaceMembers(link: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${entry.name}/ns/pid`) === link && alive(Number(entry.name))) {
        found.push(Number(entry.name));
      }
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return found;
}

/** Processes that carry this file's tag: leftover CLIs or their children. */
function taggedProcesses(): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    const line = cmdline(Number(entry.name));
    if (line.includes("main.ts") && line.includes(TAG) && alive(Number(entry.name))) {
      found.push(`${entry.name}: ${line}`);
    }
  }
  return found;
}

/** Asserts that nothing is left: mounts as before, no queue, no children, no tagged process. */
async function assertNothingLeft(mountsBefore: string[], queue = QUEUE): Promise<void> {
  // An orphan may take a moment to be gone; give it a bounded while.
  for (let i = 0; i < 100 && (taggedProcesses().length || childrenOf(Deno.pid).length); i++) {
    await pause(10);
  }
  assert.deepEqual(mountTable(), mountsBefore, "the host's mount table changed");
  assert.equal(queueExists(queue), false, `queue ${queue} left behind`);
  assert.equal(queueExists("/ipc_namespace"), false, "queue /ipc_namespace left behind");
  assert.deepEqual(childrenOf(Deno.pid), [], "stray children or zombies");
  assert.deepEqual(taggedProcesses(), [], "invoke_ns processes left running");
}

/** Starts the CLI with `args` (tagged), stdin from `stdin` or /dev/null, with a deadline. */
function spawnCli(args: string[], stdin?: string): Deno.ChildProcess {
  const [command, ...rest] = cliCommand();
  const child = new Deno.Command(command, {
    args: [...rest, "-e", TAG, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    writer.write(new TextEncoder().encode(stdin)).then(() => writer.close()).catch(() => {});
  }
  return child;
}

/** The CLI's child (the container's first process) once it runs a program matching `program`. */
async function containerOf(cli: Deno.ChildProcess, program: RegExp): Promise<number> {
  return await waitFor(`the container of ${cli.pid} to run ${program}`, () => {
    const [child] = childrenOf(cli.pid);
    return child && program.test(cmdline(child)) ? child : 0;
  });
}

/** `pid` and all its descendants. */
function descendants(pid: number): number[] {
  const found = [pid];
  for (let i = 0; i < found.length; i++) found.push(...childrenOf(found[i]));
  return found;
}

privilegedTest(
  "faults: SIGKILL to the CLI ends its whole PID namespace within a second",
  async () => {
    const mountsBefore = mountTable();
    const cli = spawnCli(
      [
        "-pm",
        "-u",
        "victim",
        "-i",
        "no",
        "--mq-name",
        QUEUE,
        "sh",
        "-c",
        "sleep 1000 & sleep 1000",
      ],
      "hello\n",
    );
    const init = await containerOf(cli, /^(sh|sleep) /);
    const namespace = Deno.readLinkSync(`/proc/${init}/ns/pid`);
    assert.notEqual(namespace, Deno.readLinkSync("/proc/self/ns/pid"));
    const members = await waitFor("two sleeps in the namespace", () => {
      const found = pidNamespaceMembers(namespace);
      return found.filter((pid) => cmdline(pid) === "sleep 1000").length === 2 ? found : null;
    });
    assert.ok(members.length >= 2, `members: ${members}`);
    Deno.kill(cli.pid, "SIGKILL");
    const killedAt = performance.now();
    while (members.some(alive) && performance.now() - killedAt < 1000) await pause(5);
    const left = members.filter(alive).map((pid) => `${pid}: ${cmdline(pid)}`);
    assert.deepEqual(left, [], "members of the PID namespace outlived the CLI by a second");
    const status = await cli.output();
    assert.equal(status.signal, "SIGKILL");
    assert.deepEqual(pidNamespaceMembers(namespace), []);
    await assertNothingLeft(mountsBefore);
  },
);

privilegedTest(
  "faults: SIGTERM and SIGHUP reach a trapping command; its own status is the CLI's",
  async () => {
    const mountsBefore = mountTable();
    await Promise.all([["SIGTERM", "TERM", 42], ["SIGHUP", "HUP", 43]].map(
      async ([signal, trap, code]) => {
        const cli = spawnCli([
          "-pm",
          "sh",
          "-c",
          `trap 'echo trapped ${trap}; exit ${code}' ${trap}; sleep 1000 & wait`,
        ]);
        const init = await containerOf(cli, /^sh /);
        const namespace = Deno.readLinkSync(`/proc/${init}/ns/pid`);
        // The sleep runs, so the trap is set.
        await waitFor(
          "the sleep",
          () => pidNamespaceMembers(namespace).some((pid) => cmdline(pid) === "sleep 1000"),
        );
        Deno.kill(cli.pid, signal as Deno.Signal);
        const output = await cli.output();
        const stderr = decoder.decode(output.stderr);
        assert.equal(output.code, code, `${signal}: ${stderr}`);
        assert.equal(decoder.decode(output.stdout), `trapped ${trap}\n`);
        assert.deepEqual(stderrLines(stderr), []);
        await waitFor(
          "the namespace to be empty",
          () => pidNamespaceMembers(namespace).length === 0,
          1000,
        );
      },
    ));
    await assertNothingLeft(mountsBefore);
  },
);

privilegedTest(
  "faults: SIGTERM and SIGHUP kill a command without a trap: 143 and 129",
  async () => {
    const mountsBefore = mountTable();
    await Promise.all([["SIGTERM", 143], ["SIGHUP", 129]].map(async ([signal, code]) => {
      const cli = spawnCli(["-m", "-u", "plain", "sleep", "1000"]);
      const sleeper = await containerOf(cli, /^sleep 1000$/);
      Deno.kill(cli.pid, signal as Deno.Signal);
      const output = await cli.output();
      assert.equal(output.code, code, `${signal}: ${decoder.decode(output.stderr)}`);
      assert.deepEqual(stderrLines(decoder.decode(output.stderr)), []);
      assert.equal(alive(sleeper), false);
    }));
    await assertNothingLeft(mountsBefore);
  },
);

privilegedTest(
  "faults: a PID 1 ignores SIGTERM/SIGHUP; --stop-timeout 1 SIGKILLs it after a second (137)",
  async () => {
    const mountsBefore = mountTable();
    await Promise.all(["SIGTERM", "SIGHUP"].map(async (signal) => {
      const cli = spawnCli(["--stop-timeout", "1", "-pm", "sleep", "1000"]);
      const sleeper = await containerOf(cli, /^sleep 1000$/);
      const sentAt = performance.now();
      Deno.kill(cli.pid, signal as Deno.Signal);
      await pause(500);
      assert.ok(alive(sleeper), `${signal}: the PID 1 sleep should ignore the signal`);
      const output = await cli.output();
      const elapsed = performance.now() - sentAt;
      assert.equal(output.code, 137, `${signal}: ${decoder.decode(output.stderr)}`);
      assert.ok(elapsed >= 900 && elapsed < 5000, `${signal}: killed after ${elapsed} ms`);
      assert.deepEqual(stderrLines(decoder.decode(output.stderr)), []);
    }));
    await assertNothingLeft(mountsBefore);
  },
);

privilegedTest("faults: a command killed by signal N gives 128+N", async () => {
  const signals: [string, number][] = [["HUP", 1], ["INT", 2], ["USR1", 10], ["TERM", 15], [
    "KILL",
    9,
  ]];
  const results = await Promise.all(
    signals.map(([name]) => runCli(["-e", TAG, "-u", "sig", "sh", "-c", `kill -${name} $$`])),
  );
  results.forEach((ran, i) => {
    assert.equal(ran.code, 128 + signals[i][1], `SIG${signals[i][0]}: ${ran.stderr}`);
    assert.equal(ran.stderr, "");
  });
});

/** Quotes `word` for sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Whether tmux can be run here (null) or why not. */
async function tmuxMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .output();
    return out.success ? null : "tmux -V failed";
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "tmux is not installed" : String(error);
  }
}

privilegedTest(
  "faults: Ctrl-C in an interactive shell in the container (a real terminal, via tmux)",
  async () => {
    await withTempDir(async (dir) => {
      const mountsBefore = mountTable();
      const socket = `invoke_ns_faults_${Deno.pid}`;
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
      const screen = async () => (await tmux("capture-pane", "-p", "-t", "box")).text;
      const prompts = (text: string) => text.split("\n").filter((l) => l.startsWith("ctr>")).length;
      const waitScreen = async (what: string, test: (text: string) => boolean) => {
        const deadline = Date.now() + 10_000;
        let text = "";
        while (!test(text = await screen())) {
          if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; screen:\n${text}`);
          await pause(50);
        }
        return text;
      };
      const cli = [...cliCommand(), "-e", TAG, "-pmu", "box", "-e", "PS1=ctr> ", "bash", "--norc"];
      const session = `${cli.map(shellQuote).join(" ")}; echo "exit=$?" > ${dir}/status`;
      try {
        const started = await tmux(
          "new-session",
          "-d",
          "-s",
          "box",
          "-x",
          "120",
          "-y",
          "40",
          `sh -c ${shellQuote(session)}`,
        );
        assert.ok(started.ok, "tmux new-session failed");
        await waitScreen("the first prompt", (text) => prompts(text) === 1);
        await tmux("send-keys", "-t", "box", "sleep 1000", "Enter");
        const pane = Number((await tmux("display-message", "-p", "-t", "box", "#{pane_pid}")).text);
        assert.ok(pane > 0, "no pane PID");
        const sleeper = await waitFor(
          "the sleep in the container",
          () => descendants(pane).find((pid) => cmdline(pid) === "sleep 1000"),
        );
        assert.notEqual(
          Deno.readLinkSync(`/proc/${sleeper}/ns/uts`),
          Deno.readLinkSync("/proc/self/ns/uts"),
          "the sleep is not in the container",
        );
        const bash = Number(
          Deno.readTextFileSync(`/proc/${sleeper}/stat`).split(") ")[1].split(" ")[1],
        );
        assert.match(cmdline(bash), /^bash --norc/);
        await tmux("send-keys", "-t", "box", "C-c");
        const after = await waitScreen("a new prompt after Ctrl-C", (text) => prompts(text) === 2);
        assert.match(after, /\^C/);
        await waitFor("the sleep to end", () => !alive(sleeper), 5000);
        assert.ok(alive(bash), "the shell died of Ctrl-C");
        await tmux("send-keys", "-t", "box", "echo alive-$$", "Enter");
        await waitScreen("alive-1", (text) => /^alive-1$/m.test(text));
        assert.equal(await Deno.stat(`${dir}/status`).catch(() => null), null, "ended early");
        await tmux("send-keys", "-t", "box", "exit", "Enter");
        const status = await waitFor("the session's end", () => {
          try {
            return Deno.readTextFileSync(`${dir}/status`);
          } catch {
            return "";
          }
        });
        assert.equal(status.trim(), "exit=0");
        for (let i = 0; i < 100 && (await tmux("has-session", "-t", "box")).ok; i++) {
          await pause(50);
        }
        assert.equal(
          (await tmux("has-session", "-t", "box")).ok,
          false,
          "the session is still open",
        );
      } finally {
        await tmux("kill-server");
      }
      await assertNothingLeft(mountsBefore);
    });
  },
  await tmuxMissing(),
);

/** One setup failure: the command line, its status, and its one stderr line. */
interface FailureCase {
  name: string;
  args: string[];
  stdin?: string;
  code: number;
  line: RegExp;
  /**
   * QUEUE exists beforehand (holding one message), so that a queue opened before
   * the failing check would show as EEXIST; it must be left untouched.
   */
  existingQueue?: boolean;
}

/** Creates QUEUE holding the message "keep". */
function createQueue(): void {
  const queue = mqOpen(QUEUE, O_CREAT | O_RDWR, { maxMessages: 2, messageSize: 16 });
  mqSend(queue, new TextEncoder().encode("keep\0") as Uint8Array<ArrayBuffer>);
  mqClose(queue);
}

/** Asserts that QUEUE still holds "keep", then removes it. */
function checkAndRemoveQueue(): void {
  assert.equal(queueExists(QUEUE), true, "the tool removed a queue it did not create");
  const queue = mqOpen(QUEUE, O_RDWR);
  try {
    const message = mqReceive(queue, 16, 0);
    assert.ok(message, "the queue's message is gone");
    assert.equal(decoder.decode(message.subarray(0, message.indexOf(0))), "keep");
  } finally {
    mqClose(queue);
    mqUnlink(QUEUE);
  }
}

/** Runs one failure case and checks its status, its single stderr line and the leftovers. */
async function checkFailure(
  failure: FailureCase,
  run: () => Promise<{ code: number; stderr: string }>,
) {
  const mountsBefore = mountTable();
  if (failure.existingQueue) createQueue();
  let ran;
  try {
    ran = await run();
  } finally {
    if (failure.existingQueue) checkAndRemoveQueue();
  }
  const lines = stderrLines(ran.stderr);
  assert.equal(ran.code, failure.code, `${failure.name}: ${ran.stderr}`);
  assert.equal(lines.length, 1, `${failure.name}: expected one stderr line:\n${ran.stderr}`);
  assert.match(lines[0], failure.line, failure.name);
  await assertNothingLeft(mountsBefore);
}

privilegedTest(
  "faults: a failure at each setup step exits 125 (2, 126, 127) with one line, nothing left",
  async (t) => {
    await withTempDir(async (dir) => {
      // A jail in which /proc cannot be created, even by root: an immutable directory.
      const frozen = `${dir}/frozen`;
      await Deno.mkdir(frozen);
      const chattr = await new Deno.Command("chattr", { args: ["+i", frozen], stderr: "piped" })
        .output();
      const immutable = chattr.success;
      await Deno.writeTextFile(`${dir}/plain`, "not executable\n");
      const demo = ["-i", "no", "--mq-name", QUEUE];
      const frozenCases: FailureCase[] = [{
        name: "jail by chroot: /proc cannot be created",
        args: [...demo, "-c", frozen, "true"],
        stdin: "x\n",
        code: 125,
        line: /^invoke_ns: jail: \S+\/frozen\/proc is missing and cannot be created \(EPERM: /,
      }, {
        name: "jail by pivot_root: /proc cannot be created",
        args: ["-pm", ...demo, "-c", frozen, "true"],
        stdin: "x\n",
        code: 125,
        line: /^invoke_ns: jail: \S+\/frozen\/proc is missing and cannot be created \(EPERM: /,
      }];
      const cases: FailureCase[] = [
        {
          name: "jail: no such directory, refused before the queue is opened",
          args: ["-pm", ...demo, "-c", `${dir}/no-such-jail`, "true"],
          code: 125,
          line: /^invoke_ns: jail: \S+\/no-such-jail: no such directory$/,
          existingQueue: true,
        },
        {
          name: "hostname: empty, refused before the queue is opened",
          args: ["-pm", ...demo, "-u", "", "true"],
          code: 2,
          line: /^invoke_ns: hostname is empty$/,
          existingQueue: true,
        },
        {
          name: "hostname: 65 bytes, refused before the queue is opened",
          args: ["-pm", ...demo, "-u", "é".repeat(32) + "h", "true"],
          code: 2,
          line: /^invoke_ns: hostname is 65 bytes long \(at most 64\)$/,
          existingQueue: true,
        },
        {
          name: "mount: a missing bind source, refused before the queue is opened",
          args: ["-m", ...demo, "--bind", "/no/such:/x", "true"],
          code: 125,
          line: /^invoke_ns: mount: \/no\/such: no such file or directory \(bind source\)$/,
          existingQueue: true,
        },
        {
          name: "mount: the mount point cannot be created (in the child)",
          args: ["-pm", ...demo, "--tmpfs", "/proc/sys/invoke_ns_fault", "true"],
          stdin: "x\n",
          code: 125,
          line: /^invoke_ns: mount: mkdir: \/proc\/sys\/invoke_ns_fault \([A-Z]+: /,
        },
        {
          name: "queue: an existing queue is refused and left untouched",
          args: ["-pmu", "box", ...demo, "true"],
          code: 125,
          line: /^invoke_ns: mq_open: .*EEXIST.*remove it or choose another name$/,
          existingQueue: true,
        },
        {
          name: "uid map: --map-user out of range",
          args: ["-U", "--map-user", "4294967295", "true"],
          code: 2,
          line: /^invoke_ns: --map-user: not a valid number: '4294967295'/,
        },
        {
          name: "exec: a missing command",
          args: ["-pmu", "box", ...demo, "no-such-command-xyz"],
          stdin: "x\n",
          code: 127,
          line: /^invoke_ns: exec: no-such-command-xyz: command not found$/,
        },
        {
          name: "exec: a file without execute permission",
          args: ["-pm", ...demo, `${dir}/plain`],
          stdin: "x\n",
          code: 126,
          line: /^invoke_ns: exec: \S+\/plain: permission denied or not a file$/,
        },
      ];
      const run = (failure: FailureCase) =>
        checkFailure(failure, () => runCli(["-e", TAG, ...failure.args], { stdin: failure.stdin }));
      try {
        for (const failure of cases) await run(failure);
        const FROZEN = "a jail in an immutable directory: /proc cannot be created";
        await t.step({
          name: FROZEN,
          ignore: skipped(
            FROZEN,
            immutable ? null : `chattr +i failed: ${decoder.decode(chattr.stderr).trim()}`,
          ),
          fn: async () => {
            for (const failure of frozenCases) await run(failure);
          },
        });
      } finally {
        if (immutable) await new Deno.Command("chattr", { args: ["-i", frozen] }).output();
      }
    });
  },
);

privilegedTest(
  "faults: uid_map cannot be written (real UID != effective UID): 125, the queue removed",
  async () => {
    // Rootless with a real UID other than the effective one: the process is not
    // dumpable, so its /proc/self/setgroups is root's and the child cannot write it.
    const sources = readableSources();
    const command = [
      "setpriv",
      "--ruid=1",
      `--euid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "env",
      "HOME=/tmp",
      `DENO_DIR=/tmp/invoke_ns_deno_dir_${NOBODY}`,
      `${sources}/deno`,
      "run",
      "-A",
      `${sources}/main.ts`,
    ];
    await checkFailure({
      name: "uid_map",
      args: [],
      code: 125,
      line: /^invoke_ns: uid_map: open: \/proc\/self\/setgroups \(EACCES: /,
    }, () =>
      runCli(["-e", TAG, "-pmu", "box", "-i", "no", "--mq-name", QUEUE, "true"], {
        command,
        stdin: "x\n",
      }));
  },
);

privilegedTest(
  "faults: user namespaces refused for real (a throwaway namespace): 125, the queue removed",
  async () => {
    // As in user_cgroup_time_test.ts: a user namespace of our own whose
    // max_user_namespaces is 0; the host's setting is never touched.
    const script = [
      "echo 0 > /proc/sys/user/max_user_namespaces",
      `${cliCommand().map(shellQuote).join(" ")} -e ${TAG} -U -pm -i no --mq-name ${QUEUE} true`,
    ].join("\n");
    await checkFailure({
      name: "clone refused",
      args: [],
      code: 125,
      line: /^invoke_ns: clone: user namespaces are disabled .*\(ENOSPC: [^)]*\)$/,
    }, async () => {
      const shell = new Deno.Command("unshare", {
        args: ["--user", "sh", "-c", 'read go && exec sh -c "$1"', "sh", script],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(30_000),
      }).spawn();
      const ours = Deno.readLinkSync("/proc/self/ns/user");
      await waitFor("the throwaway user namespace", () => {
        try {
          return Deno.readLinkSync(`/proc/${shell.pid}/ns/user`) !== ours;
        } catch {
          return false;
        }
      }, 5000);
      for (const map of ["uid_map", "gid_map"]) {
        await Deno.writeTextFile(`/proc/${shell.pid}/${map}`, "0 0 65536\n");
      }
      const writer = shell.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
      const out = await shell.output();
      return { code: out.code, stderr: decoder.decode(out.stderr) };
    });
    assert.notEqual(Deno.readTextFileSync("/proc/sys/user/max_user_namespaces").trim(), "0");
  },
);

privilegedTest(
  "faults: a reader that goes away early leaves the command's status alone",
  async () => {
    // `invoke_ns -v … | head -1`: the later -v and --json lines meet a broken pipe.
    const cli = cliCommand().map(shellQuote).join(" ");
    for (const flags of ["-vpmu x", "--json -p"]) {
      const script = `${cli} ${flags} sh -c 'sleep 0.3; exit 4' | head -1 >/dev/null; ` +
        'echo "status ${PIPESTATUS[0]}"';
      const out = await new Deno.Command("bash", { args: ["-c", script], stderr: "piped" })
        .output();
      assert.equal(
        decoder.decode(out.stdout),
        "status 4\n",
        `${flags}: ${decoder.decode(out.stderr)}`,
      );
      assert.equal(decoder.decode(out.stderr), "", flags);
    }
    // a subcommand whose own output meets the broken pipe stops quietly, as SIGPIPE would
    const script = `${cli} tour | head -1 >/dev/null; echo "status \${PIPESTATUS[0]}"`;
    const out = await new Deno.Command("bash", { args: ["-c", script], stderr: "piped" }).output();
    assert.equal(decoder.decode(out.stdout), "status 141\n", decoder.decode(out.stderr));
    assert.equal(decoder.decode(out.stderr), "");
  },
);

Deno.test("faults: a full disk or output device (ENOSPC) is one line, never an internal error", async () => {
  const cases: [string[], number][] = [
    [["-h"], 125],
    [["--version"], 125],
    [["ns"], 1],
    [["tour", "--help"], 1],
  ];
  for (const [args, code] of cases) {
    const out = await new Deno.Command("sh", {
      args: ["-c", 'exec "$@" > /dev/full', "sh", ...cliCommand(), ...args],
      stdin: "null",
      stderr: "piped",
    }).output();
    const lines = stderrLines(decoder.decode(out.stderr));
    assert.deepEqual(
      lines,
      ["invoke_ns: standard output: No space left on device (ENOSPC)"],
      args.join(" "),
    );
    assert.equal(out.code, code, args.join(" "));
  }
});
