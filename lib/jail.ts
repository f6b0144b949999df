/**
 * The jail of `-c DIR`.
 *
 * Without a mount namespace (or with `--chroot`), as the seed's invoke_ns6:
 * the child chroots into DIR, changes directory to the new `/`, and creates
 * `/proc` there when it is missing. A root process can escape a plain chroot
 * (chroot into a subdirectory, then `cd ..` past the old root).
 *
 * With `-m`, the jail uses pivot_root(2) instead, as container runtimes do:
 * DIR is bind-mounted onto itself (pivot_root needs a mount point), becomes
 * the root of the mount namespace, and the old root is detached (lazily
 * unmounted), so no path inside leads back to the host's tree.
 *
 * That confines names, not powers. Root without a user namespace keeps every
 * capability and can get back to the host: without a PID namespace by
 * mounting a procfs (the host's processes, and their `/proc/PID/root`), with
 * one by mknod-ing and mounting the host's disk. Only with a user namespace
 * is root inside unprivileged outside (README, "What a jail confines").
 * @module
 */

import { MNT_DETACH } from "../ffi/constants.ts";
import {
  accessible,
  AT_FDCWD,
  close,
  F_OK,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  openAt,
} from "../ffi/libc.ts";
import { chdir, chroot, fchdir, mkdir, mkdirAt } from "../ffi/files.ts";
import {
  AT_RECURSIVE,
  moveMount,
  OPEN_TREE_CLONE,
  openResolved,
  openTree,
  pivotRoot,
  RESOLVE,
  umount2,
} from "../ffi/mountapi.ts";
import { ChildSetupError } from "../ffi/clone.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { type MountPoints, openInTree } from "./mount.ts";
import { mountProc } from "./pid.ts";
import type { Reporter } from "./report.ts";
import { call, type ChildStep } from "./step.ts";

/** Why `dir` cannot be a jail, or null when it can. Checked before anything is created. */
export function jailProblem(dir: string): string | null {
  if (dir.length === 0) return "jail directory is empty";
  if (dir.includes("\0")) return "jail directory contains a NUL byte";
  try {
    if (!Deno.statSync(dir).isDirectory) return `${dir}: not a directory`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return `${dir}: no such directory`;
    if (error instanceof Deno.errors.PermissionDenied) return `${dir}: permission denied`;
    return `${dir}: ${error instanceof Error ? error.message : String(error)}`;
  }
  return null;
}

/** The error for a jail whose /proc is missing and cannot be made. */
function procMissing(dir: string, error: SyscallError): ChildSetupError {
  return new ChildSetupError(
    "jail",
    `${dir}/proc is missing and cannot be created (${error.code}: ${error.description}); ` +
      `create it (mkdir ${dir}/proc, as the directory's owner) or build the jail with ` +
      "'invoke_ns jail'",
    "setup",
    error,
  );
}

/** Whether the jail `dir` has no entry `proc` now (its step will then make one). */
function lacksProc(dir: string): boolean {
  try {
    Deno.lstatSync(`${dir}/proc`);
    return false;
  } catch {
    return true;
  }
}

/** The openat2 that opens the jail, refusing symlinks on its way. */
function openJailCall(dir: string) {
  return {
    ...call(
      "openat2",
      "AT_FDCWD",
      dir,
      "{flags=O_PATH|O_DIRECTORY|O_CLOEXEC, resolve=RESOLVE_NO_SYMLINKS}",
      24,
    ),
    returns: `<fd of ${dir}>`,
  };
}

/** Creates `path` (the jail's /proc, `dir`/proc as the user knows it) when it is missing. */
function ensureProc(path: string, dir: string): void {
  if (accessible(path, F_OK)) return;
  try {
    mkdir(path, 0o555);
  } catch (error) {
    if (!(error instanceof SyscallError) || error.errno === Errno.EEXIST) throw error;
    throw procMissing(dir, error);
  }
}

/**
 * Opens the jail directory `dir` (a real path, checked by the parent) as an
 * O_PATH fd, refusing any symlink on its way: one there now means the path
 * was changed since the check.
 */
function openJail(dir: string): number {
  try {
    return openResolved(AT_FDCWD, dir, O_PATH | O_DIRECTORY, RESOLVE.NO_SYMLINKS);
  } catch (error) {
    if (!(error instanceof SyscallError) || error.errno !== Errno.ELOOP) throw error;
    throw new ChildSetupError(
      "jail",
      `${dir}: a symlink appeared on its path since it was checked`,
    );
  }
}

/** The descriptors a jail step opened, as it tells them (for `--trace`'s placeholders). */
export interface Seen {
  /** The directory, opened (O_PATH). */
  at?: number;
  /** The detached copy of its mount (open_tree). */
  root?: number;
}

/** The placeholders `seen` fills in: `<fd of DIR>`, `<clone of DIR>`. */
function seenValues(dir: string, seen: Seen): Record<string, string> {
  const values: Record<string, string> = {};
  if (seen.at !== undefined) values[`<fd of ${dir}>`] = String(seen.at);
  if (seen.root !== undefined) values[`<clone of ${dir}>`] = String(seen.root);
  return values;
}

/** Child step: chroot into `dir`, chdir to `/`, create `/proc` when missing. */
export function enterChrootJail(dir: string, report: Reporter, seen: Seen = {}): void {
  report.child("creating chroot jail");
  const at = seen.at = openJail(dir);
  try {
    fchdir(at);
  } finally {
    close(at);
  }
  chroot(".");
  report.child("changing directory into chroot jail");
  chdir("/");
  ensureProc("/proc", dir);
}

/**
 * Child step: binds `dir` (and every mount below it) onto itself so that it is
 * a mount point, ready for {@link pivotIntoJail}, and creates its `proc` when
 * no entry of that name exists. Returns an fd of the new mount's root: every
 * later step in the jail starts from it, never from the path. `seen` is
 * told the descriptors (for `--trace`).
 */
export function prepareJailMount(dir: string, seen: Seen = {}): number {
  const at = seen.at = openJail(dir);
  try {
    const root = seen.root = openTree(at, "", OPEN_TREE_CLONE | AT_RECURSIVE, dir);
    moveMount(root, at, dir);
    try {
      close(openAt(root, "proc", O_PATH | O_NOFOLLOW));
    } catch (error) {
      if (!(error instanceof SyscallError) || error.errno !== Errno.ENOENT) throw error;
      try {
        mkdirAt(root, "proc", 0o555);
      } catch (error) {
        if (!(error instanceof SyscallError)) throw error;
        if (error.errno !== Errno.EEXIST) throw procMissing(dir, error);
      }
    }
    return root;
  } finally {
    close(at);
  }
}

/**
 * Child step: mounts the child's procfs on the jail's /proc, resolved inside
 * the jail (a `proc` symlink is followed from the jail's root, never out).
 */
export function mountJailProc(
  root: number,
  dir: string,
  points: MountPoints,
  seen: Seen = {},
): void {
  const { fd } = openInTree(root, "/proc", false, points, dir);
  seen.at = fd;
  try {
    mountProc(`/proc/self/fd/${fd}`);
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    throw new SyscallError("mount", error.errno, error.description, `${dir}/proc`);
  } finally {
    close(fd);
  }
}

/** Child step (in a private mount namespace): make the jail open at `root` the root, detach the old one. */
export function pivotIntoJail(root: number, report: Reporter): void {
  report.child("creating chroot jail");
  fchdir(root);
  pivotRoot(".", "."); // quietly: -v says what the seed's chroot said
  umount2(".", MNT_DETACH);
  report.child("changing directory into chroot jail");
  chdir("/");
}

/** The child step that binds the jail onto itself (a mount point for pivot_root); sets `state.root`. */
export function jailMountStep(dir: string, state: { root?: number }): ChildStep {
  const clone = `<clone of ${dir}>`;
  const seen: Seen = {};
  return {
    name: "jail",
    calls: [
      openJailCall(dir),
      {
        ...call(
          "open_tree",
          `<fd of ${dir}>`,
          "",
          "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_EMPTY_PATH|AT_RECURSIVE",
        ),
        returns: clone,
      },
      call(
        "move_mount",
        clone,
        "",
        `<fd of ${dir}>`,
        "",
        "MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH",
      ),
      ...lacksProc(dir) ? [call("mkdirat", clone, "proc", "0555")] : [],
    ],
    why: "pivot_root needs the new root to be a mount point",
    run: () => {
      state.root = prepareJailMount(dir, seen);
    },
    learnt: () => seenValues(dir, seen),
  };
}

/** The child step that mounts procfs on the jail's own /proc, resolved inside it. */
export function jailProcStep(
  dir: string,
  points: MountPoints,
  state: { root?: number },
): ChildStep {
  const seen: Seen = {};
  return {
    name: "proc",
    calls: [
      call(
        "mount",
        "proc",
        `/proc/self/fd/<fd of ${dir}/proc>`,
        "proc",
        "MS_NOSUID|MS_NODEV|MS_NOEXEC",
        null,
      ),
    ],
    why: "so /proc shows only this PID namespace (mounted before the pivot: none is visible after)",
    run: () => mountJailProc(state.root!, dir, points, seen),
    learnt: () => seenValues(`${dir}/proc`, seen),
  };
}

/** The child step that makes the jail the root by pivot_root, the old root detached. */
export function pivotStep(dir: string, report: Reporter, state: { root?: number }): ChildStep {
  return {
    name: "pivot_root",
    calls: [
      call("fchdir", `<clone of ${dir}>`),
      call("pivot_root", ".", "."),
      call("umount2", ".", "MNT_DETACH"),
      call("chdir", "/"),
    ],
    why: "the jail becomes /, and the host's tree is detached: nothing left to escape to",
    run: () => pivotIntoJail(state.root!, report),
  };
}

/** The child step that jails with a plain chroot, as the seed did. */
export function chrootStep(dir: string, report: Reporter): ChildStep {
  const seen: Seen = {};
  return {
    name: "chroot",
    calls: [
      openJailCall(dir),
      call("fchdir", `<fd of ${dir}>`),
      call("chroot", "."),
      call("chdir", "/"),
      ...lacksProc(dir) ? [call("mkdir", "/proc", "0555")] : [],
    ],
    why: "the seed's jail: / is the jail for this process (root can still break out)",
    run: () => enterChrootJail(dir, report, seen),
    learnt: () => seenValues(dir, seen),
  };
}
