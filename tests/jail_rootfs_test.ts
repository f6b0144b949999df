/**
 * `invoke_ns jail` builds a root filesystem in which the lab's commands run
 * (lab step 8), and `binlibdepcp` answers to its own name.
 */
import assert from "node:assert/strict";
import { buildJail, resolveDependencies } from "../mod.ts";
import { buildElfImage } from "../jail/elf_builder.ts";
import { cliCommand, mountTable, privilegedTest, runCli, withTempDir } from "./helpers.ts";

privilegedTest(
  "jail: the built root runs bash, ls, ps (as PID 1) and top in batch mode",
  async () => {
    await withTempDir(async (dir) => {
      const jail = `${dir}/jail`;
      const built = await runCli(["jail", jail]);
      assert.equal(built.code, 0, built.stderr);
      assert.match(built.stdout, /jail ready in .*: 5 binaries, \d+ files and links, terminfo for/);
      const before = mountTable();
      const ran = await runCli([
        "-pmu",
        "calculus",
        "-c",
        jail,
        "env",
        "PS1=x ",
        "bash",
        "--norc",
        "-c",
        "echo shell $$; ls /; ps -o pid=,comm= ; top -b -n 1 > /tmp/top.txt && echo top-ok",
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /^shell 1$/m);
      for (const entry of ["bin", "dev", "etc", "lib", "proc", "tmp", "usr"]) {
        assert.match(ran.stdout, new RegExp(`^${entry}$`, "m"), `no /${entry} in the jail`);
      }
      assert.match(ran.stdout, /^\s*1 bash$/m, "ps does not show bash as PID 1");
      assert.match(ran.stdout, /^top-ok$/m);
      assert.match(Deno.readTextFileSync(`${jail}/tmp/top.txt`), /^\s*1 root .* bash\s*$/m);
      assert.deepEqual(mountTable(), before);
    });
  },
);

Deno.test("jail: a symlink planted in the target never leads a write outside it", async () => {
  await withTempDir(async (dir) => {
    const jail = `${dir}/jail`;
    const outside = `${dir}/outside`;
    await Deno.mkdir(jail);
    await Deno.mkdir(outside);
    await Deno.mkdir(`${dir}/outside2`, { mode: 0o700 });
    await Deno.chmod(outside, 0o700);
    await Deno.symlink(outside, `${jail}/etc`);
    await Deno.symlink(outside, `${jail}/lib`);
    await Deno.symlink("../outside2", `${jail}/tmp`);
    await Deno.symlink(outside, `${jail}/root`);
    await buildJail(jail, ["ls"]);
    assert.deepEqual([...Deno.readDirSync(outside)], [], "something was written outside the jail");
    for (const path of [outside, `${dir}/outside2`]) {
      assert.equal(Deno.statSync(path).mode! & 0o7777, 0o700, `${path}: its mode was changed`);
    }
    // The planted links are followed as the jail will see them, rooted at the jail: its
    // /etc is `outside`, under /tmp, and its /tmp is its own /outside2.
    assert.ok(outside.startsWith("/tmp/"));
    assert.ok(Deno.lstatSync(`${jail}/outside2${outside.slice(4)}/passwd`).isFile);
    assert.equal(Deno.statSync(`${jail}/outside2`).mode! & 0o7777, 0o1777, "the jail's /tmp");
  });
});

Deno.test("jail: bad input gives one line and exit 1 or 2", async () => {
  await withTempDir(async (dir) => {
    const missing = await runCli(["jail", `${dir}/j`, "no-such-binary-xyz"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^invoke_ns: jail: no-such-binary-xyz: not found on PATH\n$/);
    const data = `${dir}/data`;
    await Deno.writeTextFile(data, "neither ELF nor script\n");
    const notElf = await runCli(["jail", `${dir}/j`, data]);
    assert.equal(notElf.code, 1);
    assert.match(notElf.stderr, /^invoke_ns: jail: \S+\/data: not an ELF file\n$/);
    const orphan = `${dir}/orphan.sh`;
    await Deno.writeTextFile(orphan, "#!/no/such/interpreter\n", { mode: 0o755 });
    const noInterpreter = await runCli(["jail", `${dir}/j`, orphan]);
    assert.equal(noInterpreter.code, 1);
    assert.equal(noInterpreter.stderr, "invoke_ns: jail: /no/such/interpreter: not found\n");
    await Deno.writeTextFile(`${dir}/file`, "");
    const notDirectory = await runCli(["jail", `${dir}/file`, "ls"]);
    assert.equal(notDirectory.code, 1);
    assert.match(
      notDirectory.stderr,
      /^invoke_ns: jail: \S+\/file: exists and is not a directory\n$/,
    );
    assert.equal((await runCli(["jail"])).code, 2);
  });
});

privilegedTest(
  "jail: a script comes with its interpreter (and env's program), and runs inside",
  async () => {
    await withTempDir(async (dir) => {
      const script = `${dir}/hello.sh`;
      await Deno.writeTextFile(
        script,
        '#!/usr/bin/env bash\necho "hello from bash $BASH_VERSINFO"\n',
        {
          mode: 0o755,
        },
      );
      const jail = `${dir}/jail`;
      const built = await runCli(["jail", jail, script]);
      assert.equal(built.code, 0, built.stderr);
      const ran = await runCli(["-pm", "-c", jail, script]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /^hello from bash \d+\n$/);
    });
  },
);

Deno.test("binlibdepcp: the executable answers to that name (argv[0])", async () => {
  await withTempDir(async (dir) => {
    const [deno, ...rest] = cliCommand();
    const quoted = rest.map((word) => `'${word}'`).join(" ");
    const ran = await new Deno.Command("bash", {
      args: ["-c", `exec -a binlibdepcp '${deno}' ${quoted} /bin/true '${dir}/t'`],
      stdout: "piped",
    }).output();
    const stdout = new TextDecoder().decode(ran.stdout);
    assert.equal(ran.code, 0);
    assert.match(stdout, /^Copying \.\.\.\n\n\s+true : \[OK\]$/m);
    assert.ok(Deno.statSync(`${dir}/t/bin/true`).isFile);
  });
});

Deno.test("invoke_ns and binlibdepcp on PATH as links to the launcher (README route 2)", async () => {
  await withTempDir(async (dir) => {
    const root = new URL("..", import.meta.url).pathname;
    await Deno.mkdir(`${dir}/bin`);
    for (const name of ["invoke_ns", "binlibdepcp"]) {
      await Deno.symlink(`${root}invoke_ns`, `${dir}/bin/${name}`);
    }
    const env = { PATH: `${dir}/bin:${Deno.env.get("PATH")}`, DENO: Deno.execPath() };
    const run = (name: string, args: string[]) =>
      new Deno.Command(name, { args, cwd: dir, env, stdout: "piped", stderr: "piped" }).output();
    const ran = await run("binlibdepcp", ["/bin/true", `${dir}/t`]);
    assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
    assert.match(new TextDecoder().decode(ran.stdout), /^Copying \.\.\.\n\n\s+true : \[OK\]$/m);
    assert.ok(Deno.statSync(`${dir}/t/bin/true`).isFile);
    const usage = await run("binlibdepcp", ["-h"]);
    assert.match(new TextDecoder().decode(usage.stdout), /^Useage:\n binlibdepcp -h\n/);
    const version = await run("invoke_ns", ["--version"]);
    assert.match(new TextDecoder().decode(version.stdout), /^invoke_ns \d+\.\d+\.\d+\n/);
  });
});

Deno.test("resolveDependencies: the closure of /bin/ls through mod.ts", async () => {
  const closure = await resolveDependencies("/bin/ls");
  const names = closure.objects.map((object) => object.name);
  assert.ok(names.includes("libc.so.6"));
  assert.ok(closure.objects.some((object) => object.foundVia === "interpreter"));
});

Deno.test("jail and binlibdepcp: an ELF whose interpreter or library is a FIFO is refused, no hang", async () => {
  await withTempDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mkfifo.success, "mkfifo");
    await Deno.mkdir(`${dir}/lib`);
    const libFifo = `${dir}/lib/libfifo.so.1`;
    assert.ok((await new Deno.Command("mkfifo", { args: [libFifo] }).output()).success);
    const viaInterpreter = `${dir}/interp-fifo`;
    await Deno.writeFile(
      viaInterpreter,
      buildElfImage({ bits: 64, endian: "little", interpreter: fifo }).bytes,
      { mode: 0o755 },
    );
    const viaLibrary = `${dir}/needs-fifo`;
    await Deno.writeFile(
      viaLibrary,
      buildElfImage({
        bits: 64,
        endian: "little",
        interpreter: "/lib64/ld-linux-x86-64.so.2",
        needed: ["libfifo.so.1"],
        runpath: `${dir}/lib`,
      }).bytes,
      { mode: 0o755 },
    );
    const refused = /a FIFO, not a regular file/;
    const cases: [string[], RegExp][] = [
      [["jail", `${dir}/jail1`, viaInterpreter], refused],
      [["jail", `${dir}/jail2`, viaLibrary], refused],
      [["jail", `${dir}/jail3`, fifo], /a FIFO, device or socket, not a regular file/],
      [["binlibdepcp", viaInterpreter, `${dir}/copy1`], refused],
      [["binlibdepcp", viaLibrary, `${dir}/copy2`], refused],
      // the seed script's own words for a binary that is not a regular file
      [["binlibdepcp", fifo, `${dir}/copy3`], /fifo: not accessible \.\.\.\.\.\. aborting/],
    ];
    for (const [args, pattern] of cases) {
      if (args[0] === "binlibdepcp") await Deno.mkdir(args[2]);
      const [command, ...rest] = [...cliCommand(), ...args];
      // A hang (the bug) is cut short by the timeout, which then fails the checks below.
      const out = await new Deno.Command(command, {
        args: rest,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(5_000),
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      const stdout = new TextDecoder().decode(out.stdout);
      assert.equal(out.signal, null, `${args.join(" ")}: hung, killed`);
      assert.equal(out.code, 1, `${args.join(" ")}: ${stdout}${stderr}`);
      assert.equal(stderr.trimEnd().split("\n").length, 1, stderr);
      assert.match(stderr, pattern, args.join(" "));
      assert.equal(stdout, "", "nothing copied");
    }
  });
});
