/**
 * Cgroup namespace (cgroup_namespaces(7)): the child's current cgroup becomes
 * the root of its view, so `/proc/self/cgroup` inside shows `0::/`. The child
 * makes it with unshare as its last step, after it has joined the command's
 * cgroups (`LaunchSpec.cgroups`), so that those are what it sees as its root.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { accessible, F_OK, unshare, writeFile } from "../ffi/libc.ts";
import { call, type ChildStep } from "./step.ts";

/** The unshare flag for a new cgroup namespace. */
export const CGROUP_NAMESPACE = CLONE.NEWCGROUP;

/** The child step that makes the cgroup namespace. */
export function cgroupNamespaceStep(): ChildStep {
  return {
    name: "cgroupns",
    calls: [call("unshare", "CLONE_NEWCGROUP")],
    why: "the command's cgroup becomes the root of its view: 0::/",
    run: () => unshare(CGROUP_NAMESPACE),
  };
}

/** Why the command cannot join the cgroup at `dir`, or null when it can. */
export function cgroupProblem(dir: string): string | null {
  if (!dir.startsWith("/sys/fs/cgroup/") || dir.split("/").includes("..")) {
    return `${dir}: a cgroup is a directory under /sys/fs/cgroup`;
  }
  if (!accessible(`${dir}/cgroup.procs`, F_OK)) return `${dir}: not a cgroup (no cgroup.procs)`;
  return null;
}

/** Child step: moves the calling process into each cgroup of `dirs`. */
export function joinCgroups(dirs: string[]): void {
  for (const dir of dirs) writeFile(`${dir}/cgroup.procs`, "0");
}
