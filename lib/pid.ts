/**
 * PID namespace (pid_namespaces(7)): with `-p` the command is PID 1 of a new
 * PID namespace. With `-p` and `-m`, a fresh procfs is mounted on /proc so
 * that `ps` and `/proc/$$` show the namespace's own processes.
 * @module
 */

import { CLONE, MS } from "../ffi/constants.ts";
import { mount } from "../ffi/libc.ts";

/** The clone flag for a new PID namespace. */
export const PID_NAMESPACE = CLONE.NEWPID;

/** Child step: mounts a new proc instance (of the child's PID namespace) on `target`. */
export function mountProc(target: string): void {
  mount("proc", target, "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC);
}
