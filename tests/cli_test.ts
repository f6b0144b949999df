/**
 * The CLI's contract: the seed's help layout, exit statuses, and one line on
 * stderr (never a stack trace) for every bad input. Runs as any user.
 */
import assert from "node:assert/strict";
import { runCli, withTempDir } from "./helpers.ts";

function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.match(lines[0], /^invoke_ns: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(stderr, /\bat .*:\d+:\d+|panicked|Uncaught/);
}

Deno.test("cli: -h prints the seed's usage text layout", async () => {
  const { code, stdout } = await runCli(["-h"]);
  assert.equal(code, 0);
  const seed = [
    "Usage: invoke_ns [options] [cmd [arg...]]",
    "Options can be:",
    "    -h           display this help message",
    "    -v           display verbose messages",
    "    -p           new PID namespace",
    "    -m           new MNT namespace",
    "    -u hostname  new UTS namespace with associated hostname",
    "    -n           new NET namespace",
    "    -i no|yes    create message queue in new IPC namespace (yes), or default namespace (no):",
    "    -c dir       jail process in specified directory",
  ];
  assert.deepEqual(stdout.split("\n").slice(0, seed.length), seed);
});

Deno.test("cli: usage errors exit 2 with one line", async () => {
  const cases: [string[], RegExp][] = [
    [["-x"], /invalid option -- 'x'/],
    [["-u"], /requires an argument -- 'u'/],
    [["-i", "maybe"], /valid argument -- 'i'/],
    [["-u", ""], /hostname is empty/],
    [["-u", "h".repeat(65)], /65 bytes long \(at most 64\)/],
    [["--no-such-option"], /unrecognized option/],
    [["-e", "NOEQUALS", "true"], /KEY=VALUE/],
    [["--map-user", "x"], /not a valid number/],
    [["--mq-name", "bad/name", "-i", "no"], /queue name/],
  ];
  for (const [args, pattern] of cases) {
    const { code, stderr } = await runCli(args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assertOneLine(stderr, pattern);
  }
});

Deno.test("cli: exit statuses of the command pass through", async () => {
  assert.equal((await runCli(["sh", "-c", "exit 7"])).code, 7);
  assert.equal((await runCli(["true"])).code, 0);
  const killed = await runCli(["sh", "-c", "kill -TERM $$"]);
  assert.equal(killed.code, 128 + 15);
  assert.equal((await runCli(["sh", "-c", "kill -KILL $$"])).code, 128 + 9);
});

Deno.test("cli: not found is 127, not executable is 126, one line each", async () => {
  const missing = await runCli(["no-such-command-xyz"]);
  assert.equal(missing.code, 127);
  assertOneLine(missing.stderr, /exec: no-such-command-xyz: command not found/);
  const directory = await runCli(["/etc"]);
  assert.equal(directory.code, 126);
  assertOneLine(directory.stderr, /exec: \/etc/);
  await withTempDir(async (dir) => {
    const garbage = `${dir}/garbage`;
    await Deno.writeTextFile(garbage, "\x7fELF not really");
    await Deno.chmod(garbage, 0o755);
    const bad = await runCli([garbage]);
    assert.equal(bad.code, 126);
    assertOneLine(bad.stderr, /ENOEXEC: Exec format error/);
  });
});

Deno.test("cli: a missing or non-directory jail is refused with 125", async () => {
  const missing = await runCli(["-c", "/no/such/jail", "true"]);
  assert.equal(missing.code, 125);
  assertOneLine(missing.stderr, /jail: \/no\/such\/jail: no such directory/);
  const file = await runCli(["-c", "/etc/passwd", "true"]);
  assert.equal(file.code, 125);
  assertOneLine(file.stderr, /not a directory/);
});

Deno.test("cli: the environment is clean by default, -e adds, --keep-env keeps", async () => {
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", SECRET_TOKEN: "xyz", TERM: "vt100" };
  const clean = await runCli(["env"], { env });
  assert.doesNotMatch(clean.stdout, /SECRET_TOKEN/);
  assert.match(clean.stdout, /^TERM=vt100$/m);
  assert.match(clean.stdout, /^PATH=\/usr\/local\/sbin:/m);
  const added = await runCli(["-e", "GREETING=hi there", "env"], { env });
  assert.match(added.stdout, /^GREETING=hi there$/m);
  const kept = await runCli(["--keep-env", "env"], { env });
  assert.match(kept.stdout, /^SECRET_TOKEN=xyz$/m);
});

Deno.test("cli: without a command the child sets up and exits 0", async () => {
  const { code, stdout } = await runCli(["-v"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Parent: PID of parent is \d+$/m);
  assert.match(stdout, /^Parent: invoke_ns - Finishing up$/m);
});
