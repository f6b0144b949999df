/**
 * `/proc/PID/stat`, read once for what the tool needs of a process: its
 * state and its start time (which, with the PID, names a process for good).
 * @module
 */

import { readFile } from "../ffi/libc.ts";

/** What `/proc/PID/stat` says of a process that exists. */
export interface ProcessStat {
  /** Field 3: `R`, `S`, `Z` (a zombie), `X` (dead)... */
  state: string;
  /** Field 22: clock ticks after boot when it started. */
  startTime: number;
}

/** The state and start time of process `pid`, or null when it does not exist. */
export function processStat(pid: number): ProcessStat | null {
  let stat: string;
  try {
    stat = readFile(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: the rest follows the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]);
  return Number.isSafeInteger(startTime) ? { state: fields[0], startTime } : null;
}
