/**
 * Typed errors for failed libc calls.
 *
 * Every wrapper in `ffi/` throws a {@link SyscallError} that carries the name
 * of the call that failed and the errno's symbolic name (`EPERM`, `ENOENT`).
 * @module
 */

/**
 * Linux (x86-64, asm-generic) errno values by symbolic name: the one table;
 * names are derived from it ({@link errnoName}).
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EOVERFLOW: 75,
  ELIBBAD: 80,
  EUSERS: 87,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  EDQUOT: 122,
} as const;

// Built on first use: only a failed call needs a name, and building it costs ~0.3 ms of start-up.
let errnoNames: Record<number, string> | undefined;

/** The symbolic name of an errno value, e.g. `errnoName(2) === "ENOENT"`. */
export function errnoName(errno: number): string {
  errnoNames ??= Object.fromEntries(Object.entries(Errno).map(([name, value]) => [value, name]));
  return errnoNames[errno] ?? `errno ${errno}`;
}

/**
 * A libc call that failed, with the call's name and errno.
 *
 * @example
 * ```ts
 * try {
 *   await launch({ command: ["true"], jail: "/" });
 * } catch (error) {
 *   if (error instanceof LaunchError && error.cause instanceof SyscallError) {
 *     console.error(error.cause.call, error.cause.code); // e.g. "mount" "EPERM"
 *   }
 * }
 * ```
 */
export class SyscallError extends Error {
  /** The libc function that failed, e.g. `"mount"`. */
  readonly call: string;
  /** The raw errno value. */
  readonly errno: number;
  /** The errno's symbolic name, e.g. `"EPERM"`. */
  readonly code: string;
  /** The C library's description, e.g. `"Operation not permitted"`. */
  readonly description: string;

  /** Builds the error; `what` names the object the call acted on, if any. */
  constructor(call: string, errno: number, description: string, what?: string) {
    const code = errnoName(errno);
    super(`${call}${what ? `: ${what}` : ""} (${code}: ${description})`);
    this.name = "SyscallError";
    this.call = call;
    this.errno = errno;
    this.code = code;
    this.description = description;
  }
}
