/**
 * File system errors in the tool's own words: Deno's error text
 * (`Permission denied (os error 13): symlink 'usr/sbin' -> '/j/sbin'`) turned
 * into one line that names what could not be done to which path, the errno,
 * and what to do (`cannot create /j/sbin: permission denied (EACCES); run with
 * sudo or choose a directory you own`). A pure codec, table-tested.
 * @module
 */

import { nameBehindTemporary } from "./copy.ts";

/** What a failed operation could not do, by Deno's name for it, and which of its paths it was. */
const ACTIONS: Record<string, { verb: string; path: 0 | 1 }> = {
  mkdir: { verb: "create", path: 0 },
  symlink: { verb: "create", path: 1 }, // symlink 'target' -> 'link': the link is created
  link: { verb: "create", path: 1 },
  rename: { verb: "create", path: 1 },
  copy: { verb: "create", path: 1 },
  open: { verb: "open", path: 0 },
  chmod: { verb: "change the mode of", path: 0 },
  chown: { verb: "change the owner of", path: 0 },
  utime: { verb: "set the times of", path: 0 },
  remove: { verb: "remove", path: 0 },
  stat: { verb: "look up", path: 0 },
  lstat: { verb: "look up", path: 0 },
  realpath: { verb: "look up", path: 0 },
  readlink: { verb: "read the link", path: 0 },
  readdir: { verb: "list", path: 0 },
};

/** What to do about an errno, where the tool can say. */
const HINTS: Record<string, string> = {
  EACCES: "run with sudo or choose a directory you own",
  EPERM: "run with sudo or choose a directory you own",
  EROFS: "choose a directory on a writable file system",
  ENOSPC: "free some space or choose another file system",
  EDQUOT: "free some space or choose another file system",
};

/** Verbs that only read: lacking permission there, only sudo helps. */
const READING = new Set(["open", "look up", "read the link", "list"]);

function hintFor(code: string, verb: string): string {
  const hint = READING.has(verb) && (code === "EACCES" || code === "EPERM")
    ? "run with sudo"
    : HINTS[code];
  return hint ? `; ${hint}` : "";
}

/**
 * The one-line description of `error` if it is a file system error (it has
 * an errno `code`), else null. `subject` names the file being worked on when
 * Deno's text names none (a failed write).
 */
export function describeFileError(error: unknown, subject?: string): string | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)) return null;
  const match = error.message.match(/^(.*?) \(os error \d+\)(?:: (\w+) '(.*?)'(?: -> '(.*)')?)?$/s);
  const what = (match?.[1] ?? error.message).replace(/^\w/, (letter) => letter.toLowerCase());
  const action = match?.[2] !== undefined ? ACTIONS[match[2]] : undefined;
  const paths = [match?.[3], match?.[4]];
  const path = action ? paths[action.path] : undefined;
  if (action && path !== undefined) {
    const shown = nameBehindTemporary(path);
    // a temporary file is made to be renamed over the real one: creating it is creating that
    const verb = shown !== path ? "create" : action.verb;
    return `cannot ${verb} ${shown}: ${what} (${code})${hintFor(code, verb)}`;
  }
  return `${subject ? `${subject}: ` : ""}${what} (${code})${hintFor(code, "write")}`;
}
