/**
 * The containment fields of a launch, and the two questions the planner asks
 * of them before it loads the containment code (lib/contain.ts, with the
 * seccomp compiler and its syscall tables): does the launch ask for any of
 * it, and what does `contain` turn on. Kept apart so that a launch without
 * containment loads none of that.
 * @module
 */

import type { SeccompProfile } from "./seccomp.ts";

/** A resource limit's value: a number, `"unlimited"`, or `[soft, hard]`. */
export type RlimitValue = number | string | [number | string, number | string];

/**
 * The containment fields of a {@link LaunchSpec} (see each field). All are
 * opt-in: without them a launch keeps today's behaviour (root keeps every
 * capability, no filter).
 *
 * @example Docker-like defaults, plus one capability back
 * ```ts
 * const spec = { command: ["sh"], contain: true, capabilities: { add: ["NET_ADMIN"] } };
 * ```
 *
 * @example A user inside with one capability, a filter, limits
 * ```ts
 * const spec = {
 *   command: ["./server"],
 *   uid: 1000,
 *   capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
 *   seccomp: "default",
 *   noNewPrivs: true,
 *   rlimits: { nofile: 64, core: 0, cpu: [10, 20] },
 * };
 * ```
 */
export interface ContainmentSpec {
  /**
   * Capabilities to drop (names as `CAP_NET_ADMIN` or `net_admin`, or
   * `ALL`) and then add, applied to all five sets so that the command's
   * `/proc/self/status` shows what was asked for (for another `uid`, only
   * what `add` names, through the ambient set).
   */
  capabilities?: { drop?: string[]; add?: string[] };
  /** Run the command as this user (setresuid, after the mounts). */
  uid?: number;
  /** …and this group (default: the same number as `uid` when that is given). */
  gid?: number;
  /** Exactly these supplementary groups (default: none). */
  groups?: number[];
  /**
   * A seccomp filter: `"default"` (invoke_ns's own profile, see
   * `lib/seccomp_default.ts`), a profile in the OCI / docker JSON format as
   * an object, or as its JSON text (e.g. podman's `seccomp.json`; integers
   * past 2^53 read exactly). Loaded last with `noNewPrivs`; without it,
   * before the capabilities are dropped (it needs CAP_SYS_ADMIN then).
   */
  seccomp?: "default" | SeccompProfile | string;
  /** Resource limits by prlimit(1)'s names: `{ nofile: 64, core: [0, "unlimited"] }`. */
  rlimits?: Record<string, RlimitValue>;
  /** Paths that become `/dev/null` (files) or an empty read-only tmpfs (directories). */
  maskedPaths?: string[];
  /** Paths bound onto themselves and remounted read-only. */
  readonlyPaths?: string[];
  /**
   * Skip masked and read-only paths that do not exist, as runc does with
   * config.json's (default: each one given must exist).
   */
  skipMissingPaths?: boolean;
  /**
   * docker's defaults at once: its capability set less MKNOD, the default
   * seccomp profile (and the TIOCSTI/TIOCLINUX rule in any profile), runc's
   * masked and read-only /proc and /sys paths, `noNewPrivs`, a session
   * keyring of its own, a fresh /proc (implies `pid` and `mount`), a
   * pseudo-terminal when stdin is one (else a new session). A jail is by
   * pivot_root only (`chrootOnly` is refused). The other fields adjust it.
   */
  contain?: boolean;
  /** The command's working directory (default: `/` in a jail, the caller's otherwise). */
  chdir?: string;
  /** A new session (setsid): no controlling terminal, so without CAP_SYS_ADMIN no TIOCSTI into the caller's. */
  newSession?: boolean;
  /** A pseudo-terminal of its own, relayed to the caller's (see `lib/pty.ts`). */
  pty?: boolean;
}

/**
 * `spec` with what `contain` implies filled in (the caller's own choices
 * win): a fresh /proc, no_new_privs, the default filter, a pty when stdin
 * is a terminal, a new session otherwise. Idempotent.
 */
export function withContainDefaults<
  T extends ContainmentSpec & {
    pid?: boolean;
    mount?: boolean;
    noNewPrivs?: boolean;
  },
>(spec: T, stdinIsTerminal: () => boolean): T {
  if (!spec.contain) return spec;
  const pty = spec.pty ?? (spec.newSession ? false : stdinIsTerminal());
  return {
    ...spec,
    pid: true,
    mount: true,
    noNewPrivs: true,
    seccomp: spec.seccomp ?? "default",
    pty,
    newSession: spec.newSession ?? !pty,
  };
}

/** Whether `spec` asks for anything of this module (rootless, it implies a user namespace). */
export function wantsContainment(spec: ContainmentSpec): boolean {
  return Boolean(
    spec.contain || spec.capabilities || spec.uid !== undefined || spec.gid !== undefined ||
      spec.groups || spec.seccomp !== undefined || spec.maskedPaths?.length ||
      spec.readonlyPaths?.length,
  );
}

/** Whether `spec` sets any containment field at all (then lib/contain.ts is loaded). */
export function containmentAsked(spec: ContainmentSpec): boolean {
  return wantsContainment(spec) || spec.rlimits !== undefined || spec.chdir !== undefined ||
    spec.newSession !== undefined;
}
