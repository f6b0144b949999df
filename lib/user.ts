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
import { call, type ChildStep } from "./step.ts";

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
      call("write", "/proc/self/setgroups", "deny"),
      call("write", "/proc/self/uid_map", `${map.uid} ${map.outsideUid} 1`),
      call("write", "/proc/self/gid_map", `${map.gid} ${map.outsideGid} 1`),
    ],
    why: "map your IDs to the IDs inside (setgroups denied first, as a rootless map needs)",
    run: () => writeIdMaps(map),
  };
}
