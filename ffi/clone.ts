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
 * the joiner's children) the child does not exec: after setup it forks a
 * grandchild with a plain clone (no shared memory: a copy of everything,
 * contexts and stacks included) made a child of the caller (CLONE_PARENT),
 * and exits. Only native code runs in the grandchild:
 *
 * ```
 * clone(&setcontext, stack, CLONE_PARENT | SIGCHLD, &spawn)
 *   spawn  : prctl(PR_SET_PDEATHSIG, SIGKILL); uc_link ->
 *   exec   : execve(path, argv, envp); uc_link (when execve fails) ->
 *   report : write(pipe, &errno, 4)   (the pipe is O_CLOEXEC: an exec closes it); uc_link ->
 *   exit   : _exit(126)
 * ```
 * @module
 */

import {
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
  /** The exit status the child ends with. */
  readonly exitCode: number;
  /** The underlying error, when there was one. */
  override readonly cause?: unknown;

  /** Builds the error; `cause` is typically a {@link SyscallError}. */
  constructor(step: string, message: string, exitCode = 125, cause?: unknown) {
    super(message);
    this.name = "ChildSetupError";
    this.step = step;
    this.exitCode = exitCode;
    this.cause = cause;
  }
}

/** What to run in the child once setup is done. */
export interface ExecRequest {
  /** The command's name or path, as given (argv[0]). */
  command: string;
  /** Full argument vector, argv[0] included. */
  argv: string[];
  /** The environment, as `KEY=VALUE` strings. */
  env: string[];
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
}

/** What happened by the time `clone` returned in the parent. */
export interface CloneOutcome {
  /** The PID, in the parent's PID namespace, of the process that runs the command. */
  pid: number;
  /** Set when setup or exec failed; the child has then already exited. */
  failure?: ChildSetupError;
  /** The fds among 0-2 whose O_NONBLOCK flag the child cleared. */
  clearedNonblock: number[];
}

const PATH_DEFAULT = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const KIB = 1024;

/** Carved stack regions, as offsets below the parent's stack pointer. */
const STACKS = {
  clone: { top: 64 * KIB },
  setup: { top: 128 * KIB, bottom: 576 * KIB },
  exec: { top: 576 * KIB, bottom: 640 * KIB },
  failed: { top: 640 * KIB, bottom: 704 * KIB },
  exit: { top: 704 * KIB, bottom: 768 * KIB },
  spawn: { top: 768 * KIB, bottom: 832 * KIB },
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
  spawn: newContext(),
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
 * the grandchild execs from its own copy), so one buffer serves every launch.
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
  prctl: symbolAddress("prctl"),
  write: symbolAddress("write"),
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
  resetSignals: { reset: number[]; ignore: number[] };
  failure?: ChildSetupError;
  clearedNonblock: number[];
  /** C strings and vectors, in the {@link StringArena}. */
  execPlan?: {
    candidates: { bytes: Uint8Array<ArrayBuffer>; address: bigint }[];
    argv: bigint;
    envp: bigint;
  };
  /** With `execInGrandchild`: the pipe the grandchild reports a failed exec on. */
  execReport?: { readEnd: number; writeEnd: number };
  /** The grandchild's PID, once the child has forked it. */
  grandchild?: number;
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

/** The first executable candidate for `command`, as execvp would pick. */
function resolveCommand(command: string, env: string[]): string[] {
  if (command.includes("/")) return [command];
  const path = env.find((entry) => entry.startsWith("PATH="))?.slice(5) ?? PATH_DEFAULT;
  return path.split(":").map((dir) => `${dir || "."}/${command}`);
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
function signalPlan(): { reset: number[]; ignore: number[] } {
  const ignoredByCaller = signalsIgnoredByCaller();
  const reset = changedSignals().filter((signal) => !ignoredByCaller.has(signal));
  return { reset, ignore: [...ignoredByCaller] };
}

/** The signals whose disposition is not the default here (ignored or caught). */
function changedSignals(): number[] {
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
}

/** Child-side hygiene before exec: signals, fds (but `keep`), O_NONBLOCK, parent death. */
function sanitizeChild(signals: { reset: number[]; ignore: number[] }, keep?: number): void {
  for (const signal of signals.reset) resetSignal(signal);
  for (const signal of signals.ignore) ignoreSignal(signal);
  if (keep === undefined) {
    closeRange(3, 0xffff_ffff);
  } else {
    if (keep > 3) closeRange(3, keep - 1);
    closeRange(keep + 1, 0xffff_ffff);
  }
  for (const fd of [0, 1, 2]) {
    let flags: number;
    try {
      flags = fcntl(fd, F_GETFL);
    } catch {
      continue; // closed: nothing to clear
    }
    if (flags & O_NONBLOCK) {
      fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
      current!.clearedNonblock.push(fd);
    }
  }
}

/** Chooses the program to exec and aims the exec context at it. */
function aimAtCommand(exec: ExecRequest): void {
  const plan = current!.execPlan!;
  let found: bigint | undefined;
  let existing = false;
  for (const { bytes, address } of plan.candidates) {
    if (raw.access(bytes, F_OK) !== 0) continue;
    existing = true;
    const directory = raw.open(bytes, O_DIRECTORY, 0);
    if (directory >= 0) {
      raw.close(directory);
      continue;
    }
    if (raw.access(bytes, X_OK) === 0) {
      found = address;
      break;
    }
  }
  if (!found) {
    throw existing
      ? new ChildSetupError("exec", `${exec.command}: permission denied or not a file`, 126)
      : new ChildSetupError("exec", `${exec.command}: command not found`, 127);
  }
  raw.makecontext3(
    contexts.exec.bytes,
    pointer(addresses.execve),
    3,
    found,
    plan.argv,
    plan.envp,
  );
}

/**
 * Child step for `execInGrandchild`: forks the grandchild, which runs the
 * spawn -> exec -> report -> exit chain on its copy of the contexts, then
 * points the child's own exec context at `_exit(0)`.
 */
function spawnGrandchild(sp: bigint): number {
  const pid = raw.clone(
    pointer(addresses.setcontext),
    pointer((sp - BigInt(STACKS.grandchild.top)) & ~15n),
    CLONE.PARENT | SIGNALS.SIGCHLD,
    pointer(contexts.spawn.address),
    null,
    null,
    null,
  );
  if (pid === -1) throw lastError("clone", "the command's process");
  aimAtExit(contexts.exec, 0);
  return pid;
}

/** The JS function the child runs first, on its carved stack. */
function childSetup(): void {
  const job = current!;
  try {
    prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL);
    job.request.setup({ outerPid: sharedView.getInt32(CHILD_TID_OFFSET, true) });
    sanitizeChild(job.resetSignals, job.execReport?.writeEnd);
    if (job.request.exec) {
      aimAtCommand(job.request.exec);
      job.request.beforeExec?.();
      if (job.execReport) job.grandchild = spawnGrandchild(job.stackPointer);
    } else {
      aimAtExit(contexts.exec, 0);
    }
    prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL);
  } catch (error) {
    job.failure = error instanceof ChildSetupError ? error : new ChildSetupError(
      error instanceof SyscallError ? error.call : "setup",
      error instanceof Error ? error.message : String(error),
      125,
      error,
    );
    aimAtExit(contexts.exec, job.failure.exitCode);
  }
}

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
 * it had forked), then learns from the pipe whether the grandchild's exec
 * failed (4 bytes of errno) or succeeded (end of file: the exec closed it).
 */
function grandchildOutcome(
  child: number,
  grandchild: number,
  job: {
    execReport?: { readEnd: number; writeEnd: number };
    clearedNonblock: number[];
    request: CloneRequest;
  },
): CloneOutcome {
  const { readEnd, writeEnd } = job.execReport!;
  close(writeEnd);
  let failure: ChildSetupError | undefined;
  try {
    waitForChild(child);
    const bytes = new Uint8Array(4);
    if (read(readEnd, bytes) === 4) {
      const errno = new DataView(bytes.buffer).getInt32(0, true);
      const error = new SyscallError("execve", errno, strerror(errno), job.request.exec?.command);
      failure = new ChildSetupError("exec", error.message, 126, error);
    }
  } finally {
    close(readEnd);
  }
  return { pid: grandchild, failure, clearedNonblock: job.clearedNonblock };
}

/**
 * Creates a child in new namespaces, runs `request.setup` in it and execs
 * `request.exec`. Returns once the child has exec'd or exited. Must be called
 * from Deno's main thread.
 */
export function cloneChild(request: CloneRequest): CloneOutcome {
  const sp = stackPointer();
  current = { request, stackPointer: sp, resetSignals: signalPlan(), clearedNonblock: [] };
  if (request.exec) {
    const { argv, env, command } = request.exec;
    const candidates = resolveCommand(command, env);
    arena.reset([...argv, ...env, ...candidates], argv.length + env.length + 2);
    current.execPlan = {
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
    prepare(contexts.spawn, sp, STACKS.spawn, contexts.exec, ALL_SIGNALS);
    raw.makecontext2(
      contexts.spawn.bytes,
      pointer(addresses.prctl),
      2,
      BigInt(PR_SET_PDEATHSIG),
      BigInt(SIGNALS.SIGKILL),
    );
  }
  const afterExec = current.execReport ? contexts.report : contexts.failed;
  prepare(contexts.exec, sp, STACKS.exec, afterExec, 0n);
  aimAtExit(contexts.exec, 125); // re-aimed by the child; this guards a setup that never ran
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
    failure = new ChildSetupError("exec", error.message, 126, error);
  }
  return { pid, failure, clearedNonblock: job.clearedNonblock };
}
