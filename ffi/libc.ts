/**
 * The libc symbol table and small typed wrappers around it.
 *
 * This file (with the rest of `ffi/`) is the only place that deals in
 * pointers. Every wrapper returns plain values and throws a
 * {@link SyscallError} naming the call and errno when libc reports failure.
 * @module
 */

import { Errno, SyscallError } from "./errors.ts";
import { LINUX_CAPABILITY_VERSION_3, PR, SIGNAL_MAX, SIGNALS, SYS } from "./constants.ts";

/** The libc functions the tool calls, in one table. */
const SYMBOLS = {
  getpid: { parameters: [], result: "i32" },
  getuid: { parameters: [], result: "u32" },
  getgid: { parameters: [], result: "u32" },
  clone: {
    parameters: ["pointer", "pointer", "i32", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  unshare: { parameters: ["i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  chroot: { parameters: ["buffer"], result: "i32" },
  chdir: { parameters: ["buffer"], result: "i32" },
  fchdir: { parameters: ["i32"], result: "i32" },
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sethostname: { parameters: ["buffer", "usize"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  waitpid_async: {
    name: "waitpid",
    parameters: ["i32", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  mq_open: { parameters: ["buffer", "i32", "u32", "buffer"], result: "i32" },
  mq_getattr: { parameters: ["i32", "buffer"], result: "i32" },
  mq_send: { parameters: ["i32", "buffer", "usize", "u32"], result: "i32" },
  mq_timedreceive: {
    parameters: ["i32", "buffer", "usize", "buffer", "buffer"],
    result: "isize",
  },
  mq_close: { parameters: ["i32"], result: "i32" },
  mq_unlink: { parameters: ["buffer"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  close_range: { parameters: ["u32", "u32", "i32"], result: "i32" },
  syscall4: {
    name: "syscall",
    parameters: ["i64", "i64", "buffer", "pointer", "i64"],
    result: "i64",
  },
  pthread_sigmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  signalfd: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  uname: { parameters: ["buffer"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { name: "readdir64", parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  syscall3: { name: "syscall", parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
  msgget: { parameters: ["i32", "i32"], result: "i32" },
  symlink: { parameters: ["buffer", "buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  msgctl: { parameters: ["i32", "i32", "pointer"], result: "i32" },
  pthread_self: { parameters: [], result: "u64" },
  pthread_getschedparam: { parameters: ["u64", "buffer", "buffer"], result: "i32" },
  getcontext: { parameters: ["buffer"], result: "i32" },
  makecontext0: { name: "makecontext", parameters: ["buffer", "pointer", "i32"], result: "void" },
  makecontext1: {
    name: "makecontext",
    parameters: ["buffer", "pointer", "i32", "i64"],
    result: "void",
  },
  makecontext2: {
    name: "makecontext",
    parameters: ["buffer", "pointer", "i32", "i64", "i64"],
    result: "void",
  },
  makecontext3: {
    name: "makecontext",
    parameters: ["buffer", "pointer", "i32", "i64", "i64", "i64"],
    result: "void",
  },
  makecontext6: {
    name: "makecontext",
    parameters: ["buffer", "pointer", "i32", "i64", "i64", "i64", "i64", "i64", "i64"],
    result: "void",
  },
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  execve: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  setxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  fgetxattr: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  syscall6: {
    name: "syscall",
    parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"],
    result: "i64",
  },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  dup: { parameters: ["i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  syscall_bb: { name: "syscall", parameters: ["i64", "buffer", "buffer", "i64"], result: "i64" },
  rmdir: { parameters: ["buffer"], result: "i32" },
  syscall5: {
    name: "syscall",
    parameters: ["i64", "i64", "i64", "i64", "i64", "i64"],
    result: "i64",
  },
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
} as const;

let loaded: { dlsym: (handle: null, name: Uint8Array<ArrayBuffer>) => Deno.PointerValue } | null =
  null;

/** libc's dlsym, from the one `Deno.dlopen`, made on the first call that needs libc. */
function dlsym(name: string): Deno.PointerValue {
  loaded ??= Deno.dlopen("libc.so.6", { dlsym: SYMBOLS.dlsym }).symbols;
  return loaded.dlsym(null, cstr(name));
}

type Libc = Deno.StaticForeignLibraryInterface<typeof SYMBOLS>;

/**
 * Binds each symbol on first use, through dlsym and a function pointer.
 * Binding all of them up front with `Deno.dlopen` costs ~0.2 ms a symbol (V8
 * compiles a fast-call trampoline for each), which would double the CLI's
 * start-up; a pointer call costs ~2 µs, and a launch makes a few dozen. The
 * table's prototype is a Proxy that binds a symbol when it is first read and
 * stores it on the table, where later reads find it: nothing is done per
 * symbol until then (defining a getter for each cost ~0.4 ms a run).
 */
function bindOnFirstUse(): Libc {
  const binder = new Proxy({}, {
    get(_target, key, table) {
      if (typeof key !== "string" || !Object.hasOwn(SYMBOLS, key)) return undefined;
      const definition = SYMBOLS[key as keyof typeof SYMBOLS];
      const name = "name" in definition ? definition.name : key;
      const address = dlsym(name);
      if (!address) throw new Error(`dlsym: ${name} not found in libc`);
      const fn = new Deno.UnsafeFnPointer(
        address as Deno.PointerObject<Deno.ForeignFunction>,
        definition as Deno.ForeignFunction,
      );
      const call = (...args: unknown[]) => (fn.call as (...a: unknown[]) => unknown)(...args);
      Object.defineProperty(table, key, { value: call });
      return call;
    },
  });
  return Object.create(binder) as Libc;
}

const libc = bindOnFirstUse();

/** The raw symbol table, for the clone engine (pointers and all). */
export const raw = libc;

/** The one UTF-8 encoder of the ffi layer. */
export const encoder = new TextEncoder();
/** The one UTF-8 decoder of the ffi layer. */
export const decoder = new TextDecoder();

/** A NUL-terminated copy of `text` (UTF-8), ready to pass as `const char *`. */
export function cstr(text: string): Uint8Array<ArrayBuffer> {
  const bytes = offHeap(encoder.encode(text).length + 1);
  encoder.encodeInto(text, bytes);
  return bytes;
}

/**
 * A zeroed byte buffer whose memory lives outside V8's heap, so its address
 * never moves: use it for anything whose pointer outlives a single call.
 */
export function offHeap(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new ArrayBuffer(size));
}

/** The address of a buffer as a bigint (0n for an empty one). */
export function addressOf(buffer: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

let errnoPointer: Deno.PointerValue | undefined;

/** The calling thread's current errno. */
export function errno(): number {
  errnoPointer ??= libc.__errno_location();
  return new Deno.UnsafePointerView(errnoPointer!).getInt32();
}

/** The C library's message for an errno value. */
export function strerror(code: number): string {
  const pointer = libc.strerror(code);
  return pointer ? Deno.UnsafePointerView.getCString(pointer) : `errno ${code}`;
}

/** A {@link SyscallError} for the current errno. */
export function lastError(call: string, what?: string): SyscallError {
  const code = errno();
  return new SyscallError(call, code, strerror(code), what);
}

/** `result`, unless it is -1: then the {@link SyscallError} for errno, naming `call` and `what`. */
export function check(call: string, result: number | bigint, what?: string): number {
  if (Number(result) === -1) throw lastError(call, what);
  return Number(result);
}

/** The address of a libc function, for code that is jumped to rather than called. */
export function symbolAddress(name: string): bigint {
  const pointer = dlsym(name);
  if (!pointer) throw new Error(`dlsym: ${name} not found in libc`);
  return BigInt(Deno.UnsafePointer.value(pointer));
}

/** getpid(2). */
export function getpid(): number {
  return libc.getpid();
}

/**
 * pthread_getschedparam(3) on the calling thread, once: glibc then keeps the
 * policy and priority in the thread's descriptor and answers from there.
 */
export function cacheSchedulingParameters(): void {
  const policy = new Int32Array(1);
  const parameters = new Int32Array(1);
  const error = libc.pthread_getschedparam(
    libc.pthread_self(),
    new Uint8Array(policy.buffer),
    new Uint8Array(parameters.buffer),
  );
  if (error !== 0) throw new SyscallError("pthread_getschedparam", error, strerror(error));
}

/** getuid(2). */
export function getuid(): number {
  return libc.getuid();
}

/** getgid(2). */
export function getgid(): number {
  return libc.getgid();
}

/** unshare(2): move the calling thread into new namespaces. */
export function unshare(flags: number): void {
  check("unshare", libc.unshare(flags));
}

/** setns(2): join the namespace open at `fd`. */
export function setns(fd: number, nstype: number, what?: string): void {
  check("setns", libc.setns(fd, nstype), what);
}

/** mount(2); `source`, `fstype` and `data` may be null. */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: bigint,
  data: string | null = null,
): void {
  check(
    "mount",
    libc.mount(
      source === null ? null : cstr(source),
      cstr(target),
      fstype === null ? null : cstr(fstype),
      flags,
      data === null ? null : cstr(data),
    ),
    target,
  );
}

/** access(2), as a boolean: true when `path` is accessible in `mode`. */
export function accessible(path: string, mode: number): boolean {
  return libc.access(cstr(path), mode) === 0;
}

/** open(2); returns the new fd. */
export function open(path: string, flags: number, mode = 0): number {
  return check("open", libc.open(cstr(path), flags, mode), path);
}

/** close(2). */
export function close(fd: number): void {
  check("close", libc.close(fd));
}

/** pipe2(2) with O_CLOEXEC: `[readEnd, writeEnd]`. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", libc.pipe2(new Uint8Array(fds.buffer), O_CLOEXEC));
  return [fds[0], fds[1]];
}

/** read(2) into `buffer`; returns the byte count (0 at end of file). */
export function read(fd: number, buffer: Uint8Array<ArrayBuffer>): number {
  return check("read", libc.read(fd, buffer, BigInt(buffer.length)));
}

/** write(2) of all of `bytes`, retrying short writes. */
export function writeAll(fd: number, bytes: Uint8Array<ArrayBuffer>): void {
  let done = 0;
  while (done < bytes.length) {
    const chunk = done === 0 ? bytes : bytes.slice(done);
    done += check("write", libc.write(fd, chunk, BigInt(chunk.length)));
  }
}

/** write(2) of a UTF-8 string. */
export function writeText(fd: number, text: string): void {
  writeAll(fd, encoder.encode(text) as Uint8Array<ArrayBuffer>);
}

/** Writes `text` to a file by path (open, write, close), e.g. a /proc knob. */
export function writeFile(path: string, text: string): void {
  const fd = open(path, O_WRONLY | O_CLOEXEC);
  try {
    writeText(fd, text);
  } catch (error) {
    throw error instanceof SyscallError
      ? new SyscallError("write", error.errno, error.description, path)
      : error;
  } finally {
    libc.close(fd);
  }
}

/**
 * Reads a small file by path with plain open/read (Deno's own file API asks
 * for --allow-all on some /proc and /sys files).
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const readFile = (function readFile(path: string): string {
  const fd = open(path, O_RDONLY | O_CLOEXEC);
  try {
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(4096);
    for (let n = read(fd, buffer); n > 0; n = read(fd, buffer)) chunks.push(buffer.slice(0, n));
    const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return decoder.decode(all);
  } finally {
    libc.close(fd);
  }
}).bind(null);

/** uname(2)'s release field, e.g. `"6.1.0-18-amd64"`. */
export function kernelRelease(): string {
  const fields = new Uint8Array(6 * 65);
  check("uname", libc.uname(fields));
  return fromCString(fields.subarray(2 * 65, 3 * 65));
}

/** statx(2) and friends: the fd itself is the file. */
export const AT_EMPTY_PATH = 0x1000;

/**
 * Becomes `uid`/`gid` with exactly `groups` as supplementary groups (none:
 * cleared), through the raw system calls: glibc's wrappers would also change
 * the IDs of every thread in their thread list, and a clone child shares
 * that list with its parent. In a user namespace whose `setgroups` is "deny"
 * (every one made rootless) no groups can be set: with none asked for, the
 * current ones are kept, as nsenter and runc do. Returns whether they were.
 */
export function becomeUser(uid: number, gid: number, groups: readonly number[] = []): boolean {
  const list = offHeap(Math.max(4, 4 * groups.length));
  const view = new DataView(list.buffer);
  groups.forEach((group, i) => view.setUint32(4 * i, group, true));
  let kept = false;
  try {
    syscall("setgroups", groups.join(","), SYS.setgroups, BigInt(groups.length), addressOf(list));
  } catch (error) {
    if (!(error instanceof SyscallError) || error.errno !== Errno.EPERM || groups.length > 0) {
      throw error;
    }
    kept = true;
  }
  syscall("setresgid", String(gid), SYS.setresgid, BigInt(gid), BigInt(gid), BigInt(gid));
  syscall("setresuid", String(uid), SYS.setresuid, BigInt(uid), BigInt(uid), BigInt(uid));
  return kept;
}

/**
 * Makes every permitted capability of the calling thread inheritable and
 * ambient, so that it survives an exec even when the thread's UID is not
 * (yet) mapped in its user namespace, which would otherwise drop them all.
 */
export function raiseAmbientCapabilities(): void {
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  const data = new Uint32Array(6); // two of {effective, permitted, inheritable}
  const headerBytes = new Uint8Array(header.buffer), dataBytes = new Uint8Array(data.buffer);
  const headerAddress = addressOf(headerBytes), dataAddress = addressOf(dataBytes);
  if (libc.syscall3(SYS.capget, headerAddress, dataAddress, 0n) === -1n) throw lastError("capget");
  data[2] = data[1]; // inheritable = permitted (low word)
  data[5] = data[4]; // (high word)
  if (libc.syscall3(SYS.capset, headerAddress, dataAddress, 0n) === -1n) throw lastError("capset");
  const last = Number(readFile("/proc/sys/kernel/cap_last_cap").trim());
  for (let cap = 0; cap <= last; cap++) {
    const word = cap < 32 ? data[1] : data[4];
    if ((word >>> (cap % 32)) & 1) prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE, cap);
  }
}

/** Undoes {@link raiseAmbientCapabilities}: no ambient and no inheritable capabilities. */
export function clearAmbientCapabilities(): void {
  prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL);
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  const data = new Uint32Array(6);
  const headerBytes = new Uint8Array(header.buffer), dataBytes = new Uint8Array(data.buffer);
  const headerAddress = addressOf(headerBytes), dataAddress = addressOf(dataBytes);
  if (libc.syscall3(SYS.capget, headerAddress, dataAddress, 0n) === -1n) throw lastError("capget");
  data[2] = data[5] = 0;
  if (libc.syscall3(SYS.capset, headerAddress, dataAddress, 0n) === -1n) throw lastError("capset");
}

/** fcntl(2) with an int argument. */
export function fcntl(fd: number, command: number, argument = 0): number {
  return check("fcntl", libc.fcntl(fd, command, argument));
}

/** sethostname(2). */
export function sethostname(name: string): void {
  const bytes = encoder.encode(name) as Uint8Array<ArrayBuffer>;
  check("sethostname", libc.sethostname(bytes, BigInt(bytes.length)), name);
}

/** Decoded wait status of a child. */
export type WaitStatus = { exited: true; code: number } | { exited: false; signal: number };

function decodeStatus(status: number): WaitStatus {
  const signal = status & 0x7f;
  return signal === 0 ? { exited: true, code: (status >> 8) & 0xff } : { exited: false, signal };
}

/** waitpid(2) without blocking the JS thread; retries EINTR. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const waitForExit = (async function waitForExit(pid: number): Promise<WaitStatus> {
  const status = new Int32Array(1);
  const bytes = new Uint8Array(status.buffer);
  for (;;) {
    if (await libc.waitpid_async(pid, bytes, 0) === pid) return decodeStatus(status[0]);
    // The errno of that call is the worker thread's: ask again here, without blocking.
    const again = check("waitpid", libc.waitpid(pid, bytes, WNOHANG), String(pid));
    if (again === pid) return decodeStatus(status[0]);
  }
}).bind(null);

/** waitpid(2), blocking the calling thread: for a child known to have exited already. */
export function waitForChild(pid: number): WaitStatus {
  const status = new Int32Array(1);
  const bytes = new Uint8Array(status.buffer);
  while (libc.waitpid(pid, bytes, 0) !== pid) {
    if (errno() !== Errno.EINTR) throw lastError("waitpid", String(pid));
  }
  return decodeStatus(status[0]);
}

/** kill(2); returns false when the process no longer exists. */
export function kill(pid: number, signal: number): boolean {
  if (libc.kill(pid, signal) === 0) return true;
  if (errno() === 3) return false;
  throw lastError("kill", String(pid));
}

/** prctl(2). */
export function prctl(option: number, arg2: bigint | number = 0, arg3: bigint | number = 0): void {
  check("prctl", libc.prctl(option, BigInt(arg2), BigInt(arg3), 0n, 0n));
}

/** close_range(2). */
export function closeRange(first: number, last: number): void {
  check("close_range", libc.close_range(first, last, 0));
}

/** A zeroed `struct kernel_sigaction`: handler SIG_DFL, no flags, empty mask. */
const defaultAction = offHeap(32);

/**
 * Resets `signal`'s disposition to SIG_DFL with the raw rt_sigaction system
 * call (glibc's own wrappers refuse 32 and 33, which it reserves, yet a
 * parent may have left them ignored). Errors (SIGKILL, SIGSTOP) are ignored.
 */
export function resetSignal(signal: number): void {
  libc.syscall4(SYS.rt_sigaction, BigInt(signal), defaultAction, null, 8n);
}

/**
 * Sets `signal` to its default action (SIG_DFL) for the whole process and
 * returns the previous action, for {@link restoreSignalAction}.
 */
export function defaultSignalAction(signal: number): Uint8Array<ArrayBuffer> {
  const previous = offHeap(32);
  const result = libc.syscall4(
    SYS.rt_sigaction,
    BigInt(signal),
    defaultAction,
    Deno.UnsafePointer.of(previous),
    8n,
  );
  check("rt_sigaction", result, `signal ${signal}`);
  return previous;
}

/** Puts back an action {@link defaultSignalAction} returned. */
export function restoreSignalAction(signal: number, action: Uint8Array<ArrayBuffer>): void {
  check("rt_sigaction", libc.syscall4(SYS.rt_sigaction, BigInt(signal), action, null, 8n));
}

/** pthread_sigmask(2) on a 64-bit mask; returns the previous mask. */
export function setSignalMask(how: number, mask: bigint): bigint {
  const set = new BigUint64Array(16);
  const old = new BigUint64Array(16);
  set[0] = mask;
  const result = libc.pthread_sigmask(
    how,
    new Uint8Array(set.buffer),
    new Uint8Array(old.buffer),
  );
  if (result !== 0) throw new SyscallError("pthread_sigmask", result, strerror(result));
  return old[0];
}

/** Decodes a NUL-terminated byte buffer into a string. */
export function fromCString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** open(2) flags. */
export const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;
/** More open(2) flags. */
export const O_NONBLOCK = 0o4000, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
/** open(2) flag: a handle on the file itself, for *at() calls and `/proc/self/fd` paths. */
export const O_PATH = 0o10000000;
/** fcntl(2) commands. */
export const F_SETFD = 2, F_GETFL = 3, F_SETFL = 4;
/** access(2) modes. */
export const F_OK = 0, X_OK = 1;
/** waitpid(2) option. */
export const WNOHANG = 1;
/** pthread_sigmask(3) operations. */
export const SIG_BLOCK = 0, SIG_SETMASK = 2;
/** prctl(2) options. */
export const PR_SET_PDEATHSIG = 1, PR_SET_NO_NEW_PRIVS = 38;
/** ioctl(2) on a namespace file: its CLONE_NEW* type (NS_GET_NSTYPE). */
export const NS_GET_NSTYPE = 0xb703;
/** ioctl(2) on a namespace file: a new fd for the user namespace that owns it (NS_GET_USERNS). */
export const NS_GET_USERNS = 0xb701;

/** openat(2) flags: do not follow a symlink in the last component; fail unless a directory. */
export const O_NOFOLLOW = 0o400000;
/** *at(2) flags: act on the fd itself (empty path), do not follow a final symlink, remove a directory. */
export const AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200;

/** openat(2) of the single name or relative path `path` under the directory fd `dirfd`. */
export function openAt(dirfd: number, path: string, flags: number, mode = 0): number {
  return check("openat", libc.openat(dirfd, cstr(path), flags | O_CLOEXEC, mode), path);
}

/** What statx(2) says of a file: its type, identity, link count and size. */
export interface FileStatus {
  /** The `S_IFMT` bits of st_mode (see {@link S_IFDIR}, {@link S_IFLNK}, {@link S_IFREG}). */
  type: number;
  /** Device and inode: the file's identity. */
  dev: number;
  ino: number;
  nlink: number;
  size: number;
}

/** File types (st_mode & S_IFMT). */
export const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFLNK = 0o120000, S_IFREG = 0o100000;
const STATX_BASIC_STATS = 0x7ff;

/** statx(2) of the open file `fd` itself (AT_EMPTY_PATH; the fd may be O_PATH, even of a symlink). */
export function fileStatus(fd: number, what?: string): FileStatus {
  const buffer = new Uint8Array(256);
  check(
    "statx",
    libc.statx(fd, cstr(""), AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buffer),
    what,
  );
  const view = new DataView(buffer.buffer);
  return {
    type: view.getUint16(28, true) & S_IFMT,
    ino: Number(view.getBigUint64(32, true)),
    dev: view.getUint32(136, true) * 2 ** 20 + view.getUint32(140, true),
    nlink: view.getUint32(16, true),
    size: Number(view.getBigUint64(40, true)),
  };
}

/** A raw system call of up to five bigint arguments through syscall(3), checked as {@link check}. */
export function syscall(
  name: string,
  what: string | undefined,
  number: bigint,
  ...args: bigint[]
): number {
  const [a = 0n, b = 0n, c = 0n, d = 0n, e = 0n] = args;
  const result = libc.syscall6(number, a, b, c, d, e, 0n);
  if (result === -1n) throw lastError(name, what);
  return Number(result);
}

/** A `struct kernel_sigaction` whose handler is SIG_IGN (1), no flags, empty mask. */
const ignoreAction = offHeap(32);
ignoreAction[0] = 1;

/** Sets `signal` to SIG_IGN with the raw rt_sigaction call, as {@link resetSignal}. */
export function ignoreSignal(signal: number): void {
  libc.syscall4(SYS.rt_sigaction, BigInt(signal), ignoreAction, null, 8n);
}

/**
 * The signals this process's caller left ignored (`nohup` ignores SIGHUP),
 * which the command must keep ignoring and the tool must not forward. Read
 * from /proc/self/status (SigIgn) on the first call, which the tool makes
 * before it installs any signal listener (a listener changes the
 * disposition; `mod.ts` makes the call as it loads, for programs that add
 * their own). Deno itself ignores SIGPIPE before any JavaScript runs, so
 * whether the caller did is unknowable: SIGPIPE is left out (the command gets
 * its default back). Empty when /proc cannot be read.
 */
export function signalsIgnoredByCaller(): ReadonlySet<number> {
  ignoredByCaller ??= readIgnoredSignals();
  return ignoredByCaller;
}

let ignoredByCaller: ReadonlySet<number> | undefined;

function readIgnoredSignals(): ReadonlySet<number> {
  const signals = new Set<number>();
  try {
    const field = readFile("/proc/self/status").match(/^SigIgn:\s+([0-9a-f]+)$/m);
    if (!field) return signals;
    const mask = BigInt(`0x${field[1]}`);
    for (let signal = 1; signal <= SIGNAL_MAX; signal++) {
      if (signal !== SIGNALS.SIGPIPE && (mask >> BigInt(signal - 1)) & 1n) signals.add(signal);
    }
  } catch {
    // no /proc: nothing is known to be ignored
  }
  return signals;
}

/** access(2) mode: write permission. */
export const W_OK = 2;

// ---- OCI containers (issue 18): the calls a container's setup makes beyond a launch's ----

/** File types for {@link mknodAt}. */
export const S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFIFO = 0o010000;
