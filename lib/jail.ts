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
 * unmounted), so nothing of the host's tree is left to escape to.
 * @module
 */

import { MNT_DETACH, MS } from "../ffi/constants.ts";
import { accessible, chdir, chroot, F_OK, mkdir, mount, pivotRoot, umount2 } from "../ffi/libc.ts";
import { ChildSetupError } from "../ffi/clone.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
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

/** Creates `path` (the jail's /proc, `dir`/proc as the user knows it) when it is missing. */
function ensureProc(path: string, dir: string): void {
  if (accessible(path, F_OK)) return;
  try {
    mkdir(path, 0o555);
  } catch (error) {
    if (!(error instanceof SyscallError) || error.errno === Errno.EEXIST) throw error;
    throw new ChildSetupError(
      "jail",
      `${dir}/proc is missing and cannot be created (${error.code}: ${error.description}); ` +
        `create it (mkdir ${dir}/proc, as the directory's owner) or build the jail with ` +
        "'invoke_ns jail'",
    );
  }
}

/** Child step: chroot into `dir`, chdir to `/`, create `/proc` when missing. */
export function enterChrootJail(dir: string, report: Reporter): void {
  report.child("creating chroot jail");
  chroot(dir);
  report.child("changing directory into chroot jail");
  chdir("/");
  ensureProc("/proc", dir);
}

/** Child step: bind `dir` onto itself so it is a mount point, ready for {@link pivotIntoJail}. */
export function prepareJailMount(dir: string): void {
  mount(dir, dir, null, MS.BIND | MS.REC);
  ensureProc(`${dir}/proc`, dir);
}

/** Child step (in a private mount namespace): make `dir` the root, detach the old one. */
export function pivotIntoJail(dir: string, report: Reporter): void {
  report.child("creating chroot jail");
  chdir(dir);
  pivotRoot(".", "."); // quietly: -v says what the seed's chroot said
  umount2(".", MNT_DETACH);
  report.child("changing directory into chroot jail");
  chdir("/");
}

/** The child step that binds the jail onto itself (a mount point for pivot_root). */
export function jailMountStep(dir: string): ChildStep {
  return {
    name: "jail",
    calls: [call("mount", dir, dir, null, "MS_BIND|MS_REC", null)],
    why: "pivot_root needs the new root to be a mount point",
    run: () => prepareJailMount(dir),
  };
}

/** The child step that makes the jail the root by pivot_root, the old root detached. */
export function pivotStep(dir: string, report: Reporter): ChildStep {
  return {
    name: "pivot_root",
    calls: [
      call("chdir", dir),
      call("pivot_root", ".", "."),
      call("umount2", ".", "MNT_DETACH"),
      call("chdir", "/"),
    ],
    why: "the jail becomes /, and the host's tree is detached: nothing left to escape to",
    run: () => pivotIntoJail(dir, report),
  };
}

/** The child step that jails with a plain chroot, as the seed did. */
export function chrootStep(dir: string, report: Reporter): ChildStep {
  return {
    name: "chroot",
    calls: [call("chroot", dir), call("chdir", "/")],
    why: "the seed's jail: / is the jail for this process (root can still break out)",
    run: () => enterChrootJail(dir, report),
  };
}
