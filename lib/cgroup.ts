/**
 * Cgroup namespace (cgroup_namespaces(7)): the child's current cgroup becomes
 * the root of its view, so `/proc/self/cgroup` inside shows `0::/`.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";

/** The clone flag for a new cgroup namespace. */
export const CGROUP_NAMESPACE = CLONE.NEWCGROUP;
