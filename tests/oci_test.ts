/**
 * The OCI runtime (`invoke_ns oci`, cli/oci.ts) driven as podman and conmon
 * drive runc: bundles made here (a static busybox root file system), taken
 * through create → state → start → state → kill → state → delete, checking
 * what the container sees and that nothing is left; the same bundles run
 * with runc side by side where it is installed; and podman with
 * `--runtime invoke_ns-oci` where podman is.
 *
 * The test process makes itself a child subreaper (as conmon does), so a
 * container whose `create` has exited becomes its child and is reaped here.
 */

import assert from "node:assert/strict";
import process from "node:process";
import { defaultConfig } from "../cli/oci.ts";
import { prctl, waitForExit } from "../ffi/libc.ts";
import {
  childrenOf,
  cliCommand,
  cliCommandAs,
  isRoot,
  mountTable,
  NOBODY,
  privilegedTest,
  startConsoleSocket,
  withTempDir,
} from "./helpers.ts";

const BUSYBOX = "/bin/busybox";
const APPLETS = [
  "sh",
  "cat",
  "cut",
  "hostname",
  "ls",
  "sleep",
  "true",
  "echo",
  "id",
  "touch",
  "tty",
  "stty",
  "mkdir",
  "head",
  "wc",
  "grep",
];
const PR_SET_CHILD_SUBREAPER = 36;

if (isRoot) prctl(PR_SET_CHILD_SUBREAPER, 1);

/** Reaps what podman's conmon left to us (the subreaper), waiting up to 5 s for it to end. */
async function reapOrphans(): Promise<void> {
  for (let tries = 0; tries < 500 && childrenOf(Deno.pid).length > 0; tries++) {
    for (const child of childrenOf(Deno.pid)) {
      const stat = Deno.readTextFileSync(`/proc/${child}/stat`);
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) await waitForExit(child);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function which(program: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${program}`).isFile) return `${dir}/${program}`;
    } catch {
      // not here
    }
  }
  return null;
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

const noBusybox = exists(BUSYBOX) ? null : `${BUSYBOX} is missing (apt install busybox-static)`;
const runc = which("runc");
const podman = which("podman");

/** A root file system with a static busybox and its links. */
function makeRootfs(dir: string): string {
  const rootfs = `${dir}/rootfs`;
  Deno.mkdirSync(`${rootfs}/bin`, { recursive: true });
  for (const dir of ["proc", "dev", "sys", "tmp"]) Deno.mkdirSync(`${rootfs}/${dir}`);
  Deno.copyFileSync(BUSYBOX, `${rootfs}/bin/busybox`);
  Deno.chmodSync(`${rootfs}/bin/busybox`, 0o755);
  for (const applet of APPLETS) Deno.symlinkSync("busybox", `${rootfs}/bin/${applet}`);
  return rootfs;
}

// deno-lint-ignore no-explicit-any
type Config = Record<string, any>;

/** A bundle in `dir` running `script` with sh, its config edited by `change`. */
function makeBundle(dir: string, script: string, change: (c: Config) => void = () => {}): string {
  makeRootfs(dir);
  const config: Config = defaultConfig(false);
  config.process.args = ["sh", "-c", script];
  config.root.readonly = false;
  change(config);
  Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(config));
  return dir;
}

/** A runtime's command line with `--root`. */
type Runtime = (root: string) => string[];
const invokeNs: Runtime = (root) => [...cliCommand(), "oci", "--root", root];
const runcRuntime: Runtime = (root) => [runc!, "--root", root];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[]): Promise<Ran> {
  const output = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Runs a verb; fails the test unless it exits 0. */
async function verb(runtime: string[], ...args: string[]): Promise<string> {
  const ran = await run([...runtime, ...args]);
  assert.equal(ran.code, 0, `${args.join(" ")}: ${ran.stderr}`);
  return ran.stdout;
}

/** `create`, with the container's stdio (create's own) going to `out`. */
async function create(runtime: string[], bundle: string, id: string, out: string) {
  const quoted = [...runtime, "create", "--bundle", bundle, id].map((a) => `'${a}'`).join(" ");
  const ran = await run(["/bin/sh", "-c", `exec ${quoted} >'${out}' 2>&1 </dev/null`]);
  assert.equal(ran.code, 0, `create: ${Deno.readTextFileSync(out)}`);
}

async function stateOf(runtime: string[], id: string): Promise<Record<string, unknown>> {
  return JSON.parse(await verb(runtime, "state", id));
}

/** Waits (without a deadline: the test runner's own bounds it) until `out` holds `mark`. */
async function waitFor(out: string, mark: string): Promise<string> {
  for (;;) {
    const text = Deno.readTextFileSync(out);
    if (text.includes(mark)) return text;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What the container printed (its view), for comparison between runtimes. */
const VIEW = [
  "hostname",
  "echo pid $$",
  "cat /proc/self/uid_map",
  "cut -d' ' -f5,9 /proc/self/mountinfo",
  "ls /dev",
  "id",
  "echo ready",
].join("; ");

/** Drives one runtime through the lifecycle; returns what the container saw and the states. */
async function lifecycle(runtime: Runtime, dir: string, id: string) {
  const root = `${dir}/state`;
  const bundle = makeBundle(`${dir}/bundle`, `${VIEW}; exec sleep 1000`);
  const out = `${dir}/out`;
  const cli = runtime(root);
  await create(cli, bundle, id, out);
  const created = await stateOf(cli, id);
  const pid = created.pid as number;
  await verb(cli, "start", id);
  const seen = await waitFor(out, "ready\n");
  const running = await stateOf(cli, id);
  await verb(cli, "kill", id, "KILL");
  await waitForExit(pid); // reaped here, the subreaper
  const stopped = await stateOf(cli, id);
  await verb(cli, "delete", id);
  return { seen, created, running, stopped, root, pid };
}

privilegedTest(
  "create, start, kill and delete a busybox bundle: the container's view, nothing left",
  async () => {
    await withTempDir(async (dir) => {
      const before = mountTable();
      const { seen, created, running, stopped, root, pid } = await lifecycle(invokeNs, dir, "life");
      assert.equal(created.status, "created");
      assert.equal(created.id, "life");
      assert.equal(created.bundle, `${dir}/bundle`);
      assert.equal(running.status, "running");
      assert.equal(running.pid, pid);
      assert.equal(stopped.status, "stopped");
      const lines = seen.split("\n");
      assert.equal(lines[0], "invoke_ns", "the config's hostname");
      assert.equal(lines[1], "pid 1", "PID 1 of its own PID namespace");
      assert.match(lines[2], /^\s+0\s+0\s+4294967295$/, "no user namespace: the whole map");
      for (
        const mount of ["/proc proc", "/dev tmpfs", "/dev/pts devpts", "/dev/shm shm", "/sys sysfs"]
      ) {
        assert.ok(lines.includes(mount), `${mount} in ${seen}`);
      }
      for (const node of ["null", "zero", "tty", "urandom", "ptmx", "fd"]) {
        assert.ok(lines.includes(node), `/dev/${node}`);
      }
      assert.ok(lines.includes("uid=0 gid=0"));
      assert.equal(exists(`${root}/life`), false, "the state directory went");
      assert.equal(exists(`/proc/${pid}`), false, "the process went");
      assert.deepEqual(mountTable(), before, "no mount left on the host");
    });
  },
  noBusybox,
);

privilegedTest(
  "side by side with runc: the same bundle, the same view and the same states",
  async () => {
    await withTempDir(async (dir) => {
      const mine = await lifecycle(invokeNs, `${dir}/mine`, "same");
      const theirs = await lifecycle(runcRuntime, `${dir}/theirs`, "same");
      assert.equal(mine.seen, theirs.seen);
      for (const key of ["created", "running", "stopped"] as const) {
        assert.equal(mine[key].status, theirs[key].status, key);
        assert.deepEqual(
          Object.keys(mine[key]).filter((k) => k !== "annotations").sort(),
          Object.keys(theirs[key]).filter((k) => k !== "annotations").sort(),
          `the keys of state when ${key}`,
        );
      }
      assert.equal(mine.stopped.pid, theirs.stopped.pid, "pid 0 once stopped");
    });
  },
  noBusybox ?? (runc ? null : "runc is not installed (apt install runc)"),
);

privilegedTest(
  "a reused PID is never taken for the container: the start time is checked",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      await create(cli, makeBundle(`${dir}/bundle`, "true"), "reuse", `${dir}/out`);
      const file = `${root}/reuse/state.json`;
      const record = JSON.parse(Deno.readTextFileSync(file));
      const real = record.pid;
      // a live process with another start time stands where the container's PID was
      record.pid = Deno.pid;
      Deno.writeTextFileSync(file, JSON.stringify(record));
      assert.equal((await stateOf(cli, "reuse")).status, "stopped");
      const ran = await run([...cli, "kill", "reuse", "KILL"]);
      assert.equal(ran.code, 1, "no signal for a process that is not the container");
      record.pid = real;
      Deno.writeTextFileSync(file, JSON.stringify(record));
      assert.equal((await stateOf(cli, "reuse")).status, "created");
      await verb(cli, "delete", "reuse"); // created: no --force needed, as runc
      await waitForExit(real);
      assert.equal(exists(`${root}/reuse`), false);
    });
  },
  noBusybox,
);

privilegedTest("refusals: one line on stderr, exit 1, one JSON log record", async () => {
  await withTempDir(async (dir) => {
    const root = `${dir}/state`;
    const log = `${dir}/log.json`;
    const cli = [...invokeNs(root), "--log", log, "--log-format", "json"];
    const bad = makeBundle(`${dir}/bad`, "true", (c) => (c.process.args = []));
    let ran = await run([...cli, "create", "--bundle", bad, "bad"]);
    assert.equal(ran.code, 1);
    assert.equal(ran.stderr, "invoke_ns: process.args: must be a non-empty array of strings\n");
    const records = Deno.readTextFileSync(log).trim().split("\n").map((line) => JSON.parse(line));
    assert.equal(records.length, 1);
    assert.equal(records[0].level, "error");
    assert.equal(records[0].msg, "process.args: must be a non-empty array of strings");
    assert.ok(!Number.isNaN(Date.parse(records[0].time)));
    assert.equal(exists(`${root}/bad`), false, "nothing left of a refused create");

    const seccomp = makeBundle(`${dir}/seccomp`, "true", (c) => {
      c.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/listener.sock" };
    });
    ran = await run([...cli, "create", "--bundle", seccomp, "sec"]);
    assert.equal(ran.code, 1);
    assert.equal(
      ran.stderr,
      "invoke_ns: unsupported: linux.seccomp.listenerPath (not implemented)\n",
    );

    ran = await run([...invokeNs(root), "--systemd-cgroup", "create", "--bundle", bad, "x"]);
    assert.equal(ran.code, 1);
    assert.match(
      ran.stderr,
      /^invoke_ns: unsupported: --systemd-cgroup .*podman --cgroup-manager=cgroupfs\)\n$/,
    );

    for (const args of [["state", "nothere"], ["start", "nothere"], ["kill", "nothere"]]) {
      ran = await run([...invokeNs(root), ...args]);
      assert.equal(ran.code, 1, args.join(" "));
      assert.equal(ran.stderr, 'invoke_ns: container "nothere" does not exist\n');
    }
    ran = await run([...invokeNs(root), "state", "../escape"]);
    assert.equal(ran.code, 1);
    assert.match(ran.stderr, /invalid container ID/);
    // a step that fails in the init stage: one line, and neither state nor process left
    const badMount = makeBundle(`${dir}/badmount`, "true", (c) => {
      c.mounts.push({
        destination: "/x",
        type: "bind",
        source: `${dir}/nonexistent`,
        options: ["bind"],
      });
    });
    ran = await run([...invokeNs(root), "create", "--bundle", badMount, "badmount"]);
    assert.equal(ran.code, 1);
    assert.equal(
      ran.stderr,
      `invoke_ns: mounts: open_tree: ${dir}/nonexistent (ENOENT: No such file or directory)\n`,
    );
    assert.equal(exists(`${root}/badmount`), false);
    assert.deepEqual(childrenOf(Deno.pid), [], "no waiting process left (we are its subreaper)");
    ran = await run([...invokeNs(root), "update", "x"]);
    assert.equal(ran.stderr, "invoke_ns: unsupported: update (not yet honoured)\n");
  });
}, noBusybox);

privilegedTest(
  "a running container is deleted only with --force; a created one starts once",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      const out = `${dir}/out`;
      await create(cli, makeBundle(`${dir}/bundle`, "echo ready; exec sleep 1000"), "once", out);
      const pid = (await stateOf(cli, "once")).pid as number;
      let ran = await run([...cli, "create", "--bundle", `${dir}/bundle`, "once"]);
      assert.equal(ran.code, 1);
      assert.equal(ran.stderr, 'invoke_ns: container "once" already exists\n');
      await verb(cli, "start", "once");
      await waitFor(out, "ready");
      ran = await run([...cli, "start", "once"]);
      assert.equal(ran.stderr, "invoke_ns: cannot start a container that is running\n");
      ran = await run([...cli, "delete", "once"]);
      assert.equal(ran.code, 1);
      assert.equal(
        ran.stderr,
        "invoke_ns: cannot delete a container that is running (use --force)\n",
      );
      const listed = JSON.parse(await verb(cli, "list", "--format", "json"));
      assert.deepEqual(listed.map((s: { id: string; status: string }) => [s.id, s.status]), [[
        "once",
        "running",
      ]]);
      await verb(cli, "delete", "--force", "once");
      await waitForExit(pid);
      assert.equal(exists(`/proc/${pid}`), false);
      assert.deepEqual(JSON.parse(await verb(cli, "list", "--format", "json")), []);
    });
  },
  noBusybox,
);

privilegedTest(
  "containment: capabilities, rlimits, masked and read-only paths, seccomp, resources",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      const out = `${dir}/out`;
      const cgroupsPath = `/invoke_ns_oci_contain_${Deno.pid}`;
      const script = [
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        "echo nofile $(ulimit -n)",
        "echo kcore $(head -c 1 /proc/kcore | wc -c)",
        "echo 1 >/proc/sys/vm/drop_caches || echo sys read-only",
        "mkdir /tmp/x || echo mkdir denied",
        "echo end",
        "exec sleep 1000",
      ].join("; ");
      const bundle = makeBundle(`${dir}/bundle`, script, (c) => {
        c.process.capabilities = {
          bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"],
          permitted: ["CAP_CHOWN", "CAP_KILL"],
          effective: ["CAP_CHOWN", "CAP_KILL"],
        };
        c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 64, hard: 128 }];
        c.linux.maskedPaths = ["/proc/kcore", "/proc/no-such-path"];
        c.linux.readonlyPaths = ["/proc/sys"];
        c.linux.seccomp = {
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
        };
        c.linux.cgroupsPath = cgroupsPath;
        c.linux.resources = {
          pids: { limit: 20 },
          memory: { limit: 64 * 2 ** 20 },
          devices: [{ allow: false, access: "rwm" }],
        };
      });
      const pids = `/sys/fs/cgroup/pids${cgroupsPath}`;
      const memory = `/sys/fs/cgroup/memory${cgroupsPath}`;
      const devices = `/sys/fs/cgroup/devices${cgroupsPath}`;
      await create(cli, bundle, "contained", out);
      try {
        const pid = (await stateOf(cli, "contained")).pid as number;
        if (exists(pids)) assert.equal(Deno.readTextFileSync(`${pids}/pids.max`).trim(), "20");
        if (exists(memory)) {
          assert.equal(Deno.readTextFileSync(`${memory}/memory.limit_in_bytes`).trim(), "67108864");
        }
        if (exists(devices)) {
          const list = Deno.readTextFileSync(`${devices}/devices.list`);
          assert.ok(!list.includes("a *:* rwm"), `deny-all applied: ${list}`);
          assert.ok(list.includes("c 1:3 rwm"), `/dev/null allowed: ${list}`);
        }
        await verb(cli, "start", "contained");
        const seen = await waitFor(out, "end");
        assert.match(seen, /CapEff:\t0000000000000021/, seen);
        assert.match(seen, /CapBnd:\t0000000000000021/, seen);
        assert.ok(seen.includes("nofile 64\n"), seen);
        assert.ok(seen.includes("kcore 0\n"), seen);
        assert.ok(seen.includes("sys read-only\n"), seen);
        assert.ok(seen.includes("mkdir denied\n"), seen);
        assert.ok(seen.includes("Operation not permitted"), seen);
        // exec: root's capabilities as the container got them; another user none (no ambient)
        const capEff = async (...user: string[]) => {
          const got = await verb(
            cli,
            "exec",
            ...user,
            "contained",
            "grep",
            "CapEff",
            "/proc/self/status",
          );
          return got.trim();
        };
        assert.equal(await capEff(), "CapEff:\t0000000000000021");
        assert.equal(await capEff("--user", "1000:1000"), "CapEff:\t0000000000000000");
        // exec joins the container's cgroups: its process is counted in pids.max's cgroup
        if (exists(pids)) {
          const execing = run([...cli, "exec", "contained", "sleep", "1"]);
          // The exec'd command itself is listed (the short-lived process that joins the
          // cgroup and forks it may be seen there too for a moment).
          const commandInside = () =>
            Deno.readTextFileSync(`${pids}/cgroup.procs`).trim().split("\n").some((pid) => {
              try {
                return Deno.readTextFileSync(`/proc/${pid}/cmdline`) === "sleep\x001\x00";
              } catch {
                return false;
              }
            });
          let seenInside = false;
          for (let i = 0; i < 100 && !seenInside; i++) {
            seenInside = commandInside();
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          assert.equal((await execing).code, 0);
          assert.ok(seenInside, "the exec'd process was in the container's pids cgroup");
        }
        // the filter is the container's, from create's config.json even if the bundle changes
        Deno.writeTextFileSync(`${bundle}/config.json`, "{}");
        const denied = await run([...cli, "exec", "contained", "mkdir", "/tmp/y"]);
        assert.notEqual(denied.code, 0);
        assert.match(denied.stderr, /Operation not permitted/);
        await verb(cli, "delete", "--force", "contained");
        await waitForExit(pid);
      } finally {
        await run([...cli, "delete", "--force", "contained"]);
      }
      for (const d of [pids, memory, devices]) assert.equal(exists(d), false, `${d} removed`);
    });
  },
  noBusybox,
);

privilegedTest(
  "hooks get the state on stdin; cgroupsPath is joined, frozen, thawed and removed",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      const out = `${dir}/out`;
      const hook = (name: string) => ({
        path: "/bin/sh",
        args: ["sh", "-c", `cat > ${dir}/${name}.json`],
      });
      const cgroupsPath = `/invoke_ns_oci_test_${Deno.pid}`;
      const bundle = makeBundle(
        `${dir}/bundle`,
        "cat /proc/self/cgroup; echo inside: $(cat /sys/fs/cgroup/pids/cgroup.procs); echo ready; exec sleep 1000",
        (c) => {
          c.hooks = {
            createRuntime: [hook("createRuntime")],
            poststart: [hook("poststart")],
            poststop: [hook("poststop")],
          };
          c.linux.cgroupsPath = cgroupsPath;
          // without a cgroup namespace, its own cgroups are bound, not the host's hierarchies
          c.mounts.push({
            destination: "/sys/fs/cgroup",
            type: "cgroup",
            source: "cgroup",
            options: ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
          });
        },
      );
      await create(cli, bundle, "hooked", out);
      const pid = (await stateOf(cli, "hooked")).pid as number;
      const atCreate = JSON.parse(Deno.readTextFileSync(`${dir}/createRuntime.json`));
      assert.equal(atCreate.id, "hooked");
      assert.equal(atCreate.status, "creating");
      assert.equal(atCreate.pid, pid);
      await verb(cli, "start", "hooked");
      const seen = await waitFor(out, "ready");
      const poststart = JSON.parse(Deno.readTextFileSync(`${dir}/poststart.json`));
      assert.equal(poststart.status, "running");
      assert.equal(poststart.pid, pid);
      const pidsLine = seen.split("\n").find((line) => /:pids:/.test(line));
      assert.ok(pidsLine?.endsWith(`:pids:${cgroupsPath}`), `joined the pids cgroup: ${seen}`);
      const inside = seen.split("\n").find((line) => line.startsWith("inside:"));
      assert.match(inside ?? "", /^inside: 1( \d+)+$/, "its /sys/fs/cgroup/pids is its own cgroup");
      const dirs = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"].map((d) => `${d}${cgroupsPath}`)
        .filter((d) => exists(d));
      assert.ok(dirs.length > 0);
      assert.ok(Deno.readTextFileSync(`${dirs[0]}/cgroup.procs`).includes(String(pid)));
      await verb(cli, "pause", "hooked");
      assert.equal((await stateOf(cli, "hooked")).status, "paused");
      const freezer = `/sys/fs/cgroup/freezer${cgroupsPath}/freezer.state`;
      if (exists(freezer)) assert.equal(Deno.readTextFileSync(freezer).trim(), "FROZEN");
      let ran = await run([...cli, "pause", "hooked"]);
      assert.equal(ran.stderr, "invoke_ns: cannot pause a container that is paused\n");
      await verb(cli, "resume", "hooked");
      assert.equal((await stateOf(cli, "hooked")).status, "running");
      ran = await run([...cli, "resume", "hooked"]);
      assert.equal(ran.stderr, "invoke_ns: cannot resume a container that is running\n");
      await verb(cli, "pause", "hooked"); // delete --force thaws it to kill it
      await verb(cli, "delete", "--force", "hooked");
      await waitForExit(pid);
      const poststop = JSON.parse(Deno.readTextFileSync(`${dir}/poststop.json`));
      assert.equal(poststop.status, "stopped");
      for (const d of dirs) assert.equal(exists(d), false, `${d} removed`);
    });
  },
  noBusybox,
);

privilegedTest(
  "user namespace, read-only root, user and groups, domainname, bind mounts",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      const out = `${dir}/out`;
      Deno.mkdirSync(`${dir}/shared`);
      Deno.writeTextFileSync(`${dir}/shared/file`, "from the host\n");
      const script = [
        "cat /proc/self/uid_map",
        "id",
        "cat /proc/sys/kernel/domainname",
        "cat /data/file",
        "touch /data/new 2>/dev/null && echo data-writable || echo data-read-only",
        "touch /x 2>/dev/null && echo root-writable || echo root-read-only",
        "echo ready",
      ].join("; ");
      const bundle = makeBundle(`${dir}/bundle`, script, (c) => {
        c.root.readonly = true;
        c.domainname = "lab";
        c.linux.namespaces.push({ type: "user" });
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.process.user = { uid: 1000, gid: 1000, additionalGids: [20] };
        c.mounts = c.mounts.filter((m: { destination: string }) => m.destination !== "/sys");
        c.mounts.push({
          destination: "/data",
          type: "bind",
          source: `${dir}/shared`,
          options: ["bind", "ro"],
        });
      });
      // the mapped users reach the root file system through the bundle's directory, and own it
      // (as podman chowns an image's layers for a user namespace)
      Deno.chmodSync(dir, 0o755);
      const chown = await run(["chown", "-hR", "100000:100000", `${bundle}/rootfs`]);
      assert.equal(chown.code, 0, chown.stderr);
      await create(cli, bundle, "userns", out);
      const pid = (await stateOf(cli, "userns")).pid as number;
      await verb(cli, "start", "userns");
      const lines = (await waitFor(out, "ready")).split("\n");
      assert.match(lines[0], /^\s+0\s+100000\s+65536$/);
      assert.equal(lines[1], "uid=1000 gid=1000 groups=20");
      assert.equal(lines[2], "lab");
      assert.equal(lines[3], "from the host");
      assert.equal(lines[4], "data-read-only");
      assert.equal(lines[5], "root-read-only");
      await waitForExit(pid);
      assert.equal((await stateOf(cli, "userns")).status, "stopped");
      await verb(cli, "delete", "userns");
    });
  },
  noBusybox,
);

const python = which("python3");

privilegedTest("process.terminal: a pty whose master goes to the console socket", async () => {
  await withTempDir(async (dir) => {
    const root = `${dir}/state`;
    const cli = invokeNs(root);
    const socket = `${dir}/console.sock`;
    const bundle = makeBundle(`${dir}/bundle`, "tty; stty size; echo done", (c) => {
      c.process.terminal = true;
      c.process.consoleSize = { height: 30, width: 100 };
    });
    const { output } = await startConsoleSocket(python!, socket);
    let ran = await run([...cli, "create", "--bundle", bundle, "tty"]);
    assert.equal(ran.code, 1, "a terminal without a console socket is refused");
    assert.equal(ran.stderr, "invoke_ns: process.terminal needs --console-socket\n");
    await verb(cli, "run", "--console-socket", socket, "--bundle", bundle, "tty");
    const text = await output();
    assert.deepEqual(text.split(/\r?\n/).slice(0, 3), ["/dev/pts/0", "30 100", "done"]);
    ran = await run([...cli, "state", "tty"]);
    assert.equal(ran.code, 1, "run deleted it");
  });
}, noBusybox ?? (python ? null : "python3 is missing (it plays conmon's console socket)"));

const noPodman = noBusybox ??
  (podman ? null : "podman is not installed (apt install podman conmon)");

/** Runs `fn` with a podman image of the busybox root file system and a containers.conf. */
async function withPodman(fn: (podman: (...args: string[]) => string[]) => Promise<void>) {
  await withTempDir(async (dir) => {
    makeRootfs(dir);
    for (const sub of ["etc", "run"]) Deno.mkdirSync(`${dir}/rootfs/${sub}`);
    const tar = await run(["tar", "-C", `${dir}/rootfs`, "-cf", `${dir}/rootfs.tar`, "."]);
    assert.equal(tar.code, 0, tar.stderr);
    // no CAP_SYS_RESOURCE here: podman's default ulimits would fail for any runtime
    Deno.writeTextFileSync(
      `${dir}/containers.conf`,
      '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]\n',
    );
    const image = `localhost/invoke_ns_oci_test_${Deno.pid}`;
    const runtime = new URL("../invoke_ns-oci", import.meta.url).pathname;
    const podmanArgs = (...args: string[]) => [
      "env",
      `CONTAINERS_CONF=${dir}/containers.conf`,
      podman!,
      "--cgroup-manager=cgroupfs",
      "--runtime",
      runtime,
      ...args.map((arg) => arg === "IMAGE" ? image : arg),
    ];
    const imported = await run(podmanArgs("import", `${dir}/rootfs.tar`, image));
    assert.equal(imported.code, 0, imported.stderr);
    try {
      await fn(podmanArgs);
    } finally {
      await run(podmanArgs("rmi", "-f", image));
      await reapOrphans();
    }
  });
}

privilegedTest(
  "podman --runtime invoke_ns-oci: a refused field reaches podman's user as one line",
  async () => {
    const refusal = "unsupported: linux.resources.memory.swappiness (not implemented)";
    await withPodman(async (podmanArgs) => {
      const name = `invoke_ns_oci_refused_${Deno.pid}`;
      const ran = await run(
        podmanArgs("run", "--rm", "--memory-swappiness", "10", "--name", name, "IMAGE", "true"),
      );
      assert.notEqual(ran.code, 0);
      assert.ok(ran.stderr.includes(`invoke_ns-oci: ${refusal}`), ran.stderr);
      const left = await run(
        podmanArgs("ps", "-a", "--filter", `name=${name}`, "--format", "{{.ID}}"),
      );
      assert.equal(left.stdout.trim(), "", "podman removed the container");
      const ids = Deno.readDirSync("/run").some((e) => e.name === "invoke_ns")
        ? [...Deno.readDirSync("/run/invoke_ns")].map((e) => e.name)
        : [];
      for (const id of ids) {
        assert.ok(
          !JSON.parse(Deno.readTextFileSync(`/run/invoke_ns/${id}/state.json`)).id.includes(name),
        );
      }
    });
  },
  noPodman,
);

privilegedTest(
  "podman --runtime invoke_ns-oci: run, exec, stop and rm",
  async () => {
    await withPodman(async (podmanArgs) => {
      let ran = await run(
        podmanArgs("run", "--rm", "--hostname", "pod", "IMAGE", "sh", "-c", "hostname; echo $$"),
      );
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, "pod\n1\n");
      // podman's default containment, as runc gives it where runc is installed
      const probe = [
        "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status",
        "echo nofile $(ulimit -n)",
        "echo kcore $(head -c 1 /proc/kcore | wc -c)",
        "echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || echo sys read-only",
      ].join("; ");
      ran = await run(podmanArgs("run", "--rm", "IMAGE", "sh", "-c", probe));
      assert.equal(ran.code, 0, ran.stderr);
      const caps = (set: string) =>
        BigInt(`0x${ran.stdout.match(new RegExp(`^Cap${set}:\\t(\\w+)$`, "m"))?.[1] ?? "0"}`);
      assert.equal(caps("Eff"), caps("Bnd"), ran.stdout);
      assert.notEqual(caps("Eff"), 0n, "podman's default capabilities");
      assert.equal(caps("Eff") & (1n << 21n), 0n, "no CAP_SYS_ADMIN");
      assert.match(ran.stdout, /^Seccomp:\t2$/m, ran.stdout);
      assert.match(ran.stdout, /^nofile 20000$/m, ran.stdout);
      assert.match(ran.stdout, /^kcore 0$/m, ran.stdout);
      assert.match(ran.stdout, /^sys read-only$/m, ran.stdout);
      if (runc) {
        const withRunc = podmanArgs("run", "--rm", "IMAGE", "sh", "-c", probe).map((arg) =>
          arg.endsWith("/invoke_ns-oci") ? runc : arg
        );
        const theirs = await run(withRunc);
        assert.equal(theirs.code, 0, theirs.stderr);
        assert.equal(ran.stdout, theirs.stdout, "the same containment as podman with runc");
      }
      // podman's limits, --cap-drop and --read-only, seen from inside (its cgroups bound there)
      const limited = [
        "run",
        "--rm",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cap-drop",
        "all",
        "--read-only",
        "IMAGE",
        "sh",
        "-c",
        [
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
          "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
          "touch /x 2>/dev/null || echo read-only",
        ].join("; "),
      ];
      ran = await run(podmanArgs(...limited));
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(
        ran.stdout,
        "67108864\n50\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nread-only\n",
      );
      if (runc) {
        const theirs = await run(
          podmanArgs(...limited).map((arg) => arg.endsWith("/invoke_ns-oci") ? runc : arg),
        );
        assert.equal(theirs.stdout, ran.stdout, "the same as podman with runc");
      }
      // -t: conmon's console socket gets the pty's master
      ran = await run(podmanArgs("run", "--rm", "-t", "IMAGE", "tty"));
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, "/dev/pts/0\r\n");
      const name = `invoke_ns_oci_podman_${Deno.pid}`;
      ran = await run(podmanArgs("run", "-d", "--name", name, "IMAGE", "sleep", "1000"));
      assert.equal(ran.code, 0, ran.stderr);
      ran = await run(podmanArgs("exec", name, "cat", "/proc/1/cmdline"));
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, "sleep\u00001000\u0000");
      ran = await run(podmanArgs("stop", "-t", "1", name));
      assert.equal(ran.code, 0, ran.stderr);
      ran = await run(podmanArgs("rm", name));
      assert.equal(ran.code, 0, ran.stderr);
    });
  },
  noPodman,
);

privilegedTest(
  "exec runs in the container's namespaces; concurrent starts: exactly one wins",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      const out = `${dir}/out`;
      const bundle = makeBundle(`${dir}/bundle`, "echo ready; exec sleep 1000", (c) => {
        c.process.env = ["PATH=/bin", "FROM=config"];
      });
      await create(cli, bundle, "ex", out);
      const pid = (await stateOf(cli, "ex")).pid as number;
      // the lock serialises them: one opens the FIFO, the other then finds the container running
      const starts = await Promise.all([
        run([...cli, "start", "ex"]),
        run([...cli, "start", "ex"]),
      ]);
      assert.deepEqual(starts.map((r) => r.code).sort(), [0, 1]);
      assert.equal(
        starts.find((r) => r.code === 1)?.stderr,
        "invoke_ns: cannot start a container that is running\n",
      );
      await waitFor(out, "ready");
      let ran = await run([
        ...cli,
        "exec",
        "--env",
        "EXTRA=1",
        "ex",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline; echo; env | sort",
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      const lines = ran.stdout.split("\n");
      assert.equal(lines[0], "invoke_ns");
      assert.equal(lines[1], "sleep\u00001000\u0000");
      assert.ok(lines.includes("FROM=config"), "the container's environment");
      assert.ok(lines.includes("EXTRA=1"), "and --env");
      Deno.writeTextFileSync(
        `${dir}/process.json`,
        JSON.stringify({
          args: ["sh", "-c", "env"],
          env: ["PATH=/bin", "ONLY=this"],
          cwd: "/",
          user: { uid: 0, gid: 0 },
        }),
      );
      ran = await run([...cli, "exec", "--process", `${dir}/process.json`, "ex"]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.deepEqual(ran.stdout.trim().split("\n").filter((l) => !/^(PWD|SHLVL)=/.test(l)), [
        "PATH=/bin",
        "ONLY=this",
      ], "exactly the process file's environment (sh adds PWD and SHLVL)");
      ran = await run([...cli, "exec", "--pid-file", `${dir}/exec.pid`, "ex", "true"]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(Deno.readTextFileSync(`${dir}/exec.pid`), /^\d+$/, "the exec'd process's PID");
      ran = await run([
        ...cli,
        "exec",
        "--cwd",
        "/bin",
        "--user",
        "1000:1000",
        "--additional-gids",
        "5",
        "ex",
        "sh",
        "-c",
        "pwd; id",
      ]);
      assert.equal(ran.stdout, "/bin\nuid=1000 gid=1000 groups=5\n", ran.stderr);
      // (its stdio is not a pipe of ours: the detached process would hold it open)
      ran = await run([
        "/bin/sh",
        "-c",
        'exec "$@" >/dev/null 2>&1',
        "sh",
        ...cli,
        "exec",
        "-d",
        "--pid-file",
        `${dir}/detached.pid`,
        "ex",
        "sleep",
        "999",
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      const detached = Number(Deno.readTextFileSync(`${dir}/detached.pid`));
      assert.equal(Deno.readTextFileSync(`/proc/${detached}/cmdline`), "sleep\u0000999\u0000");
      process.kill(detached, "SIGKILL");
      await waitForExit(detached); // ours: we are the subreaper
      ran = await run([...cli, "exec", "--tty", "ex", "true"]);
      assert.equal(ran.stderr, "invoke_ns: unsupported: exec --tty (not yet honoured)\n");
      const pids = JSON.parse(await verb(cli, "ps", "--format", "json", "ex"));
      assert.deepEqual(pids, [pid]);
      // the table names each process's command (read through libc: Deno refuses /proc)
      const table = await verb(cli, "ps", "ex");
      const wanted = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
      assert.ok(wanted !== "" && table.includes(`${pid}`.padEnd(5) + ` ${wanted}`), table);
      await verb(cli, "kill", "--all", "ex", "9");
      await waitForExit(pid);
      await verb(cli, "delete", "ex");
    });
  },
  noBusybox,
);

Deno.test("./invoke_ns-oci is the OCI runtime under its own name", async () => {
  const runtime = new URL("../invoke_ns-oci", import.meta.url).pathname;
  const output = await new Deno.Command(runtime, {
    args: ["features"],
    env: { DENO: Deno.execPath() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const features = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.equal(features.ociVersionMax, "1.2.0");
  assert.ok(features.hooks.includes("poststop"));
  const refused = await new Deno.Command(runtime, {
    args: ["--systemd-cgroup", "state", "x"],
    env: { DENO: Deno.execPath() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(refused.code, 1);
  assert.match(
    new TextDecoder().decode(refused.stderr),
    /^invoke_ns-oci: unsupported: --systemd-cgroup/,
  );
});

privilegedTest("rootless: a --rootless spec run by an unprivileged user", async () => {
  await withTempDir(async (dir) => {
    Deno.chmodSync(dir, 0o755);
    const bundle = makeBundle(`${dir}/bundle`, "id; cat /proc/self/uid_map; hostname", (c) => {
      Object.assign(c, defaultConfig(true), { process: c.process, root: c.root });
      const own = [{ containerID: 0, hostID: NOBODY, size: 1 }];
      c.linux.uidMappings = own;
      c.linux.gidMappings = own;
    });
    const chown = await run(["chown", "-hR", `${NOBODY}:${NOBODY}`, dir]);
    assert.equal(chown.code, 0, chown.stderr);
    const ran = await run(
      cliCommandAs(NOBODY, ["oci", "--root", `${dir}/state`, "run", "--bundle", bundle, "rl"]),
    );
    assert.equal(ran.code, 0, ran.stderr);
    const lines = ran.stdout.split("\n");
    assert.equal(lines[0], "uid=0 gid=0");
    assert.match(lines[1], new RegExp(`^\\s+0\\s+${NOBODY}\\s+1$`));
    assert.equal(lines[2], "invoke_ns");
    assert.deepEqual([...Deno.readDirSync(`${dir}/state`)], [], "run deleted it");
  });
}, noBusybox);

privilegedTest(
  "attack: a symlink planted in the image never leads a mount out of the root",
  async () => {
    await withTempDir(async (dir) => {
      const root = `${dir}/state`;
      const cli = invokeNs(root);
      const out = `${dir}/out`;
      const outside = `${dir}/host-only`;
      const bundle = makeBundle(
        `${dir}/bundle`,
        "cat /proc/self/mountinfo | cut -d' ' -f5,9; echo ready",
        (c) => {
          c.mounts.push({ destination: "/evil/sub", type: "tmpfs", source: "tmpfs" });
          c.mounts.push({ destination: "/up/x", type: "tmpfs", source: "tmpfs" });
        },
      );
      // an absolute link to a host path, and a relative one that climbs above the root
      Deno.symlinkSync(outside, `${bundle}/rootfs/evil`);
      Deno.symlinkSync("../../../../../../..", `${bundle}/rootfs/up`);
      await create(cli, bundle, "evil", out);
      const pid = (await stateOf(cli, "evil")).pid as number;
      await verb(cli, "start", "evil");
      const seen = (await waitFor(out, "ready")).split("\n");
      await waitForExit(pid);
      await verb(cli, "delete", "evil");
      assert.equal(exists(outside), false, "nothing was made on the host");
      assert.ok(
        seen.includes(`${outside}/sub tmpfs`),
        "the absolute link resolved inside the root",
      );
      assert.ok(seen.includes("/x tmpfs"), '".." stopped at the root');
      assert.ok(exists(`${bundle}/rootfs${outside}/sub`), "the mount point was made in the root");
    });
  },
  noBusybox,
);

privilegedTest(
  "the test process stops being a subreaper, with no child left (other test files follow)",
  () => {
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    assert.deepEqual(childrenOf(Deno.pid), []);
  },
);
