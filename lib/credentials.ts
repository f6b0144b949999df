/**
 * The child steps that change who a process is and what it may do, shared
 * by a launch's containment (lib/contain.ts) and an OCI exec (lib/enter.ts),
 * in the order both use them: the filter early or last, keepcaps, the
 * bounding set, (the user), the capability sets, the ambient set.
 * @module
 */

import {
  dropBoundingCapabilities,
  loadSeccompFilter,
  type PreparedSeccompFilter,
  setAmbientCapabilities,
  setKeepCapabilities,
} from "../ffi/contain.ts";
import { call, type ChildStep } from "./step.ts";

/** Loads `filter` (`why`: early, before the capabilities go, or last before execve). */
export function seccompStep(filter: PreparedSeccompFilter, why: string): ChildStep {
  return {
    name: "seccomp",
    calls: [
      call("seccomp", "SECCOMP_SET_MODE_FILTER", 0, `{${filter.filter.length / 8} instructions}`),
    ],
    why,
    run: () => loadSeccompFilter(filter),
  };
}

/** PR_SET_KEEPCAPS: the permitted set survives a change from root to another user. */
export function keepCapabilitiesStep(): ChildStep {
  return {
    name: "keepcaps",
    calls: [call("prctl", "PR_SET_KEEPCAPS", 1)],
    why: "keep the permitted set across the change of user",
    run: () => setKeepCapabilities(true),
  };
}

/**
 * Drops every capability not in `keep` from the bounding set (needs
 * CAP_SETPCAP: before the user changes); `current`: the set to drop from,
 * read from the kernel when omitted (a new user namespace starts full).
 */
export function boundingStep(keep: bigint, current?: bigint): ChildStep {
  return {
    name: "bounding",
    calls: [call("prctl", "PR_CAPBSET_DROP", "<each capability not kept>")],
    why:
      "what the command and its children can ever gain (needs CAP_SETPCAP: before the user changes)",
    run: () => dropBoundingCapabilities(keep, current),
  };
}

/** Raises `mask` in the ambient set: how another user keeps capabilities across exec. */
export function ambientStep(mask: bigint): ChildStep {
  return {
    name: "ambient",
    calls: [call("prctl", "PR_CAP_AMBIENT", "PR_CAP_AMBIENT_RAISE", "<each added capability>")],
    why: "another user keeps capabilities across exec only through the ambient set",
    run: () => setAmbientCapabilities(mask),
  };
}
