/**
 * The new mount API (open_tree, move_mount, fsopen and fsmount, mount_setattr),
 * openat2, pivot_root and umount2, and what mount points are marked and locked
 * with (extended attributes, flock, their inode and device): what mounts, jails
 * and masks need, and a plain launch does not (loaded only by them).
 * @module
 */

import { Errno } from "./errors.ts";
import {
  addressOf,
  AT_EMPTY_PATH,
  AT_FDCWD,
  check,
  cstr,
  encoder,
  errno,
  lastError,
  O_CLOEXEC,
  offHeap,
  raw as libc,
  syscall,
} from "./libc.ts";
import { SYS } from "./constants.ts";

/** umount2(2). */
export function umount2(target: string, flags: number): void {
  check("umount2", libc.umount2(cstr(target), flags), target);
}

const STATX_INO = 0x100, STATX_INO_OFFSET = 32;

/** The inode number of the open file `fd` (statx(2), whose layout is the same on every arch). */
export function inodeOf(fd: number): number {
  const buffer = new Uint8Array(256);
  check("statx", libc.statx(fd, cstr(""), AT_EMPTY_PATH, STATX_INO, buffer));
  return Number(new DataView(buffer.buffer).getBigUint64(STATX_INO_OFFSET, true));
}

/** pivot_root(2): `newRoot` becomes `/`, the old root moves to `putOld`. */
export function pivotRoot(newRoot: string, putOld: string): void {
  // Buffers passed as arguments, not through addressOf: see StringArena in ffi/clone.ts.
  const result = libc.syscall_bb(SYS.pivot_root, cstr(newRoot), cstr(putOld), 0n);
  if (result === -1n) throw lastError("pivot_root", newRoot);
}

/** flock(2) operations. */
export const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4;

/** flock(2); false when `LOCK_NB` was given and another holder conflicts (EWOULDBLOCK). */
export function flock(fd: number, operation: number, what?: string): boolean {
  if (libc.flock(fd, operation) === 0) return true;
  if (errno() === Errno.EAGAIN && operation & LOCK_NB) return false;
  throw lastError("flock", what);
}

/** open_tree(2) flags: a detached copy of the mount, with its submounts (AT_RECURSIVE). */
export const OPEN_TREE_CLONE = 1, AT_RECURSIVE = 0x8000;

/** move_mount(2) flags: the source and the target are the fds themselves. */
export const MOVE_MOUNT_F_EMPTY_PATH = 4, MOVE_MOUNT_T_EMPTY_PATH = 0x40;

/** mount_setattr(2)/fsmount(2) attributes (MOUNT_ATTR_*). */
export const MOUNT_ATTR = { RDONLY: 1n, NOSUID: 2n, NODEV: 4n, NOEXEC: 8n } as const;

/** open_tree(2) of `path` under `dirfd` (`""`: the file open at `dirfd` itself). */
export function openTree(dirfd: number, path: string, flags: number, what = path): number {
  const name = cstr(path);
  if (path === "") flags |= AT_EMPTY_PATH;
  return syscall(
    "open_tree",
    what,
    SYS.open_tree,
    BigInt(dirfd),
    addressOf(name),
    BigInt(flags | O_CLOEXEC),
  );
}

/** move_mount(2) of the detached (or attached) mount `from` onto the file open at `to`. */
export function moveMount(from: number, to: number, what: string): void {
  const empty = cstr("");
  syscall(
    "move_mount",
    what,
    SYS.move_mount,
    BigInt(from),
    addressOf(empty),
    BigInt(to),
    addressOf(empty),
    BigInt(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
  );
}

/**
 * mount_setattr(2) on the mount open at `fd` and, with `recursive`, every
 * mount below it: sets the {@link MOUNT_ATTR} bits in `set`, leaves the rest
 * (atime mode included) as they are.
 */
export function setMountAttributes(
  fd: number,
  set: bigint,
  recursive: boolean,
  what: string,
): void {
  changeMountAttributes(fd, set, 0n, recursive, what);
}

const FSCONFIG_SET_STRING = 1n, FSCONFIG_CMD_CREATE = 6n, FS_CLOEXEC = 1n;

/**
 * A new, still detached mount of filesystem `type` (fsopen, fsconfig,
 * fsmount) with string `options` and {@link MOUNT_ATTR} bits `attributes`;
 * returns its fd, for {@link moveMount}.
 */
export function newMount(
  type: string,
  options: Record<string, string>,
  attributes: bigint,
): number {
  const name = cstr(type);
  const context = syscall("fsopen", type, SYS.fsopen, addressOf(name), FS_CLOEXEC);
  try {
    for (const [key, value] of Object.entries(options)) {
      const [k, v] = [cstr(key), cstr(value)];
      syscall(
        "fsconfig",
        `${type} ${key}=${value}`,
        SYS.fsconfig,
        BigInt(context),
        FSCONFIG_SET_STRING,
        addressOf(k),
        addressOf(v),
        0n,
      );
    }
    syscall("fsconfig", type, SYS.fsconfig, BigInt(context), FSCONFIG_CMD_CREATE, 0n, 0n, 0n);
    return syscall("fsmount", type, SYS.fsmount, BigInt(context), FS_CLOEXEC, attributes);
  } finally {
    libc.close(context);
  }
}

/**
 * move_mount(2) of the detached mount `fd` (from {@link openTree} with
 * OPEN_TREE_CLONE) onto the path `target` (even once the path it was taken
 * from is out of reach, after pivot_root).
 */
export function attachMount(fd: number, target: string): void {
  const empty = cstr(""), name = cstr(target);
  syscall(
    "move_mount",
    target,
    SYS.move_mount,
    BigInt(fd),
    addressOf(empty),
    BigInt(AT_FDCWD),
    addressOf(name),
    BigInt(MOVE_MOUNT_F_EMPTY_PATH),
  );
}

/** setxattr(2) of `name` to `value` on `path` (followed: `/proc/self/fd/N` names an O_PATH fd's file). */
export function setXattr(path: string, name: string, value: string): void {
  const bytes = encoder.encode(value) as Uint8Array<ArrayBuffer>;
  check("setxattr", libc.setxattr(cstr(path), cstr(name), bytes, BigInt(bytes.length), 0), path);
}

/** Whether the open file `fd` has the extended attribute `name` (false where none are supported). */
export function hasXattr(fd: number, name: string): boolean {
  if (Number(libc.fgetxattr(fd, cstr(name), null, 0n)) >= 0) return true;
  if (errno() === Errno.ENODATA || errno() === Errno.EOPNOTSUPP) return false;
  throw lastError("fgetxattr", name);
}

/** openat2(2) resolve flags. */
export const RESOLVE = { NO_MAGICLINKS: 2n, NO_SYMLINKS: 4n, IN_ROOT: 16n } as const;

/**
 * openat2(2) of `path` under `dirfd` with `resolve` ({@link RESOLVE} bits),
 * close-on-exec; e.g. RESOLVE.NO_SYMLINKS fails with ELOOP on any symlink
 * on the way, not only the last.
 */
export function openResolved(dirfd: number, path: string, flags: number, resolve: bigint): number {
  const name = cstr(path);
  const how = offHeap(24);
  const view = new DataView(how.buffer);
  view.setBigUint64(0, BigInt(flags | O_CLOEXEC), true);
  view.setBigUint64(16, resolve, true);
  return syscall("openat2", path, SYS.openat2, BigInt(dirfd), addressOf(name), addressOf(how), 24n);
}

const STATX_DEV_MAJOR_OFFSET = 136, STATX_DEV_MINOR_OFFSET = 140;

/** The device (`major:minor`, as /proc/self/mountinfo spells it) of the file system holding `path`. */
export function deviceOf(path: string): string {
  const buffer = new Uint8Array(256);
  check("statx", libc.statx(AT_FDCWD, cstr(path), 0, 0, buffer), path);
  const view = new DataView(buffer.buffer);
  return `${view.getUint32(STATX_DEV_MAJOR_OFFSET, true)}:${
    view.getUint32(STATX_DEV_MINOR_OFFSET, true)
  }`;
}

/** mount_setattr(2) attributes for the atime mode (MOUNT_ATTR_NOATIME …, within MOUNT_ATTR__ATIME). */
export const MOUNT_ATTR_ATIME = {
  MASK: 0x70n,
  RELATIME: 0n,
  NOATIME: 0x10n,
  STRICTATIME: 0x20n,
  NODIRATIME: 0x80n,
} as const;

/**
 * mount_setattr(2) on the mount open at `fd` (and below it with
 * `recursive`): sets the bits in `set`, clears those in `clear` (the atime
 * mode is changed by clearing {@link MOUNT_ATTR_ATIME}.MASK).
 */
export function changeMountAttributes(
  fd: number,
  set: bigint,
  clear: bigint,
  recursive: boolean,
  what: string,
): void {
  const attr = offHeap(32);
  const view = new DataView(attr.buffer);
  view.setBigUint64(0, set, true);
  view.setBigUint64(8, clear, true);
  const empty = cstr("");
  const flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  syscall(
    "mount_setattr",
    what,
    SYS.mount_setattr,
    BigInt(fd),
    addressOf(empty),
    BigInt(flags),
    addressOf(attr),
    32n,
  );
}
