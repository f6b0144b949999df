/**
 * `--trace` against the kernel: the lab's commands (seed doc steps 3–8),
 * root and rootless, `--contain`, `--veth` with limits, `--map-users` (the
 * init stage), `--map-auto` rootless (the test user's ranges, through
 * newuidmap and newgidmap), `enter`, and an OCI bundle (`oci create`, then
 * start and delete: a read-only root, a domain name, sysctls, a bind with
 * atime options, a cgroup mount in a cgroup namespace, and hooks at every
 * point the runtime runs them in a launch), run under `strace -f -y`; the
 * calls `--trace` lists must be the calls made, in order, with those
 * arguments and results.
 *
 * What is compared: for the tool's main thread, the clone of the child, the
 * queue demo's mq_open and mq_unlink, any setns or unshare, the veth's
 * netlink socket and messages (by type, and the link's name where strace
 * decodes them), the limits' cgroup mkdir, write and rmdir, and the undo
 * steps; the execve of each program the tool or the init stage runs itself
 * (newuidmap, newgidmap, hooks), argv and all, in its place among that
 * process's calls (where strace shows the clone that starts it); for the
 * child (and a grandchild), every call of lib/explain.ts's SETUP_CALLS up
 * to the command's execve (`write` only to /proc and /sys files). In the init stage the child's list is cut at its exec of Deno;
 * the init stage's own calls are compared from the first call it traces
 * on (its PR_SET_PDEATHSIG): before it, Deno's start-up makes calls of its
 * own (prlimit64, prctl) that no step lists. Each side's list must equal
 * the other's. Arguments: strings, numbers, NULL and
 * flag sets (in any order; O_RDONLY, 0, is implied; mount attributes by
 * value, as strace names MOUNT_ATTR__ATIME by its bits) must match, an
 * execve's environment only where strace shows it (-v); `<fd of
 * PATH>` must be a descriptor strace shows open on PATH; other placeholders
 * match anything; a call with an `<each …>` argument stands for any number
 * of calls of that function.
 */

import assert from "node:assert/strict";
import { DEFAULT_PATH } from "../lib/env.ts";
import { SETUP_CALLS } from "../lib/explain.ts";
import { CONTAIN_MASKED_PATHS } from "../lib/masks.ts";
import {
  cliCommand,
  cliCommandAs,
  isRoot,
  labSteps,
  NOBODY,
  privilegedTest,
  runCli,
  startConsoleSocket,
  withCalculusSleeper,
} from "./helpers.ts";

const strace = (() => {
  try {
    // (a clone in a PID namespace returns the PID there: --decode-pids=pidns gives strace's too)
    return new Deno.Command("strace", {
      args: ["--decode-pids=pidns", "-qq", "-e", "trace=none", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();
const missing = strace
  ? null
  : "strace 5.19 or later is not installed (apt-get install strace; it needs --decode-pids)";

/** A jail the lab's way: bash and friends, by `invoke_ns jail`. */
const jail = isRoot && strace ? Deno.makeTempDirSync({ prefix: "invoke_ns_trace_" }) : "";
if (jail) {
  Deno.chmodSync(jail, 0o755);
  const built = new Deno.Command(cliCommand()[0], {
    args: [...cliCommand().slice(1), "jail", `${jail}/root`],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!built.success) throw new Error(new TextDecoder().decode(built.stderr));
  globalThis.addEventListener("unload", () => Deno.removeSync(jail, { recursive: true }));
}

/** One call, as `--trace` or strace printed it. */
interface Seen {
  pid: number;
  fn: string;
  args: string[];
  result: string;
}

/**
 * The tool's calls compared: Deno's own threads and start-up make the other
 * SETUP_CALLS (prlimit64, prctl, getpid) in the tool's process too. Of
 * these, only netlink sockets and their messages, and cgroup directories
 * and kernel files, are the launch's (see {@link isLaunchCall}).
 */
const PARENT_CALLS = [
  "clone",
  "mq_open",
  "mq_unlink",
  "setns",
  "unshare",
  "socket",
  "sendto",
  "mkdir",
  "rmdir",
  "write",
];

/** Whether strace's `c`, made by the tool, is the launch's (not Deno's caches or its own I/O). */
function isLaunchCall(c: Seen): boolean {
  if (c.fn === "socket") return c.args[0] === "AF_NETLINK";
  if (c.fn === "sendto") return (c.args[1] ?? "").startsWith("[{nlmsg_len=");
  if (c.fn === "mkdir" || c.fn === "rmdir") return (c.args[0] ?? "").startsWith('"/sys/fs/cgroup/');
  if (c.fn === "write") return /^\d+<\/(proc|sys)\//.test(c.args[0] ?? "");
  return true;
}

/**
 * Whether strace's clone `c` starts a program the tool runs itself (lib/helper.ts: a vfork
 * with no namespace flags), not a launch's child or grandchild (born in namespaces, or
 * with CLONE_PARENT).
 */
function isHelperClone(c: Seen): boolean {
  const flags = (c.args.find((a) => a.startsWith("flags="))?.slice(6) ?? "").split("|");
  return flags.includes("CLONE_VFORK") && !flags.includes("CLONE_PARENT") &&
    !flags.some((flag) => flag.startsWith("CLONE_NEW"));
}

/** rtnetlink message types by number, as strace shows them when it cannot decode a socket's. */
const RTM: Record<string, string> = {
  "0x10": "RTM_NEWLINK",
  "0x11": "RTM_DELLINK",
  "0x12": "RTM_GETLINK",
  "0x14": "RTM_NEWADDR",
  "0x16": "RTM_GETADDR",
  "0x18": "RTM_NEWROUTE",
};

/**
 * Whether traced sendto `ours` (`[{nlmsg_type=RTM_…}, {IFLA_IFNAME="…", …}]`)
 * is strace's: the same message type, and the names it gives where strace
 * decodes the message (it cannot for a socket in another network namespace).
 */
function netlinkMatches(ours: Seen, theirs: Seen): boolean {
  const type = (text: string) => {
    const found = text.match(/nlmsg_type=(\w+)/)?.[1] ?? "";
    return RTM[found] ?? found;
  };
  if (type(ours.args[1]) !== type(theirs.args[1])) return false;
  const decoded = theirs.args[1].includes("nlmsg_type=RTM_");
  // the link's own name (a veth's peer is inside IFLA_INFO_DATA, which strace shows as bytes)
  const name = ours.args[1].match(/\{IFLA_IFNAME="([^"<]+)"/)?.[1];
  return !decoded || name === undefined || theirs.args[1].includes(`"${name}"`);
}

/** libc's name of a call where strace shows the system call's. */
const SYSCALL_OF: Record<string, string> = { mq_send: "mq_timedsend" };

/** Splits `text` at its top-level commas (not inside quotes, brackets or braces). */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  let depth = 0, quoted = false, start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if ("[{(<".includes(c)) depth++;
    else if ("]})>".includes(c)) depth--;
    else if (c === "," && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (text.trim()) args.push(text.slice(start).trim());
  return args;
}

/** The `--trace` lines of `stderr`. */
function traced(stderr: string): (Seen & { who: string; step: string })[] {
  return stderr.split("\n").flatMap((line) => {
    // (an exec nobody is left to see succeed is shown as strace shows a call not returned)
    const m = line.match(
      /^\+\s*[\d.]+ms (\S+)\s+(\S+)\s+(\w+)\((.*)\)(?: = (.+)| (<unfinished \.\.\.>))$/,
    );
    return m
      ? [{ pid: 0, who: m[1], step: m[2], fn: m[3], args: splitArgs(m[4]), result: m[5] ?? m[6] }]
      : [];
  });
}

/** strace's lines, an unfinished call joined to its resumption. */
function straced(text: string): Seen[] {
  const pending = new Map<number, string>();
  const calls: Seen[] = [];
  for (const line of text.split("\n")) {
    let m = line.match(/^(\d+)\s+(.*)$/);
    if (!m) continue;
    const pid = Number(m[1]);
    let body = m[2];
    if (body.endsWith("<unfinished ...>")) {
      pending.set(pid, body.slice(0, -"<unfinished ...>".length).trimEnd());
      continue;
    }
    const resumed = body.match(/^<\.\.\. \w+ resumed>(.*)$/);
    if (resumed) {
      const start = pending.get(pid) ?? "";
      pending.delete(pid);
      body = start + resumed[1];
    }
    // a clone's result as strace's PID namespace knows it (the process's own PID is the
    // log's), then strace's comments (`propagation=0 /* MS_??? */`) are not part of a value
    body = body.replace(/^(clone\(.*= )\d+ \/\* (\d+) in strace's PID NS \*\/$/, "$1$2");
    m = body.replace(/ \/\* .*? \*\//g, "").match(/^(\w+)\((.*)\)\s+= (.+)$/);
    if (!m) continue;
    calls.push({ pid, fn: m[1], args: splitArgs(m[2]), result: m[3] });
  }
  return calls;
}

/** Whether the set of flags `a` and `b` name is the same (O_RDONLY, 0, implied). */
function sameFlags(a: string, b: string): boolean {
  const set = (text: string) =>
    new Set(text.split("|").map((f) => f.trim()).filter((f) => f !== "O_RDONLY"));
  const x = set(a), y = set(b);
  return x.size === y.size && [...x].every((f) => y.has(f));
}

/** mount_setattr(2)'s attributes by name (strace names MOUNT_ATTR__ATIME by its bits). */
const MOUNT_ATTRS: Record<string, number> = {
  MOUNT_ATTR_RDONLY: 0x1,
  MOUNT_ATTR_NOSUID: 0x2,
  MOUNT_ATTR_NODEV: 0x4,
  MOUNT_ATTR_NOEXEC: 0x8,
  MOUNT_ATTR__ATIME: 0x70,
  MOUNT_ATTR_RELATIME: 0,
  MOUNT_ATTR_NOATIME: 0x10,
  MOUNT_ATTR_STRICTATIME: 0x20,
  MOUNT_ATTR_NODIRATIME: 0x80,
  MOUNT_ATTR_IDMAP: 0x100000,
  MOUNT_ATTR_NOSYMFOLLOW: 0x200000,
};

/** The value of a set of mount attributes (`MOUNT_ATTR_RDONLY|0x40`); NaN for a name not known. */
function attributes(text: string): number {
  const values = text.split("|").map((name) => name.trim()).map((name) =>
    /^(0x[0-9a-f]+|\d+)$/.test(name) ? Number(name) : MOUNT_ATTRS[name]
  );
  return values.some((value) => value === undefined)
    ? NaN
    : values.reduce((sum: number, value) => sum | value!, 0);
}

/**
 * How strace -y shows a descriptor of `path`: a namespace file as `uts:[INODE]`,
 * /proc/PID/root and cwd as where they lead, anything else as the path.
 */
function shownAs(path: string): string {
  if (!/^\/proc\/\d+\/(ns\/\w+|root|cwd)$/.test(path)) return path;
  try {
    return Deno.readLinkSync(path);
  } catch {
    return path;
  }
}

/** Whether the traced argument `ours` describes strace's `theirs` (`pid`: the process's). */
function argMatches(ours: string, theirs: string, pid: number): boolean {
  const fd = ours.match(/^<fd of (.+)>$/);
  if (fd) {
    const path = fd[1].replace(/^\/proc\/self\//, `/proc/${pid}/`);
    return theirs === `${theirs.match(/^\d+/)?.[0]}<${shownAs(path)}>`;
  }
  // a clone of a tree is detached until moved: strace shows it as "/" first
  if (/^<clone of .+>$/.test(ours)) return /^\d+</.test(theirs);
  theirs = theirs.replace(/^(AT_FDCWD|\d+)<.*>$/, "$1");
  if (/^&?<[^<>]+>$/.test(ours)) return true;
  if (ours.startsWith("{") && theirs.startsWith("{")) {
    const fields = (text: string) =>
      Object.fromEntries(splitArgs(text.slice(1, -1)).map((f) => f.split("="))) as Record<
        string,
        string
      >;
    const a = fields(ours), b = fields(theirs);
    return Object.keys(a).length === Object.keys(b).length &&
      Object.entries(a).every(([key, value]) =>
        b[key] !== undefined && argMatches(value, b[key], pid)
      );
  }
  if (ours.startsWith('"') && ours.includes("<")) {
    const pattern = JSON.parse(ours).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      .replace(/<[^<>]+>/g, ".*");
    return theirs.startsWith('"') && new RegExp(`^${pattern}$`).test(JSON.parse(theirs));
  }
  if (ours.startsWith("MOUNT_ATTR_")) return attributes(ours) === attributes(theirs);
  if (/^[A-Z_][A-Z0-9_]*(\|[A-Z_][A-Z0-9_]*)+$/.test(ours)) return sameFlags(ours, theirs);
  return ours === theirs || (ours.startsWith("[") && ours === theirs.replace(/\.\.\.$/, ""));
}

/** Whether traced `ours` is strace's `theirs`: the function, the arguments, the result. */
function callMatches(ours: Seen, theirs: Seen): boolean {
  if ((SYSCALL_OF[ours.fn] ?? ours.fn) !== theirs.fn) return false;
  if (ours.fn === "clone") {
    const flags = theirs.args.find((a) => a.startsWith("flags="))?.slice(6) ?? "";
    return sameFlags(ours.args[2], flags);
  }
  if (ours.fn === "sendto") return netlinkMatches(ours, theirs);
  if (ours.fn === "mq_open" || ours.fn === "mq_unlink") {
    // glibc passes a queue's name without its "/"
    ours = { ...ours, args: [ours.args[0].replace(/^"\//, '"'), ...ours.args.slice(1)] };
  }
  if (ours.fn === "execve" && !(theirs.args[2] ?? "").startsWith("[")) {
    // strace shows an environment as its address unless -v: the path and argv are compared
    ours = { ...ours, args: ours.args.slice(0, 2) };
    theirs = { ...theirs, args: theirs.args.slice(0, 2) };
  }
  const extra = theirs.args.slice(ours.args.length);
  if (extra.some((a) => a !== "0" && a !== "NULL")) return false;
  if (!ours.args.every((arg, i) => argMatches(arg, theirs.args[i] ?? "", theirs.pid))) {
    return false;
  }
  const result = theirs.result.replace(/<[^>]*>$/, "").trim();
  return ours.result.startsWith("<") || ours.result === result || ours.fn === "execve";
}

/**
 * The relevant calls of `calls`: those of `compared` (SETUP_CALLS and a test's own), writes to
 * kernel files only, up to the exec.
 */
function setupCalls(calls: Seen[], compared: readonly string[]): Seen[] {
  const kept: Seen[] = [];
  for (const c of calls) {
    const fn = Object.entries(SYSCALL_OF).find(([, sys]) => sys === c.fn)?.[0] ?? c.fn;
    if (!compared.includes(fn)) continue;
    if (fn === "write" && !/^\d+<\/(proc|sys)\//.test(c.args[0] ?? "")) continue;
    kept.push(c);
    if (fn === "execve" && c.result.startsWith("0")) break;
  }
  return kept;
}

/**
 * A call strace may show that no step makes: the runtime in the clone child
 * (same memory, same thread state as the tool's main thread) now and then
 * asks for its PID on its own (seen in 1 run of 11 between close_range and
 * PR_SET_PDEATHSIG). It carries no setup and is skipped where no step lists one.
 */
const RUNTIME_NOISE = new Set(["getpid"]);

/** Matches `ours` against `theirs` in order (an `<each …>` call takes any number); throws if not. */
function compare(ours: Seen[], theirs: Seen[], who: string): void {
  let j = 0;
  const show = (c: Seen) => `${c.fn}(${c.args.join(", ")}) = ${c.result}`;
  const skipNoise = (fn: string) => {
    while (j < theirs.length && RUNTIME_NOISE.has(theirs[j].fn) && theirs[j].fn !== fn) j++;
  };
  for (const call of ours) {
    skipNoise(SYSCALL_OF[call.fn] ?? call.fn);
    if (call.args.some((a) => a.includes("<each "))) {
      while (j < theirs.length && theirs[j].fn === (SYSCALL_OF[call.fn] ?? call.fn)) j++;
      continue;
    }
    assert.ok(
      j < theirs.length && callMatches(call, theirs[j]),
      `${who}: --trace says ${show(call)}, strace ${
        j < theirs.length ? show(theirs[j]) : "nothing more"
      }\n--trace:\n${ours.map(show).join("\n")}\nstrace:\n${theirs.map(show).join("\n")}`,
    );
    j++;
  }
  skipNoise("");
  assert.equal(
    j,
    theirs.length,
    `${who}: strace shows more: ${theirs.slice(j).map(show).join("; ")}`,
  );
}

/** Runs the CLI with `args` under strace (as `asUser` when given); compares; returns the run. */
async function checkTrace(
  args: string[],
  options: {
    asUser?: number;
    stdin?: string;
    code?: number;
    /** Where --trace goes in `args` (a subcommand takes its options after its name). */
    traceAt?: number;
    /** Calls compared beyond SETUP_CALLS (a terminal's ioctl, connect, dup2). */
    also?: string[];
    /** Runs while the traced command does (before it is awaited). */
    meanwhile?: () => Promise<void>;
  } = {},
): Promise<{ stdout: string; stderr: string; trace: (Seen & { who: string; step: string })[] }> {
  const log = Deno.makeTempFileSync({ prefix: "invoke_ns_strace_" });
  const compared = [...SETUP_CALLS, ...options.also ?? []];
  try {
    const cli = options.asUser === undefined ? cliCommand() : cliCommandAs(options.asUser, []);
    const command = new Deno.Command("strace", {
      args: [
        "-f",
        "-qq",
        "-y",
        "--decode-pids=pidns",
        "-s",
        "4096",
        "-e",
        `trace=${compared.map((fn) => SYSCALL_OF[fn] ?? fn).join(",")}`,
        "-o",
        log,
        ...cli,
        ...args.slice(0, options.traceAt ?? 0),
        "--trace",
        ...args.slice(options.traceAt ?? 0),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = command.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin ?? ""));
    await writer.close();
    await options.meanwhile?.();
    const output = await command.output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, options.code ?? 0, stderr);
    const calls = straced(Deno.readTextFileSync(log));
    const trace = traced(stderr).filter((c) => compared.includes(c.fn));
    // the tool: its main thread's clone of the child (the first process strace saw)
    const tool = calls[0].pid;
    const cloneOfChild = calls.find((c) =>
      c.pid === tool && c.fn === "clone" && c.args.some((a) => a.includes("CLONE_VFORK"))
    );
    assert.ok(cloneOfChild, "strace saw the clone of the child");
    const child = Number(cloneOfChild.result);
    // the programs the tool and the init stage run themselves (newuidmap, newgidmap, hooks):
    // each its own clone, then its execve, argv and all, in order with the setup
    const helper = (c: Seen) => c.fn === "clone" && c !== cloneOfChild && isHelperClone(c);
    const withHelpers = (list: Seen[]) =>
      list.flatMap((c) =>
        helper(c) ? calls.filter((h) => h.pid === Number(c.result) && h.fn === "execve") : [c]
      );
    compare(
      trace.filter((c) => c.who === "parent" && (PARENT_CALLS.includes(c.fn) || c.fn === "execve")),
      withHelpers(
        calls.filter((c) =>
          c.pid === tool && PARENT_CALLS.includes(c.fn) && isLaunchCall(c) &&
          (c.fn !== "clone" || c === cloneOfChild || helper(c))
        ),
      ),
      "parent",
    );
    // the child's writes compared are those to kernel files (a sync point's is the channel's)
    const ours = trace.filter((c) =>
      c.who === "child" && c.fn !== "clone" &&
      (c.fn !== "write" || /^<fd of \/(proc|sys)\//.test(c.args[0]) || /^\d+$/.test(c.args[0]))
    );
    const theirs = calls.filter((c) => c.pid === child && (c.fn !== "clone" || helper(c)));
    const init = ours.findIndex((c) => c.step === "init" && c.fn === "execve");
    if (init < 0) compare(ours, withHelpers(setupCalls(theirs, compared)), "child");
    else {
      // The init stage: the clone child up to its exec of Deno, then that Deno's own calls
      // from its first traced one on (before it, Deno's start-up makes calls of its own).
      const exec = theirs.findIndex((c) => c.fn === "execve" && c.result.startsWith("0"));
      compare(ours.slice(0, init + 1), setupCalls(theirs.slice(0, exec + 1), compared), "child");
      const after = theirs.slice(exec + 1);
      const start = after.findIndex((c) => callMatches(ours[init + 1], c));
      assert.ok(start >= 0, `init stage: strace never shows ${ours[init + 1]?.fn}`);
      compare(
        ours.slice(init + 1),
        withHelpers(setupCalls(after.slice(start), compared)),
        "init stage",
      );
    }
    // (the grandchild is the child's sibling: CLONE_PARENT; the command's own forks are not)
    const cloneOfGrandchild = calls.find((c) =>
      c.pid === child && c.fn === "clone" &&
      (c.args.find((a) => a.startsWith("flags="))?.slice(6) ?? "").split("|").includes(
        "CLONE_PARENT",
      )
    );
    if (cloneOfGrandchild || trace.some((c) => c.who === "grandchild")) {
      const grandchild = Number(cloneOfGrandchild?.result);
      compare(
        trace.filter((c) => c.who === "grandchild"),
        setupCalls(calls.filter((c) => c.pid === grandchild), compared),
        "grandchild",
      );
    }
    return { stdout, stderr, trace };
  } finally {
    Deno.removeSync(log);
  }
}

/** The lab's commands (seed doc steps 3–8; the -i demo has a test of its own below). */
const LAB = labSteps(`${jail}/root`).filter(({ step }) => !step.startsWith("7"));

for (const { step, args } of LAB) {
  privilegedTest(
    `trace: lab step ${step} as root: --trace lists the calls strace sees`,
    async () => {
      const { stdout, trace } = await checkTrace(args);
      assert.match(stdout, /Parent: PID of parent is \d+\n/, "-v keeps stdout");
      assert.ok(trace.some((c) => c.fn === "execve"), "the command's exec is traced");
    },
    missing,
  );
  privilegedTest(
    `trace: lab step ${step} rootless: --trace lists the calls strace sees`,
    async () => {
      const { trace } = await checkTrace(args, { asUser: NOBODY });
      assert.ok(trace.some((c) => c.fn === "write" && c.args[0].includes("uid_map")));
    },
    missing,
  );
}

privilegedTest("trace: lab step 7 (-i no): the demo's queue, traced", async () => {
  const { stdout } = await checkTrace(["-vi", "no", "--mq-name", "/invoke_ns_trace_no"], {
    stdin: "hello\n",
  });
  assert.match(stdout, /received message from child/);
}, missing);

privilegedTest("trace: lab step 7 (-i yes): the queue the child cannot see, traced", async () => {
  const { trace } = await checkTrace(["-vi", "yes", "--mq-name", "/invoke_ns_trace_yes"], {
    stdin: "hello\n",
  });
  const open = trace.find((c) => c.who === "child" && c.fn === "mq_open");
  assert.equal(open?.result, "-1 ENOENT (No such file or directory)");
  // mq_open's undo: the name goes as soon as the child has tried it
  assert.deepEqual(
    trace.filter((c) => c.who === "parent").map((c) => c.fn),
    ["mq_open", "clone", "mq_unlink"],
  );
}, missing);

privilegedTest("trace: --contain with a jail: masks, limits, capabilities, filter", async () => {
  const { stdout, trace } = await checkTrace([
    "--contain",
    "--rlimit",
    "nofile=64",
    "-u",
    "box",
    "-c",
    `${jail}/root`,
    "bash",
    "-c",
    "echo contained",
  ]);
  assert.equal(stdout, "contained\n");
  const fns = trace.map((c) => c.fn);
  for (const fn of ["open_tree", "move_mount", "mount_setattr", "keyctl", "capset", "seccomp"]) {
    assert.ok(fns.includes(fn), fn);
  }
  // a masked directory gets a tmpfs where this kernel has one of runc's (/proc/acpi, /proc/scsi…)
  const directory = CONTAIN_MASKED_PATHS.some((path) => {
    try {
      return path.startsWith("/proc/") && Deno.statSync(path).isDirectory;
    } catch {
      return false;
    }
  });
  assert.equal(
    trace.some((c) => c.fn === "mount" && c.args[0] === '"tmpfs"'),
    directory,
    "a directory masked",
  );
}, missing);

privilegedTest(
  "trace: --contain rootless: the drops from a new user namespace's full set",
  async () => {
    const { trace } = await checkTrace(["--contain", "-pm", "bash", "-c", "true"], {
      asUser: NOBODY,
    });
    assert.ok(trace.some((c) => c.fn === "prctl" && c.args[0] === "PR_CAPBSET_DROP"));
    assert.ok(trace.some((c) => c.fn === "seccomp"));
  },
  missing,
);

privilegedTest("trace: --veth and limits: the tool's netlink, cgroups and undo", async () => {
  const { trace } = await checkTrace(["--veth", "-pm", "--memory", "64M", "--pids", "50", "true"]);
  const parent = trace.filter((c) => c.who === "parent");
  const fns = parent.map((c) => c.fn);
  for (const fn of ["socket", "sendto", "unshare", "setns", "mkdir", "write", "rmdir"]) {
    assert.ok(fns.includes(fn), fn);
  }
  const link = parent.find((c) => c.fn === "sendto" && c.args[1].includes("RTM_NEWLINK"))!;
  assert.match(link.args[1], /IFLA_IFNAME="ns\d+"/, "the host end's name is filled in");
  assert.ok(
    parent.some((c) => c.fn === "sendto" && /IFA_LOCAL=10\.0\.\d+\.1\/24/.test(c.args[1])),
    "the host end's address is filled in",
  );
  assert.ok(fns.lastIndexOf("rmdir") > fns.indexOf("clone"), "the cgroups go after the command");
  assert.equal(parent.at(-1)?.args[1].includes("RTM_DELLINK"), true, "the veth goes last");
}, missing);

privilegedTest(
  "trace: --map-users as root: the init stage's steps and the tool's maps",
  async () => {
    const { trace } = await checkTrace([
      "-pm",
      "--map-users",
      "0:100000:65536",
      "--map-groups",
      "0:100000:65536",
      "true",
    ]);
    const maps = trace.filter((c) => c.who === "parent" && c.fn === "write");
    assert.deepEqual(maps.map((c) => c.args[1]), ['"0 100000 65536\\n"', '"0 100000 65536\\n"']);
    assert.ok(trace.some((c) => c.step === "init" && c.fn === "execve"), "the init stage's exec");
    assert.ok(trace.some((c) => c.step === "setresuid" && c.fn === "setresuid"));
  },
  missing,
);

privilegedTest("trace: the done-when command, with its results", async () => {
  const { trace } = await checkTrace(["-vpmu", "calculus", "-c", `${jail}/root`, "bash"]);
  const fns = trace.map((c) => c.fn);
  for (const fn of ["clone", "mount", "openat2", "open_tree", "move_mount", "pivot_root"]) {
    assert.ok(fns.includes(fn), fn);
  }
  assert.ok(trace.every((c) => !c.result.startsWith("-1")), "every call succeeded");
  const clone = trace.find((c) => c.fn === "clone")!;
  assert.match(clone.result, /^\d+$/, "the child's PID is filled in");
  const tree = trace.find((c) => c.step === "jail" && c.fn === "open_tree")!;
  assert.match(
    `${tree.args[0]} ${tree.result}`,
    /^\d+ \d+$/,
    "the jail's descriptors are filled in",
  );
  const proc = trace.find((c) => c.step === "proc")!;
  assert.match(proc.args[1], /^"\/proc\/self\/fd\/\d+"$/, "so is its /proc's");
  const exec = trace.find((c) => c.fn === "execve")!;
  // the first bash on the default PATH inside the jail (/usr/bin/bash, or /bin/bash where /bin
  // is not a link to /usr/bin)
  const found = DEFAULT_PATH.split(":").map((dir) => `${dir}/bash`).find((path) => {
    try {
      return (Deno.statSync(`${jail}/root${path}`).mode! & 0o111) !== 0;
    } catch {
      return false;
    }
  });
  assert.equal(exec.args[0], JSON.stringify(found), "the program found in the jail is filled in");
}, missing);

privilegedTest(
  "trace: a rootless jail without /proc names the failing call and errno",
  async () => {
    const empty = Deno.makeTempDirSync({ prefix: "invoke_ns_noproc_" });
    Deno.chmodSync(empty, 0o755);
    try {
      const { stderr, trace } = await checkTrace(["-pm", "-c", empty, "true"], {
        asUser: NOBODY,
        code: 125,
      });
      const failed = trace.filter((c) => c.result.startsWith("-1"));
      assert.equal(failed.length, 1, stderr);
      assert.equal(failed[0].fn, "mkdirat");
      assert.match(failed[0].result, /^-1 EACCES \(Permission denied\)$/);
      assert.match(stderr, /invoke_ns: jail: .*\/proc is missing and cannot be created/);
      assert.ok(!trace.some((c) => c.fn === "execve"), "nothing after the failure");
    } finally {
      Deno.removeSync(empty, { recursive: true });
    }
  },
  missing,
);

privilegedTest("trace: enter by PID: the joins, the grandchild and its exec", async () => {
  await withCalculusSleeper(async (pid) => {
    const { stdout, stderr, trace } = await checkTrace(["enter", String(pid), "hostname"], {
      traceAt: 1,
    });
    assert.equal(stdout, "calculus\n");
    // the descriptors the tool opened, by number, and its undo that lets them go
    assert.ok(trace.some((c) => c.fn === "setns" && /^\d+$/.test(c.args[0])), "setns's fd");
    assert.equal(stderr.match(/ parent +enter +close\(\d+\) = 0\n/g)?.length, 5, stderr);
    assert.ok(trace.some((c) => c.who === "grandchild" && c.fn === "execve"));
    assert.ok(trace.some((c) => c.fn === "setns" && c.args[1] === "CLONE_NEWPID"));
  });
}, missing);

const BUSYBOX = "/bin/busybox";
const noBusybox = missing ?? (() => {
  try {
    Deno.statSync(BUSYBOX);
    return null;
  } catch {
    return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  }
})();

/**
 * Makes an OCI bundle in `dir`: a busybox root file system, as tests/oci_test.ts makes them
 * (bin, proc, dev, tmp, sys, data, mnt), and a config.json of `config` (over ociVersion and
 * root).
 */
function busyboxBundle(dir: string, config: Record<string, unknown>): void {
  for (const sub of ["bin", "proc", "dev", "tmp", "sys", "data", "mnt"]) {
    Deno.mkdirSync(`${dir}/rootfs/${sub}`, { recursive: true });
  }
  Deno.copyFileSync(BUSYBOX, `${dir}/rootfs/bin/busybox`);
  Deno.chmodSync(`${dir}/rootfs/bin/busybox`, 0o755);
  for (const applet of ["sh", "hostname", "cat", "tty"]) {
    Deno.symlinkSync("busybox", `${dir}/rootfs/bin/${applet}`);
  }
  Deno.writeTextFileSync(
    `${dir}/config.json`,
    JSON.stringify({ ociVersion: "1.2.0", root: { path: "rootfs" }, ...config }),
  );
}

/** Waits until container `id` (state in `root`) is created, then starts it: `CODE STDERR`. */
async function startOnceCreated(root: string, id: string): Promise<string> {
  const oci = (...args: string[]) => runCli(["oci", "--root", root, ...args]);
  for (let i = 0; i < 500; i++) {
    const state = await oci("state", id);
    if (state.code === 0 && JSON.parse(state.stdout).status === "created") break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const start = await oci("start", id);
  return `${start.code} ${start.stderr}`;
}

privilegedTest(
  "trace: an OCI bundle: create --trace under strace, then start and delete; nothing left",
  async () => {
    const dir = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "invoke_ns_trace_oci_" }));
    const root = `${dir}/state`;
    const oci = (...args: string[]) => runCli(["oci", "--root", root, ...args]);
    try {
      Deno.mkdirSync(`${dir}/source`);
      Deno.mkdirSync(root);
      busyboxBundle(
        dir,
        {
          root: { path: "rootfs", readonly: true },
          process: {
            args: ["/bin/sh", "-c", "hostname; cat /proc/sys/kernel/domainname"],
            cwd: "/",
            env: ["PATH=/bin"],
            user: { uid: 0, gid: 0 },
          },
          hostname: "box",
          domainname: "example",
          mounts: [
            { destination: "/proc", type: "proc", source: "proc" },
            {
              destination: "/tmp",
              type: "tmpfs",
              source: "tmpfs",
              options: ["nosuid", "mode=1777"],
            },
            {
              destination: "/data",
              type: "bind",
              source: `${dir}/source`,
              options: ["rbind", "ro", "noatime", "nodiratime"],
            },
            { destination: "/mnt", type: "bind", source: `${dir}/source`, options: ["relatime"] },
            {
              destination: "/sys",
              type: "sysfs",
              source: "sysfs",
              options: ["nosuid", "noexec", "nodev", "ro"],
            },
            {
              destination: "/sys/fs/cgroup",
              type: "cgroup",
              source: "cgroup",
              options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
          ],
          // runc's hooks, each the busybox applet `true` (its path is the host's and the
          // container's); prestart is run as a createRuntime hook, first
          hooks: Object.fromEntries(
            ["prestart", "createRuntime", "createContainer", "startContainer"].map((
              point,
            ) => [point, [{ path: "/bin/busybox", args: ["busybox", "true", point] }]]),
          ),
          linux: {
            namespaces: ["pid", "mount", "uts", "network", "cgroup"].map((type) => ({ type })),
            sysctl: { "net.ipv4.ip_forward": "1", "kernel.domainname": "sysctl.example" },
          },
        },
      );
      let started = "";
      const { stdout, stderr, trace } = await checkTrace(
        ["oci", "--root", root, "create", "-b", dir, "c1"],
        {
          traceAt: 4,
          // strace follows the waiting process: create's trace ends when the container does
          meanwhile: async () => void (started = await startOnceCreated(root, "c1")),
        },
      );
      assert.equal(started, "0 ", "start");
      assert.equal(stdout, "box\nsysctl.example\n", "the container's own output, on its stdout");
      const init = trace.filter((c) => c.who === "child");
      for (const fn of ["mount", "openat2", "mknodat", "umask", "pivot_root", "sethostname"]) {
        assert.ok(init.some((c) => c.fn === fn), fn);
      }
      assert.ok(
        init.some((c) =>
          c.fn === "mount" && c.args[0] === '"tmpfs"' && c.args[4] === '"mode=1777"'
        ),
        "config.json's tmpfs, its data as given",
      );
      // each sync point as its calls are made: the child's sendmsg, the tool's steps, the answer.
      // Each side prints a call once it has returned, so a send and its receive may print in
      // either order: each side's calls in order, and across them what causality fixes.
      const sync = traced(stderr).filter((c) => c.step === "createRuntime" || c.step === "mount")
        .filter((c) => c.fn !== "mount" && c.fn !== "openat2" && !c.fn.includes("_"))
        .map((c) => `${c.who} ${c.fn}`);
      assert.deepEqual(sync.filter((call) => call.startsWith("child ")), [
        "child sendmsg",
        "child recvmsg",
        "child sendmsg",
      ]);
      assert.deepEqual(sync.filter((call) => call.startsWith("parent ")), [
        "parent execve",
        "parent execve",
        "parent recvmsg",
      ]);
      assert.ok(
        sync.indexOf("child recvmsg") > sync.lastIndexOf("parent execve"),
        `the tool's answer comes after its hooks: ${sync.join(", ")}`,
      );
      const steps = (fn: string) => trace.filter((c) => c.fn === fn).map((c) => c.step);
      assert.deepEqual(
        trace.filter((c) => c.fn === "execve" && c.args[0] === '"/bin/busybox"')
          .map((c) => `${c.who} ${c.step} ${c.args[1]}`),
        [
          'parent createRuntime ["busybox", "true", "prestart"]',
          'parent createRuntime ["busybox", "true", "createRuntime"]',
          'child createContainer ["busybox", "true", "createContainer"]',
          'child startContainer ["busybox", "true", "startContainer"]',
        ],
        "the hooks, in order",
      );
      assert.deepEqual(steps("mount_setattr"), ["mounts", "mounts", "readonly"], "binds', root's");
      assert.deepEqual(
        init.filter((c) => c.fn === "mount_setattr").map((c) => c.args[3]),
        [
          "{attr_set=MOUNT_ATTR_RDONLY|MOUNT_ATTR_NOATIME|MOUNT_ATTR_NODIRATIME, " +
          "attr_clr=MOUNT_ATTR__ATIME, propagation=0, userns_fd=0}",
          "{attr_set=MOUNT_ATTR_RELATIME, attr_clr=MOUNT_ATTR__ATIME, propagation=0, userns_fd=0}",
          "{attr_set=MOUNT_ATTR_RDONLY, attr_clr=0, propagation=0, userns_fd=0}",
        ],
        "each bind's atime mode, by name",
      );
      assert.ok(
        init.some((c) => c.step === "mounts" && c.fn === "mount" && c.args[0] === '"cgroup2"'),
        "the cgroup mount's hierarchies",
      );
      assert.deepEqual(
        init.filter((c) => c.step === "sysctl").map((c) => c.args[1]),
        ['"1"', '"sysctl.example"'],
      );
      const exec = trace.at(-1)!;
      assert.equal(
        `${exec.fn} ${exec.args[0]} ${exec.result}`,
        'execve "/bin/sh" <unfinished ...>',
      );
      const removed = await oci("delete", "c1");
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual([...Deno.readDirSync(root)], [], "no state left");
    } finally {
      await oci("delete", "--force", "c1");
      Deno.removeSync(dir, { recursive: true });
    }
  },
  noBusybox,
);

/** The user CI makes with /etc/subuid and /etc/subgid ranges (tests/user_ranges_test.ts). */
const rangesUser = (() => {
  try {
    const line = Deno.readTextFileSync("/etc/passwd").split("\n")
      .find((entry) => entry.startsWith("invoke-ns-test:"));
    const uid = line ? Number(line.split(":")[2]) : NaN;
    const ranges = (file: string) =>
      Deno.readTextFileSync(file).split("\n")
        .some((entry) => entry.startsWith("invoke-ns-test:") || entry.startsWith(`${uid}:`));
    const setuid = (Deno.statSync("/usr/bin/newuidmap").mode! & 0o4000) !== 0;
    return line && ranges("/etc/subuid") && ranges("/etc/subgid") && setuid ? uid : null;
  } catch {
    return null;
  }
})();

privilegedTest(
  "trace: --map-auto rootless: the init stage, and the tool's newuidmap and newgidmap, argv and all",
  async () => {
    const { stdout, trace } = await checkTrace(
      ["--map-auto", "-pmu", "box", "sh", "-c", "id -u; hostname"],
      { asUser: rangesUser! },
    );
    assert.equal(stdout, "0\nbox\n");
    const helpers = trace.filter((c) => c.who === "parent" && c.fn === "execve");
    assert.deepEqual(helpers.map((c) => c.args[0]), [
      '"/usr/bin/newuidmap"',
      '"/usr/bin/newgidmap"',
    ]);
    const child = trace.find((c) => c.fn === "clone")!.result;
    for (const helper of helpers) {
      assert.ok(helper.args[1].includes(`, "${child}", "0", "${rangesUser}", "1"`), helper.args[1]);
    }
    assert.ok(trace.some((c) => c.step === "init" && c.fn === "execve"), "the init stage's exec");
    assert.ok(trace.some((c) => c.fn === "capset"), "the command's capabilities, from its UID");
  },
  missing ??
    (rangesUser === null
      ? "no user invoke-ns-test with /etc/subuid and /etc/subgid ranges and a setuid newuidmap " +
        "(.ci/run makes them)"
      : null),
);

const python = (() => {
  try {
    return new Deno.Command("python3", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

privilegedTest(
  "trace: an OCI bundle with a terminal: the console socket, the pty and its ioctls, traced",
  async () => {
    const dir = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "invoke_ns_trace_tty_" }));
    const root = `${dir}/state`;
    const socket = `${dir}/console.sock`;
    Deno.mkdirSync(root);
    busyboxBundle(dir, {
      process: {
        args: ["/bin/sh", "-c", "tty"],
        cwd: "/",
        env: ["PATH=/bin"],
        user: { uid: 0, gid: 0 },
        terminal: true,
        consoleSize: { height: 30, width: 100 },
      },
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        {
          destination: "/dev/pts",
          type: "devpts",
          source: "devpts",
          options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
      ],
      linux: { namespaces: [{ type: "pid" }, { type: "mount" }] },
    });
    // conmon's part: takes the master sent over the socket, prints what the container writes
    const { server, output } = await startConsoleSocket("python3", socket);
    try {
      let started = "";
      const { trace } = await checkTrace(
        ["oci", "--root", root, "create", "--console-socket", socket, "-b", dir, "t1"],
        {
          traceAt: 4,
          also: ["connect", "ioctl", "dup2"],
          meanwhile: async () => void (started = await startOnceCreated(root, "t1")),
        },
      );
      assert.equal(started, "0 ", "start");
      assert.equal((await output()).split(/\r?\n/)[0], "/dev/pts/0", "the command's terminal");
      assert.deepEqual(
        trace.filter((c) => c.step === "console-socket").map((c) => `${c.fn} ${c.args[1]}`),
        [
          "socket SOCK_STREAM|SOCK_CLOEXEC",
          `connect {sa_family=AF_UNIX, sun_path=${JSON.stringify(socket)}}`,
        ],
      );
      assert.ok(
        trace.some((c) => c.fn === "ioctl" && c.args[1] === "TIOCGPTN" && c.args[2] === "[0]"),
        "the pty's number, filled in",
      );
      const calls = trace.filter((c) => c.step === "terminal").map((c) => c.fn);
      assert.deepEqual(calls, [
        "ioctl",
        "ioctl",
        "ioctl",
        "setsid",
        "ioctl",
        "dup2",
        "dup2",
        "dup2",
      ]);
      const removed = await runCli(["oci", "--root", root, "delete", "t1"]);
      assert.equal(removed.code, 0, removed.stderr);
    } finally {
      await runCli(["oci", "--root", root, "delete", "--force", "t1"]);
      await server.status;
      Deno.removeSync(dir, { recursive: true });
    }
  },
  noBusybox ?? (python ? null : "python3 is missing (it plays conmon's console socket)"),
);
