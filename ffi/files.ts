/**
 * Files and directories beyond what a plain launch touches: making, linking,
 * reading and removing them by path or relative to a directory fd, device
 * nodes and owners, descriptors (dup, memfd, ioctl), and the process knobs a
 * container sets (domain name, umask, personality, session, groups).
 * @module
 */

import {
  addressOf,
  AT_SYMLINK_NOFOLLOW,
  check,
  cstr,
  decoder,
  encoder,
  lastError,
  offHeap,
  raw as libc,
  syscall,
} from "./libc.ts";
import { SYS } from "./constants.ts";

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

/** mkdirat(2). */
export function mkdirAt(dirfd: number, name: string, mode: number): void {
  check("mkdirat", libc.mkdirat(dirfd, cstr(name), mode), name);
}

/** readlinkat(2); `name` `""` reads the symlink an O_PATH|O_NOFOLLOW fd refers to. */
export function readLinkAt(dirfd: number, name: string, what = name): string {
  const buffer = new Uint8Array(4096);
  const length = check(
    "readlinkat",
    libc.readlinkat(dirfd, cstr(name), buffer, BigInt(buffer.length)),
    what,
  );
  return decoder.decode(buffer.subarray(0, length));
}

/** unlinkat(2); `flags` {@link AT_REMOVEDIR} removes an (empty) directory. */
export function unlinkAt(dirfd: number, name: string, flags: number): void {
  check("unlinkat", libc.unlinkat(dirfd, cstr(name), flags), name);
}

/** memfd_create(2) flag. */
export const MFD_CLOEXEC = 1;

/** memfd_create(2): an anonymous file that lives only as long as its descriptors. */
export function memfdCreate(name: string, flags = MFD_CLOEXEC): number {
  return check("memfd_create", libc.memfd_create(cstr(name), flags), name);
}

/** dup(2): a new descriptor for the open file `fd`. */
export function dup(fd: number): number {
  return check("dup", libc.dup(fd));
}

/** dup2(2): makes `newFd` a copy of `oldFd` (closing what `newFd` was). */
export function dup2(oldFd: number, newFd: number): void {
  check("dup2", libc.dup2(oldFd, newFd));
}

/** rmdir(2). */
export function rmdir(path: string): void {
  check("rmdir", libc.rmdir(cstr(path)), path);
}

/** mknodat(2): `name` in the directory open at `dirfd`, of `mode` (type and permissions). */
export function mknodAt(
  dirfd: number,
  name: string,
  mode: number,
  major: number,
  minor: number,
): void {
  const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) |
    (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n);
  const path = cstr(name);
  syscall("mknodat", name, SYS.mknodat, BigInt(dirfd), addressOf(path), BigInt(mode), dev);
}

/** fchownat(2) of `name` in the directory open at `dirfd`, without following a symlink. */
export function chownAt(dirfd: number, name: string, uid: number, gid: number): void {
  const path = cstr(name);
  syscall(
    "fchownat",
    name,
    SYS.fchownat,
    BigInt(dirfd),
    addressOf(path),
    BigInt(uid),
    BigInt(gid),
    BigInt(AT_SYMLINK_NOFOLLOW),
  );
}

/** setdomainname(2) (the UTS namespace's NIS domain name). */
export function setdomainname(name: string): void {
  const bytes = encoder.encode(name);
  const buffer = offHeap(bytes.length + 1);
  buffer.set(bytes);
  syscall("setdomainname", name, SYS.setdomainname, addressOf(buffer), BigInt(bytes.length));
}

/** umask(2); returns the previous mask. */
export function umask(mask: number): number {
  return syscall("umask", String(mask), SYS.umask, BigInt(mask));
}

/** personality(2) (PER_LINUX is 0, PER_LINUX32 8). */
export function personality(persona: number): void {
  syscall("personality", String(persona), SYS.personality, BigInt(persona));
}

/** setsid(2): a new session, without a controlling terminal; returns its ID. */
export function setsid(): number {
  return syscall("setsid", undefined, SYS.setsid);
}

/** ioctl(2) with a pointer to `argument` (read and written by the kernel); returns its result. */
export function ioctlBuffer(
  fd: number,
  request: number,
  argument: Uint8Array<ArrayBuffer>,
): number {
  const buffer = offHeap(argument.length);
  buffer.set(argument);
  const result = syscall(
    "ioctl",
    String(request),
    SYS.ioctl,
    BigInt(fd),
    BigInt(request),
    addressOf(buffer),
  );
  argument.set(buffer);
  return result;
}

/** ioctl(2) with an integer argument; returns its result. */
export function ioctlValue(fd: number, request: number, value: number): number {
  return syscall("ioctl", String(request), SYS.ioctl, BigInt(fd), BigInt(request), BigInt(value));
}

/** open(2) flag: a terminal opened does not become the controlling one. */
export const O_NOCTTY = 0o400;

const CLOCK_MONOTONIC = 1;

/** clock_gettime(CLOCK_MONOTONIC), in nanoseconds: the same clock in every process. */
export function monotonicNanoseconds(): bigint {
  const now = new BigInt64Array(2);
  check("clock_gettime", libc.clock_gettime(CLOCK_MONOTONIC, new Uint8Array(now.buffer)));
  return now[0] * 1_000_000_000n + now[1];
}
