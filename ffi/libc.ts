/**
 * The libc symbol table and small typed wrappers around it.
 *
 * This file (with the rest of `ffi/`) is the only place that deals in
 * pointers. Every wrapper returns plain values and throws a
 * {@link SyscallError} naming the call and errno when libc reports failure.
 * @module
 */

import { Errno, SyscallError } from "./errors.ts";

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
  statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
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
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
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

const loader = Deno.dlopen("libc.so.6", { dlsym: SYMBOLS.dlsym }).symbols;

type Libc = Deno.StaticForeignLibraryInterface<typeof SYMBOLS>;

/**
 * Binds each symbol on first use, through dlsym and a function pointer.
 * Binding all of them up front with `Deno.dlopen` costs ~0.2 ms a symbol (V8
 * compiles a fast-call trampoline for each), which would double the CLI's
 * start-up; a pointer call costs ~2 µs, and a launch makes a few dozen.
 */
function bindOnFirstUse(): Libc {
  const bound = {} as Record<string, unknown>;
  for (const [key, definition] of Object.entries(SYMBOLS)) {
    Object.defineProperty(bound, key, {
      get() {
        const name = "name" in definition ? definition.name : key;
        const address = loader.dlsym(null, new TextEncoder().encode(`${name}\0`));
        if (!address) throw new Error(`dlsym: ${name} not found in libc`);
        const fn = new Deno.UnsafeFnPointer(
          address as Deno.PointerObject<Deno.ForeignFunction>,
          definition as Deno.ForeignFunction,
        );
        const call = (...args: unknown[]) => (fn.call as (...a: unknown[]) => unknown)(...args);
        Object.defineProperty(bound, key, { value: call });
        return call;
      },
      configurable: true,
    });
  }
  return bound as Libc;
}

const libc = bindOnFirstUse();

/** The raw symbol table, for the clone engine (pointers and all). */
export const raw = libc;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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

/**
 * A NULL-terminated `char *[]` for `strings`, for execve's argv and envp.
 * The returned `keep` array holds the strings alive as long as the vector.
 */
export function cstrVector(
  strings: string[],
): { vector: Uint8Array<ArrayBuffer>; keep: unknown[] } {
  const keep = strings.map(cstr);
  const vector = offHeap(8 * (keep.length + 1));
  const slots = new BigUint64Array(vector.buffer);
  keep.forEach((s, i) => (slots[i] = addressOf(s)));
  return { vector, keep: [...keep, vector] };
}

const errnoPointer = libc.__errno_location();

/** The calling thread's current errno. */
export function errno(): number {
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

function check(call: string, result: number | bigint, what?: string): number {
  if (Number(result) === -1) throw lastError(call, what);
  return Number(result);
}

/** The address of a libc function, for code that is jumped to rather than called. */
export function symbolAddress(name: string): bigint {
  const pointer = loader.dlsym(null, cstr(name));
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

/** umount2(2). */
export function umount2(target: string, flags: number): void {
  check("umount2", libc.umount2(cstr(target), flags), target);
}

/** chroot(2). */
export function chroot(path: string): void {
  check("chroot", libc.chroot(cstr(path)), path);
}

/** chdir(2). */
export function chdir(path: string): void {
  check("chdir", libc.chdir(cstr(path)), path);
}

/** fchdir(2). */
export function fchdir(fd: number): void {
  check("fchdir", libc.fchdir(fd));
}

/** mkdir(2). */
export function mkdir(path: string, mode: number): void {
  check("mkdir", libc.mkdir(cstr(path), mode), path);
}

/** symlink(2): creates `path` pointing at `target`. */
export function symlink(target: string, path: string): void {
  check("symlink", libc.symlink(cstr(target), cstr(path)), path);
}

/** access(2), as a boolean: true when `path` is accessible in `mode`. */
export function accessible(path: string, mode: number): boolean {
  return libc.access(cstr(path), mode) === 0;
}

/** open(2); returns the new fd. */
export function open(path: string, flags: number, mode = 0): number {
  return check("open", libc.open(cstr(path), flags, mode), path);
}

/** dup2(2): makes `target` a copy of `fd`. */
export function dup2(fd: number, target: number): void {
  check("dup2", libc.dup2(fd, target));
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
export function readFile(path: string): string {
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
}

/** uname(2)'s release field, e.g. `"6.1.0-18-amd64"`. */
export function kernelRelease(): string {
  const fields = new Uint8Array(6 * 65);
  check("uname", libc.uname(fields));
  return fromCString(fields.subarray(2 * 65, 3 * 65));
}

/** readlink(2); e.g. `readLink("/proc/1/ns/uts") === "uts:[4026531838]"`. */
export function readLink(path: string): string {
  const buffer = new Uint8Array(4096);
  const length = check("readlink", libc.readlink(cstr(path), buffer, BigInt(buffer.length)), path);
  return decoder.decode(buffer.subarray(0, length));
}

/** The names in a directory (without `.` and `..`), via opendir/readdir. */
export function listDirectory(path: string): string[] {
  const directory = libc.opendir(cstr(path));
  if (!directory) throw lastError("opendir", path);
  const names: string[] = [];
  try {
    for (let entry = libc.readdir(directory); entry; entry = libc.readdir(directory)) {
      // struct dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, then d_name.
      const name = Deno.UnsafePointerView.getCString(entry, 19);
      if (name !== "." && name !== "..") names.push(name);
    }
  } finally {
    libc.closedir(directory);
  }
  return names;
}

/** ioctl(2) with no argument; returns its result. */
export function ioctl(fd: number, request: number): number {
  return check("ioctl", libc.ioctl(fd, BigInt(request), 0n));
}

const AT_EMPTY_PATH = 0x1000, STATX_INO = 0x100, STATX_INO_OFFSET = 32;

/** The inode number of the open file `fd` (statx(2), whose layout is the same on every arch). */
export function inodeOf(fd: number): number {
  const buffer = new Uint8Array(256);
  check("statx", libc.statx(fd, cstr(""), AT_EMPTY_PATH, STATX_INO, buffer));
  return Number(new DataView(buffer.buffer).getBigUint64(STATX_INO_OFFSET, true));
}

const SYS_setgroups = 116n, SYS_setresuid = 117n, SYS_setresgid = 119n;

/**
 * Becomes `uid`/`gid` with no supplementary groups, through the raw system
 * calls: glibc's wrappers would also change the IDs of every thread in
 * their thread list, and a clone child shares that list with its parent.
 * In a user namespace whose `setgroups` is "deny" (every one made rootless)
 * the groups cannot be dropped, and are kept, as nsenter does.
 */
export function becomeUser(uid: number, gid: number): void {
  const call = (name: string, number: bigint, a: bigint, b = 0n, c = 0n) => {
    if (libc.syscall3(number, a, b, c) === -1n) throw lastError(name);
  };
  if (libc.syscall3(SYS_setgroups, 0n, 0n, 0n) === -1n && errno() !== Errno.EPERM) {
    throw lastError("setgroups");
  }
  call("setresgid", SYS_setresgid, BigInt(gid), BigInt(gid), BigInt(gid));
  call("setresuid", SYS_setresuid, BigInt(uid), BigInt(uid), BigInt(uid));
}

const SYS_capget = 125n, SYS_capset = 126n, LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const PR_CAP_AMBIENT = 47, PR_CAP_AMBIENT_RAISE = 2, PR_CAP_AMBIENT_CLEAR_ALL = 4;

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
  if (libc.syscall3(SYS_capget, headerAddress, dataAddress, 0n) === -1n) throw lastError("capget");
  data[2] = data[1]; // inheritable = permitted (low word)
  data[5] = data[4]; // (high word)
  if (libc.syscall3(SYS_capset, headerAddress, dataAddress, 0n) === -1n) throw lastError("capset");
  const last = Number(readFile("/proc/sys/kernel/cap_last_cap").trim());
  for (let cap = 0; cap <= last; cap++) {
    const word = cap < 32 ? data[1] : data[4];
    if ((word >>> (cap % 32)) & 1) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap);
  }
}

/** Undoes {@link raiseAmbientCapabilities}: no ambient and no inheritable capabilities. */
export function clearAmbientCapabilities(): void {
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  const data = new Uint32Array(6);
  const headerBytes = new Uint8Array(header.buffer), dataBytes = new Uint8Array(data.buffer);
  const headerAddress = addressOf(headerBytes), dataAddress = addressOf(dataBytes);
  if (libc.syscall3(SYS_capget, headerAddress, dataAddress, 0n) === -1n) throw lastError("capget");
  data[2] = data[5] = 0;
  if (libc.syscall3(SYS_capset, headerAddress, dataAddress, 0n) === -1n) throw lastError("capset");
}

const SYS_pivot_root = 155n;

/** pivot_root(2): `newRoot` becomes `/`, the old root moves to `putOld`. */
export function pivotRoot(newRoot: string, putOld: string): void {
  const [a, b] = [cstr(newRoot), cstr(putOld)];
  const result = libc.syscall3(SYS_pivot_root, addressOf(a), addressOf(b), 0n);
  if (result === -1n) throw lastError("pivot_root", newRoot);
}

/** The mount flags of the filesystem holding `path` (statvfs f_flag: ST_* = MS_* bits). */
export function mountFlags(path: string): bigint {
  const buffer = new BigUint64Array(14);
  check("statvfs", libc.statvfs(cstr(path), new Uint8Array(buffer.buffer)), path);
  return buffer[9];
}

/** socket(2); returns the fd (close-on-exec). */
export function socket(domain: number, type: number, protocol: number): number {
  return check("socket", libc.socket(domain, type | SOCK_CLOEXEC, protocol));
}

/** bind(2) to the address bytes `address` (e.g. a `struct sockaddr_nl`). */
export function bindSocket(fd: number, address: Uint8Array<ArrayBuffer>): void {
  check("bind", libc.bind(fd, address, address.length));
}

/** send(2) of all of `bytes` as one datagram/message. */
export function sendMessage(fd: number, bytes: Uint8Array<ArrayBuffer>): void {
  check("send", libc.send(fd, bytes, BigInt(bytes.length), 0));
}

/** recv(2) into `buffer`; returns the byte count. Retries EINTR. */
export function receiveMessage(fd: number, buffer: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(libc.recv(fd, buffer, BigInt(buffer.length), 0));
    if (n >= 0) return n;
    if (errno() !== 4) throw lastError("recv");
  }
}

/** setsockopt(2) with an int value. */
export function setSocketOption(fd: number, level: number, name: number, value: number): void {
  const bytes = new Uint8Array(new Int32Array([value]).buffer);
  check("setsockopt", libc.setsockopt(fd, level, name, bytes, 4));
}

/** msgget(2) of a new private System V message queue; returns its ID. */
export function createMessageQueue(): number {
  return check("msgget", libc.msgget(0, 0o1000 | 0o600));
}

/** msgctl(IPC_RMID): removes a System V message queue. */
export function removeMessageQueue(id: number): void {
  check("msgctl", libc.msgctl(id, 0, null));
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
export async function waitForExit(pid: number): Promise<WaitStatus> {
  const status = new Int32Array(1);
  const bytes = new Uint8Array(status.buffer);
  for (;;) {
    if (await libc.waitpid_async(pid, bytes, 0) === pid) return decodeStatus(status[0]);
    // The errno of that call is the worker thread's: ask again here, without blocking.
    const again = check("waitpid", libc.waitpid(pid, bytes, WNOHANG), String(pid));
    if (again === pid) return decodeStatus(status[0]);
  }
}

/** waitpid(2), blocking the calling thread: for a child known to have exited already. */
export function waitForChild(pid: number): WaitStatus {
  const status = new Int32Array(1);
  const bytes = new Uint8Array(status.buffer);
  while (libc.waitpid(pid, bytes, 0) !== pid) {
    if (errno() !== Errno.EINTR) throw lastError("waitpid", String(pid));
  }
  return decodeStatus(status[0]);
}

/** waitpid(2) with WNOHANG: the status if `pid` has ended, else null. */
export function pollExit(pid: number): WaitStatus | null {
  const status = new Int32Array(1);
  const result = check("waitpid", libc.waitpid(pid, new Uint8Array(status.buffer), WNOHANG));
  return result === 0 ? null : decodeStatus(status[0]);
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

const SYS_rt_sigaction = 13n;
/** A zeroed `struct kernel_sigaction`: handler SIG_DFL, no flags, empty mask. */
const defaultAction = offHeap(32);

/**
 * Resets `signal`'s disposition to SIG_DFL with the raw rt_sigaction system
 * call (glibc's own wrappers refuse 32 and 33, which it reserves, yet a
 * parent may have left them ignored). Errors (SIGKILL, SIGSTOP) are ignored.
 */
export function resetSignal(signal: number): void {
  libc.syscall4(SYS_rt_sigaction, BigInt(signal), defaultAction, null, 8n);
}

/**
 * Sets `signal` to its default action (SIG_DFL) for the whole process and
 * returns the previous action, for {@link restoreSignalAction}.
 */
export function defaultSignalAction(signal: number): Uint8Array<ArrayBuffer> {
  const previous = offHeap(32);
  const result = libc.syscall4(
    SYS_rt_sigaction,
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
  check("rt_sigaction", libc.syscall4(SYS_rt_sigaction, BigInt(signal), action, null, 8n));
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

/** signalfd(2) for the signals in `mask`. */
export function signalfd(mask: bigint): number {
  const set = new BigUint64Array(16);
  set[0] = mask;
  return check("signalfd", libc.signalfd(-1, new Uint8Array(set.buffer), SFD_CLOEXEC));
}

/** poll(2) on `fds` for input; returns the indexes that are ready. */
export function pollReadable(fds: number[], timeoutMs: number): number[] {
  const table = new Int32Array(fds.length * 2);
  fds.forEach((fd, i) => {
    table[2 * i] = fd;
    table[2 * i + 1] = POLLIN;
  });
  for (;;) {
    const result = libc.poll(new Uint8Array(table.buffer), BigInt(fds.length), timeoutMs);
    if (result >= 0) break;
    if (errno() !== 4) throw lastError("poll");
  }
  return fds.flatMap((_, i) => ((table[2 * i + 1] >> 16) !== 0 ? [i] : []));
}

/** Attributes of a POSIX message queue. */
export interface QueueAttributes {
  /** Maximum number of messages on the queue. */
  maxMessages: number;
  /** Maximum size of one message, in bytes. */
  messageSize: number;
}

/** mq_open(3); creates the queue when `create` is given (exclusively). */
export function mqOpen(name: string, flags: number, create?: QueueAttributes): number {
  let attributes: Uint8Array<ArrayBuffer> | null = null;
  if (create) {
    const words = new BigInt64Array(8);
    words[1] = BigInt(create.maxMessages);
    words[2] = BigInt(create.messageSize);
    attributes = new Uint8Array(words.buffer);
  }
  return check("mq_open", libc.mq_open(cstr(name), flags, 0o600, attributes), name);
}

/** mq_getattr(3). */
export function mqGetattr(queue: number): QueueAttributes {
  const words = new BigInt64Array(8);
  check("mq_getattr", libc.mq_getattr(queue, new Uint8Array(words.buffer)));
  return { maxMessages: Number(words[1]), messageSize: Number(words[2]) };
}

/** mq_send(3). */
export function mqSend(queue: number, message: Uint8Array<ArrayBuffer>): void {
  check("mq_send", libc.mq_send(queue, message, BigInt(message.length), 0));
}

/**
 * mq_timedreceive(3) waiting at most `timeoutMs`; returns the message bytes,
 * or null when the time ran out.
 */
export function mqReceive(queue: number, size: number, timeoutMs: number): Uint8Array | null {
  const now = new BigInt64Array(2);
  check("clock_gettime", libc.clock_gettime(0, new Uint8Array(now.buffer)));
  const deadlineNs = now[0] * 1_000_000_000n + now[1] + BigInt(timeoutMs) * 1_000_000n;
  const deadline = new BigInt64Array([deadlineNs / 1_000_000_000n, deadlineNs % 1_000_000_000n]);
  const buffer = new Uint8Array(size);
  const received = libc.mq_timedreceive(
    queue,
    buffer,
    BigInt(size),
    null,
    new Uint8Array(deadline.buffer),
  );
  if (Number(received) >= 0) return buffer.subarray(0, Number(received));
  if (errno() === 110) return null;
  throw lastError("mq_timedreceive");
}

/** mq_close(3). */
export function mqClose(queue: number): void {
  check("mq_close", libc.mq_close(queue));
}

/** mq_unlink(3); returns false when no queue of that name exists. */
export function mqUnlink(name: string): boolean {
  if (libc.mq_unlink(cstr(name)) === 0) return true;
  if (errno() === 2) return false;
  throw lastError("mq_unlink", name);
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
/** poll(2) event. */
export const POLLIN = 1;
/** signalfd(2) flag. */
export const SFD_CLOEXEC = 0o2000000;
/** pthread_sigmask(3) operations. */
export const SIG_BLOCK = 0, SIG_SETMASK = 2;
/** prctl(2) options. */
export const PR_SET_PDEATHSIG = 1, PR_SET_NO_NEW_PRIVS = 38;
/** socket(2) constants: AF_NETLINK, SOCK_RAW, SOCK_CLOEXEC, NETLINK_ROUTE. */
export const AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0o2000000, NETLINK_ROUTE = 0;
/** ioctl(2) on a namespace file: its CLONE_NEW* type (NS_GET_NSTYPE). */
export const NS_GET_NSTYPE = 0xb703;
/** ioctl(2) on a namespace file: a new fd for the user namespace that owns it (NS_GET_USERNS). */
export const NS_GET_USERNS = 0xb701;
