/**
 * The examples run as documented: a harness running each case in its own
 * namespaces, and a grader of a student's container.
 */
import assert from "node:assert/strict";
import { cliCommand, privilegedTest, withTempDir } from "./helpers.ts";

const root = new URL("..", import.meta.url).pathname;

async function runExample(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${root}examples/${name}`, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

privilegedTest("examples/run_each_case.ts: each case in its own namespaces", async () => {
  await withTempDir(async (dir) => {
    const cases: Record<string, string> = {
      "is-pid-1": "test $$ = 1",
      "only-loopback": 'test "$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " ")" = lo',
      "own-hostname": 'test "$(hostname)" = case-own-hostname',
      "fails": "exit 3",
    };
    for (const [name, body] of Object.entries(cases)) {
      await Deno.writeTextFile(`${dir}/${name}`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    const ran = await runExample("run_each_case.ts", [dir]);
    assert.equal(ran.code, 1, ran.stdout);
    assert.match(ran.stdout, /^fails \.\.\. FAILED \(exit 3\)$/m);
    for (const name of ["is-pid-1", "only-loopback", "own-hostname"]) {
      assert.match(ran.stdout, new RegExp(`^${name} \\.\\.\\. ok$`, "m"));
    }
    assert.match(ran.stdout, /^3 passed, 1 failed$/m);
  });
});

privilegedTest("examples/grader.ts: passes a lab container, fails a plain process", async () => {
  const [command, ...args] = cliCommand();
  const container = new Deno.Command(command, {
    args: [...args, "--stop-timeout", "1", "-pmnu", "student", "sleep", "60"],
    stdout: "null",
  }).spawn();
  const plain = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    let pid = 0;
    for (let i = 0; i < 300 && !pid; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      const children = Deno.readTextFileSync(
        `/proc/${container.pid}/task/${container.pid}/children`,
      );
      pid = Number(children.trim().split(" ")[0]) || 0;
    }
    for (let i = 0; i < 300 && Deno.readLinkSync(`/proc/${pid}/exe`).endsWith("deno"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const good = await runExample("grader.ts", [String(pid)]);
    assert.equal(good.code, 0, good.stdout);
    assert.match(good.stdout, /^PASS a hostname of its own \(hostname student\)$/m);
    assert.match(good.stdout, /^3\/3 checks passed$/m);
    const bad = await runExample("grader.ts", [String(plain.pid)]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^0\/3 checks passed$/m);
  } finally {
    container.kill("SIGTERM");
    plain.kill("SIGKILL");
    await container.status;
    await plain.status;
  }
});
