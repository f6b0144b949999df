/**
 * The system calls of containment, as thin wrappers: loading a seccomp
 * filter (with `no_new_privs`), the capability sets (capget/capset v3, the
 * bounding and ambient sets through prctl) and resource limits (prlimit64).
 * Each throws a {@link SyscallError} naming the call. They act on the
 * calling thread (capabilities, seccomp without TSYNC) or process
 * (rlimits): in a launch, call them from the clone child's setup.
 *
 * The order a setup needs, for a command that runs as `uid` with the sets
 * `lib/capabilities.ts` computes:
 *
 * ```
 * setKeepCapabilities(true)        only when the user changes: keeps the permitted set
 * dropBoundingCapabilities(sets.bounding)      needs CAP_SETPCAP, so before the user change
 * becomeUser(uid, gid)             (ffi/libc.ts)
 * setCapabilities(sets)            effective, permitted, inheritable
 * setAmbientCapabilities(sets.ambient)
 * setNoNewPrivs(); loadSeccompFilter(prepared)  last, just before execve
 *                                  (prepareSeccompFilter(program) in the parent)
 * ```
 *
 * Without no_new_privs, the kernel only takes a filter from a thread with
 * CAP_SYS_ADMIN: load it first then, before the capability steps (as runc
 * does), with a profile that lets them through (capset, prctl, setresuid).
 * @module
 */

import { SyscallError } from "./errors.ts";
import { addressOf, lastError, offHeap, raw, strerror, syscall } from "./libc.ts";
import { LINUX_CAPABILITY_VERSION_3, PR, SYS } from "./constants.ts";

/** seccomp(2) operation and flags (`linux/seccomp.h`). */
export const SECCOMP = {
  SET_MODE_FILTER: 1,
  FILTER_FLAG_TSYNC: 1,
  FILTER_FLAG_TSYNC_ESRCH: 16,
} as const;

function prctl(option: number, a = 0n, b = 0n, call = "prctl"): number {
  const result = raw.prctl(option, a, b, 0n, 0n);
  if (result === -1) throw lastError(call);
  return result;
}

/** prctl(PR_SET_NO_NEW_PRIVS): no exec will grant privileges again (setuid bits, file capabilities). */
export function setNoNewPrivs(): void {
  prctl(PR.SET_NO_NEW_PRIVS, 1n, 0n, "prctl(PR_SET_NO_NEW_PRIVS)");
}

/** Whether no_new_privs is set for the calling thread. */
export function noNewPrivs(): boolean {
  return prctl(PR.GET_NO_NEW_PRIVS, 0n, 0n, "prctl(PR_GET_NO_NEW_PRIVS)") === 1;
}

/** A filter made ready to load: `struct sock_fprog` and its program, outside V8's heap. */
export interface PreparedSeccompFilter {
  /** The `struct sock_fprog` seccomp(2) takes. */
  readonly fprog: Uint8Array<ArrayBuffer>;
  /** The program it points to (kept alive with it). */
  readonly filter: Uint8Array<ArrayBuffer>;
}

/**
 * Copies a classic BPF program (`struct sock_filter[]` bytes) where the
 * kernel can read it: done in the parent, so that the clone child only makes
 * the call.
 */
export function prepareSeccompFilter(program: Uint8Array): PreparedSeccompFilter {
  if (program.length === 0 || program.length % 8 !== 0 || program.length / 8 > 0xffff) {
    throw new SyscallError("seccomp", 22, strerror(22), `a program of ${program.length} bytes`);
  }
  const filter = offHeap(program.length);
  filter.set(program);
  const fprog = offHeap(16); // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
  const view = new DataView(fprog.buffer);
  view.setUint16(0, program.length / 8, true);
  view.setBigUint64(8, addressOf(filter), true);
  return { fprog, filter };
}

/**
 * Installs a seccomp filter on the calling thread, or with `tsync` on every
 * thread of its process (SECCOMP_FILTER_FLAG_TSYNC_ESRCH: a thread that
 * cannot follow is ESRCH). Needs no_new_privs or CAP_SYS_ADMIN.
 */
export function loadSeccompFilter(
  filter: PreparedSeccompFilter,
  options: { tsync?: boolean } = {},
): void {
  const flags = options.tsync ? SECCOMP.FILTER_FLAG_TSYNC | SECCOMP.FILTER_FLAG_TSYNC_ESRCH : 0;
  syscall(
    "seccomp",
    "SECCOMP_SET_MODE_FILTER",
    SYS.seccomp,
    BigInt(SECCOMP.SET_MODE_FILTER),
    BigInt(flags),
    addressOf(filter.fprog),
  );
}

/** The effective, permitted and inheritable sets of a thread, as masks. */
export interface ThreadCapabilities {
  /** What the kernel checks. */
  effective: bigint;
  /** What may be made effective. */
  permitted: bigint;
  /** What may pass through exec. */
  inheritable: bigint;
}

function capHeader(pid: number): Uint8Array<ArrayBuffer> {
  const header = offHeap(8);
  const view = new DataView(header.buffer);
  view.setUint32(0, LINUX_CAPABILITY_VERSION_3, true);
  view.setInt32(4, pid, true);
  return header;
}

/** capget(2), version 3, for `pid` (0: the calling thread). */
export function getCapabilities(pid = 0): ThreadCapabilities {
  const header = capHeader(pid);
  const data = offHeap(24); // two struct __user_cap_data_struct { effective, permitted, inheritable }
  syscall("capget", undefined, SYS.capget, addressOf(header), addressOf(data));
  const view = new DataView(data.buffer);
  const set = (offset: number) =>
    BigInt(view.getUint32(offset, true)) | (BigInt(view.getUint32(12 + offset, true)) << 32n);
  return { effective: set(0), permitted: set(4), inheritable: set(8) };
}

/** capset(2), version 3, for the calling thread. */
export function setCapabilities(sets: ThreadCapabilities): void {
  const header = capHeader(0);
  const data = offHeap(24);
  const view = new DataView(data.buffer);
  const put = (offset: number, mask: bigint) => {
    view.setUint32(offset, Number(mask & 0xffffffffn), true);
    view.setUint32(12 + offset, Number((mask >> 32n) & 0xffffffffn), true);
  };
  put(0, sets.effective);
  put(4, sets.permitted);
  put(8, sets.inheritable);
  syscall("capset", undefined, SYS.capset, addressOf(header), addressOf(data));
}

/** The calling thread's bounding set, as a mask. */
export function boundingCapabilities(): bigint {
  let mask = 0n;
  for (let cap = 0; cap < 64; cap++) {
    const result = raw.prctl(PR.CAPBSET_READ, BigInt(cap), 0n, 0n, 0n);
    if (result === -1) break;
    if (result === 1) mask |= 1n << BigInt(cap);
  }
  return mask;
}

/**
 * Drops from the bounding set every capability not in `keep` (PR_CAPBSET_DROP;
 * needs CAP_SETPCAP). `current` is the set as it is, when the caller knows it
 * (read once in the parent: the clone child inherits it), else it is read.
 */
export function dropBoundingCapabilities(keep: bigint, current?: bigint): void {
  const bounding = current ?? boundingCapabilities();
  const drop = bounding & ~keep;
  const low = Number(drop & 0xffffffffn), high = Number(drop >> 32n);
  for (let cap = 0; cap < 64; cap++) {
    if (!((cap < 32 ? low >>> cap : high >>> (cap - 32)) & 1)) continue;
    if (raw.prctl(PR.CAPBSET_DROP, BigInt(cap), 0n, 0n, 0n) === -1) {
      throw lastError("prctl(PR_CAPBSET_DROP)", `capability ${cap}`);
    }
  }
}

/**
 * Makes the ambient set exactly `mask` (PR_CAP_AMBIENT_CLEAR_ALL, then RAISE
 * for each; a capability must be permitted and inheritable to be raised).
 */
export function setAmbientCapabilities(mask: bigint): void {
  prctl(PR.CAP_AMBIENT, BigInt(PR.CAP_AMBIENT_CLEAR_ALL), 0n, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  for (let cap = 0; cap < 64; cap++) {
    if (!(mask & (1n << BigInt(cap)))) continue;
    const result = raw.prctl(PR.CAP_AMBIENT, BigInt(PR.CAP_AMBIENT_RAISE), BigInt(cap), 0n, 0n);
    if (result === -1) throw lastError("prctl(PR_CAP_AMBIENT_RAISE)", `capability ${cap}`);
  }
}

/** prctl(PR_SET_KEEPCAPS): keep the permitted set when every uid leaves 0. */
export function setKeepCapabilities(keep: boolean): void {
  prctl(PR.SET_KEEPCAPS, keep ? 1n : 0n, 0n, "prctl(PR_SET_KEEPCAPS)");
}

/** A soft and a hard limit; `0xffffffffffffffffn` is RLIM_INFINITY. */
export interface Limits {
  /** The soft limit. */
  soft: bigint;
  /** The hard limit (the ceiling for the soft one). */
  hard: bigint;
}

/**
 * prlimit64(2): sets `resource`'s limits of `pid` (0: the caller) when
 * `limits` is given; returns the previous ones.
 */
export function prlimit(pid: number, resource: number, limits?: Limits): Limits {
  const old = offHeap(16);
  let fresh = 0n;
  const wanted = offHeap(16);
  if (limits) {
    const view = new DataView(wanted.buffer);
    view.setBigUint64(0, limits.soft, true);
    view.setBigUint64(8, limits.hard, true);
    fresh = addressOf(wanted);
  }
  syscall(
    "prlimit64",
    `resource ${resource}`,
    SYS.prlimit64,
    BigInt(pid),
    BigInt(resource),
    fresh,
    addressOf(old),
  );
  const view = new DataView(old.buffer);
  return { soft: view.getBigUint64(0, true), hard: view.getBigUint64(8, true) };
}

/** setrlimit(2) for the calling process: `resource` (RLIMIT_*) to `limits`. */
export function setRlimit(resource: number, limits: Limits): void {
  prlimit(0, resource, limits);
}

/** getrlimit(2) for the calling process. */
export function getRlimit(resource: number): Limits {
  return prlimit(0, resource);
}

/**
 * keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new, anonymous session keyring
 * of its own; returns its serial number.
 */
export function joinSessionKeyring(): number {
  return syscall("keyctl", "KEYCTL_JOIN_SESSION_KEYRING", SYS.keyctl, 1n, 0n);
}
