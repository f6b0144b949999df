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
  type ThreadCapabilities,
} from "../ffi/contain.ts";
import { readFile } from "../ffi/libc.ts";
import { CAP_LAST_CAP, capabilityNames } from "./capabilities.ts";
import { type Call, call, type ChildStep } from "./step.ts";

/** Loads `filter` (`why`: early, before the capabilities go, or last before execve). */
export function seccompStep(filter: PreparedSeccompFilter, why: string): ChildStep {
  return {
    name: "seccomp",
    calls: [
      call(
        "seccomp",
        "SECCOMP_SET_MODE_FILTER",
        0,
        `{len=${filter.filter.length / 8}, filter=<the program>}`,
      ),
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
 * The capability set a new user namespace starts with (the kernel's
 * CAP_FULL_SET): every capability up to /proc/sys/kernel/cap_last_cap.
 */
export function fullCapabilitySet(): bigint {
  let last = CAP_LAST_CAP;
  try {
    last = Number(readFile("/proc/sys/kernel/cap_last_cap").trim());
  } catch {
    // no /proc: the capabilities this tool knows
  }
  return (1n << BigInt(last + 1)) - 1n;
}

/**
 * Drops every capability not in `keep` from the bounding set (needs
 * CAP_SETPCAP: before the user changes); `current`: the set to drop from
 * (the tool's, or a new user namespace's full set), read from the kernel
 * when omitted (a user namespace joined by setns).
 */
export function boundingStep(keep: bigint, current?: bigint): ChildStep {
  return {
    name: "bounding",
    calls: current === undefined
      ? [
        call("prctl", "PR_CAPBSET_READ", "<each capability up to the first EINVAL>"),
        call("prctl", "PR_CAPBSET_DROP", "<each capability read and not kept>"),
      ]
      : capabilityNames(current & ~keep).map((name) => call("prctl", "PR_CAPBSET_DROP", name)),
    why:
      "what the command and its children can ever gain (needs CAP_SETPCAP: before the user changes)",
    run: () => dropBoundingCapabilities(keep, current),
  };
}

/** capset(2) of `sets` as strace shows it (version 3, the calling thread). */
export function capsetCall(sets: ThreadCapabilities): Call {
  const set = (mask: bigint) => capabilityNames(mask).map((name) => `1<<${name}`).join("|") || "0";
  return call(
    "capset",
    "{version=_LINUX_CAPABILITY_VERSION_3, pid=0}",
    `{effective=${set(sets.effective)}, permitted=${set(sets.permitted)}, inheritable=${
      set(sets.inheritable)
    }}`,
  );
}

/** Makes the ambient set exactly `mask`: how another user keeps capabilities across exec. */
export function ambientStep(mask: bigint): ChildStep {
  return {
    name: "ambient",
    calls: [
      call("prctl", "PR_CAP_AMBIENT", "PR_CAP_AMBIENT_CLEAR_ALL", 0),
      ...capabilityNames(mask).map((name) =>
        call("prctl", "PR_CAP_AMBIENT", "PR_CAP_AMBIENT_RAISE", name)
      ),
    ],
    why: "another user keeps capabilities across exec only through the ambient set",
    run: () => setAmbientCapabilities(mask),
  };
}
