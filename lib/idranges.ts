/**
 * ID ranges for a user namespace (`--map-users`, `--map-groups`,
 * `--map-auto`): checked against the caller's /etc/subuid and /etc/subgid
 * ranges, and written while the child waits, by the tool as root or by
 * newuidmap/newgidmap rootless. Loaded only by launches that ask for them.
 * @module
 */

import { accessible, writeFile, X_OK } from "../ffi/libc.ts";
import { type Caller, type LaunchSpec, requireInteger, usage } from "./plan.ts";
import { call, type ParentStep, writeCall } from "./step.ts";
import { LaunchError } from "./supervise.ts";
import {
  automaticRanges,
  idMapText,
  type IdRange,
  type IdRanges,
  idRangesProblem,
  parseSubordinateIds,
  rangesAllowed,
  type SubordinateRange,
  subordinateRangesOf,
} from "./user.ts";

/** The ID ranges `spec` asks for (explicit or from /etc/subuid), checked; null for none. */
export function idRangesOf(spec: LaunchSpec, caller: Caller): IdRanges | null {
  let ranges: IdRanges | null = null;
  if (spec.mapAuto) {
    if (spec.idRanges) throw usage("--map-auto chooses the ranges: drop --map-users/--map-groups");
    const entries = subordinate(caller);
    const users = automaticRanges(caller.uid, entries.uid);
    const groups = automaticRanges(caller.gid, entries.gid);
    const who = caller.name ?? String(caller.uid);
    if (!users) {
      throw new LaunchError("uid_map", `--map-auto: no range for ${who} in /etc/subuid`, "setup");
    }
    if (!groups) {
      throw new LaunchError("uid_map", `--map-auto: no range for ${who} in /etc/subgid`, "setup");
    }
    ranges = { users, groups };
  } else if (spec.idRanges) {
    ranges = { users: [...spec.idRanges.users], groups: [...spec.idRanges.groups] };
  }
  if (!ranges) return null;
  for (const [list, what] of [[ranges.users, "uid"], [ranges.groups, "gid"]] as const) {
    for (const range of list) {
      for (const value of [range.inside, range.outside, range.count]) {
        requireInteger(value, `${what} map`);
      }
    }
    const problem = idRangesProblem(list, what);
    if (problem) throw usage(problem);
  }
  // Whoever has no map of one kind gets the caller's own ID at 0, as the kernel wants both.
  if (ranges.users.length === 0) ranges.users = [{ inside: 0, outside: caller.uid, count: 1 }];
  if (ranges.groups.length === 0) ranges.groups = [{ inside: 0, outside: caller.gid, count: 1 }];
  if (caller.uid !== 0) {
    const entries = subordinate(caller);
    const who = caller.name ?? String(caller.uid);
    const kinds = [
      ["UIDs", ranges.users, caller.uid, entries.uid, "/etc/subuid"],
      ["GIDs", ranges.groups, caller.gid, entries.gid, "/etc/subgid"],
    ] as const;
    for (const [what, list, own, subordinates, file] of kinds) {
      const range = rangesAllowed(list, own, subordinates);
      if (range) {
        const last = range.outside + range.count - 1;
        throw new LaunchError(
          "uid_map",
          `${what} ${range.outside}-${last} are neither yours nor ${who}'s in ${file}`,
          "setup",
        );
      }
    }
  }
  return ranges;
}

/** The caller's subordinate ranges (from `caller`, or read now). */
function subordinate(caller: Caller): { uid: SubordinateRange[]; gid: SubordinateRange[] } {
  const files = caller.subordinate ?? { uid: "", gid: "" };
  return {
    uid: subordinateRangesOf(parseSubordinateIds(files.uid), caller.name, caller.uid),
    gid: subordinateRangesOf(parseSubordinateIds(files.gid), caller.name, caller.gid),
  };
}

/** Whether inside ID 0 is mapped in both maps. */
export function mapsRoot(ranges: IdRanges): boolean {
  const zero = (list: IdRange[]) => list.some((range) => range.inside === 0);
  return zero(ranges.users) && zero(ranges.groups);
}

/** The paths of the setuid helpers rootless ranges need. */
const NEWUIDMAP = "/usr/bin/newuidmap", NEWGIDMAP = "/usr/bin/newgidmap";

/**
 * The parent's step at the child's `uid_map` sync point: writes the ranges
 * into the child's maps, as root directly, rootless through newuidmap and
 * newgidmap (started through the engine).
 */
export function idRangesStep(ranges: IdRanges, caller: Caller): ParentStep {
  const triples = (list: IdRange[]) =>
    list.flatMap((r) => [r.inside, r.outside, r.count].map(String));
  if (caller.uid === 0) {
    return {
      name: "uid_map",
      calls: [
        writeCall("/proc/<child-pid>/uid_map", idMapText(ranges.users)),
        writeCall("/proc/<child-pid>/gid_map", idMapText(ranges.groups)),
      ],
      why: "root may map any ranges into the child's user namespace",
      run: ({ childPid }) => {
        writeFile(`/proc/${childPid}/uid_map`, idMapText(ranges.users));
        writeFile(`/proc/${childPid}/gid_map`, idMapText(ranges.groups));
      },
    };
  }
  return {
    name: "uid_map",
    calls: [[NEWUIDMAP, ranges.users], [NEWGIDMAP, ranges.groups]].map(([helper, list]) =>
      call(
        "execve",
        helper as string,
        JSON.stringify([helper, "<child-pid>", ...triples(list as IdRange[])]).replaceAll(
          ",",
          ", ",
        ),
        "<environment>",
      )
    ),
    why: "the setuid helpers map your ranges from /etc/subuid and /etc/subgid",
    run: async ({ childPid }) => {
      for (
        const [helper, list] of [[NEWUIDMAP, ranges.users], [NEWGIDMAP, ranges.groups]] as const
      ) {
        if (!accessible(helper, X_OK)) {
          throw new LaunchError(
            "uid_map",
            `${helper} is needed for ID ranges without root (Debian and Ubuntu: apt install uidmap)`,
            "setup",
          );
        }
        const { runHelper } = await import("./helper.ts");
        const ran = await runHelper([helper, String(childPid), ...triples(list)]);
        if (ran.code !== 0) {
          const said = ran.stderr.split("\n").pop() || `exited with ${ran.code}`;
          throw new LaunchError(
            "uid_map",
            `${helper.slice(helper.lastIndexOf("/") + 1)}: ${said}`,
            "setup",
          );
        }
      }
    },
  };
}
