/**
 * User namespace (user_namespaces(7)): the child gets its own UID/GID space.
 * Like `unshare --map-root-user`, the caller's UID and GID map to 0 inside
 * (or to `--map-user`/`--map-group`), with `setgroups` denied first, as an
 * unprivileged caller must. The clone child writes its own maps: it is the
 * first process of the new namespace and holds every capability there.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { readFile, writeFile } from "../ffi/libc.ts";
import { type ChildStep, writeCall } from "./step.ts";

/** The clone flag for a new user namespace. */
export const USER_NAMESPACE = CLONE.NEWUSER;

/** One UID and one GID mapping, inside to outside. */
export interface IdMapping {
  /** UID inside the namespace. */
  uid: number;
  /** GID inside the namespace. */
  gid: number;
  /** The caller's UID, which `uid` maps to. */
  outsideUid: number;
  /** The caller's GID, which `gid` maps to. */
  outsideGid: number;
}

/** Describes a mapping the way `-v` prints it. */
export function describeMapping(map: IdMapping): string {
  return `uid ${map.uid} -> ${map.outsideUid}, gid ${map.gid} -> ${map.outsideGid}`;
}

/** Child step: writes `setgroups`, `uid_map` and `gid_map` of the child itself. */
export function writeIdMaps(map: IdMapping): void {
  writeFile("/proc/self/setgroups", "deny");
  writeFile("/proc/self/uid_map", `${map.uid} ${map.outsideUid} 1\n`);
  writeFile("/proc/self/gid_map", `${map.gid} ${map.outsideGid} 1\n`);
}

/** Why user namespaces cannot be created here, or null when nothing says so. */
export function userNamespacesDisabled(): string | null {
  try {
    const limit = readFile("/proc/sys/user/max_user_namespaces").trim();
    if (limit === "0") {
      return "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)";
    }
  } catch {
    // no such knob: the kernel decides at clone time
  }
  return null;
}

/** The child step that writes the child's own ID maps. */
export function idMapStep(map: IdMapping): ChildStep {
  return {
    name: "uid_map",
    calls: [
      writeCall("/proc/self/setgroups", "deny"),
      writeCall("/proc/self/uid_map", `${map.uid} ${map.outsideUid} 1\n`),
      writeCall("/proc/self/gid_map", `${map.gid} ${map.outsideGid} 1\n`),
    ],
    why: "map your IDs to the IDs inside (setgroups denied first, as a rootless map needs)",
    run: () => writeIdMaps(map),
  };
}

/** One range of an ID map: `count` IDs from `inside` map to `count` from `outside`. */
export interface IdRange {
  /** First ID inside the namespace. */
  inside: number;
  /** First ID outside (in the caller's namespace). */
  outside: number;
  /** How many. */
  count: number;
}

/** The ranges of a user namespace's maps, written by the parent while the child waits. */
export interface IdRanges {
  /** The UID map. */
  users: IdRange[];
  /** The GID map. */
  groups: IdRange[];
}

const ID_MAX = 0xffffffff;

/**
 * Parses `INNER:OUTER:COUNT` (newuidmap's order, as util-linux 2.39's
 * `--map-users`); util-linux 2.38's `OUTER,INNER,COUNT` is refused with a
 * hint, the two orders being easy to confuse. Throws an Error with the line
 * to show.
 */
export function parseIdRange(text: string, option: string): IdRange {
  if (/^\d+,\d+,\d+$/.test(text)) {
    const [outer, inner, count] = text.split(",");
    throw new Error(
      `${option}: '${text}' is util-linux 2.38's OUTER,INNER,COUNT; ` +
        `write INNER:OUTER:COUNT (here ${inner}:${outer}:${count})`,
    );
  }
  const match = text.match(/^(\d+):(\d+):(\d+)$/);
  if (!match) throw new Error(`${option}: expected INNER:OUTER:COUNT, got '${text}'`);
  const [inside, outside, count] = match.slice(1).map(Number);
  if (count < 1) throw new Error(`${option}: '${text}': the count must be at least 1`);
  if (inside + count - 1 > ID_MAX - 1 || outside + count - 1 > ID_MAX - 1) {
    throw new Error(`${option}: '${text}': IDs go up to ${ID_MAX - 1}`);
  }
  return { inside, outside, count };
}

/** Why `ranges` cannot be one map (overlaps, too many), or null. */
export function idRangesProblem(ranges: IdRange[], what: "uid" | "gid"): string | null {
  if (ranges.length > 340) return `a ${what} map holds at most 340 ranges`;
  const overlap = (a: number, b: number, n: number, m: number) => a < b + m && b < a + n;
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [a, b] = [ranges[i], ranges[j]];
      if (overlap(a.inside, b.inside, a.count, b.count)) {
        return `${what} map: ranges ${formatIdRange(a)} and ${formatIdRange(b)} overlap inside`;
      }
      if (overlap(a.outside, b.outside, a.count, b.count)) {
        return `${what} map: ranges ${formatIdRange(a)} and ${formatIdRange(b)} overlap outside`;
      }
    }
  }
  return null;
}

/** `INNER:OUTER:COUNT`. */
export function formatIdRange(range: IdRange): string {
  return `${range.inside}:${range.outside}:${range.count}`;
}

/** The text of a `uid_map`/`gid_map` for `ranges`, as the kernel reads it. */
export function idMapText(ranges: IdRange[]): string {
  return ranges.map((r) => `${r.inside} ${r.outside} ${r.count}\n`).join("");
}

/** One line of /etc/subuid or /etc/subgid: `NAME_OR_ID:START:COUNT`. */
export interface SubordinateRange {
  /** The user name or ID the range belongs to. */
  owner: string;
  /** First subordinate ID. */
  start: number;
  /** How many. */
  count: number;
}

/** Parses /etc/subuid or /etc/subgid text; malformed lines are skipped, as shadow's tools do. */
export function parseSubordinateIds(text: string): SubordinateRange[] {
  return text.split("\n").flatMap((line) => {
    const match = line.trim().match(/^([^:#\s]+):(\d+):(\d+)$/);
    return match ? [{ owner: match[1], start: Number(match[2]), count: Number(match[3]) }] : [];
  });
}

/** The ranges of `entries` that belong to the user `name` or `id`. */
export function subordinateRangesOf(
  entries: SubordinateRange[],
  name: string | undefined,
  id: number,
): SubordinateRange[] {
  return entries.filter((entry) => entry.owner === String(id) || entry.owner === name);
}

/**
 * `--map-auto`: the caller becomes 0 inside, and its first subordinate range
 * 1… (as rootless podman lays a user namespace out), for UIDs or GIDs.
 */
export function automaticRanges(
  own: number,
  subordinate: SubordinateRange[],
): IdRange[] | null {
  const first = subordinate[0];
  if (!first) return null;
  return [{ inside: 0, outside: own, count: 1 }, {
    inside: 1,
    outside: first.start,
    count: first.count,
  }];
}

/** Whether every outside ID of `ranges` is `own` or within `subordinate` (what newuidmap allows). */
export function rangesAllowed(
  ranges: IdRange[],
  own: number,
  subordinate: SubordinateRange[],
): IdRange | null {
  for (const range of ranges) {
    if (range.count === 1 && range.outside === own) continue;
    const covered = subordinate.some((sub) =>
      range.outside >= sub.start && range.outside + range.count <= sub.start + sub.count
    );
    if (!covered) return range;
  }
  return null;
}
