/**
 * Time namespace (time_namespaces(7)): the command sees CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME shifted by the given offsets (so `/proc/uptime` moves by the
 * boot-time offset).
 *
 * A time namespace only applies to the *children* of the task that unshared
 * it, and a task sharing its memory with others cannot enter one. So the
 * clone child unshares it, writes the offsets, and enters it by exec
 * (Linux 5.17 and later move a task into its `time_for_children` at exec).
 * The parent is never touched, so `launch()` may be called any number of
 * times, each launch with its own offsets.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { unshare, writeFile } from "../ffi/libc.ts";
import { call, type ChildStep, writeCall } from "./step.ts";

/** The unshare flag for a new time namespace (not usable with clone(2)). */
export const TIME_NAMESPACE = CLONE.NEWTIME;

/**
 * Clock offsets of a new time namespace, in seconds.
 *
 * @example
 * ```ts
 * await launch({ command: ["cat", "/proc/uptime"], time: { boottime: 86400, monotonic: 0 } });
 * ```
 */
export interface TimeOffsets {
  /** Added to CLOCK_MONOTONIC. */
  monotonic: number;
  /** Added to CLOCK_BOOTTIME (and so to /proc/uptime). */
  boottime: number;
}

/** Child step: creates the time namespace the command will exec into. */
export function prepareTimeNamespace(offsets: TimeOffsets): void {
  unshare(TIME_NAMESPACE);
  writeFile(
    "/proc/self/timens_offsets",
    `monotonic ${offsets.monotonic} 0\nboottime ${offsets.boottime} 0\n`,
  );
}

/** The child step that creates the time namespace the command execs into. */
export function timeNamespaceStep(offsets: TimeOffsets): ChildStep {
  return {
    name: "timens",
    calls: [
      call("unshare", "CLONE_NEWTIME"),
      writeCall(
        "/proc/self/timens_offsets",
        `monotonic ${offsets.monotonic} 0\nboottime ${offsets.boottime} 0\n`,
      ),
    ],
    why: "a time namespace applies to the children of who unshares it, and to itself at exec",
    run: () => prepareTimeNamespace(offsets),
  };
}
