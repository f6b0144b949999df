/**
 * The library API through mod.ts: what reaches the command (fds, signal
 * dispositions, mask), results, errors, and many launches in one process.
 */
import assert from "node:assert/strict";
import { launch, LaunchError } from "../mod.ts";
import { childrenOf, mountTable, privilegedTest, withTempDir } from "./helpers.ts";

async function capture(command: string, spec: Record<string, unknown> = {}): Promise<string> {
  return await withTempDir(async (dir) => {
    const out = `${dir}/out`;
    const result = await launch({ command: ["sh", "-c", `exec > ${out}; ${command}`], ...spec });
    assert.deepEqual(result, { code: 0 });
    return await Deno.readTextFile(out);
  });
}

Deno.test("launch: the command sees only fds 0-2, even with more open here", async () => {
  using _file = await Deno.open("/etc/hostname");
  const fds = (await capture("ls /proc/$$/fd")).trim().split("\n").sort();
  assert.deepEqual(fds, ["0", "1", "2"]);
});

Deno.test("launch: signal dispositions and mask are the defaults (SIGPIPE not ignored)", async () => {
  // The command's own status (exec): a shell's read while it forks would catch the
  // signals dash blocks around fork().
  const status = await capture("exec grep -E '^Sig(Ign|Blk)' /proc/self/status");
  assert.match(status, /^SigBlk:\s+0000000000000000$/m);
  const here = Deno.readTextFileSync("/proc/self/status");
  const ignoredHere = BigInt(`0x${here.match(/^SigIgn:\s+([0-9a-f]+)$/m)![1]}`);
  assert.equal(ignoredHere & 0x1000n, 0x1000n, "Deno ignores SIGPIPE: so the check below is real");
  // What this test's own caller left ignored stays ignored (`deno task` leaves signal 32
  // ignored, for one); Deno's SIGPIPE does not.
  const ignoredThere = BigInt(`0x${status.match(/^SigIgn:\s+([0-9a-f]+)$/m)![1]}`);
  assert.equal(ignoredThere, ignoredHere & ~0x1000n);
});

Deno.test("launch: exit codes and signals", async () => {
  assert.deepEqual(await launch({ command: ["sh", "-c", "exit 3"] }), { code: 3 });
  assert.deepEqual(await launch({ command: ["sh", "-c", "kill -TERM $$"] }), {
    code: 143,
    signal: "SIGTERM",
  });
  assert.deepEqual(await launch({ command: [] }), { code: 0 });
});

Deno.test("launch: failures before the command are LaunchErrors with exit codes", async () => {
  await assert.rejects(launch({ command: ["no-such-command-xyz"] }), (error: unknown) => {
    return error instanceof LaunchError && error.exitCode === 127 && error.step === "exec";
  });
  await assert.rejects(launch({ command: ["true"], hostname: "" }), (error: unknown) => {
    return error instanceof LaunchError && error.exitCode === 2;
  });
  await assert.rejects(launch({ command: ["true"], jail: "/no/such/dir" }), (error: unknown) => {
    return error instanceof LaunchError && error.exitCode === 125 && error.step === "jail";
  });
  await assert.rejects(launch({ command: ["a\0b"] }), LaunchError);
  assert.deepEqual(childrenOf(Deno.pid), [], "a failed launch left a child behind");
});

Deno.test("launch: env adds to the clean default environment", async () => {
  const env = await capture("env", { env: { ANSWER: "42" } });
  assert.match(env, /^ANSWER=42$/m);
  assert.match(env, /^PATH=/m);
});

privilegedTest(
  "launch: 500 launches in a row with pid, mount, uts and ipc namespaces",
  async () => {
    const before = mountTable();
    for (let i = 0; i < 500; i++) {
      const result = await launch({
        command: ["/bin/true"],
        pid: true,
        mount: true,
        ipc: true,
        hostname: `run${i}`,
      });
      assert.deepEqual(result, { code: 0 }, `launch ${i}`);
    }
    assert.deepEqual(mountTable(), before);
    assert.deepEqual(childrenOf(Deno.pid), [], "zombies or stray children left");
  },
);
