/**
 * The CLI's contract (tests/cli_cases.ts), run against `deno run main.ts`
 * and, whenever `deno compile` can build it, against the compiled executable.
 */
import assert from "node:assert/strict";
import { compile } from "../tools/compile.ts";
import { CLI_CASES } from "./cli_cases.ts";
import { cliCommand, runCli, skipped } from "./helpers.ts";

async function compiledExecutable(): Promise<{ path?: string; why?: string }> {
  const dir = await Deno.makeTempDir({ prefix: "invoke_ns_compiled_" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const problem = await compile(`${dir}/invoke_ns`);
  return problem ? { why: problem } : { path: `${dir}/invoke_ns` };
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
      const ran = await runCli(cliCase.args, {
        command: runner.command,
        stdin: cliCase.stdin,
        env: cliCase.env,
      });
      const context = `invoke_ns ${cliCase.args.join(" ")}\n${ran.stdout}\n${ran.stderr}`;
      assert.equal(ran.code, cliCase.code, context);
      for (const pattern of cliCase.stdout ?? []) assert.match(ran.stdout, pattern, context);
      for (const pattern of cliCase.notStdout ?? []) assert.doesNotMatch(ran.stdout, pattern);
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
