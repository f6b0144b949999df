/**
 * The CLI's contract (tests/cli_cases.ts), run against `deno run main.ts`
 * and, whenever `deno compile` can build it, against the compiled executable.
 */
import assert from "node:assert/strict";
import { compile } from "../tools/compile.ts";
import { CLI_CASES } from "./cli_cases.ts";
import { cliCommand, isRoot, NOBODY, type Ran, runCli, skipped, withTempDir } from "./helpers.ts";

async function compiledExecutable(): Promise<{ path?: string; why?: string }> {
  const dir = await Deno.makeTempDir({ prefix: "invoke_ns_compiled_" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const problem = await compile(`${dir}/invoke_ns`);
  return problem ? { why: problem } : { path: `${dir}/invoke_ns` };
}

/**
 * Runs `argv` with stdin and stdout on a terminal (script(1)); what it
 * printed on either stream comes back as stderr.
 */
async function onTerminal(argv: string[], env?: Record<string, string>): Promise<Ran> {
  const quoted = argv.map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  const ran = await new Deno.Command("script", {
    args: ["-qec", `${quoted} 2>&1`, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env,
  }).output();
  return {
    code: ran.code,
    stdout: "",
    stderr: new TextDecoder().decode(ran.stdout).replaceAll("\r", ""),
  };
}

const runners: { label: string; command: string[] }[] = [
  { label: "deno run", command: cliCommand() },
];
const compiled = await compiledExecutable();
if (compiled.path) runners.push({ label: "compiled", command: [compiled.path] });
else {
  const name = "cli (compiled): every case";
  Deno.test({ name, ignore: skipped(name, compiled.why), fn() {} });
}

for (const runner of runners) {
  for (const cliCase of CLI_CASES) {
    Deno.test(`cli (${runner.label}): ${cliCase.name}`, async () => {
      const ran = cliCase.terminal
        ? await onTerminal([...runner.command, ...cliCase.args], cliCase.env)
        : await runCli(cliCase.args, {
          command: runner.command,
          stdin: cliCase.stdin,
          env: cliCase.env,
        });
      const context = `invoke_ns ${cliCase.args.join(" ")}\n${ran.stdout}\n${ran.stderr}`;
      assert.equal(ran.code, cliCase.code, context);
      for (const pattern of cliCase.stdout ?? []) assert.match(ran.stdout, pattern, context);
      for (const pattern of cliCase.notStdout ?? []) assert.doesNotMatch(ran.stdout, pattern);
      if (cliCase.stderrExact !== undefined) assert.equal(ran.stderr, cliCase.stderrExact, context);
      if (cliCase.stderrLine) {
        const lines = ran.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 1, `expected one line on stderr: ${context}`);
        assert.match(lines[0], /^invoke_ns: /);
        assert.match(lines[0], cliCase.stderrLine);
      }
      assert.doesNotMatch(ran.stderr, /\bat .*:\d+:\d+|panicked|Uncaught/, context);
    });
  }
}

Deno.test("cli: a file that is not a valid executable gives 126 with the errno", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/garbage`, "\x7fELF not really");
    await Deno.chmod(`${dir}/garbage`, 0o755);
    const bad = await runCli([`${dir}/garbage`]);
    assert.equal(bad.code, 126);
    assert.match(bad.stderr, /^invoke_ns: exec: .*ENOEXEC: Exec format error.*\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile task: a bad DENORT_BIN is one line with the real cause, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "invoke_ns_compile_" });
  const task = (denort: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["task", "compile", "-o", `${dir}/invoke_ns`],
      cwd: new URL("..", import.meta.url).pathname,
      env: { DENORT_BIN: denort, NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
  try {
    const missing = await task("/nonexistent/denort");
    const said = new TextDecoder().decode(missing.stderr).trimEnd().split("\n").at(-1);
    assert.equal(missing.code, 1);
    assert.equal(
      said,
      "compile: deno compile failed: Could not find denort at '/nonexistent/denort': " +
        "No such file or directory (os error 2)",
    );
    // the deno CLI is not its runtime: what it builds is a copy of deno, refused and removed
    const cli = await task(Deno.execPath());
    assert.equal(cli.code, 1);
    assert.match(
      new TextDecoder().decode(cli.stderr),
      /compile: the result does not run as invoke_ns/,
    );
    assert.equal([...Deno.readDirSync(dir)].length, 0, "the wrong executable was left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: deno run main.ts without the permissions: one line naming them, exit 2", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  for (const flags of [[], ["--allow-ffi", "--allow-read"]]) {
    const ran = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, main, "-vpmu", "calculus", "bash"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const missing = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-env"]
      .filter((flag) => !flags.includes(flag)).join(" ");
    assert.equal(ran.code, 2);
    assert.equal(
      new TextDecoder().decode(ran.stderr),
      "invoke_ns: needs the permissions --allow-ffi --allow-read --allow-write --allow-env " +
        `(missing: ${missing}): run it as './invoke_ns ARGS' or 'deno task start ARGS', ` +
        "or with those four flags\n",
    );
  }
});

Deno.test({
  name: "cli: rootless ns names what it could not read, says run as root, exits 1",
  ignore: !isRoot,
  async fn() {
    const one = await runCli(["ns", "1"], { asUser: NOBODY });
    assert.equal(one.code, 1);
    assert.equal(
      one.stderr,
      "invoke_ns: ns: 1: EACCES: Permission denied; run as root to see it\n",
    );
    const all = await runCli(["ns", "--all"], { asUser: NOBODY });
    assert.equal(all.code, 1);
    assert.match(
      all.stderr,
      /^invoke_ns: ns: \d+ processes could not be read \(PID 1, [\d, …]+\); run as root to see them\n$/,
    );
  },
});

Deno.test({
  name: "cli: jail and binlibdepcp where you cannot write: the tool's words and a hint, exit 1",
  ignore: !isRoot,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o755); // nobody can enter, not write
      const jail = await runCli(["jail", `${dir}/jail`], { asUser: NOBODY });
      assert.equal(jail.code, 1);
      assert.equal(
        jail.stderr,
        `invoke_ns: jail: cannot create ${dir}/jail: permission denied (EACCES); ` +
          "run with sudo or choose a directory you own\n",
      );
      await Deno.mkdir(`${dir}/root_jail`, { mode: 0o755 });
      const symlink = await runCli(["jail", `${dir}/root_jail`], { asUser: NOBODY });
      assert.equal(symlink.code, 1);
      assert.match(
        symlink.stderr,
        new RegExp(
          `^invoke_ns: jail: cannot create ${dir}/root_jail/\\w+: permission denied \\(EACCES\\); ` +
            "run with sudo or choose a directory you own\n$",
        ),
      );
    });
  },
});

Deno.test({
  name: "cli: jail and binlibdepcp on a full file system: ENOSPC in the tool's words, exit 1",
  ignore: !isRoot,
  sanitizeResources: false,
  async fn() {
    await withTempDir(async (dir) => {
      const mounted = new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      }).outputSync();
      assert.equal(mounted.code, 0);
      try {
        const jail = await runCli(["jail", `${dir}/jail`]);
        assert.equal(jail.code, 1);
        assert.match(
          jail.stderr,
          /^invoke_ns: jail: cannot copy \/\S+: no space left on device \(ENOSPC\); free some space or choose another file system\n$/,
        );
        const copy = await runCli(["binlibdepcp", "/bin/ls", `${dir}/copy`]);
        assert.equal(copy.code, 1);
        assert.match(copy.stdout, /^ +ls : \[FAILED\]$/m);
        assert.match(
          copy.stderr.split("\n")[0],
          /^binlibdepcp: \/\S+: no space left on device \(ENOSPC\); free some space or choose another file system$/,
        );
        assert.doesNotMatch(copy.stderr, /os error|internal error/);
      } finally {
        new Deno.Command("umount", { args: [dir] }).outputSync();
      }
    });
  },
});
