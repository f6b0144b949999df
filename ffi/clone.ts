/**
 * The clone engine: how a multi-threaded Deno process creates a child in new
 * namespaces, runs JavaScript setup in it, and execs a command.
 *
 * Deno cannot fork (V8's heap is not copied into a forked child) and cannot
 * unshare most namespaces (it is multi-threaded). So the child is made with
 * `clone(CLONE_VM | CLONE_VFORK | namespaces)`: it borrows the parent's
 * memory while the parent's main thread is suspended, and runs a chain of
 * `ucontext`s on stacks carved below the parent's stack pointer:
 *
 * ```
 * clone(&setcontext, stack, flags, &setup)
 *   setup  : the JS callback (namespace setup) — returns normally, which
 *            unwinds every V8 frame; uc_link ->
 *   exec   : execve(path, argv, envp), or _exit(code) when setup failed;
 *            uc_link (only reached when execve fails) ->
 *   failed : memcpy(&execErrno, &errno, 4); uc_link ->
 *   exit   : _exit(126)
 * ```
 *
 * The parent resumes when the child has exec'd or exited and reads what the
 * setup callback recorded in (shared) JS memory.
 *
 * With `execInGrandchild` (a PID namespace joined with setns applies only to
 * the joiner's children; a time namespace can only be joined by a task that
 * shares its memory with nobody) the child does not exec: after setup it
 * forks a grandchild with a plain clone (no shared memory: a copy of
 * everything, contexts and stacks included) made a child of the caller
 * (CLONE_PARENT), and exits. Only native code runs in the grandchild: a list
 * of libc calls, each one *checked*, then the exec:
 *
 * ```
 * clone(&setcontext, stack, CLONE_PARENT | SIGCHLD, &steps[0])
 *   for each step (e.g. prctl(PR_SET_PDEATHSIG, SIGKILL), setns(fd, CLONE_NEWTIME)):
 *     clear  : memset(&errno, 0, 4)
 *     call   : the libc function, with its arguments
 *     record : write(pipe, &errno, 4)            (0 when it succeeded)
 *     patch  : memcpy(&gate.rdi, &errno, 4); memcpy(&gate.rdx, &errno, 4)
 *     gate   : bsearch(errno, base, errno, 1, _exit)
 *   exec   : execve(path, argv, envp); uc_link (only when execve fails) ->
 *   report : write(pipe, &errno, 4)   (the pipe is O_CLOEXEC: an exec closes it); uc_link ->
 *   exit   : _exit(126)
 * ```
 *
 * A context chain cannot look at a return value, so the check is made of
 * libc itself: `bsearch` with `nmemb` 0 returns at once (the chain goes on),
 * and with `nmemb` > 0 calls its comparison function, here `_exit`, with the
 * key, here the errno: a failed step ends the grandchild before the next one.
 * The parent reads the records: a non-zero one names the step that failed
 * and its errno; one more record than steps is the exec's errno; end of file
 * after all of them means the exec succeeded.
 * @module
 */

import {
  REG_RDI,
  REG_RDX,
  REG_RSP,
  UC_GREGS,
  UC_LINK,
  UC_SIGMASK,
  UC_STACK_SIZE,
  UC_STACK_SP,
  UCONTEXT_SIZE,
} from "./arch.ts";
import { CLONE, SIGNAL_MAX, SIGNALS } from "./constants.ts";
import { SyscallError } from "./errors.ts";
import {
  addressOf,
  cacheSchedulingParameters,
  close,
  closeRange,
  F_GETFL,
  F_OK,
  F_SETFD,
  F_SETFL,
  fcntl,
  ignoreSignal,
  lastError,
  O_DIRECTORY,
  O_NONBLOCK,
  offHeap,
  pipe,
  PR_SET_PDEATHSIG,
  prctl,
  raw,
  read,
  readFile,
  resetSignal,
  setSignalMask,
  SIG_BLOCK,
  SIG_SETMASK,
  signalsIgnoredByCaller,
  strerror,
  symbolAddress,
  waitForChild,
  X_OK,
} from "./libc.ts";

/** A setup step failed in the child; the child exits with `exitCode`. */
export class ChildSetupError extends Error {
  /** The step that failed, e.g. `"sethostname"` or `"exec"`. */
  readonly step: string;
  /** What kind of failure: see {@link ChildFailure}. */
  readonly kind: ChildFailure;
  /** With `"interrupted"`: the signal that interrupted it. */
  readonly signal?: number;
  /** The underlying error, when there was one. */
  override readonly cause?: unknown;

  /** Builds the error; `cause` is typically a {@link SyscallError}. */
  constructor(
    step: string,
    message: string,
    kind: ChildFailure = "setup",
    cause?: unknown,
    signal?: number,
  ) {
    super(message);
    this.name = "ChildSetupError";
    this.step = step;
    this.kind = kind;
    this.cause = cause;
    this.signal = signal;
  }
}

/**
 * Why the child stopped before the command: a setup step failed, the
 * command was not found or could not be executed, or a signal interrupted
 * setup (the queue demo's prompt).
 */
export type ChildFailure = "setup" | "not-found" | "not-executable" | "interrupted";

/** The status a child that failed before exec ends with (its parent knows why already). */
const FAILED_CHILD_STATUS = 1;

/** What to run in the child once setup is done. */
export interface ExecRequest {
  /** The command's name or path, as given (argv[0]). */
  command: string;
  /** Full argument vector, argv[0] included. */
  argv: string[];
  /** The environment, as `KEY=VALUE` strings. */
  env: string[];
  /** Searched for a command without a slash when `env` has no PATH. */
  fallbackPath?: string;
}

/** What the engine is asked to do. */
export interface CloneRequest {
  /** CLONE_NEW* flags. */
  namespaces: number;
  /**
   * Runs in the child, in the new namespaces, before the command is exec'd.
   * It must be synchronous and may only call `ffi/` functions: it runs in the
   * parent's memory while the parent is suspended. Throwing aborts the child.
   */
  setup: (info: { outerPid: number }) => void;
  /** The command to exec; without one the child exits 0 after setup. */
  exec?: ExecRequest;
  /** Runs in the child once the command has been found, just before exec (same rules as setup). */
  beforeExec?: () => void;
  /**
   * Exec the command in a grandchild, a child of the caller, rather than in
   * the child: for namespaces that only apply to the children of the process
   * that joined them (a PID namespace joined with setns in `setup`).
   */
  execInGrandchild?: boolean;
  /** Fds above 2 that stay open for the exec'd program (the child clears their close-on-exec). */
  keepFds?: number[];
  /**
   * With `execInGrandchild`: libc calls the grandchild makes before exec,
   * in order, each checked (a failure stops it and is reported).
   */
  grandchildSteps?: NativeCall[];
  /**
   * Kill the command (PR_SET_PDEATHSIG, SIGKILL) when the caller dies
   * (default true). Set in the child before setup and again after it, as a
   * change of credentials during setup clears it.
   */
  dieWithParent?: boolean;
}

/** A libc call the grandchild makes before exec: a function and its integer arguments. */
export interface NativeCall {
  /** The step it belongs to (the `step` of its error). */
  step: string;
  /** The libc function, e.g. `"setns"`. */
  symbol: string;
  /** Its arguments (at most six). */
  args: (number | bigint)[];
  /** What it acts on, for the error message. */
  what?: string;
  /** The fds it uses, kept open for it (they must be close-on-exec). */
  fds?: number[];
}

/** What happened by the time `clone` returned in the parent. */
export interface CloneOutcome {
  /** The PID, in the parent's PID namespace, of the process that runs the command. */
  pid: number;
  /** Set when setup or exec failed; the child has then already exited. */
  failure?: ChildSetupError;
  /** The fds among 0-2 whose O_NONBLOCK flag the child cleared. */
  clearedNonblock: number[];
  /** The program the command was exec'd from (or would have been): the PATH search's pick. */
  program?: string;
}

const KIB = 1024;

/** Carved stack regions, as offsets below the parent's stack pointer. */
const STACKS = {
  clone: { top: 64 * KIB },
  setup: { top: 128 * KIB, bottom: 576 * KIB },
  exec: { top: 576 * KIB, bottom: 640 * KIB },
  failed: { top: 640 * KIB, bottom: 704 * KIB },
  exit: { top: 704 * KIB, bottom: 768 * KIB },
  report: { top: 832 * KIB, bottom: 896 * KIB },
  grandchild: { top: 896 * KIB },
} as const;

const ALL_SIGNALS = 0xffff_ffff_ffff_ffffn;

interface Context {
  bytes: Uint8Array<ArrayBuffer>;
  view: DataView;
  address: bigint;
}

function newContext(): Context {
  const bytes = offHeap(UCONTEXT_SIZE);
  return { bytes, view: new DataView(bytes.buffer), address: addressOf(bytes) };
}

const contexts = {
  scratch: newContext(),
  setup: newContext(),
  exec: newContext(),
  failed: newContext(),
  exit: newContext(),
  report: newContext(),
};

/**
 * The C strings and vectors of one launch (argv, envp, the command's
 * candidate paths), written into one off-heap buffer that every launch
 * reuses; its address is taken once. Measured: taking a fresh buffer's
 * address with `Deno.UnsafePointer.of` for each launch made every such
 * buffer survive the next scavenge (about 5% of the young generation each
 * time), so V8 kept doubling its young generation, from 1 to 51.5 MiB over
 * ~20,000 launches (RSS 49 -> 128 MiB) while live data stayed ~6 MiB.
 * Used only while `cloneChild` runs (the child execs before clone returns;
 * the grandchild execs from its own copy), or by {@link execInPlace} just
 * before an exec, so one buffer serves every launch.
 */
class StringArena {
  #bytes = offHeap(16 * KIB);
  #base = addressOf(this.#bytes);
  #used = 0;
  readonly #encoder = new TextEncoder();

  /** Starts a launch's strings; makes room for `strings` and `vectors` pointer slots. */
  reset(strings: string[], vectors: number): void {
    const bound = strings.reduce((sum, text) => sum + 3 * text.length + 1, 0) + 8 * vectors + 64;
    if (bound > this.#bytes.length) {
      let size = this.#bytes.length;
      while (size < bound) size *= 2;
      this.#bytes = offHeap(size);
      this.#base = addressOf(this.#bytes);
    }
    this.#used = 0;
  }

  /** Writes `text` as a C string; returns it (a view, for calls) and its address. */
  cstr(text: string): { bytes: Uint8Array<ArrayBuffer>; address: bigint } {
    const start = this.#used;
    const { written } = this.#encoder.encodeInto(text, this.#bytes.subarray(start));
    this.#bytes[start + written] = 0;
    this.#used = start + written + 1;
    return { bytes: this.#bytes.subarray(start, this.#used), address: this.#base + BigInt(start) };
  }

  /** Writes a NULL-terminated `char *[]` of `strings`; returns its address. */
  vector(strings: string[]): bigint {
    const addresses = strings.map((text) => this.cstr(text).address);
    const start = (this.#used + 7) & ~7;
    const view = new DataView(this.#bytes.buffer, start, 8 * (addresses.length + 1));
    addresses.forEach((address, i) => view.setBigUint64(8 * i, address, true));
    view.setBigUint64(8 * addresses.length, 0n, true);
    this.#used = start + 8 * (addresses.length + 1);
    return this.#base + BigInt(start);
  }
}

const arena = new StringArena();

/** Shared words the kernel and the exec-failure context write into. */
const shared = offHeap(16);
const sharedView = new DataView(shared.buffer);
const sharedAddress = addressOf(shared);
const CHILD_TID_OFFSET = 0;
const EXEC_ERRNO_OFFSET = 4;

const addresses = {
  setcontext: symbolAddress("setcontext"),
  execve: symbolAddress("execve"),
  exit: symbolAddress("_exit"),
  memcpy: symbolAddress("memcpy"),
  write: symbolAddress("write"),
  memset: symbolAddress("memset"),
  bsearch: symbolAddress("bsearch"),
  errno: BigInt(Deno.UnsafePointer.value(raw.__errno_location())),
};

const pointer = (address: bigint) => Deno.UnsafePointer.create(address);

/*
 * The child runs V8 code as Deno's main thread (same memory, same TLS). When
 * it waits on a contended abseil mutex, abseil asks glibc for the thread's
 * priority, and glibc looks it up by the main thread's TID, which does not
 * exist in a new PID namespace: abseil then prints "pthread_getschedparam
 * failed" on stderr. Asked once here, glibc caches the answer in the thread's
 * descriptor (shared with the child) and never looks the TID up again.
 */
cacheSchedulingParameters();

/** The request being served by the child; read by the setup callback. */
let current: {
  request: CloneRequest;
  /** The parent's stack pointer the stacks are carved below. */
  stackPointer: bigint;
  /** The signals the child resets to their default disposition, and those it keeps ignored. */
  resetSignals: SignalPlan;
  failure?: ChildSetupError;
  clearedNonblock: number[];
  /** C strings and vectors, in the {@link StringArena}. */
  execPlan?: {
    paths: string[];
    candidates: { bytes: Uint8Array<ArrayBuffer>; address: bigint }[];
    argv: bigint;
    envp: bigint;
  };
  /** With `execInGrandchild`: the pipe the grandchild reports its steps and exec on. */
  execReport?: { readEnd: number; writeEnd: number };
  /** With `execInGrandchild`: its checked steps, and the context it starts in. */
  grandchildChain?: { steps: NativeCall[]; start: Context; keep: unknown[] };
  /** The grandchild's PID, once the child has forked it. */
  grandchild?: number;
  /** The program found on PATH, once the child has looked. */
  program?: string;
} | null = null;

/** Prepares `ctx` to run `fn` on the stack region `[sp - bottom, sp - top)`. */
function prepare(
  ctx: Context,
  sp: bigint,
  region: { top: number; bottom: number },
  link: Context | null,
  signalMask: bigint,
): void {
  if (raw.getcontext(ctx.bytes) !== 0) throw lastError("getcontext");
  const low = (sp - BigInt(region.bottom)) & ~15n;
  const high = (sp - BigInt(region.top)) & ~15n;
  ctx.view.setBigUint64(UC_LINK, link ? link.address : 0n, true);
  ctx.view.setBigUint64(UC_STACK_SP, low, true);
  ctx.view.setBigUint64(UC_STACK_SIZE, high - low, true);
  ctx.view.setBigUint64(UC_SIGMASK, signalMask, true);
}

/** Points `ctx` at `_exit(code)`. */
function aimAtExit(ctx: Context, code: number): void {
  raw.makecontext1(ctx.bytes, pointer(addresses.exit), 1, BigInt(code));
}

/** The paths `exec`'s command may be at, in PATH order, as execvp would look. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const resolveCommand = (function resolveCommand(exec: ExecRequest): string[] {
  if (exec.command.includes("/")) return [exec.command];
  const path = exec.env.find((entry) => entry.startsWith("PATH="))?.slice(5) ??
    exec.fallbackPath ?? "";
  return path.split(":").map((dir) => `${dir || "."}/${exec.command}`);
}).bind(null);

/** What the child does to signal dispositions before exec. */
interface SignalPlan {
  /** Reset to SIG_DFL. */
  reset: number[];
  /** Set ignored again: the caller left them ignored. */
  ignore: number[];
}

/**
 * What the child does to dispositions before exec: the signals the caller
 * left ignored (`nohup`: SIGHUP) are set ignored again (the tool may catch
 * them meanwhile, and exec would turn a caught signal into the default), and
 * every other signal whose disposition is not the default here (ignored or
 * caught, from /proc/self/status: Deno's SIGPIPE, the tool's listeners) is
 * reset to SIG_DFL; every signal when that cannot be read. Read just before
 * clone, as no JS runs in between. The caller's set is read at start-up: see
 * {@link signalsIgnoredByCaller}.
 */
function signalPlan(): SignalPlan {
  const ignoredByCaller = signalsIgnoredByCaller();
  const reset = changedSignals().filter((signal) => !ignoredByCaller.has(signal));
  return { reset, ignore: [...ignoredByCaller] };
}

/** The signals whose disposition is not the default here (ignored or caught). */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const changedSignals = (function changedSignals(): number[] {
  let changed = (1n << BigInt(SIGNAL_MAX)) - 1n;
  try {
    const status = readFile("/proc/self/status");
    const mask = (field: string) =>
      BigInt(`0x${status.match(new RegExp(`^${field}:\\s+([0-9a-f]+)$`, "m"))![1]}`);
    changed = mask("SigIgn") | mask("SigCgt");
  } catch {
    // no /proc: reset them all
  }
  const signals = [];
  for (let signal = 1; signal <= SIGNAL_MAX; signal++) {
    const unresettable = signal === SIGNALS.SIGKILL || signal === SIGNALS.SIGSTOP;
    if (!unresettable && (changed >> BigInt(signal - 1)) & 1n) signals.push(signal);
  }
  return signals;
}).bind(null);

/**
 * Child-side hygiene before exec: signals, fds (all above 2 but `keep`, which
 * are close-on-exec), O_NONBLOCK.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const sanitizeChild =
  (function sanitizeChild(signals: SignalPlan, keep: number[], clearedNonblock: number[]): void {
    for (const signal of signals.reset) resetSignal(signal);
    for (const signal of signals.ignore) ignoreSignal(signal);
    let first = 3;
    for (const fd of [...new Set(keep)].filter((fd) => fd >= 3).sort((a, b) => a - b)) {
      if (fd > first) closeRange(first, fd - 1);
      first = fd + 1;
    }
    closeRange(first, 0xffff_ffff);
    for (const fd of [0, 1, 2]) {
      let flags: number;
      try {
        flags = fcntl(fd, F_GETFL);
      } catch {
        continue; // closed: nothing to clear
      }
      if (flags & O_NONBLOCK) {
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        clearedNonblock.push(fd);
      }
    }
  }).bind(null);

/**
 * The index of the first candidate that is an executable file, as execvp
 * would pick; throws if none.
 */
function findProgram(
  candidates: { bytes: Uint8Array<ArrayBuffer>; address: bigint }[],
  command: string,
): number {
  let existing = false;
  for (const [index, { bytes }] of candidates.entries()) {
    if (raw.access(bytes, F_OK) !== 0) continue;
    existing = true;
    const directory = raw.open(bytes, O_DIRECTORY, 0);
    if (directory >= 0) {
      raw.close(directory);
      continue;
    }
    if (raw.access(bytes, X_OK) === 0) return index;
  }
  throw existing
    ? new ChildSetupError("exec", `${command}: permission denied or not a file`, "not-executable")
    : new ChildSetupError("exec", `${command}: command not found`, "not-found");
}

/** Chooses the program to exec and aims the exec context at it. */
function aimAtCommand(exec: ExecRequest): void {
  const plan = current!.execPlan!;
  const found = findProgram(plan.candidates, exec.command);
  current!.program = plan.paths[found];
  raw.makecontext3(
    contexts.exec.bytes,
    pointer(addresses.execve),
    3,
    plan.candidates[found].address,
    plan.argv,
    plan.envp,
  );
}

/**
 * Execs `exec` in the calling process itself, as the last step of a process
 * that is not the clone child (the init stage, `lib/init.ts`): the same
 * hygiene as the child's (signals reset, fds above 2 closed but `keep`,
 * which must be close-on-exec, O_NONBLOCK cleared on 0-2) and the same
 * search of PATH. `beforeExec` is told which of 0-2 had O_NONBLOCK cleared
 * and the program found. Returns only on failure, with the error.
 */
export function execInPlace(
  exec: ExecRequest,
  keep: number[],
  beforeExec: (clearedNonblock: number[], program: string) => void,
): ChildSetupError {
  const clearedNonblock: number[] = [];
  try {
    const paths = resolveCommand(exec);
    arena.reset([...exec.argv, ...exec.env, ...paths], exec.argv.length + exec.env.length + 2);
    const candidates = paths.map((path) => arena.cstr(path));
    const argv = arena.vector(exec.argv);
    const envp = arena.vector(exec.env);
    sanitizeChild(signalPlan(), keep, clearedNonblock);
    const found = findProgram(candidates, exec.command);
    beforeExec(clearedNonblock, paths[found]);
    raw.execve(pointer(candidates[found].address), pointer(argv), pointer(envp));
    const error = lastError("execve", exec.command);
    return new ChildSetupError("exec", error.message, "not-executable", error);
  } catch (error) {
    return error instanceof ChildSetupError
      ? error
      : new ChildSetupError("exec", error instanceof Error ? error.message : String(error));
  }
}

/**
 * Child step for `execInGrandchild`: forks the grandchild, which runs the
 * steps -> exec -> report -> exit chain on its copy of the contexts, then
 * points the child's own exec context at `_exit(0)`.
 */
function spawnGrandchild(sp: bigint, start: Context): number {
  const pid = raw.clone(
    pointer(addresses.setcontext),
    pointer((sp - BigInt(STACKS.grandchild.top)) & ~15n),
    CLONE.PARENT | SIGNALS.SIGCHLD,
    pointer(start.address),
    null,
    null,
    null,
  );
  if (pid === -1) throw lastError("clone", "the command's process");
  aimAtExit(contexts.exec, 0);
  return pid;
}

/** The stack each context of a checked chain gets: libc's leaf calls need little. */
const NATIVE_STACK = 16 * KIB;

/** Contexts a checked step is made of: clear, call, record, two patches, gate. */
const CONTEXTS_PER_STEP = 6;

/**
 * Builds the grandchild's checked chain for `steps` (see the module docs),
 * ending in `next`; returns the context it starts in and the buffers that
 * must stay alive until the grandchild has been forked. The contexts and
 * their stacks live in off-heap memory, which the grandchild's fork copies.
 */
function checkedChain(
  steps: NativeCall[],
  writeEnd: number,
  next: Context,
): { start: Context; keep: unknown[] } {
  if (steps.length === 0) return { start: next, keep: [] };
  const arena = offHeap(NATIVE_STACK * CONTEXTS_PER_STEP * steps.length);
  const base = addressOf(arena);
  const keep: unknown[] = [arena];
  let stacks = 0;
  /** A context on the next free stack of the arena, running `fn(args)`, then `link`. */
  const make = (fn: bigint, args: (number | bigint)[], link: Context): Context => {
    if (args.length > 6) throw new Error(`a native step takes at most 6 arguments`);
    const ctx = newContext();
    keep.push(ctx.bytes);
    if (raw.getcontext(ctx.bytes) !== 0) throw lastError("getcontext");
    const low = base + BigInt(NATIVE_STACK * stacks++);
    ctx.view.setBigUint64(UC_LINK, link.address, true);
    ctx.view.setBigUint64(UC_STACK_SP, low, true);
    ctx.view.setBigUint64(UC_STACK_SIZE, BigInt(NATIVE_STACK), true);
    ctx.view.setBigUint64(UC_SIGMASK, ALL_SIGNALS, true);
    const six = [...args, 0, 0, 0, 0, 0, 0].slice(0, 6).map(BigInt) as [
      bigint,
      bigint,
      bigint,
      bigint,
      bigint,
      bigint,
    ];
    raw.makecontext6(ctx.bytes, pointer(fn), 6, ...six);
    return ctx;
  };
  const errno = addresses.errno;
  const register = (ctx: Context, index: number) => ctx.address + BigInt(UC_GREGS + 8 * index);
  // Built from the last step back, each context linking to the one after it.
  let after = next;
  for (const step of [...steps].reverse()) {
    const gate = make(addresses.bsearch, [0, base, 0, 1, addresses.exit], after);
    const patchCount = make(addresses.memcpy, [register(gate, REG_RDX), errno, 4], gate);
    const patchKey = make(addresses.memcpy, [register(gate, REG_RDI), errno, 4], patchCount);
    const record = make(addresses.write, [writeEnd, errno, 4], patchKey);
    const run = make(symbolAddress(step.symbol), step.args, record);
    after = make(addresses.memset, [errno, 0, 4], run);
  }
  return { start: after, keep };
}

/** The JS function the child runs first, on its carved stack. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const childSetup = (function childSetup(): void {
  const job = current!;
  const dieWithParent = job.request.dieWithParent ?? true;
  try {
    if (dieWithParent) prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL);
    job.request.setup({ outerPid: sharedView.getInt32(CHILD_TID_OFFSET, true) });
    sanitizeChild(job.resetSignals, [
      ...job.execReport ? [job.execReport.writeEnd] : [],
      ...(job.grandchildChain?.steps ?? []).flatMap((step) => step.fds ?? []),
      ...job.request.keepFds ?? [],
    ], job.clearedNonblock);
    for (const fd of job.request.keepFds ?? []) fcntl(fd, F_SETFD, 0);
    if (job.request.exec) {
      aimAtCommand(job.request.exec);
      job.request.beforeExec?.();
      if (job.execReport) {
        job.grandchild = spawnGrandchild(job.stackPointer, job.grandchildChain!.start);
      }
    } else {
      aimAtExit(contexts.exec, 0);
    }
    if (dieWithParent) prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL);
  } catch (error) {
    job.failure = error instanceof ChildSetupError ? error : new ChildSetupError(
      error instanceof SyscallError ? error.call : "setup",
      error instanceof Error ? error.message : String(error),
      "setup",
      error,
    );
    aimAtExit(contexts.exec, FAILED_CHILD_STATUS);
  }
}).bind(null);

const setupCallback = new Deno.UnsafeCallback(
  { parameters: [], result: "void" } as const,
  childSetup,
);

/** Reads the current stack pointer of the calling (main) thread. */
function stackPointer(): bigint {
  if (raw.getcontext(contexts.scratch.bytes) !== 0) throw lastError("getcontext");
  return contexts.scratch.view.getBigUint64(UC_GREGS + 8 * REG_RSP, true);
}

function closeExecReport(report?: { readEnd: number; writeEnd: number }): void {
  if (!report) return;
  close(report.readEnd);
  close(report.writeEnd);
}

/**
 * The parent's side of `execInGrandchild`: reaps the child (which exited once
 * it had forked), then reads the grandchild's records from the pipe (see the
 * module docs): a non-zero one is the errno of the step that failed, one past
 * the steps is the exec's, and end of file after the steps means it exec'd.
 */
function grandchildOutcome(
  child: number,
  grandchild: number,
  job: {
    execReport?: { readEnd: number; writeEnd: number };
    grandchildChain?: { steps: NativeCall[] };
    clearedNonblock: number[];
    request: CloneRequest;
    program?: string;
  },
): CloneOutcome {
  const { readEnd, writeEnd } = job.execReport!;
  const steps = job.grandchildChain?.steps ?? [];
  close(writeEnd);
  let failure: ChildSetupError | undefined;
  try {
    waitForChild(child);
    const record = new Uint8Array(4);
    for (let index = 0; index <= steps.length; index++) {
      if (read(readEnd, record) !== 4) break; // the exec closed the pipe
      const errno = new DataView(record.buffer).getInt32(0, true);
      if (errno === 0) continue;
      const step = steps[index];
      const error = step
        ? new SyscallError(step.symbol, errno, strerror(errno), step.what)
        : new SyscallError("execve", errno, strerror(errno), job.request.exec?.command);
      failure = new ChildSetupError(
        step?.step ?? "exec",
        error.message,
        step ? "setup" : "not-executable",
        error,
      );
      break;
    }
  } finally {
    close(readEnd);
  }
  return { pid: grandchild, failure, clearedNonblock: job.clearedNonblock, program: job.program };
}

/**
 * Creates a child in new namespaces, runs `request.setup` in it and execs
 * `request.exec`. Returns once the child has exec'd or exited. Must be called
 * from Deno's main thread.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const cloneChild = (function cloneChild(request: CloneRequest): CloneOutcome {
  const sp = stackPointer();
  current = { request, stackPointer: sp, resetSignals: signalPlan(), clearedNonblock: [] };
  if (request.exec) {
    const { argv, env } = request.exec;
    const candidates = resolveCommand(request.exec);
    arena.reset([...argv, ...env, ...candidates], argv.length + env.length + 2);
    current.execPlan = {
      paths: candidates,
      candidates: candidates.map((path) => arena.cstr(path)),
      argv: arena.vector(argv),
      envp: arena.vector(env),
    };
  }
  prepare(contexts.exit, sp, STACKS.exit, null, ALL_SIGNALS);
  aimAtExit(contexts.exit, 126);
  prepare(contexts.failed, sp, STACKS.failed, contexts.exit, ALL_SIGNALS);
  raw.makecontext3(
    contexts.failed.bytes,
    pointer(addresses.memcpy),
    3,
    sharedAddress + BigInt(EXEC_ERRNO_OFFSET),
    addresses.errno,
    4n,
  );
  if (request.execInGrandchild && request.exec) {
    const [readEnd, writeEnd] = pipe();
    current.execReport = { readEnd, writeEnd };
    prepare(contexts.report, sp, STACKS.report, contexts.exit, ALL_SIGNALS);
    raw.makecontext3(
      contexts.report.bytes,
      pointer(addresses.write),
      3,
      BigInt(writeEnd),
      addresses.errno,
      4n,
    );
    const steps = [
      ...(request.dieWithParent ?? true
        ? [{
          step: "prctl",
          symbol: "prctl",
          args: [PR_SET_PDEATHSIG, SIGNALS.SIGKILL],
          what: "PR_SET_PDEATHSIG",
        }]
        : []),
      ...request.grandchildSteps ?? [],
    ];
    current.grandchildChain = { steps, ...checkedChain(steps, writeEnd, contexts.exec) };
  }
  const afterExec = current.execReport ? contexts.report : contexts.failed;
  prepare(contexts.exec, sp, STACKS.exec, afterExec, 0n);
  aimAtExit(contexts.exec, FAILED_CHILD_STATUS); // re-aimed by the child: a guard
  prepare(contexts.setup, sp, STACKS.setup, contexts.exec, ALL_SIGNALS);
  raw.makecontext0(contexts.setup.bytes, setupCallback.pointer, 0);
  sharedView.setInt32(CHILD_TID_OFFSET, 0, true);
  sharedView.setInt32(EXEC_ERRNO_OFFSET, 0, true);

  const flags = request.namespaces | CLONE.VM | CLONE.VFORK | CLONE.PARENT_SETTID |
    SIGNALS.SIGCHLD;
  const savedMask = setSignalMask(SIG_BLOCK, ALL_SIGNALS);
  let pid: number;
  try {
    pid = raw.clone(
      pointer(addresses.setcontext),
      pointer((sp - BigInt(STACKS.clone.top)) & ~15n),
      flags,
      pointer(contexts.setup.address),
      pointer(sharedAddress + BigInt(CHILD_TID_OFFSET)),
      null,
      null,
    );
  } finally {
    setSignalMask(SIG_SETMASK, savedMask);
  }
  const job = current;
  current = null;
  if (pid === -1) {
    const error = lastError("clone");
    closeExecReport(job.execReport);
    throw error;
  }
  if (job.grandchild !== undefined) return grandchildOutcome(pid, job.grandchild, job);
  closeExecReport(job.execReport);
  let failure = job.failure;
  const execErrno = sharedView.getInt32(EXEC_ERRNO_OFFSET, true);
  if (!failure && execErrno !== 0) {
    const error = new SyscallError("execve", execErrno, strerror(execErrno), request.exec?.command);
    failure = new ChildSetupError("exec", error.message, "not-executable", error);
  }
  return { pid, failure, clearedNonblock: job.clearedNonblock, program: job.program };
}).bind(null);
