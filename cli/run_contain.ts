/**
 * The run form's containment options (issue 16), parsed into the launch's
 * spec. Loaded only when one of them is on the command line.
 * @module
 */

import { LaunchError, type LaunchSpec } from "../lib/launch.ts";
import { formatLimit, parseRlimit } from "../lib/rlimits.ts";
import { UsageError } from "./getopt.ts";
import { integer } from "./run.ts";

/** The containment options (issue 16) into `spec`. */
export function containmentOption(
  spec: LaunchSpec,
  name: string,
  value: string,
  spelled: string,
): void {
  // NAME,NAME…: an empty name (`--cap-add ''`, `a,,b`) is refused, not skipped
  const list = (text: string) => {
    const words = text.split(",").map((word) => word.trim());
    if (words.some((word) => word === "")) {
      throw new UsageError(`${spelled}: an empty name in '${text}'`);
    }
    return words;
  };
  switch (name) {
    case "cap-drop":
    case "cap-add": {
      const caps = spec.capabilities ?? {};
      const key = name === "cap-drop" ? "drop" : "add";
      caps[key] = [...caps[key] ?? [], ...list(value)];
      spec.capabilities = caps;
      break;
    }
    case "uid":
      spec.uid = integer(value, spelled, 0, 0xfffffffe);
      break;
    case "gid":
      spec.gid = integer(value, spelled, 0, 0xfffffffe);
      break;
    case "groups":
      spec.groups = list(value).map((g) => integer(g, spelled, 0, 0xfffffffe));
      break;
    case "seccomp":
      if (value === "default") {
        spec.seccomp = "default";
      } else {
        spec.seccomp = readProfile(value);
      }
      break;
    case "mask":
      spec.maskedPaths = [...spec.maskedPaths ?? [], value];
      break;
    case "remount-ro":
      spec.readonlyPaths = [...spec.readonlyPaths ?? [], value];
      break;
    case "rlimit": {
      let limit;
      try {
        limit = parseRlimit(value);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      spec.rlimits = {
        ...spec.rlimits,
        [limit.name]: [formatLimit(limit.soft), formatLimit(limit.hard)],
      };
      break;
    }
    case "chdir":
      spec.chdir = value;
      break;
    case "new-session":
      spec.newSession = true;
      break;
    case "pty":
      spec.pty = true;
      break;
    case "contain":
      spec.contain = true;
      break;
  }
}

/** Runs the run form; returns the exit status. */

/** A profile file's text; one clear line when it is not a readable regular file (a FIFO would hang). */
function readProfile(path: string): string {
  const cannot = (why: string) =>
    new LaunchError("seccomp", `cannot read the profile ${JSON.stringify(path)}: ${why}`, "setup");
  let info;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw cannot("no such file");
    if (error instanceof Deno.errors.PermissionDenied) throw cannot("permission denied");
    throw cannot(path === "" ? "no file named" : "it cannot be looked at");
  }
  if (!info.isFile) throw cannot(info.isDirectory ? "a directory" : "not a regular file");
  if (info.size > PROFILE_MAX) throw cannot(`larger than ${PROFILE_MAX >> 20} MiB`);
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    throw cannot(
      error instanceof Deno.errors.PermissionDenied ? "permission denied" : "unreadable",
    );
  }
}

/** The largest profile read (podman's is ~20 KiB). */
const PROFILE_MAX = 16 << 20;
