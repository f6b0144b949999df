/**
 * Pseudo-terminals: a new pty pair (posix_openpt, grantpt, unlockpt,
 * ptsname), making the slave the controlling terminal of a new session,
 * window sizes (TIOCGWINSZ/TIOCSWINSZ), raw mode of the caller's terminal
 * (tcgetattr, cfmakeraw, tcsetattr), and a poll that does not block the
 * event loop, for the relay in `lib/pty.ts`.
 * @module
 */

import { Errno, SyscallError } from "./errors.ts";
import { close, errno, fromCString, lastError, O_CLOEXEC, O_RDWR, open, raw } from "./libc.ts";
import { dup2, O_NOCTTY, setsid } from "./files.ts";
import { TIOC } from "./constants.ts";

/** tcsetattr(3): apply the change once the output is written, discarding unread input. */
const TCSAFLUSH = 2;

/** poll(2) events. */
export const POLL = { IN: 1, OUT: 4, ERR: 8, HUP: 16, NVAL: 32 } as const;

/** A pty pair: the master (the tool's side) and the slave (the command's terminal), both close-on-exec. */
export interface PtyPair {
  /** The master fd. */
  master: number;
  /** The slave fd. */
  slave: number;
  /** The slave's path (`/dev/pts/N`). */
  path: string;
}

/** Opens a new pty pair (posix_openpt O_RDWR|O_NOCTTY, grantpt, unlockpt, ptsname_r, open). */
export function openPty(): PtyPair {
  const master = raw.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master === -1) throw lastError("posix_openpt");
  try {
    if (raw.grantpt(master) === -1) throw lastError("grantpt");
    if (raw.unlockpt(master) === -1) throw lastError("unlockpt");
    const name = new Uint8Array(64);
    const result = raw.ptsname_r(master, name, 64n);
    if (result !== 0) throw new SyscallError("ptsname_r", result, "ptsname_r failed");
    const path = fromCString(name);
    const slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    return { master, slave, path };
  } catch (error) {
    close(master);
    throw error;
  }
}

/**
 * Child side: a new session whose controlling terminal is `slave`, which
 * becomes stdin, stdout and stderr (setsid, ioctl TIOCSCTTY, dup2).
 */
export function becomeTerminalSession(slave: number): void {
  setsid();
  if (raw.ioctl(slave, BigInt(TIOC.SCTTY), 0n) === -1) throw lastError("ioctl", "TIOCSCTTY");
  for (const fd of [0, 1, 2]) dup2(slave, fd);
}

/** A window size: rows, columns (TIOCGWINSZ's `struct winsize`, pixels kept). */
export type WindowSize = Uint16Array<ArrayBuffer>;

/** The window size of terminal `fd`, or null when it is not a terminal. */
export function windowSize(fd: number): WindowSize | null {
  const size = new Uint16Array(4);
  const result = raw.ioctl(fd, BigInt(TIOC.GWINSZ), ptr(new Uint8Array(size.buffer)));
  return result === -1 ? null : size;
}

/** Sets terminal `fd`'s window size (the kernel sends SIGWINCH to its foreground group). */
export function setWindowSize(fd: number, size: WindowSize): void {
  if (raw.ioctl(fd, BigInt(TIOC.SWINSZ), ptr(new Uint8Array(size.buffer))) === -1) {
    throw lastError("ioctl", "TIOCSWINSZ");
  }
}

function ptr(buffer: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

/** Saved terminal attributes, to restore. */
export type TerminalMode = Uint8Array<ArrayBuffer>;

/** Puts terminal `fd` in raw mode; returns its previous mode, or null when it is not a terminal. */
export function makeRaw(fd: number): TerminalMode | null {
  const saved = new Uint8Array(64); // struct termios is 60 bytes
  if (raw.tcgetattr(fd, saved) === -1) return null;
  const mode = saved.slice();
  raw.cfmakeraw(mode);
  if (raw.tcsetattr(fd, TCSAFLUSH, mode) === -1) throw lastError("tcsetattr");
  return saved;
}

/** Puts back a mode saved by {@link makeRaw}. */
export function restoreMode(fd: number, mode: TerminalMode): void {
  if (raw.tcsetattr(fd, TCSAFLUSH, mode) === -1) throw lastError("tcsetattr");
}

/** poll(2) on another thread: the `revents` of each fd (0: nothing); [] on timeout. */
export async function pollAsync(
  entries: { fd: number; events: number }[],
  timeoutMs: number,
): Promise<number[]> {
  const table = new Int32Array(entries.length * 2);
  entries.forEach(({ fd, events }, i) => {
    table[2 * i] = fd;
    table[2 * i + 1] = events;
  });
  // poll runs on another thread, whose errno is not readable here: a failure can only be
  // EINTR (bad fds are POLLNVAL, memory is ours), so it is tried again.
  while (await raw.poll_async(new Uint8Array(table.buffer), BigInt(entries.length), timeoutMs) < 0);
  return entries.map((_, i) => table[2 * i + 1] >>> 16);
}

/**
 * write(2) of some of `bytes`: the count written, -2 with EAGAIN (a
 * non-blocking fd that is full), -1 when the other side is gone (EIO, EPIPE).
 */
export function writeSome(fd: number, bytes: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(raw.write(fd, bytes, BigInt(bytes.length)));
    if (n >= 0) return n;
    const code = errno();
    if (code === Errno.EINTR) continue;
    if (code === Errno.EAGAIN) return -2;
    if (code === Errno.EIO || code === Errno.EPIPE) return -1;
    throw lastError("write");
  }
}

/**
 * read(2) into `buffer`: the byte count, 0 at end of file, -1 with EIO (a
 * pty whose slave is gone), -2 with EAGAIN (nothing there after all).
 */
export function readSome(fd: number, buffer: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(raw.read(fd, buffer, BigInt(buffer.length)));
    if (n >= 0) return n;
    const code = errno();
    if (code === Errno.EINTR) continue;
    if (code === Errno.EIO) return -1;
    if (code === Errno.EAGAIN) return -2;
    throw lastError("read");
  }
}
