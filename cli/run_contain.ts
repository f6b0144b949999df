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
  const list = (text: string) => text.split(",").map((word) => word.trim()).filter(Boolean);
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
        try {
          spec.seccomp = Deno.readTextFileSync(value);
        } catch (error) {
          throw new LaunchError(
            "seccomp",
            `${value}: ${
              error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message
            }`,
            "setup",
          );
        }
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
