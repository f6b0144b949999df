/**
 * Linux capabilities as data: the table of names and numbers
 * (`linux/capability.h`), parsing `--cap-drop`/`--cap-add` names, the five
 * sets a command should end up with, and formatting a set as
 * `/proc/self/status` shows it. Pure: applying the sets is `ffi/contain.ts`'s job.
 *
 * How the sets survive `execve` (capabilities(7)): for a program without file
 * capabilities, a root process gets `permitted = inheritable | bounding` and
 * `effective = permitted`; any other user gets `permitted = effective =
 * ambient`. So for root the bounding set carries the request; for a non-root
 * user the capabilities must be in the permitted, inheritable and ambient sets
 * before exec (kept across the uid change with PR_SET_KEEPCAPS, then raised).
 * @module
 */

/** Capability numbers by name (`linux/capability.h`, up to Linux 5.9's CAP_CHECKPOINT_RESTORE). */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

/** The highest capability number in {@link CAPABILITIES}. */
export const CAP_LAST_CAP = 40;

/** Every capability in the table, as a mask. */
export const ALL_CAPABILITIES: bigint = (1n << BigInt(CAP_LAST_CAP + 1)) - 1n;

/**
 * docker's default capability set less CAP_MKNOD (docker keeps MKNOD only
 * because its devices cgroup denies the nodes): what `--contain` keeps.
 */
export const CONTAIN_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** A capability name that is not in the table. */
export class CapabilityError extends Error {
  /** Builds the error for the name as given. */
  constructor(name: string) {
    super(
      `unknown capability '${name}' (valid: ALL, ${
        Object.keys(CAPABILITIES).map((n) => n.slice(4)).join(", ")
      }, with or without CAP_, any case)`,
    );
    this.name = "CapabilityError";
  }
}

/**
 * The number of a capability named `CAP_NET_ADMIN` or `net_admin` (any
 * case); throws a {@link CapabilityError} listing the valid names otherwise.
 */
export function capabilityNumber(name: string): number {
  const upper = name.trim().toUpperCase();
  const key = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!Object.hasOwn(CAPABILITIES, key)) throw new CapabilityError(name);
  return CAPABILITIES[key];
}

/** The mask of a list of names; `ALL` (any case) stands for every capability. */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const name of names) {
    mask |= name.trim().toUpperCase() === "ALL"
      ? ALL_CAPABILITIES
      : 1n << BigInt(capabilityNumber(name));
  }
  return mask;
}

/** The five capability sets of a process, as masks (bit N = capability N). */
export interface CapabilitySets {
  /** What the process and its descendants can ever gain (PR_CAPBSET_*). */
  bounding: bigint;
  /** What the process may make effective. */
  permitted: bigint;
  /** What the kernel checks. */
  effective: bigint;
  /** What survives exec into a program with matching file capabilities. */
  inheritable: bigint;
  /** What a non-root process keeps across exec of an ordinary program. */
  ambient: bigint;
}

/** What the caller asked for: a starting set, then drops, then adds (docker's order). */
export interface CapabilityRequest {
  /** The set to start from; every capability when omitted (today's behaviour as root). */
  base?: bigint;
  /** `--cap-drop` names (or `ALL`). */
  drop?: readonly string[];
  /** `--cap-add` names (or `ALL`); an add wins over a drop, as in docker. */
  add?: readonly string[];
}

/** The capabilities a request keeps, as a mask. */
export function requestedCapabilities(request: CapabilityRequest): bigint {
  const base = request.base ?? ALL_CAPABILITIES;
  return (base & ~capabilityMask(request.drop ?? [])) | capabilityMask(request.add ?? []);
}

/**
 * The sets to install before exec so that the command, run as `uid`, gets
 * what was asked for. The bounding set is what the request keeps. Root's
 * permitted and effective sets are the same (exec gives root its bounding
 * set); inheritable and ambient stay empty. Another user holds only what
 * `--cap-add` names (within the bounding set), as bubblewrap does, and those
 * must also be inheritable and ambient, or exec would clear them.
 */
export function capabilitySets(request: CapabilityRequest, uid: number): CapabilitySets {
  const bounding = requestedCapabilities(request);
  if (uid === 0) {
    return { bounding, permitted: bounding, effective: bounding, inheritable: 0n, ambient: 0n };
  }
  const granted = capabilityMask(request.add ?? []) & bounding;
  return {
    bounding,
    permitted: granted,
    effective: granted,
    inheritable: granted,
    ambient: granted,
  };
}

/** A mask as `/proc/self/status` prints it: 16 hex digits (`000001fffeffffff`). */
export function formatCapabilityMask(mask: bigint): string {
  return mask.toString(16).padStart(16, "0");
}

/** The names of the capabilities in a mask, in number order (bits past the table as `cap_N`). */
export function capabilityNames(mask: bigint): string[] {
  const byNumber = Object.entries(CAPABILITIES).sort((a, b) => a[1] - b[1]);
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (!(mask & (1n << BigInt(bit)))) continue;
    names.push(byNumber[bit]?.[0] ?? `cap_${bit}`);
  }
  return names;
}

/** A mask parsed from `/proc/self/status`'s hex (`CapEff:\t000001fffeffffff`). */
export function parseCapabilityMask(hex: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw new Error(`not a capability mask: '${hex}'`);
  return BigInt(`0x${hex}`);
}
