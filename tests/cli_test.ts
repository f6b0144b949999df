/**
 * The CLI's contract (tests/cli_cases.ts), run against `deno run main.ts`
 * and, whenever `deno compile` can build it, against the compiled executable.
 */
import assert from "node:assert/strict";
import { compile } from "../tools/compile.ts";
import { CLI_CASES } from "./cli_cases.ts";
import { cliCommand, runCli } from "./helpers.ts";

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
else console.log(`skipping the CLI checks of the compiled executable: ${compiled.why}`);

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
