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

/** Child step: mounts a new proc instance on /proc of the current root. */
export function mountProc(): void {
  mount("proc", "/proc", "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC);
}
