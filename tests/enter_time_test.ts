/**
 * `enter -T`: a time namespace is joined by the grandchild, whose native
 * steps are checked (a refused setns stops it before exec, and its errno
 * reaches the parent), root and rootless.
 */
import assert from "node:assert/strict";
import {
  cliCommand,
  cliCommandAs,
  NOBODY,
  privilegedTest,
  runCli,
  withTempDir,
} from "./helpers.ts";

/** Starts `invoke_ns -T --boottime 86400 [flags] sleep 60`, passes the command's PID to `fn`. */
async function withTimeContainer(
  fn: (pid: number) => Promise<void>,
  options: { flags?: string[]; asUser?: number } = {},
): Promise<void> {
  const args = [...options.flags ?? [], "-T", "--boottime", "86400", "sleep", "60"];
  const [command, ...rest] = options.asUser === undefined
    ? [...cliCommand(), ...args]
    : cliCommandAs(options.asUser, args);
  const parent = new Deno.Command(command, { args: rest, stdout: "null", stderr: "null" }).spawn();
  let pid = 0;
  for (let i = 0; i < 500 && pid === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    try {
      const child = Number(
        Deno.readTextFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`).trim(),
      );
      // exec'd into its time namespace: sleep, not the clone child any more
      if (child && Deno.readTextFileSync(`/proc/${child}/comm`).trim() === "sleep") pid = child;
    } catch {
      // not there yet
    }
  }
  try {
    assert.ok(pid > 0, "the container started");
    await fn(pid);
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
  }
}

/** Seconds of CLOCK_BOOTTIME as /proc/uptime shows them. */
function uptime(text: string): number {
  return Number(text.trim().split(" ")[0]);
}

privilegedTest(
  "enter -T: the command runs with the container's clocks, root and rootless",
  async () => {
    for (const asUser of [undefined, NOBODY]) {
      await withTimeContainer(async (pid) => {
        const host = uptime(Deno.readTextFileSync("/proc/uptime"));
        const ran = await runCli(["enter", "-T", String(pid), "cat", "/proc/uptime"], { asUser });
        assert.equal(ran.code, 0, ran.stderr);
        assert.equal(ran.stderr, "");
        const inside = uptime(ran.stdout);
        assert.ok(inside - host > 86000 && inside - host < 86800, `${inside} vs ${host}`);
        // every namespace of the target, the time one included
        const all = await runCli(["enter", String(pid), "cat", "/proc/uptime"], { asUser });
        assert.equal(all.code, 0, all.stderr);
        assert.ok(uptime(all.stdout) - host > 86000, all.stdout);
      }, { asUser });
    }
  },
);

privilegedTest("enter -T together with a PID namespace: one grandchild, both joined", async () => {
  await withTimeContainer(async (pid) => {
    const ran = await runCli([
      "enter",
      "-p",
      "-T",
      String(pid),
      "sh",
      "-c",
      "echo $$; cat /proc/uptime",
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    const [inner, clock] = ran.stdout.trim().split("\n");
    assert.ok(Number(inner) > 1, "a member of the container's PID namespace, not its PID 1");
    assert.ok(uptime(clock) > uptime(Deno.readTextFileSync("/proc/uptime")) + 86000);
  }, { flags: ["-p"] });
});

privilegedTest(
  "enter: a time namespace the caller may not join stops before exec, with its errno",
  async () => {
    await withTimeContainer(async (pid) => {
      await withTempDir(async (dir) => {
        Deno.chmodSync(dir, 0o755);
        const file = `${dir}/timens`;
        Deno.writeTextFileSync(file, "");
        const bind = await new Deno.Command("mount", {
          args: ["--bind", `/proc/${pid}/ns/time`, file],
        })
          .output();
        assert.equal(bind.code, 0, new TextDecoder().decode(bind.stderr));
        try {
          // nobody can open the file, but has no rights over the root-owned namespace
          const ran = await runCli(["enter", file, "sh", "-c", "echo ran"], { asUser: NOBODY });
          assert.equal(ran.code, 125, ran.stderr);
          assert.equal(ran.stdout, "", "nothing was exec'd");
          const lines = ran.stderr.trimEnd().split("\n");
          assert.equal(lines.length, 1, ran.stderr);
          assert.match(lines[0], /^invoke_ns: enter: setns: the time namespace \(EPERM: /);
        } finally {
          await new Deno.Command("umount", { args: [file] }).output();
        }
      });
    });
  },
);
