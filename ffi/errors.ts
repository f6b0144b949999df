/**
 * Typed errors for failed libc calls.
 *
 * Every wrapper in `ffi/` throws a {@link SyscallError} that carries the name
 * of the call that failed and the errno's symbolic name (`EPERM`, `ENOENT`).
 * @module
 */

/** Linux (x86-64, asm-generic) errno numbers by symbolic name. */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  15: "ENOTBLK",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  29: "ESPIPE",
  30: "EROFS",
  31: "EMLINK",
  32: "EPIPE",
  34: "ERANGE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  61: "ENODATA",
  62: "ETIME",
  71: "EPROTO",
  75: "EOVERFLOW",
  80: "ELIBBAD",
  87: "EUSERS",
  88: "ENOTSOCK",
  90: "EMSGSIZE",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  104: "ECONNRESET",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
  122: "EDQUOT",
};

/** Numeric values of the errno names the code tests for. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ECONNRESET: 104,
  ETIMEDOUT: 110,
  EBUSY: 16,
} as const;

/** The symbolic name of an errno value, e.g. `errnoName(2) === "ENOENT"`. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
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
