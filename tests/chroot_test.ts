/**
 * `-c DIR`: a jail built by the test runs a command and cannot see a file
 * placed outside it; with `-pm` a fresh /proc is mounted inside the jail.
 */
import assert from "node:assert/strict";
import { mountTable, NOBODY, privilegedTest, runCli, withTempDir } from "./helpers.ts";

/** Copies `binaries` and the libraries ldd names for them (ldd as a test oracle only). */
export async function buildTestJail(jail: string, binaries: string[]): Promise<void> {
  const files = new Set<string>();
  for (const binary of binaries) {
    files.add(binary);
    const ldd = new Deno.Command("ldd", { args: [binary], stdout: "piped" }).outputSync();
    for (const match of new TextDecoder().decode(ldd.stdout).matchAll(/(\/\S+) \(0x/g)) {
      files.add(match[1]);
    }
  }
  for (const file of files) {
    const target = `${jail}${file}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(await Deno.realPath(file), target);
    await Deno.chmod(target, 0o755);
  }
  await Deno.chmod(jail, 0o755);
}

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
    assert.match(ran.stdout, /^ Child: creating chroot jail$/m);
    assert.match(ran.stdout, /^ Child: changing directory into chroot jail$/m);
    assert.match(ran.stdout, /^visible$/m);
    assert.doesNotMatch(ran.stdout, /LEAK/);
    assert.match(ran.stdout, /^proc$/m, "/proc was not created in the jail");
    assert.match(ran.stdout, /^[1-3]\n\/$/m, "the jail's /proc should show only the namespace");
    assert.deepEqual(mountTable(), before);
    assert.equal([...Deno.readDirSync(`${jail}/proc`)].length, 0, "proc left mounted in the jail");
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
  });
});
