/**
 * The chroot jail of `-c DIR`, as the seed's invoke_ns6: the child changes
 * its root to DIR, changes directory to the new `/`, and creates `/proc`
 * there when it is missing (so that `-p -m` can mount a fresh procfs on it).
 * @module
 */

import { accessible, chdir, chroot, F_OK, mkdir } from "../ffi/libc.ts";
import type { Reporter } from "./report.ts";

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

/** Child step: chroot into `dir`, chdir to `/`, create `/proc` when missing. */
export function enterChrootJail(dir: string, report: Reporter): void {
  report.child("creating chroot jail");
  chroot(dir);
  report.child("changing directory into chroot jail");
  chdir("/");
  if (!accessible("/proc", F_OK)) mkdir("/proc", 0o555);
}
