/**
 * PID namespace (pid_namespaces(7)): with `-p` the command is PID 1 of a new
 * PID namespace. With `-p` and `-m`, a fresh procfs is mounted on /proc so
 * that `ps` and `/proc/$$` show the namespace's own processes.
 * @module
 */

import { CLONE, MS } from "../ffi/constants.ts";
import { mount } from "../ffi/libc.ts";
import { call, type ChildStep, flagNames } from "./step.ts";

/** The clone flag for a new PID namespace. */
export const PID_NAMESPACE = CLONE.NEWPID;

/** The flags a fresh /proc is mounted with. */
const PROC_FLAGS = MS.NOSUID | MS.NODEV | MS.NOEXEC;

/** Child step: mounts a new proc instance (of the child's PID namespace) on `target`. */
export function mountProc(target: string): void {
  mount("proc", target, "proc", PROC_FLAGS);
}

/** The child step that mounts a fresh /proc on `target`. */
export function procStep(target: string): ChildStep {
  return {
    name: "proc",
    calls: [call("mount", "proc", target, "proc", flagNames(PROC_FLAGS, MS, "MS_"), null)],
    why: "so /proc shows only this PID namespace",
    run: () => mountProc(target),
  };
}
