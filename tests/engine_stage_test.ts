/**
 * What the engine lets the tool do during setup, each shown for real:
 * joining a cgroup before the cgroup namespace is made with nothing of the
 * tool charged to it (a 32 MiB memory limit, which a Deno would exceed),
 * hooks between the steps (createRuntime in the tool once the namespaces
 * exist, createContainer in the container's mount namespace before
 * pivot_root, startContainer inside just before the command), and a
 * process that waits before exec while the program that created it exits.
 */
import assert from "node:assert/strict";
import { launch } from "../mod.ts";
import {
  buildTestJail,
  cliCommand,
  isRoot,
  privilegedTest,
  RUN_FLAGS,
  withTempDir,
} from "./helpers.ts";

/** The v1 memory hierarchy's directory of this process's own cgroup, if there is one. */
function ownMemoryCgroup(): string | null {
  const line = Deno.readTextFileSync("/proc/self/cgroup").split("\n")
    .find((entry) => entry.split(":")[1]?.split(",").includes("memory"));
  if (!line) return null;
  const dir = `/sys/fs/cgroup/memory${line.split(":").slice(2).join(":")}`.replace(/\/$/, "");
  try {
    Deno.statSync(`${dir}/memory.limit_in_bytes`);
    return dir;
  } catch {
    return null;
  }
}

const memory = isRoot ? ownMemoryCgroup() : null;

Deno.test({
  name:
    "engine: the command joins a 32 MiB cgroup before its cgroup namespace; the tool is never charged",
  ignore: memory === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cases: { what: string; spec: Parameters<typeof launch>[0] }[] = [
      { what: "in the clone child", spec: { command: [] } },
      {
        what: "in the init stage (a whole Deno), as its last step",
        spec: {
          command: [],
          idRanges: { users: [{ inside: 0, outside: 0, count: 65536 }], groups: [] },
        },
      },
    ];
    for (const { what, spec } of cases) {
      const dir = `${memory}/invoke_ns_engine_test_${Deno.pid}`;
      Deno.mkdirSync(dir);
      try {
        Deno.writeTextFileSync(`${dir}/memory.limit_in_bytes`, String(32 << 20));
        const output = await Deno.makeTempFile();
        try {
          const { code } = await launch({
            ...spec,
            command: ["sh", "-c", `cat /proc/self/cgroup > ${output}`],
            cgroup: true,
            cgroups: [dir],
          });
          assert.equal(code, 0, what);
          const lines = Deno.readTextFileSync(output).trim().split("\n");
          const inside = lines.find((line) => line.split(":")[1]?.split(",").includes("memory"));
          assert.equal(inside?.split(":")[2], "/", `${what}: its cgroup is its root: ${lines}`);
        } finally {
          Deno.removeSync(output);
        }
        const peak = Number(Deno.readTextFileSync(`${dir}/memory.max_usage_in_bytes`));
        assert.ok(peak < 16 << 20, `${what}: ${peak} bytes charged: the tool's memory was not`);
        assert.equal(Deno.readTextFileSync(`${dir}/tasks`).trim(), "", what);
      } finally {
        Deno.removeSync(dir);
      }
    }
  },
});

privilegedTest("engine: hooks run between the steps, each where it belongs, in order", async () => {
  await withTempDir(async (dir) => {
    Deno.chmodSync(dir, 0o755);
    const jail = `${dir}/jail`;
    await buildTestJail(jail, ["/bin/sh", "/bin/cat", "/usr/bin/readlink"]);
    Deno.mkdirSync(`${jail}/proc`);
    Deno.mkdirSync(`${jail}/log`);
    Deno.mkdirSync(`${dir}/log`, { mode: 0o777 });
    // One script, found at the same path on the host and in the jail.
    const script = "#!/bin/sh\nstate=$(cat)\n" +
      'log="$2/log/hooks"; [ -d "$2/log" ] || log=/log/hooks\n' +
      'echo "$1 $(readlink /proc/self/ns/mnt) $state" >> "$log"\n';
    for (const where of [`${dir}/hook`, `${jail}${dir}/hook`]) {
      Deno.mkdirSync(where.slice(0, where.lastIndexOf("/")), { recursive: true });
      Deno.writeTextFileSync(where, script);
      Deno.chmodSync(where, 0o755);
    }
    const hook = (point: string) => [{ path: `${dir}/hook`, args: ["hook", point, dir] }];
    const { code } = await launch({
      command: ["sh", "-c", "echo command $(readlink /proc/self/ns/mnt) >> /log/hooks"],
      pid: true,
      mount: true,
      jail,
      mounts: [{ kind: "bind", source: `${dir}/log`, target: "/log" }],
      hooks: {
        createRuntime: [
          ...hook("createRuntime"),
          // runtime-spec: `args` is execv's argv, argv[0] included, whatever `path` is
          {
            path: "/bin/sh",
            args: [
              "argv0-of-the-hook",
              "-c",
              `tr '\\0' ' ' < /proc/self/cmdline > ${dir}/log/argv`,
            ],
          },
        ],
        createContainer: hook("createContainer"),
        startContainer: hook("startContainer"),
      },
      hookState: { id: "demo" },
    });
    assert.equal(code, 0);
    assert.match(Deno.readTextFileSync(`${dir}/log/argv`), /^argv0-of-the-hook -c /);
    const lines = Deno.readTextFileSync(`${dir}/log/hooks`).trim().split("\n").map((line) =>
      line.split(" ")
    );
    assert.deepEqual(lines.map((fields) => fields[0]), [
      "createRuntime",
      "createContainer",
      "startContainer",
      "command",
    ]);
    const hostMnt = Deno.readLinkSync("/proc/self/ns/mnt");
    const [runtime, container, start, command] = lines;
    assert.equal(runtime[1], hostMnt, "createRuntime runs in the runtime's mount namespace");
    assert.notEqual(container[1], hostMnt, "createContainer runs in the container's");
    assert.equal(container[1], command[1]);
    assert.equal(start[1], command[1], "startContainer too");
    // the state, on stdin: the caller's fields and the container's PID outside
    const state = JSON.parse(runtime.slice(2).join(" "));
    assert.equal(state.id, "demo");
    assert.ok(Number.isInteger(state.pid) && state.pid > 1);
    assert.equal(JSON.parse(start.slice(2).join(" ")).pid, state.pid);
  });
});

privilegedTest("engine: a failing hook stops the launch before the command, one line", async () => {
  await withTempDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/fail`, "#!/bin/sh\necho refused >&2\nexit 3\n");
    Deno.chmodSync(`${dir}/fail`, 0o755);
    await assert.rejects(
      launch({
        command: ["sh", "-c", `touch ${dir}/ran`],
        pid: true,
        hooks: { createRuntime: [{ path: `${dir}/fail` }] },
      }),
      /createRuntime hook .*\/fail exited with 3: refused/,
    );
    assert.throws(() => Deno.statSync(`${dir}/ran`), Deno.errors.NotFound);
  });
});

privilegedTest(
  "engine: created, the process waits before exec while its creator exits; opening the FIFO starts it",
  async () => {
    await withTempDir(async (dir) => {
      const fifo = `${dir}/exec.fifo`;
      const mkfifo = await new Deno.Command("mkfifo", { args: ["-m", "0600", fifo] }).output();
      assert.equal(mkfifo.code, 0);
      const creator = `${dir}/create.ts`;
      const launchModule = new URL("../lib/launch.ts", import.meta.url).href;
      Deno.writeTextFileSync(
        creator,
        `import { launchDetached } from ${JSON.stringify(launchModule)};\n` +
          `const { pid } = await launchDetached({ command: ["sh", "-c", "echo started $$ > ${dir}/out"], pid: true, mount: true, startFifo: ${
            JSON.stringify(fifo)
          } });\nconsole.log(pid);\n`,
      );
      const [deno] = cliCommand();
      // The container inherits the creator's stdout: read its one line, not to the end.
      const creating = new Deno.Command(deno, {
        args: ["run", ...RUN_FLAGS, creator],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = creating.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      while (!said.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        said += value;
      }
      reader.releaseLock();
      const status = await creating.status;
      assert.equal(status.code, 0, "the creator exits once its container is created");
      const pid = Number(said.trim());
      assert.ok(pid > 0, said);
      try {
        // the creator has exited; its container waits, reparented, and runs nothing yet
        const state = Deno.readTextFileSync(`/proc/${pid}/status`);
        assert.doesNotMatch(state, /^State:\s+Z/m);
        assert.doesNotMatch(state, new RegExp(`^PPid:\\s+${creating.pid}$`, "m"));
        assert.throws(() => Deno.statSync(`${dir}/out`), Deno.errors.NotFound);
        // start: open the FIFO and read what the container writes
        const file = await Deno.open(fifo, { read: true });
        const byte = new Uint8Array(1);
        assert.equal(await file.read(byte), 1);
        file.close();
        let out = "";
        for (let i = 0; i < 300 && !out; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          try {
            out = Deno.readTextFileSync(`${dir}/out`);
          } catch {
            // not yet
          }
        }
        assert.equal(out, "started 1\n", "the command ran, as PID 1 of its namespace");
      } finally {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // ended
        }
        await creating.stdout.cancel().catch(() => {});
      }
    });
  },
);
