/**
 * `--explain` and `--trace`: a plan (lib/plan.ts) as the list of system
 * calls a container is made of, in order, each with who makes it (the tool,
 * the clone child, the grandchild), its arguments in C syntax and a few
 * words on why; and the same list printed as it runs, with each call's
 * result and time. Both come from the plan the runner executes: the plan's
 * steps, and around them the engine's own calls, which follow from the
 * plan's fields the runner hands to the engine (`cloneFlags`,
 * `dieWithParent`, `exec`, `stage`, `execInGrandchild`).
 *
 * What a step lists: the calls that set the container up (mount, pivot_root,
 * sethostname, setns, a write to a /proc file, prctl, seccomp, execve), not
 * the helpers they go through: the open and close around a write to a file
 * (`write(<fd of /proc/self/uid_map>, …)` stands for all three), the openat
 * of each component of a path walk, fstat, access. tests/trace_test.ts
 * holds `--trace` to exactly that list against `strace -f`.
 *
 * Values known only at run time are named placeholders ({@link PLACEHOLDERS})
 * in `--explain`; `--trace` fills in those it learns (the child's PID, the
 * program found on PATH).
 *
 * Loaded only for `--explain` and `--trace`.
 * @module
 */

import { ChildSetupError, type CloneOutcome } from "../ffi/clone.ts";
import { CLONE } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errors.ts";
import { writeText } from "../ffi/libc.ts";
import { monotonicNanoseconds } from "../ffi/files.ts";
import type { Plan } from "./plan.ts";
import { initExec } from "./stage.ts";
import {
  type Actor,
  type Call,
  call,
  type EnginePart,
  flagNames,
  type PlanObserver,
  type StepBase,
} from "./step.ts";
import { LaunchError } from "./supervise.ts";

/** One step of an explanation: who runs it, its name, its calls and why. */
export interface ExplainedStep {
  /** Who makes the calls. */
  who: Actor;
  /** The step's name: the `step` of any error it raises. */
  step: string;
  /** Its calls, in order. */
  calls: Call[];
  /** A few words on why. */
  why: string;
}

/** A plan as data (`--explain --json`, `launch(spec, { explain: true })`). */
export interface Explanation {
  /** Every step, in the order it runs. */
  steps: ExplainedStep[];
  /** The placeholders the steps use, with what each stands for. */
  placeholders: Record<string, string>;
}

/**
 * The placeholders an explanation may use, with what they stand for. A
 * placeholder is an argument in angle brackets; `<fd of PATH>` is the
 * descriptor the step opened PATH as (its number is the kernel's choice).
 */
export const PLACEHOLDERS: Record<string, string> = {
  "<child-pid>": "the child's PID in the tool's PID namespace: clone's result (--trace shows it)",
  "<grandchild-pid>": "the grandchild's PID: the child's clone's result",
  "<path of CMD>":
    "the program execve runs: the first executable CMD on PATH, looked up by the child " +
    "once it is in its jail (--trace shows it)",
  "<environment>": "the command's environment, KEY=VALUE strings (-e, --keep-env)",
  "<setcontext>": "the engine's entry point: glibc's setcontext, which starts the child's setup",
  "<stack>": "the child's stack, carved below the tool's own stack pointer",
  "<setup context>": "the ucontext that runs the child's steps (ffi/clone.ts)",
  "<fd of PATH>": "the descriptor the step opened PATH as (the number is the kernel's choice)",
  "<clone of PATH>":
    "a detached copy of the mount at PATH (open_tree's OPEN_TREE_CLONE), as a descriptor",
  "<keyring>": "the new session keyring's serial number",
  "<session ID>": "the new session's ID: the child's PID in its PID namespace",
  "<the program>": "the filter's instructions, copied by the tool where the kernel reads them",
  "<the old limits>": "where the kernel returns the limits as they were",
  "<the old umask>": "the umask as it was: umask's result, put back once the nodes are made",
  "<each …>": "one call for each of what it names",
  "<console socket>": "the connection to the console socket (--console-socket), as a descriptor",
  "<pty master>": "the terminal's master, opened from the container's /dev/ptmx",
  "<pty number>": "the terminal's number in the container's devpts (TIOCGPTN's answer)",
  "<pty slave>": "the terminal's slave, /dev/pts/<pty number>, as a descriptor",
  "<channel>": "the init stage's end of its socket pair with the tool",
  "<host route socket>": "a NETLINK_ROUTE socket in the tool's network namespace",
  "<namespace route socket>": "a NETLINK_ROUTE socket in the container's new network namespace",
  "<the tool's network namespace>": "the tool's own network namespace, held open while it is away",
  "<veth namespace>": "the descriptor of the container's new network namespace",
  "<host address>": "the host end's address, without its prefix length: the default route",
  "<launch cgroup>": "the launch's cgroup: invoke_ns-<tool's PID>-<its start time>-<n>",
  "<host-end>": "the veth's host end: ns<tool's PID> and a counter, unless --veth-name",
  "<host-cidr>": "the host end's address: 10.0.0.1/24, or the next free 10.0.N.0/24",
  "<guest-cidr>": "eth0's address inside: 10.0.0.2/24, or the next free 10.0.N.0/24",
};

/**
 * The system calls a step lists (and `--trace` shows, and tests/trace_test.ts
 * holds against strace): those that make the container. Any other call a
 * step's code makes is a helper of one of these (open, openat, close, fstat,
 * access, read) or the engine's bookkeeping (rt_sigaction, fcntl), and is
 * not listed; `write` is listed when it writes a kernel file (/proc, /sys),
 * `socket` and `sendto` for netlink (the veth), `mkdir` and `rmdir` for cgroups.
 * (The `_exit(0)` of a launch without a command is listed, not held to strace.)
 */
export const SETUP_CALLS: readonly string[] = [
  "clone",
  "unshare",
  "setns",
  "mount",
  "umount2",
  "pivot_root",
  "chroot",
  "chdir",
  "fchdir",
  "open_tree",
  "move_mount",
  "mount_setattr",
  "fsopen",
  "fsmount",
  "openat2",
  "mkdir",
  "mkdirat",
  "rmdir",
  "mknodat",
  "sethostname",
  "setdomainname",
  "getpid",
  "prctl",
  "seccomp",
  "capset",
  "setgroups",
  "setresgid",
  "setresuid",
  "setsid",
  "keyctl",
  "prlimit64",
  "umask",
  "personality",
  "close_range",
  "socket",
  "sendto",
  "mq_open",
  "mq_unlink",
  "mq_send",
  "mq_timedreceive",
  "write",
  "execve",
];

/** Which arguments of a call are C strings (`const char *`), by position. */
const STRING_ARGS: Record<string, number[]> = {
  mount: [0, 1, 2, 4],
  umount2: [0],
  pivot_root: [0, 1],
  chroot: [0],
  chdir: [0],
  sethostname: [0],
  setdomainname: [0],
  open: [0],
  openat: [1],
  openat2: [1],
  open_tree: [1],
  move_mount: [1, 3],
  mount_setattr: [1],
  mkdir: [0],
  rmdir: [0],
  mkdirat: [1],
  mknodat: [1],
  write: [1],
  execve: [0],
  mq_open: [0],
  mq_unlink: [0],
  unlinkat: [1],
  fsopen: [0],
  readlink: [0],
};

/** Whether `text` is a placeholder as a whole. */
function isPlaceholder(text: string): boolean {
  return /^<[^<>]+>$/.test(text) || /^&<[^<>]+>$/.test(text);
}

/** `call` in C syntax, with `values` filled in for its placeholders. */
export function formatCall(c: Call, values: Record<string, string> = {}): string {
  const strings = STRING_ARGS[c.fn] ?? [];
  const args = c.args.map((arg, index) => {
    if (arg === null) return "NULL";
    if (typeof arg === "number") return String(arg);
    const filled = fill(arg, values);
    if (!strings.includes(index) || (isPlaceholder(filled) && filled === arg)) return filled;
    return JSON.stringify(filled);
  });
  return `${c.fn}(${args.join(", ")})`;
}

/** `text` with each placeholder of `values` replaced. */
function fill(text: string, values: Record<string, string>): string {
  return text.replace(/<[^<>]+>/g, (name) => values[name] ?? name);
}

/** An argument vector as C would initialise it: `["bash", "--norc"]`. */
function argvText(argv: string[]): string {
  return `[${argv.map((word) => JSON.stringify(word)).join(", ")}]`;
}

/** An explained step, and what it stands for: a plan's step or a part of the engine's. */
interface Entry extends ExplainedStep {
  source: StepBase | EnginePart;
  /** Of a step that waits at a sync point: the part after the tool's answer. */
  answer?: boolean;
}

/** The hygiene before exec: default signals, no fd of the tool's but 0-2 (and `kept`). */
function hygiene(source: EnginePart, kept: string | null): Entry {
  return {
    who: "child",
    step: "exec",
    calls: [
      call("rt_sigaction", "<each signal the tool changed>", "SIG_DFL"),
      kept === null
        ? call("close_range", 3, 4294967295, 0)
        : call("close_range", `<each range of fds above 2 but ${kept}>`, 0),
    ],
    why: "the command starts with default signals and no descriptor of the tool's",
    source,
  };
}

/** PR_SET_PDEATHSIG as the engine sets it (`again`: after the steps, which may clear it). */
function deathSignal(who: Actor, source: EnginePart, again: boolean): Entry {
  return {
    who,
    step: "prctl",
    calls: [call("prctl", "PR_SET_PDEATHSIG", "SIGKILL")],
    why: again
      ? "again, last: a change of credentials clears it"
      : `the ${who} is killed when the tool dies`,
    source,
  };
}

/** The execve of the command. */
function execEntry(plan: Plan, who: Actor): Entry {
  const exec = plan.exec!;
  const path = exec.command.includes("/") ? exec.command : `<path of ${exec.command}>`;
  return {
    who,
    step: "exec",
    calls: [call("execve", path, argvText(exec.argv), "<environment>")],
    why: exec.command.includes("/")
      ? `the command replaces the ${who}`
      : `the command replaces the ${who}: the first executable on its PATH, in the jail if any`,
    source: "exec",
  };
}

/** The clone of a plan, as its call. */
export function cloneCall(plan: Plan): Call {
  const flags = plan.cloneFlags | CLONE.VM | CLONE.VFORK | CLONE.PARENT_SETTID;
  return {
    fn: "clone",
    args: [
      "<setcontext>",
      "<stack>",
      `${flagNames(flags, CLONE, "CLONE_")}|SIGCHLD`,
      "<setup context>",
      "&<child-pid>",
    ],
    returns: "<child-pid>",
  };
}

/**
 * The undo of each parent step of `plan` that says what it does, in the
 * order the runner runs them (the reverse of the steps'): those that run as
 * soon as the child exists (`afterClone`), or those at the end.
 */
function undoEntries(plan: Plan, afterClone: boolean): Entry[] {
  return [...plan.parent].reverse().flatMap((step) =>
    step.undoing && Boolean(step.undoAfterClone) === afterClone
      ? [{ ...described(step.undoing, "parent"), source: step.undoing }]
      : []
  );
}

/** Every step of `plan`, in order, with what each stands for. */
function entries(plan: Plan): Entry[] {
  const list: Entry[] = plan.parent.map((step) => ({ ...described(step, "parent"), source: step }));
  const created = plan.create.filter((type) => type !== "time" && type !== "cgroup");
  list.push({
    who: "parent",
    step: "clone",
    calls: [cloneCall(plan)],
    why: created.length
      ? `the child, born in new ${created.join(", ")} namespace${
        created.length > 1 ? "s" : ""
      }; it shares the tool's ` +
        "memory, which waits until it has exec'd"
      : "the child; it shares the tool's memory, which waits until it has exec'd",
    source: "clone",
  });
  const die = plan.dieWithParent;
  if (die) list.push(deathSignal("child", "pdeathsig", false));
  if (plan.stage === "init") {
    if (plan.create.includes("user")) {
      list.push({
        who: "child",
        step: "setup",
        calls: [
          call(
            "capset",
            "{version=_LINUX_CAPABILITY_VERSION_3, pid=0}",
            "<capget's sets, inheritable = permitted>",
          ),
          call("prctl", "PR_CAP_AMBIENT", "PR_CAP_AMBIENT_RAISE", "<each permitted capability>"),
        ],
        why: "until the tool maps its IDs, an exec would drop every capability",
        source: "ambient",
      });
    }
    const init = initExec(0);
    list.push(hygiene("hygiene", "the channel"));
    if (die) list.push(deathSignal("child", "pdeathsig-again", true));
    list.push({
      who: "child",
      step: "init",
      calls: [call("execve", init.command, argvText(init.argv), "<environment>")],
      why: "the init stage: a fresh Deno runs the child's steps while the tool acts at sync points",
      source: "init",
    });
    list.push(...undoEntries(plan, true));
    if (die) list.push(deathSignal("child", "init-pdeathsig", false));
  }
  for (const step of plan.child) {
    if (step.syncPoint === undefined) {
      list.push({ ...described(step, "child"), source: step });
      continue;
    }
    // a sync point, in the order of its calls: the child's up to its sendmsg, the tool's
    // steps there, then the child's once the tool answers
    const sent = step.calls.findIndex((c) => c.fn === "sendmsg") + 1;
    list.push({ ...described(step, "child"), calls: step.calls.slice(0, sent), source: step });
    for (const parentStep of plan.sync.find((s) => s.point === step.syncPoint)?.steps ?? []) {
      list.push({ ...described(parentStep, "parent"), source: parentStep });
    }
    list.push({
      who: "child",
      step: step.name,
      calls: step.calls.slice(sent),
      why: "the tool's answer: the child goes on",
      source: step,
      answer: true,
    });
  }
  if (plan.stage === "init") {
    if (plan.exec) {
      if (die) list.push(deathSignal("child", "init-pdeathsig-again", true));
      list.push(hygiene("init-hygiene", "the channel"));
      list.push(execEntry(plan, "child"));
    }
  } else if (plan.execInGrandchild && plan.exec) {
    list.push(hygiene("hygiene", "the grandchild's"));
    list.push({
      who: "child",
      step: "exec",
      calls: [{
        fn: "clone",
        args: ["<setcontext>", "<stack>", "CLONE_PARENT|SIGCHLD", "<the grandchild's steps>"],
        returns: "<grandchild-pid>",
      }],
      why: "a namespace joined by setns (PID, time) applies to the children of who joined it",
      source: "grandchild",
    });
    if (die) list.push(deathSignal("child", "pdeathsig-again", true));
    if (die) list.push(deathSignal("grandchild", "grandchild-pdeathsig", false));
    for (const step of plan.grandchild) {
      list.push({ ...described(step, "grandchild"), source: step });
    }
    list.push(execEntry(plan, "grandchild"));
  } else {
    list.push(hygiene("hygiene", null));
    if (die) list.push(deathSignal("child", "pdeathsig-again", true));
    if (plan.exec) list.push(execEntry(plan, "child"));
    else {
      list.push({
        who: "child",
        step: "exit",
        calls: [call("_exit", 0)],
        why: "no command: the child ends once set up, as the seed's does",
        source: "exit",
      });
    }
  }
  if (plan.stage !== "init") list.push(...undoEntries(plan, true));
  for (const step of plan.cleanup) list.push({ ...described(step, "parent"), source: step });
  list.push(...undoEntries(plan, false));
  return list;
}

/** A plan's step as an explained one. */
function described(step: StepBase, who: Actor): ExplainedStep {
  return { who, step: step.name, calls: step.calls, why: step.why };
}

/** `plan` explained: every step in order, and the placeholders they use. */
export function explainPlan(plan: Plan): Explanation {
  const steps = entries(plan).map(({ who, step, calls, why }) => ({ who, step, calls, why }));
  const used = new Set(
    steps.flatMap((s) =>
      s.calls.flatMap((c) => [...c.args, c.returns ?? ""].join(" ").match(/<[^<>]+>/g) ?? [])
    ),
  );
  const placeholders: Record<string, string> = {};
  for (const name of used) {
    const key = name.startsWith("<fd of ")
      ? "<fd of PATH>"
      : name.startsWith("<clone of ")
      ? "<clone of PATH>"
      : name.startsWith("<path of ")
      ? "<path of CMD>"
      : name.startsWith("<each ")
      ? "<each …>"
      : name;
    if (PLACEHOLDERS[key]) placeholders[key] = PLACEHOLDERS[key];
  }
  return { steps, placeholders };
}

const WHO_WIDTH = 10, STEP_WIDTH = 13;

/**
 * An explanation as text: a line per call, the step's why after its first;
 * then, with `legend`, what its placeholders stand for.
 */
export function explanationLines(explanation: Explanation, legend = true): string[] {
  const lines = explanation.steps.flatMap((step) =>
    step.calls.map((c, index) =>
      `${step.who.padEnd(WHO_WIDTH)} ${step.step.padEnd(STEP_WIDTH)} ${formatCall(c)}${
        index === 0 ? `  # ${step.why}` : ""
      }`
    )
  );
  const names = Object.entries(explanation.placeholders);
  if (names.length === 0 || !legend) return lines;
  return [
    ...lines,
    "",
    "placeholders (filled in at run time; --trace shows the values it learns):",
    ...names.map(([name, meaning]) => `  ${name}: ${meaning}`),
  ];
}

/** The SyscallError behind `error`, if any. */
function syscallErrorOf(error: unknown): SyscallError | undefined {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof SyscallError) return e;
    if (!(e instanceof Error)) return undefined;
  }
  return undefined;
}

/**
 * The {@link PlanObserver} of `--trace`: prints each call of each step as it
 * runs, on stderr (with write(2): the clone child prints too), as
 * `+1.234ms who step call = result`; `-v`'s lines keep their place on
 * stdout. Every process of a launch (the tool, the init stage) makes its own
 * from the same plan; `origin` is the tool's start, so their times agree.
 */
export class Tracer implements PlanObserver {
  readonly #plan: Plan;
  readonly #entries: Entry[];
  readonly #origin: bigint;
  readonly #fd: number;
  readonly #values: Record<string, string> = {};
  /** Whether a failed step has been reported (by the child too: it shares this memory). */
  #failed = false;
  /** The steps whose sync point's sendmsg has been reported: what follows is their answer's. */
  readonly #sent = new Set<StepBase | EnginePart>();

  /**
   * A tracer for `plan`, its times counted from `origin` (CLOCK_MONOTONIC,
   * ns), writing to `fd` (the init stage's copy of its stderr: a terminal
   * step makes fd 2 the container's pty).
   */
  constructor(plan: Plan, origin: bigint = monotonicNanoseconds(), fd = 2) {
    this.#plan = plan;
    this.#entries = entries(plan);
    this.#origin = origin;
    this.#fd = fd;
  }

  /** When the trace began (CLOCK_MONOTONIC, ns), for the init stage's tracer. */
  get origin(): bigint {
    return this.#origin;
  }

  /** {@inheritDoc PlanObserver.ran} */
  ran(source: StepBase | EnginePart, error?: unknown, values?: Record<string, string>): void {
    if (values) Object.assign(this.#values, values);
    if (error !== undefined) this.#failed = true;
    const answered = this.#sent.has(source);
    const entry = this.#entries.find((e) => e.source === source && Boolean(e.answer) === answered);
    if (!entry) return;
    const step = typeof source === "string" ? undefined : source;
    if (step?.learnt) Object.assign(this.#values, step.learnt());
    const made = step?.made?.();
    const calls = made?.calls ?? entry.calls;
    const prefix = this.#prefix(entry);
    const failed = error === undefined ? undefined : syscallErrorOf(error);
    const at = !failed
      ? -1
      : made
      ? (made.failed ? calls.length - 1 : -1)
      : calls.findIndex((c) => c.fn === failed.call);
    let text = "";
    for (const [index, c] of calls.entries()) {
      const shown = `${prefix}${formatCall(c, this.#values)}`;
      if (failed && at === index) {
        text += `${shown} = -1 ${failed.code} (${failed.description})\n`;
        break;
      }
      if (error !== undefined && !failed && index === calls.length - 1) {
        text += `${shown} = ? (${messageOf(error)})\n`;
        break;
      }
      if (failed && at === -1 && !made && index === calls.length - 1) {
        // a helper failed (the open before a write, a component of a walk): it names itself
        text += `${prefix}${failed.call}(…) = -1 ${failed.code} (${failed.description})\n`;
        break;
      }
      text += `${shown} = ${c.returns ? fill(c.returns, this.#values) : "0"}\n`;
    }
    if (failed && at === -1 && made) {
      // every call it made succeeded: a helper after them failed (the open before mount_setattr)
      text += `${prefix}${failed.call}(…) = -1 ${failed.code} (${failed.description})\n`;
    } else if (calls.length === 0 && error !== undefined) {
      text += `${prefix}= ? (${messageOf(error)})\n`;
    }
    this.#write(text);
  }

  /** {@inheritDoc PlanObserver.syncing} */
  syncing(point: string): void {
    const step = this.#plan.child.find((s) => s.syncPoint === point);
    const entry = this.#entries.find((e) => e.source === step && !e.answer);
    if (!step || !entry) return;
    this.#sent.add(step);
    const prefix = this.#prefix(entry);
    this.#write(
      entry.calls.map((c) =>
        `${prefix}${formatCall(c, this.#values)} = ${
          c.returns ? fill(c.returns, this.#values) : "0"
        }\n`
      ).join(""),
    );
  }

  /** Writes `text` to the trace's descriptor. */
  #write(text: string): void {
    if (text === "") return;
    try {
      writeText(this.#fd, text);
    } catch {
      // stderr is gone: the trace is informational
    }
  }

  /** A trace line's start: the time since the origin, who, the step. */
  #prefix(entry: Entry): string {
    const time = Number(monotonicNanoseconds() - this.#origin) / 1e6;
    return `+${time.toFixed(3).padStart(8)}ms ${entry.who.padEnd(WHO_WIDTH)} ${
      entry.step.padEnd(STEP_WIDTH)
    } `;
  }

  /**
   * The init stage of a detached launch (OCI create) is about to exec the
   * command, `program`: nobody is left to see it succeed (the exec closes
   * the channel to the tool), so its execve is shown now, as strace shows a
   * call that has not returned (`<unfinished ...>`); a failure follows as
   * its own line.
   */
  executing(program: string): void {
    const exec = this.#plan.exec;
    if (exec) this.#values[`<path of ${exec.command}>`] = program;
    const entry = this.#entries.find((e) => e.source === "exec");
    if (!entry) return;
    const prefix = this.#prefix(entry);
    this.#write(
      entry.calls.map((c) => `${prefix}${formatCall(c, this.#values)} <unfinished ...>\n`)
        .join(""),
    );
  }

  /** {@inheritDoc PlanObserver.cloned} */
  cloned(outcome: CloneOutcome): void {
    const exec = this.#plan.exec;
    if (outcome.program && exec) this.#values[`<path of ${exec.command}>`] = outcome.program;
    const failure = outcome.failure;
    const inExec = failure?.step === "exec";
    // A child's step that failed has said so itself; nothing after it ran.
    if (this.#failed) return;
    const execveFailed = syscallErrorOf(failure)?.call === "execve";
    this.ran("hygiene");
    if (this.#plan.stage === "init") {
      if (!inExec || execveFailed) this.ran("pdeathsig-again");
      this.ran("init", failure);
      return;
    }
    if (this.#plan.execInGrandchild && exec) {
      if (inExec && !execveFailed) return this.ran("exec", failure);
      this.ran("grandchild", undefined, { "<grandchild-pid>": String(outcome.pid) });
      this.ran("pdeathsig-again");
      for (const entry of this.#entries.filter((e) => e.who === "grandchild")) {
        const failed = failure &&
          (entry.step === failure.step || (inExec && entry.step === "exec"));
        this.ran(entry.source, failed ? failure : undefined);
        if (failed) return;
      }
      return;
    }
    if (!inExec || execveFailed) this.ran("pdeathsig-again");
    this.ran(exec ? "exec" : "exit", failure);
  }

  /** {@inheritDoc PlanObserver.execed} */
  execed(program: string): void {
    const exec = this.#plan.exec;
    if (exec) this.#values[`<path of ${exec.command}>`] = program;
    this.ran("exec");
  }
}

/** A failure's message, for a step that failed outside a system call. */
function messageOf(error: unknown): string {
  if (error instanceof LaunchError || error instanceof ChildSetupError) return error.message;
  return error instanceof Error ? error.message : String(error);
}
