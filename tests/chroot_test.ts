/**
 * `-c DIR`: a jail built by the test runs a command and cannot see a file
 * placed outside it; with `-pm` a fresh /proc is mounted inside the jail.
 */
import assert from "node:assert/strict";
import {
  buildTestJail,
  mountTable,
  NOBODY,
  privilegedTest,
  runCli,
  withTempDir,
} from "./helpers.ts";

privilegedTest("jail: -c runs the command inside and hides what is outside", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    const jail = `${dir}/jail`;
    await Deno.mkdir(jail);
    await buildTestJail(jail, ["/bin/sh", "/bin/ls", "/bin/cat", "/bin/grep"]);
    await Deno.writeTextFile(`${dir}/outside.txt`, "secret");
    await Deno.writeTextFile(`${jail}/inside.txt`, "visible");
    const before = mountTable();
    const ran = await runCli([
      "-vpm",
      "-c",
      jail,
      "/bin/sh",
      "-c",
      `cat /inside.txt; echo; ls /; test -e ${dir}/outside.txt && echo LEAK; ls /proc | grep -c '^[0-9]'; pwd`,
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    // pivot_root (with -m) says, under -v, exactly what the seed's chroot said
    const jailLines = ran.stdout.split("\n").filter((line) => /jail|root/.test(line));
    assert.deepEqual(jailLines, [
      " Child: creating chroot jail",
      " Child: changing directory into chroot jail",
    ]);
    assert.match(ran.stdout, /^visible$/m);
    assert.doesNotMatch(ran.stdout, /LEAK/);
    assert.match(ran.stdout, /^proc$/m, "/proc was not created in the jail");
    assert.match(ran.stdout, /^[1-3]\n\/$/m, "the jail's /proc should show only the namespace");
    assert.deepEqual(mountTable(), before);
    assert.equal([...Deno.readDirSync(`${jail}/proc`)].length, 0, "proc left mounted in the jail");
  });
});

privilegedTest("jail: -c without -m is the seed's chroot, and creates /proc", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    const jail = `${dir}/jail`;
    await Deno.mkdir(jail);
    await buildTestJail(jail, ["/bin/sh", "/bin/ls", "/bin/cat"]);
    await Deno.writeTextFile(`${dir}/outside.txt`, "secret");
    await Deno.writeTextFile(`${jail}/inside.txt`, "visible");
    const script = `cat /inside.txt; echo; test -e ${dir}/outside.txt && echo LEAK; ls /; pwd`;
    const ran = await runCli(["-vp", "-c", jail, "/bin/sh", "-c", script]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^ Child: creating chroot jail\n Child: changing directory into/m);
    assert.match(ran.stdout, /^visible\nbin\ninside\.txt\nlib(64)?\n/m);
    assert.doesNotMatch(ran.stdout, /LEAK/);
    assert.match(ran.stdout, /^\/$/m);
    assert.ok(Deno.statSync(`${jail}/proc`).isDirectory, "/proc was not created in the jail");
  });
});

privilegedTest(
  "rootless: -pmu works for an unprivileged user (user namespace implied)",
  async () => {
    const ran = await runCli(["-pmu", "box", "sh", "-c", "id -u; hostname; echo $$"], {
      asUser: NOBODY,
    });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "0\nbox\n1\n");
    const verbose = await runCli(["-vpm", "true"], { asUser: NOBODY });
    assert.match(
      verbose.stdout,
      /^Parent: new user namespace \(implied: you are not root\): uid 0 -> 65534, gid 0 -> 65534$/m,
    );
  },
);

privilegedTest("rootless: a chroot jail works for an unprivileged user", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    const jail = `${dir}/jail`;
    await Deno.mkdir(jail);
    await buildTestJail(jail, ["/bin/sh", "/bin/ls"]);
    await Deno.mkdir(`${jail}/proc`);
    const ran = await runCli(["-pm", "-c", jail, "/bin/sh", "-c", "ls /; echo $$"], {
      asUser: NOBODY,
    });
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^bin$/m);
    assert.match(ran.stdout, /^1$/m);
    // The lab's jail, built with sudo, may have no /proc, which nobody cannot create
    await Deno.remove(`${jail}/proc`);
    const noProc = await runCli(["-pm", "-c", jail, "/bin/ls"], { asUser: NOBODY });
    assert.equal(noProc.code, 125);
    assert.equal(
      noProc.stderr,
      `invoke_ns: jail: ${jail}/proc is missing and cannot be created (EACCES: Permission ` +
        `denied); create it (mkdir ${jail}/proc, as the directory's owner) or build the jail ` +
        "with 'invoke_ns jail'\n",
    );
  });
});
