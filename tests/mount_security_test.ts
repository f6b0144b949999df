/**
 * Mounts and jails attacked (issue 14): a link planted in a mount point's
 * path, a target swapped between check and mount, two runs sharing a mount
 * point, `jail /` and a symlinked jail directory, writes into a submount of
 * a read-only bind, a symlinked /proc in a jail, a forged cleanup mark, and what a jail does not
 * confine without a user namespace.
 */
import assert from "node:assert/strict";

import { setXattr } from "../ffi/mountapi.ts";
import {
  buildTestJail,
  cliCommand,
  mountTable,
  NOBODY,
  privilegedTest,
  runCli,
  withTempDir,
} from "./helpers.ts";

/** The names in `path`, sorted. */
function names(path: string): string[] {
  return [...Deno.readDirSync(path)].map((entry) => entry.name).sort();
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A jail in `dir`/jail with `binaries`, readable by everyone. */
async function makeJail(dir: string, binaries: string[]): Promise<string> {
  await Deno.chmod(dir, 0o755);
  const jail = `${dir}/jail`;
  await Deno.mkdir(jail);
  await buildTestJail(jail, ["/bin/sh", ...binaries]);
  await Deno.mkdir(`${jail}/proc`); // as a pivot_root jail makes it, to stay
  return jail;
}

/** Waits (bounded) until `path` exists; false when it never did. */
async function appears(path: string): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    if (exists(path)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** A shell loop that waits (at most ~30 s) for `path` to exist. */
const waitFor = (path: string) =>
  `i=0; while [ ! -e ${path} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`;

/** Starts the CLI with `args`, output piped. */
function spawnCli(args: string[]): Deno.ChildProcess {
  const [command, ...rest] = cliCommand();
  return new Deno.Command(command, {
    args: [...rest, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

privilegedTest(
  "cleanup: a link the command planted in a mount point's path is not followed",
  async () => {
    await withTempDir(async (dir) => {
      const jail = await makeJail(dir, ["/bin/umount", "/bin/rmdir", "/bin/ln"]);
      const victim = `${dir}/victim/scratch`;
      await Deno.mkdir(victim, { recursive: true });
      const before = mountTable();
      // issue 14, item 2, word for word
      const ran = await runCli([
        "-U",
        "-pm",
        "-c",
        jail,
        "--tmpfs",
        "/mnt/scratch",
        "sh",
        "-c",
        `umount /mnt/scratch; rmdir /mnt/scratch; rmdir /mnt; ln -s ${dir}/victim /mnt`,
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.ok(exists(victim), "the cleanup deleted a directory outside the jail");
      assert.ok(Deno.lstatSync(`${jail}/mnt`).isSymlink, "the planted link is the command's own");
      assert.deepEqual(mountTable(), before);
    });
  },
);

const SWAPPER_C = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  /* bounded: the test kills it long before */
  for (long i = 0; i < 2000000000L; i++)
    renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
  return 0;
}
`;

privilegedTest(
  "mounts: a target swapped for a symlink between check and mount never leads out",
  async () => {
    await withTempDir(async (dir) => {
      const jail = await makeJail(dir, []);
      const outside = `${dir}/outside`;
      await Deno.mkdir(outside);
      await Deno.mkdir(`${jail}/a`);
      await Deno.symlink(outside, `${jail}/alink`);
      await Deno.writeTextFile(`${dir}/swapper.c`, SWAPPER_C);
      const cc = await new Deno.Command("gcc", {
        args: ["-O1", "-o", `${dir}/swapper`, `${dir}/swapper.c`],
        stderr: "piped",
      }).output();
      assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
      const before = mountTable();
      const swapper = new Deno.Command(`${dir}/swapper`, {
        args: [`${jail}/a`, `${jail}/alink`],
      }).spawn();
      const failures: string[] = [];
      let succeeded = 0;
      try {
        for (let i = 0; i < 100; i++) {
          const ran = await runCli(["-U", "-pm", "-c", jail, "--tmpfs", `/a/b${i}/c`]);
          if (ran.code === 0) {
            succeeded++;
            continue;
          }
          failures.push(ran.stderr);
          assert.equal(ran.code, 125, ran.stderr);
          assert.equal(ran.stderr.trimEnd().split("\n").length, 1, ran.stderr);
          assert.match(ran.stderr, /^invoke_ns: (mount|jail): /);
          assert.doesNotMatch(ran.stderr, /Error|internal/);
        }
      } finally {
        swapper.kill("SIGKILL");
        await swapper.status;
      }
      assert.deepEqual(names(outside), [], "a directory was created outside the jail");
      assert.deepEqual(mountTable(), before);
      assert.ok(succeeded > 0, `no run succeeded: ${failures.slice(0, 3).join("")}`);
    });
  },
);

privilegedTest(
  "mounts: two runs sharing a mount point: the first's end leaves the second's mount alone",
  async () => {
    await withTempDir(async (dir) => {
      const jail = await makeJail(dir, ["/bin/sleep", "/bin/cat", "/bin/touch"]);
      await Deno.mkdir(`${jail}/sync`);
      const entries = names(jail);
      const before = mountTable();
      const shared = ["-pm", "-c", jail, "--tmpfs", "/shared/t", "sh", "-c"];
      // the first run makes /shared/t, then waits for the second to be up
      const first = spawnCli([...shared, `touch /sync/a-up; ${waitFor("/sync/b-up")}`]);
      assert.ok(await appears(`${jail}/sync/a-up`), "the first run did not start");
      const second = spawnCli([
        ...shared,
        `echo data > /shared/t/f && touch /sync/b-up; ${waitFor("/sync/a-done")}; cat /shared/t/f`,
      ]);
      const firstEnded = await first.output();
      assert.equal(firstEnded.code, 0, new TextDecoder().decode(firstEnded.stderr));
      await Deno.writeTextFile(`${jail}/sync/a-done`, "");
      const secondEnded = await second.output();
      const decoder = new TextDecoder();
      assert.equal(secondEnded.code, 0, decoder.decode(secondEnded.stderr));
      assert.equal(decoder.decode(secondEnded.stdout), "data\n", "the second run's mount was lost");
      // the last one out removed what the first made
      assert.deepEqual(names(jail), entries);
      assert.deepEqual(mountTable(), before);

      // a run killed with SIGKILL cannot clean up; the next run that uses the
      // same mount point removes what it left
      const killed = spawnCli([...shared, "touch /sync/k-up; sleep 100"]);
      assert.ok(await appears(`${jail}/sync/k-up`), "the killed run did not start");
      killed.kill("SIGKILL");
      await killed.output();
      assert.ok(exists(`${jail}/shared/t`));
      const next = await runCli(["-pm", "-c", jail, "--tmpfs", "/shared/t", "/bin/sh", "-c", ":"]);
      assert.equal(next.code, 0, next.stderr);
      assert.deepEqual(names(jail), entries, "what the killed run left was not removed");
      assert.deepEqual(mountTable(), before);
    });
  },
);

privilegedTest(
  "mounts: 300 mount points in one run, every lock handed over, nothing left",
  async () => {
    await withTempDir(async (dir) => {
      const before = mountTable();
      const args = Array.from({ length: 300 }, (_, i) => ["--tmpfs", `${dir}/m/t${i}`]).flat();
      // one message per lock filled the socket while the parent could not read it: a hang
      const run = spawnCli([
        "-m",
        ...args,
        "sh",
        "-c",
        `grep -c ' ${dir}/m/' /proc/self/mountinfo`,
      ]);
      const guard = setTimeout(() => run.kill("SIGKILL"), 60_000);
      const ran = await run.output();
      clearTimeout(guard);
      assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
      assert.equal(new TextDecoder().decode(ran.stdout), "300\n");
      assert.deepEqual(names(dir), []);
      assert.deepEqual(mountTable(), before);
    });
  },
);

privilegedTest(
  "cleanup: a mark forged by a directory's owner does not make a root run remove it",
  async () => {
    await withTempDir(async (dir) => {
      const jail = await makeJail(dir, []);
      // an empty directory its owner may mark, in a directory only root may change
      await Deno.mkdir(`${jail}/home`);
      await Deno.chown(`${jail}/home`, NOBODY, NOBODY);
      setXattr(`${jail}/home`, "user.invoke_ns.mount-point", "");
      const entries = names(jail);
      const ran = await runCli(["-pm", "-c", jail, "--tmpfs", "/home/t", "/bin/sh", "-c", ":"]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.deepEqual(names(jail), entries, "a root run removed a directory on a forged mark");
      assert.deepEqual(names(`${jail}/home`), [], "the run's own mount point was left");
    });
  },
);

privilegedTest("jail: `jail /` and a DIR that links elsewhere are refused", async () => {
  await withTempDir(async (dir) => {
    // In a mount namespace of its own where / is read-only: were the check
    // missing, the copies would fail with EROFS instead of replacing host files.
    const refusal = await new Deno.Command("unshare", {
      args: [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount -o bind,remount,ro / && exec "$@"`,
        "sh",
        ...cliCommand(),
        "jail",
        "/",
        "/bin/true",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(refusal.stderr);
    assert.equal(refusal.code, 1, stderr);
    assert.match(stderr, /^invoke_ns: jail: \/: is the host's root directory/);
    assert.equal(stderr.trimEnd().split("\n").length, 1);

    const other = `${dir}/other`;
    await Deno.mkdir(`${other}/etc`, { recursive: true });
    await Deno.writeTextFile(`${other}/etc/passwd`, "precious\n");
    await Deno.symlink(other, `${dir}/link`);
    const linked = await runCli(["jail", `${dir}/link`, "/bin/true"]);
    assert.equal(linked.code, 1, linked.stderr);
    assert.equal(
      linked.stderr,
      `invoke_ns: jail: ${dir}/link: leads through a symlink to ${other}; ` +
        "name that directory itself to build the jail there\n",
    );
    assert.equal(await Deno.readTextFile(`${other}/etc/passwd`), "precious\n");
    // a DIR not made yet, through the link: refused before anything is created
    const below = await runCli(["jail", `${dir}/link/new`, "/bin/true"]);
    assert.equal(below.code, 1, below.stderr);
    assert.match(below.stderr, /leads through a symlink to \S+\/other\/new;/);
    assert.deepEqual(names(other), ["etc"]);
    const real = await runCli(["jail", other, "/bin/true"]);
    assert.equal(real.code, 0, real.stderr);
    assert.match(await Deno.readTextFile(`${other}/etc/passwd`), /^root:x:0:0:/);
  });
});

privilegedTest(
  "mounts: --ro-bind is read-only on every submount, keeps the atime mode, binds are nosuid,nodev",
  async () => {
    await withTempDir(async (dir) => {
      const jail = await makeJail(dir, ["/bin/touch", "/bin/cat"]);
      const source = `${dir}/source`;
      await Deno.mkdir(`${source}/sub`, { recursive: true });
      const mounted = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "strictatime,mode=0777", "tmpfs", `${source}/sub`],
      }).output();
      assert.equal(mounted.code, 0, "cannot mount a tmpfs for the test");
      try {
        await Deno.chmod(source, 0o777);
        const before = mountTable();
        for (const asUser of [undefined, NOBODY]) {
          if (asUser !== undefined) await Deno.chown(jail, NOBODY, NOBODY);
          const ran = await runCli([
            "-pm",
            "-c",
            jail,
            "--ro-bind",
            `${source}:/ro`,
            "--bind",
            `${source}:/rw`,
            "sh",
            "-c",
            "touch /ro/top 2>&1; touch /ro/sub/x 2>&1; touch /rw/sub/y && echo rw-ok; " +
            "cat /proc/self/mountinfo",
          ], { asUser });
          const who = asUser === undefined ? "root" : "rootless";
          assert.equal(ran.code, 0, `${who}: ${ran.stderr}`);
          assert.match(ran.stdout, /\/ro\/top'?: Read-only file system/, who);
          assert.match(ran.stdout, /\/ro\/sub\/x'?: Read-only file system/, `${who}: submount`);
          assert.match(ran.stdout, /^rw-ok$/m, who);
          const options = (point: string) => {
            const line = ran.stdout.split("\n").find((l) => l.split(" ")[4] === point);
            assert.ok(line, `${who}: ${point} is not mounted`);
            return line.split(" ")[5].split(",");
          };
          for (const point of ["/ro", "/ro/sub", "/rw", "/rw/sub"]) {
            const flags = options(point);
            assert.ok(flags.includes("nosuid") && flags.includes("nodev"), `${who} ${point}`);
            assert.equal(flags[0], point.startsWith("/ro") ? "ro" : "rw", `${who} ${point}`);
          }
          assert.ok(options("/ro").includes("relatime"), `${who}: relatime dropped`);
          assert.ok(!options("/ro/sub").includes("relatime"), `${who}: strictatime changed`);
          assert.ok(exists(`${source}/sub/y`));
          await Deno.remove(`${source}/sub/y`);
          assert.deepEqual(mountTable(), before, `${who}: a mount was left on the host`);
        }
      } finally {
        await new Deno.Command("umount", { args: [`${source}/sub`] }).output();
      }
    });
  },
);

privilegedTest("jail: a symlinked /proc is resolved inside the jail, never out", async () => {
  await withTempDir(async (dir) => {
    const jail = await makeJail(dir, ["/bin/cat"]);
    const outside = `${dir}/outside`;
    await Deno.mkdir(outside);
    await Deno.remove(`${jail}/proc`);
    await Deno.symlink(outside, `${jail}/proc`); // absolute: meant from the jail's root
    const entries = names(jail);
    const before = mountTable();
    for (const asUser of [undefined, NOBODY]) {
      if (asUser !== undefined) await Deno.chown(jail, NOBODY, NOBODY);
      const ran = await runCli(["-pm", "-c", jail, "sh", "-c", "cat /proc/1/comm"], { asUser });
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, "sh\n");
      assert.deepEqual(names(outside), []);
      assert.deepEqual(names(jail), entries, "a directory made for /proc was left");
      assert.deepEqual(mountTable(), before);
    }
  });
});

privilegedTest(
  "jail: without -U, root in a pivot_root jail without -p reaches the host through a new /proc",
  async () => {
    await withTempDir(async (dir) => {
      const jail = await makeJail(dir, ["/bin/mount", "/bin/cat"]);
      const host = (await Deno.readTextFile("/etc/hostname")).trim();
      const escape = `mount -t proc proc /proc && cat /proc/${Deno.pid}/root/etc/hostname`;
      // what README says: root without a user namespace is not confined
      const root = await runCli(["-m", "-c", jail, "sh", "-c", escape]);
      assert.equal(root.stdout.trim(), host, root.stderr);
      // with -U, the jailed root may not mount the host's procfs
      const user = await runCli(["-U", "-m", "-c", jail, "sh", "-c", escape]);
      assert.notEqual(user.code, 0);
      assert.doesNotMatch(user.stdout, new RegExp(host));
    });
  },
);
