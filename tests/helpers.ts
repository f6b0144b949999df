/**
 * Test helpers: running the CLI as a subprocess, skipping privileged tests
 * when not root, and snapshots of host state that must not change.
 * @module
 */

import assert from "node:assert/strict";
import { PERMISSION_FLAGS } from "../lib/deno_run.ts";
import { SyscallError } from "../ffi/errors.ts";
import { O_RDONLY } from "../ffi/libc.ts";
import { mqClose, mqOpen } from "../ffi/mqueue.ts";

const deno = Deno.execPath();
const root = new URL("..", import.meta.url).pathname;

/** Whether the tests run as root (privileged tests need it). */
export const isRoot = Deno.uid() === 0;

/** Permissions the CLI runs with under `deno run`: exactly the README's. */
export const RUN_FLAGS: string[] = PERMISSION_FLAGS;

/** The command line that runs the CLI from source. */
export function cliCommand(): string[] {
  return [deno, "run", ...RUN_FLAGS, `${root}main.ts`];
}

/** What a finished process printed and how it ended. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command line that runs the CLI with `args` as user `uid` (setpriv), from readable sources. */
export function cliCommandAs(uid: number, args: string[]): string[] {
  return [
    "setpriv",
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    "env",
    "HOME=/tmp",
    `DENO_DIR=/tmp/invoke_ns_deno_dir_${uid}`,
    `${readableSources()}/deno`,
    "run",
    ...RUN_FLAGS,
    `${readableSources()}/main.ts`,
    ...args,
  ];
}

/** Runs the CLI with `args`, feeding `stdin`; optionally as another user via setpriv. */
export async function runCli(
  args: string[],
  options: {
    stdin?: string;
    asUser?: number;
    env?: Record<string, string>;
    /** The command that runs the CLI (default: {@link cliCommand}). */
    command?: string[];
  } = {},
): Promise<Ran> {
  const argv = options.asUser === undefined
    ? [...options.command ?? cliCommand(), ...args]
    : cliCommandAs(options.asUser, args);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const writer = child.stdin.getWriter();
  if (options.stdin !== undefined) await writer.write(new TextEncoder().encode(options.stdin));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Whether a test or step named `name` must be skipped because `missing` (a
 * missing precondition, or null) says so; prints the reason when it must.
 * Use it as `ignore:` so the summary counts the test as ignored, not passed.
 */
export function skipped(name: string, missing: string | null | undefined): boolean {
  if (!missing) return false;
  console.log(`skipping "${name}": ${missing}`);
  return true;
}

/**
 * Registers a test that needs root, and whatever else `missing` names (a
 * missing precondition, or null); it is ignored, with the reason printed, otherwise.
 */
export function privilegedTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void> | void,
  missing?: string | null,
): void {
  const reason = isRoot ? missing : "needs root (run the tests as root, as CI does)";
  Deno.test({
    name,
    ignore: skipped(name, reason),
    fn,
    sanitizeResources: false,
    sanitizeOps: false,
  });
}

/** The host's mount points (mount ID and path), to compare before and after. */
export function mountTable(): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").trim().split("\n").map((line) => {
    const fields = line.split(" ");
    return `${fields[0]} ${fields[4]}`;
  }).sort();
}

/** Creates a temporary directory that is removed after `fn`. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "invoke_ns_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Processes whose parent is `ppid` (from /proc), to look for leftovers. */
export function childrenOf(ppid: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === ppid) found.push(Number(entry.name));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

let rootlessCopy: string | undefined;
/**
 * A copy of the sources and of the deno binary that any user can read (the
 * checkout may sit under a private home directory), for running the CLI as an
 * unprivileged user.
 */
export function readableSources(): string {
  if (rootlessCopy) return rootlessCopy;
  const target = Deno.makeTempDirSync({ prefix: "invoke_ns_src_" });
  Deno.chmodSync(target, 0o755);
  const copy = (from: string, to: string) => {
    const info = Deno.statSync(from);
    if (info.isDirectory) {
      Deno.mkdirSync(to, { mode: 0o755 });
      Deno.chmodSync(to, 0o755);
      for (const entry of Deno.readDirSync(from)) {
        copy(`${from}/${entry.name}`, `${to}/${entry.name}`);
      }
    } else if (from.endsWith(".ts") || from.endsWith(".json")) {
      Deno.copyFileSync(from, to);
      Deno.chmodSync(to, 0o644);
    }
  };
  // Deno itself may live under a private home too (npx keeps it in ~/.npm).
  Deno.copyFileSync(deno, `${target}/deno`);
  Deno.chmodSync(`${target}/deno`, 0o755);
  for (const part of ["main.ts", "mod.ts", "deno.json", "ffi", "lib", "cli", "jail", "tests"]) {
    try {
      copy(`${root}${part}`, `${target}/${part}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  globalThis.addEventListener("unload", () => Deno.removeSync(target, { recursive: true }));
  rootlessCopy = target;
  return target;
}

/** The unprivileged user rootless tests run as (nobody). */
export const NOBODY = 65534;

/** Whether a POSIX message queue called `name` exists in this IPC namespace. */
export function queueExists(name: string): boolean {
  try {
    mqClose(mqOpen(name, O_RDONLY));
    return true;
  } catch (error) {
    if (error instanceof SyscallError && error.code === "ENOENT") return false;
    throw error;
  }
}

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

/**
 * Starts `invoke_ns -pmu calculus sleep 60`, passes the PID of its `sleep`
 * (once it runs) to `fn`, and kills it afterwards, whatever `fn` does.
 */
export async function withCalculusSleeper(fn: (pid: number) => Promise<void>): Promise<void> {
  const target = new Deno.Command(cliCommand()[0], {
    args: [...cliCommand().slice(1), "-pmu", "calculus", "sleep", "60"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let pid = 0;
    for (let i = 0; i < 300 && pid === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      pid = sleepUnder(target.pid);
    }
    if (pid === 0) throw new Error("the target did not start");
    await fn(pid);
  } finally {
    target.kill("SIGKILL");
    await target.status;
  }
}

/** The PID of the sleep a child of `parent` has exec'd (0 if none yet). */
function sleepUnder(parent: number): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const status = Deno.readTextFileSync(`/proc/${entry.name}/status`);
      if (status.includes(`PPid:\t${parent}\n`) && status.includes("Name:\tsleep")) {
        return Number(entry.name);
      }
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

/** The lab's shell (seed doc 004), ending at once when its stdin is empty. */
const LAB_SHELL = ["env", "PS1=ns # ", "bash", "--norc"];

/** The lab's commands (seed doc 004, steps 3–8) by step; step 8 jails the shell in `jail`. */
export function labSteps(jail: string): { step: string; args: string[] }[] {
  return [
    { step: "3", args: ["-vp", ...LAB_SHELL] },
    { step: "4", args: ["-vpm", ...LAB_SHELL] },
    { step: "5", args: ["-vpmu", "calculus", "bash"] },
    { step: "6", args: ["-vpmnu", "calculus", "bash"] },
    { step: "7-no", args: ["-vi", "no"] },
    { step: "7-yes", args: ["-vi", "yes"] },
    { step: "8", args: ["-vpmu", "calculus", "-c", jail, ...LAB_SHELL] },
  ];
}

/**
 * Starts conmon's part of a terminal container (tests/fixtures/console_socket.py, with
 * `python`): it listens on `socket`, takes the pty master sent there and prints what the
 * container writes. Resolves once it listens; `output()` is what it printed after that, once it
 * has ended (when the container's terminal closes).
 */
export async function startConsoleSocket(
  python: string,
  socket: string,
): Promise<{ server: Deno.ChildProcess; output: () => Promise<string> }> {
  const server = new Deno.Command(python, {
    args: [new URL("./fixtures/console_socket.py", import.meta.url).pathname, socket],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = server.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("listening\n")) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the console socket server is up");
    text += decoder.decode(value);
  }
  text = text.slice(text.indexOf("listening\n") + "listening\n".length);
  const output = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    await server.status;
    return text;
  };
  return { server, output };
}
