/**
 * pivot_root jails: the classic chroot escape and /proc/1/root do not reach
 * the host; bind, read-only bind, tmpfs and --dev mounts appear inside and
 * nothing stays mounted on the host afterwards.
 */
import assert from "node:assert/strict";

import {
  buildTestJail,
  isRoot,
  mountTable,
  NOBODY,
  privilegedTest,
  runCli,
  withTempDir,
} from "./helpers.ts";

/** The classic escape: chroot into a subdirectory, climb out with "..", chroot there. */
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

async function compileEscape(jail: string): Promise<boolean> {
  const source = `${jail}/escape.c`;
  await Deno.writeTextFile(source, ESCAPE_C);
  try {
    const cc = await new Deno.Command("gcc", {
      args: ["-static", "-O1", "-o", `${jail}/escape`, source],
      stderr: "piped",
    }).output();
    return cc.code === 0;
  } catch {
    return false;
  }
}

/** Whether gcc can build the escape program statically here (checked once, in a scratch directory). */
async function staticGccProblem(): Promise<string | null> {
  const dir = await Deno.makeTempDir({ prefix: "invoke_ns_cc_" });
  try {
    return await compileEscape(dir) ? null : "no gcc with static libc to build the escape program";
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

privilegedTest(
  "pivot_root: the chroot escape reaches the host under --chroot, not under pivot_root",
  async () => {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o755);
      const jail = `${dir}/jail`;
      await Deno.mkdir(jail);
      assert.ok(await compileEscape(jail), "gcc built it a moment ago");
      const secret = `${dir}/outside.txt`;
      await Deno.writeTextFile(secret, "host secret\n");
      const before = mountTable();
      const chrooted = await runCli(["-m", "--chroot", "-c", jail, "/escape", secret]);
      assert.match(
        chrooted.stdout,
        /^ESCAPED: host secret$/m,
        "the escape must work on a plain chroot",
      );
      const pivoted = await runCli(["-m", "-c", jail, "/escape", secret]);
      assert.doesNotMatch(pivoted.stdout, /ESCAPED/);
      assert.match(pivoted.stdout, /escape failed/);
      assert.deepEqual(mountTable(), before);
    });
  },
  isRoot ? await staticGccProblem() : null,
);

privilegedTest("pivot_root: /proc/1/root is the jail, not the host", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    const jail = `${dir}/jail`;
    await Deno.mkdir(jail);
    await buildTestJail(jail, ["/bin/sh", "/bin/cat", "/bin/ls"]);
    await Deno.writeTextFile(`${dir}/outside.txt`, "host secret\n");
    const ran = await runCli([
      "-pm",
      "-c",
      jail,
      "/bin/sh",
      "-c",
      `cat /proc/1/root${dir}/outside.txt 2>&1; ls /proc/1/root/`,
    ]);
    assert.doesNotMatch(ran.stdout, /host secret/);
    assert.match(ran.stdout, /No such file/);
    assert.match(ran.stdout, /^bin$/m);
  });
});

privilegedTest(
  "mounts: --bind, --ro-bind, --tmpfs and --dev inside, nothing left on the host",
  async () => {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o755);
      const jail = `${dir}/jail`;
      await Deno.mkdir(jail);
      await buildTestJail(jail, ["/bin/sh", "/bin/cat", "/bin/ls", "/bin/touch"]);
      const shared = `${dir}/shared`;
      await Deno.mkdir(shared);
      await Deno.writeTextFile(`${shared}/note.txt`, "from the host\n");
      const before = mountTable();
      for (const asUser of [undefined, NOBODY]) {
        if (asUser !== undefined) {
          await Deno.chmod(`${shared}/note.txt`, 0o644);
          await Deno.chmod(shared, 0o777);
          await Deno.chown(jail, NOBODY, NOBODY); // a rootless user's jail is their own
        }
        const ran = await runCli([
          "-m",
          "-c",
          jail,
          "--bind",
          `${shared}:/rw`,
          "--ro-bind",
          `${shared}:/ro`,
          "--tmpfs",
          "/scratch",
          "--dev",
          "/bin/sh",
          "-c",
          "cat /rw/note.txt; touch /rw/made-inside && echo rw-ok; touch /ro/x 2>/dev/null || echo ro-refused; " +
          "touch /scratch/y && ls /scratch; ls /dev; cat /dev/null && echo dev-null-ok",
        ], { asUser });
        assert.equal(ran.code, 0, ran.stderr);
        assert.match(ran.stdout, /^from the host$/m);
        assert.match(ran.stdout, /^rw-ok$/m);
        assert.match(ran.stdout, /^ro-refused$/m);
        assert.match(ran.stdout, /^y$/m);
        assert.match(
          ran.stdout,
          /^fd\nfull\nnull\nrandom\nstderr\nstdin\nstdout\ntty\nurandom\nzero$/m,
        );
        assert.match(ran.stdout, /^dev-null-ok$/m);
        assert.ok(Deno.statSync(`${shared}/made-inside`).isFile, "the bind mount was not writable");
        await Deno.remove(`${shared}/made-inside`);
        assert.deepEqual(mountTable(), before, "a mount was left on the host");
      }
      for (const point of ["rw", "ro", "scratch", "dev"]) {
        assert.throws(() => Deno.lstatSync(`${jail}/${point}`), `mount point /${point} was left`);
      }
    });
  },
);

Deno.test("mounts: bad specs are refused with one line", async () => {
  const cases: [string[], number, RegExp][] = [
    [["--bind", "/etc:/x", "true"], 2, /need -m/],
    [
      ["-m", "--bind", "/no/such/source:/x", "true"],
      125,
      /no such file or directory \(bind source\)/,
    ],
    [["-m", "--tmpfs", "relative", "true"], 125, /must be an absolute path/],
    [["-m", "--bind", "/etc:/a/../b", "true"], 125, /may not contain "\.\."/],
  ];
  for (const [args, code, pattern] of cases) {
    const ran = await runCli(args);
    assert.equal(ran.code, code, `${args.join(" ")}: ${ran.stderr}`);
    assert.match(ran.stderr, pattern);
    assert.equal(ran.stderr.trimEnd().split("\n").length, 1);
  }
});

privilegedTest(
  "mounts: a symlink in the jail is followed from the jail's root, never out",
  async () => {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o755);
      const jail = `${dir}/jail`;
      await Deno.mkdir(jail);
      await buildTestJail(jail, ["/bin/sh", "/bin/ls", "/bin/touch"]);
      const outside = `${dir}/outside`;
      await Deno.mkdir(outside);
      await Deno.symlink(outside, `${jail}/planted`);
      await Deno.symlink("../../outside", `${jail}/relative`);
      const names = (path: string) => [...Deno.readDirSync(path)].map((entry) => entry.name).sort();
      const entries = names(jail);
      const before = mountTable();
      for (const link of ["/planted", "/relative"]) {
        const ran = await runCli([
          "-m",
          "-c",
          jail,
          "--tmpfs",
          `${link}/sub`,
          "/bin/sh",
          "-c",
          `touch ${link}/sub/x && ls ${link}/sub`,
        ]);
        assert.equal(ran.code, 0, ran.stderr);
        assert.equal(ran.stdout, "x\n");
        assert.deepEqual(
          [...Deno.readDirSync(outside)],
          [],
          "something was created outside the jail",
        );
      }
      assert.deepEqual(mountTable(), before);
      // the mount points made inside the jail were removed again, the links left alone
      // (/proc is made as the seed did, and stays)
      assert.deepEqual(names(jail), [...entries, "proc"].sort());
    });
  },
);

privilegedTest(
  "mounts: without a jail, on the host's tree, and the mount points made are removed",
  async () => {
    await withTempDir(async (dir) => {
      const shared = `${dir}/shared`;
      await Deno.mkdir(shared);
      await Deno.writeTextFile(`${shared}/note.txt`, "from the host\n");
      const before = mountTable();
      const ran = await runCli([
        "-m",
        "--ro-bind",
        `${shared}:${dir}/new/ro`,
        "--tmpfs",
        `${dir}/new/scratch`,
        "--bind",
        `${shared}/note.txt:${dir}/file-point`,
        "sh",
        "-c",
        `cat ${dir}/new/ro/note.txt ${dir}/file-point; touch ${dir}/new/ro/x 2>/dev/null || ` +
        `echo ro-refused; touch ${dir}/new/scratch/y && ls ${dir}/new/scratch`,
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, "from the host\nfrom the host\nro-refused\ny\n");
      assert.deepEqual(mountTable(), before);
      assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["shared"]);
    });
  },
);

privilegedTest(
  "mounts: a bind source under /proc or /sys works (Deno refuses them; libc is asked)",
  async () => {
    const ran = await runCli(["-m", "--ro-bind", "/proc/sys/kernel:/mnt", "cat", "/mnt/ostype"]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "Linux\n");
  },
);
