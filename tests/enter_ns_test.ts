/**
 * `enter`, `ns` and `tour` against a real container started by the test.
 */
import assert from "node:assert/strict";
import { enter, namespacesOf } from "../mod.ts";
import {
  childrenOf,
  cliCommand,
  cliCommandAs,
  mountTable,
  NOBODY,
  privilegedTest,
  readableSources,
  runCli,
  withTempDir,
} from "./helpers.ts";

/**
 * Starts `invoke_ns -pmnu boxA sleep 60` (with `options.flags` added, as
 * `options.asUser` when given) and passes the container's outer PID to `fn`.
 */
async function withContainer(
  fn: (pid: number) => Promise<void>,
  options: { flags?: string[]; asUser?: number } = {},
): Promise<void> {
  const args = [...options.flags ?? [], "--stop-timeout", "1", "-pmnu", "boxA", "sleep", "60"];
  const [command, ...rest] = options.asUser === undefined
    ? [...cliCommand(), ...args]
    : cliCommandAs(options.asUser, args);
  const parent = new Deno.Command(command, { args: rest, stdout: "null", stderr: "null" }).spawn();
  let pid = 0;
  for (let i = 0; i < 500 && pid === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    try {
      pid = Number(
        Deno.readTextFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`).trim().split(
          " ",
        )[0],
      ) || 0;
    } catch {
      // not there yet
    }
  }
  assert.ok(pid > 0, "the container did not start");
  for (let i = 0; i < 500 && Deno.readLinkSync(`/proc/${pid}/exe`) !== "/usr/bin/sleep"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  try {
    await fn(pid);
  } finally {
    parent.kill("SIGTERM");
    await parent.status;
  }
}

privilegedTest("enter: joins a running container's namespaces", async () => {
  await withContainer(async (pid) => {
    const hostname = await runCli(["enter", String(pid), "hostname"]);
    assert.equal(hostname.code, 0, hostname.stderr);
    assert.equal(hostname.stdout, "boxA\n");
    const inner = await runCli(["enter", String(pid), "sh", "-c", "echo $$"]);
    const innerPid = Number(inner.stdout.trim());
    assert.ok(innerPid > 1 && innerPid < 10, `expected a small PID, got ${inner.stdout}`);
    assert.ok(innerPid < pid, "the PID must be the container's view, not the host's");
    const byFile = await runCli(["enter", `/proc/${pid}/ns/uts`, "hostname"]);
    assert.equal(byFile.stdout, "boxA\n", byFile.stderr);
    const net = await runCli(["enter", `/proc/${pid}/ns/net`, "cat", "/proc/net/dev"]);
    assert.equal(net.code, 0, net.stderr);
    assert.deepEqual(
      net.stdout.split("\n").slice(2).filter(Boolean).map((line) => line.split(":")[0].trim()),
      ["lo"],
    );
    const onlyUts = await runCli(["enter", "-u", String(pid), "sh", "-c", "hostname; echo $$"]);
    const [name, shellPid] = onlyUts.stdout.trim().split("\n");
    assert.equal(name, "boxA");
    assert.ok(Number(shellPid) > 10, "-u alone must not join the PID namespace");
  });
});

privilegedTest(
  "enter: a container with its own user namespace (setgroups denied), by PID and by file",
  async () => {
    await withContainer(async (pid) => {
      assert.equal(Deno.readTextFileSync(`/proc/${pid}/setgroups`).trim(), "deny");
      const byPid = await runCli([
        "enter",
        String(pid),
        "sh",
        "-c",
        "echo $$ $(id -u) $(hostname)",
      ]);
      assert.equal(byPid.code, 0, byPid.stderr);
      const [inner, uid, name] = byPid.stdout.trim().split(" ");
      assert.ok(Number(inner) > 1 && Number(inner) < 10, byPid.stdout);
      assert.deepEqual([uid, name], ["0", "boxA"]);
      const byFile = await runCli(["enter", `/proc/${pid}/ns/user`, "id", "-u"]);
      assert.deepEqual([byFile.code, byFile.stdout, byFile.stderr], [0, "0\n", ""]);
    }, { flags: ["-U"] });
  },
);

privilegedTest(
  "enter: rootless, into a container of one's own, by PID, -p alone and by file",
  async () => {
    await withContainer(async (pid) => {
      const all = await runCli(["enter", String(pid), "sh", "-c", "echo $$ $(id -u) $(hostname)"], {
        asUser: NOBODY,
      });
      assert.equal(all.code, 0, all.stderr);
      const [inner, uid, name] = all.stdout.trim().split(" ");
      assert.ok(Number(inner) > 1 && Number(inner) < 10, all.stdout);
      assert.deepEqual([uid, name], ["0", "boxA"]);
      const pidOnly = await runCli(["enter", "-p", String(pid), "sh", "-c", "echo $$"], {
        asUser: NOBODY,
      });
      assert.equal(pidOnly.code, 0, pidOnly.stderr);
      assert.ok(Number(pidOnly.stdout) < 10, pidOnly.stdout);
      const byFile = await runCli(["enter", `/proc/${pid}/ns/uts`, "hostname"], { asUser: NOBODY });
      assert.deepEqual([byFile.code, byFile.stdout, byFile.stderr], [0, "boxA\n", ""]);
      const notMine = await runCli(["enter", "-u", "1", "true"], { asUser: NOBODY });
      assert.equal(notMine.code, 125);
      assert.match(notMine.stderr, /^invoke_ns: enter: process 1: .*run as root\n$/);
    }, { asUser: NOBODY });
  },
);

privilegedTest("enter: --, the default shell, and exec failures in the PID namespace", async () => {
  await withContainer(async (pid) => {
    const dashes = await runCli(["enter", String(pid), "--", "hostname"]);
    assert.deepEqual([dashes.code, dashes.stdout], [0, "boxA\n"], dashes.stderr);
    const shell = await runCli(["enter", String(pid)], {
      stdin: "echo in-$(hostname)",
      env: { SHELL: "/no/such/shell" },
    });
    assert.deepEqual([shell.code, shell.stdout], [0, "in-boxA\n"], shell.stderr);
    await withTempDir(async (dir) => {
      // exec'd by the grandchild that joined the PID namespace: its errno comes back by pipe
      Deno.writeFileSync(`${dir}/not-elf`, new TextEncoder().encode("\x7fELF junk"), {
        mode: 0o755,
      });
      const bad = await runCli(["enter", "-p", String(pid), `${dir}/not-elf`]);
      assert.equal(bad.code, 126);
      assert.equal(
        bad.stderr,
        `invoke_ns: exec: execve: ${dir}/not-elf (ENOEXEC: Exec format error)\n`,
      );
    });
    const missing = await runCli(["enter", "-p", String(pid), "no-such-command-xyz"]);
    assert.equal(missing.code, 127);
    const file = await runCli(["enter", "-u", `/proc/${pid}/ns/uts`, "true"]);
    assert.equal(file.code, 2, "namespace options do not go with a namespace file");
  });
});

privilegedTest("enter: through the library, into the mount namespace and its root", async () => {
  await withContainer(async (pid) => {
    await withTempDir(async (dir) => {
      const result = await enter(pid, {
        namespaces: ["mnt", "pid"],
        command: ["sh", "-c", `ls /proc | grep -c '^[0-9]' > ${dir}/count`],
      });
      assert.deepEqual(result, { code: 0 });
      const count = Number(Deno.readTextFileSync(`${dir}/count`));
      assert.ok(
        count >= 2 && count <= 4,
        `the container's /proc should show 2-3 PIDs, saw ${count}`,
      );
    });
  });
});

privilegedTest(
  "ns: shows the container's namespaces, marks the different ones, lists them all",
  async () => {
    await withContainer(async (pid) => {
      const uts = Deno.readLinkSync(`/proc/${pid}/ns/uts`).match(/\d+/)![0];
      const table = await runCli(["ns", String(pid)]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, new RegExp(`^uts\\s+${uts}\\s+\\* differs from `, "m"));
      assert.match(table.stdout, /^user\s+\d+$/m, "the user namespace is the host's: no mark");
      const json = JSON.parse((await runCli(["ns", "--json", String(pid)])).stdout);
      const entry = json.processes[0].namespaces.find((ns: { type: string }) => ns.type === "uts");
      assert.deepEqual(entry, { type: "uts", inode: Number(uts), differs: true });
      const all = await runCli(["ns", "--all"]);
      assert.match(
        all.stdout,
        new RegExp(`^${uts}\\s+uts\\s+1\\s+${pid}\\s+root\\s+sleep 60$`, "m"),
      );
      const allJson = JSON.parse((await runCli(["ns", "--all", "--json"])).stdout);
      assert.ok(allJson.namespaces.some((ns: { inode: number }) => ns.inode === Number(uts)));
      assert.deepEqual(
        namespacesOf(pid).find((ns) => ns.type === "uts"),
        { type: "uts", inode: Number(uts) },
      );
    });
  },
);

Deno.test("enter and ns: bad targets give one line and the documented status", async () => {
  const cases: [string[], number, RegExp][] = [
    [["enter"], 2, /TARGET .* is required/],
    [["enter", "abc"], 2, /TARGET is a PID or an absolute path/],
    [["enter", "999999999", "true"], 125, /no such process: 999999999/],
    [["enter", "/etc/passwd", "true"], 125, /\/etc\/passwd: not a namespace file/],
    [["enter", "/no/such/file", "true"], 125, /no such process or file/],
    [["enter", "-x", "1"], 2, /invalid option -- 'x'/],
    [["ns", "abc"], 2, /'abc' is not a PID/],
    [["ns", "999999999"], 1, /999999999: no such process/],
    // echoed as typed, not as the rounded number (1e20 prints as 100000000000000000000)
    [["ns", "99999999999999999999"], 1, /: 99999999999999999999: no such process$/],
    [["enter", "99999999999999999999", "true"], 125, /no such process: 99999999999999999999$/],
  ];
  for (const [args, code, pattern] of cases) {
    const ran = await runCli(args);
    assert.equal(ran.code, code, `${args.join(" ")}: ${ran.stderr}`);
    const lines = ran.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, ran.stderr);
    assert.match(lines[0], pattern);
  }
});

privilegedTest(
  "tour: a difference in every namespace type's probe, root and rootless",
  async () => {
    const cgroupPaths = Deno.readTextFileSync("/proc/self/cgroup").trim().split("\n")
      .map((line) => line.split(":").slice(2).join(":"));
    const cgroupCanDiffer = cgroupPaths.some((path) => path !== "/");
    for (const asUser of [undefined, NOBODY]) {
      const ran = await runCli(["tour"], { asUser, env: { NO_COLOR: "1" } });
      assert.equal(ran.code, 0, ran.stderr);
      const all = ran.stdout.split("\n== ").slice(1);
      const types = ["uts", "pid", "mnt", "ipc", "net", "user", "cgroup", "time"];
      // then the containment stops: capabilities, seccomp, masked paths (issue 16), limits last
      const containment = all.slice(types.length, types.length + 3);
      assert.equal(containment.length, 3);
      assert.match(containment[0], /mount: done\s+mount: permission denied/);
      assert.match(containment[1], /personality: set\s+personality: Operation not permitted/);
      assert.match(containment[1], /Seccomp:\t0\s+Seccomp:\t2/);
      assert.match(containment[2], /timer_list: (\d+ bytes|unreadable)\s+timer_list: 0 bytes/);
      if (asUser === undefined) {
        assert.match(containment[2], /core_pattern writable\s+core_pattern read-only/);
      }
      assert.match(all.at(-1)!, /^limits: a fork bomb and a memory hog/);
      const sections = all.slice(0, types.length);
      sections.forEach((section, i) => {
        // rows: heading, column titles, probe lines, the identity line, then the sentence
        const rows = section.split("\n");
        const identity = rows.findIndex((row) => row.trimStart().startsWith(`${types[i]}:[`));
        const probe = rows.slice(2, identity).map((
          row,
        ) => [row.slice(2, 40).trim(), row.slice(42)]);
        assert.ok(probe.length > 0, section);
        const differs = probe.some(([host, inside]) =>
          !host.endsWith("…") && host !== inside ||
          host.endsWith("…") && !inside.startsWith(host.slice(0, -1))
        );
        if (types[i] === "cgroup" && !cgroupCanDiffer) {
          assert.match(section, /root of every cgroup hierarchy/);
        } else {
          assert.ok(differs, `${types[i]} (as ${asUser ?? "root"}): no difference:\n${section}`);
        }
        const ids = [...section.matchAll(new RegExp(`${types[i]}:\\[(\\d+)\\]`, "g"))];
        assert.equal(ids.length, 2, section);
        assert.notEqual(ids[0][1], ids[1][1], `${types[i]}: same namespace on both sides`);
      });
      assert.match(ran.stdout, /my PID is 1$/m);
      assert.match(ran.stdout, /tour mounts: 0\s+tour mounts: 1/);
      assert.match(ran.stdout, /message queues: \d+\s+message queues: 1$/m);
    }
  },
);

/** The System V message queues of this IPC namespace, as "key id" strings. */
function systemVQueues(): Set<string> {
  return new Set(
    Deno.readTextFileSync("/proc/sysvipc/msg").trim().split("\n").slice(1)
      .map((line) => line.trim().split(/\s+/).slice(0, 2).join(" ")),
  );
}

/** Starts `invoke_ns tour` as root with TMPDIR=`tmp`, stdout piped. */
function startTour(tmp: string) {
  const [command, ...args] = [...cliCommand(), "tour"];
  return new Deno.Command(command, {
    args,
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

privilegedTest(
  "tour: as root it writes through no link an unprivileged user plants in the temp directory",
  async () => {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o755);
      const tmp = `${dir}/tmp`;
      await Deno.mkdir(tmp);
      await Deno.chmod(tmp, 0o1777);
      const victim = `${dir}/victim`;
      await Deno.writeTextFile(victim, "precious\n");
      // The attacker, as nobody: for every entry the tour makes, a link beside it
      // named as the tour's output file, pointing at the victim (the planted
      // names are printed as they are made).
      const attack = `
        const planted = new Set();
        console.log("ready");
        const until = Date.now() + 60_000;
        while (Date.now() < until) {
          for (const entry of Deno.readDirSync(${JSON.stringify(tmp)})) {
            if (entry.isSymlink || planted.has(entry.name)) continue;
            planted.add(entry.name);
            try {
              Deno.symlinkSync(${JSON.stringify(victim)}, ${
        JSON.stringify(tmp)
      } + "/" + entry.name + ".out");
              console.log(entry.name);
            } catch { /* the name is taken */ }
          }
        }`;
      const attacker = new Deno.Command("setpriv", {
        args: [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          "--clear-groups",
          "env",
          "HOME=/tmp",
          `DENO_DIR=/tmp/invoke_ns_deno_dir_${NOBODY}`,
          `${readableSources()}/deno`, // Deno itself may not be readable by nobody
          "eval",
          attack,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = attacker.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        const first = await lines.read();
        assert.equal(first.value, "ready\n", "the attacker did not start");
        for (let round = 0; round < 3; round++) {
          const tour = await startTour(tmp).output();
          assert.equal(tour.code, 0, new TextDecoder().decode(tour.stderr));
          assert.equal(await Deno.readTextFile(victim), "precious\n", `round ${round}`);
        }
      } finally {
        attacker.kill("SIGKILL");
        await attacker.status;
        lines.releaseLock();
        await attacker.stdout.cancel().catch(() => {});
        await attacker.stderr.cancel();
      }
      assert.equal(await Deno.readTextFile(victim), "precious\n");
      assert.deepEqual([...Deno.readDirSync(tmp)].map((entry) => entry.name), []);
    });
  },
);

privilegedTest(
  "tour: interrupted by INT, TERM, HUP or KILL it leaves no file, directory, queue or process",
  async () => {
    await withTempDir(async (dir) => {
      const tmp = `${dir}/tmp`;
      await Deno.mkdir(tmp);
      const mountsBefore = mountTable();
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"] as const) {
        const queuesBefore = systemVQueues();
        const tour = startTour(tmp);
        // Mid-tour: once the mount stop has been shown, the IPC one runs next.
        const reader = tour.stdout.getReader();
        let seen = "";
        while (!seen.includes("== mount namespace")) {
          const { value, done } = await reader.read();
          assert.ok(!done, `the tour ended early:\n${seen}`);
          seen += new TextDecoder().decode(value);
        }
        const children = childrenOf(tour.pid);
        tour.kill(signal);
        reader.releaseLock();
        const status = await tour.status;
        assert.equal(status.signal, signal, `${signal}: ended with ${status.code}`);
        await tour.stderr.cancel();
        await tour.stdout.cancel();
        assert.deepEqual([...Deno.readDirSync(tmp)].map((entry) => entry.name), [], signal);
        const queuesAfter = systemVQueues();
        const added = [...queuesAfter].filter((queue) => !queuesBefore.has(queue));
        assert.deepEqual(added.filter((queue) => queue.startsWith("0 ")), [], signal);
        // A probe running at that moment dies with the tour (PR_SET_PDEATHSIG).
        for (let i = 0; i < 200 && children.some(exists); i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.deepEqual(children.filter(exists), [], `${signal}: probes left running`);
      }
      assert.deepEqual(mountTable(), mountsBefore);
    });
  },
);

/** Whether process `pid` still exists (a zombie counts as gone). */
function exists(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}
