/**
 * Containment: what a launch takes away from the command before it starts —
 * capabilities, a user inside (`uid`/`gid`/`groups`), a seccomp filter,
 * resource limits, masked and read-only paths, a session of its own — and
 * `contain`, which turns the safe defaults on at once. This module checks
 * the {@link ContainmentSpec} part of a launch and contributes the child
 * steps; `lib/plan.ts` pushes them at the moment the kernel allows:
 *
 * ```
 * proc ; (pivot_root) ; masks                       after /proc, inside the jail
 * ... cgroupns ; start
 * keyring ; rlimit ; seccomp (without no_new_privs: needs CAP_SYS_ADMIN, so before the drop)
 * keepcaps ; bounding ; user ; capset ; ambient      the user changes, the sets are installed
 * chdir ; setsid | pty
 * ... seccomp (with no_new_privs: the very last step before execve)
 * ```
 *
 * The filter is compiled (and copied where the kernel reads it) while
 * planning, in the tool; the child only makes the seccomp(2) call. The
 * default profile's program is cached per capability set.
 * @module
 */

import {
  boundingCapabilities,
  getCapabilities,
  getRlimit,
  joinSessionKeyring,
  type PreparedSeccompFilter,
  prepareSeccompFilter,
  setCapabilities,
  setRlimit,
} from "../ffi/contain.ts";
import { becomeUser, kernelRelease } from "../ffi/libc.ts";
import { chdir, setsid } from "../ffi/files.ts";
import {
  CAPABILITIES,
  CapabilityError,
  capabilityMask,
  capabilityNames,
  type CapabilitySets,
  capabilitySets,
  CONTAIN_CAPABILITIES,
} from "./capabilities.ts";
import {
  CONTAIN_MASKED_PATHS,
  CONTAIN_READONLY_PATHS,
  maskPathProblem,
  maskSteps,
} from "./masks.ts";
import {
  ambientStep,
  boundingStep,
  capsetCall,
  fullCapabilitySet,
  keepCapabilitiesStep,
  seccompStep,
} from "./credentials.ts";
import type { Reporter } from "./report.ts";
import { formatLimit, parseRlimit, type Rlimit, RlimitError } from "./rlimits.ts";
import {
  type CompiledFilter,
  compileProfile,
  parseProfileText,
  type SeccompProfile,
  SeccompProfileError,
} from "./seccomp.ts";
import { DEFAULT_PROFILE, denyTerminalInjection } from "./seccomp_default.ts";
import { call, type ChildStep } from "./step.ts";
import { LaunchError } from "./supervise.ts";
import type { ContainmentSpec, RlimitValue } from "./contain_spec.ts";

/** What the planner knows that containment depends on. */
export interface ContainmentContext {
  /** The caller's real UID. */
  callerUid: number;
  /** The UID the command has without `uid` (0 in a user namespace mapping root). */
  defaultUid: number;
  /** The GID likewise. */
  defaultGid: number;
  /** Whether a user namespace is made, and which inside IDs it maps (null: any). */
  mapped: { uid: (id: number) => boolean; gid: (id: number) => boolean } | null;
  /** Whether setgroups(2) is denied in the user namespace (rootless, one ID mapped). */
  setgroupsDenied: boolean;
  /** The jail's directory on the host, when one is used (pivot_root or chroot). */
  jail?: string;
  /** Whether the launch is an OCI container (its config.json's rlimits are set as given). */
  container: boolean;
  /** The `-v` printer. */
  report: Reporter;
}

/** The steps of containment, by where `lib/plan.ts` puts them. */
export interface Containment {
  /** Before pivot_root (the /dev/null the masks bind). */
  beforePivot: ChildStep[];
  /** Once /proc is mounted, inside the jail. */
  masks: ChildStep[];
  /** After the namespaces and cgroups: keyring, limits, (filter), user and capabilities, cwd, session. */
  credentials: ChildStep[];
  /** The very last step before execve: the filter with no_new_privs. */
  last: ChildStep[];
  /** The capability sets the command gets, when they change. */
  sets?: CapabilitySets;
  /** The compiler's warnings (unknown syscall names, rules overridden). */
  warnings: string[];
}

function usage(message: string): LaunchError {
  return new LaunchError("usage", message, "usage");
}

function id(value: unknown, what: string): number {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > 0xfffffffe
  ) {
    throw usage(`${what}: not a valid ID: ${String(value)}`);
  }
  return value;
}

/** The filter cache: the default profile's program by capability set. */
const defaultFilters = new Map<
  bigint,
  { compiled: CompiledFilter; prepared: PreparedSeccompFilter }
>();

/**
 * The default profile compiled for a command whose bounding set is
 * `bounding`, and copied where the kernel reads it: compiled once per set,
 * then taken from the cache (the same objects).
 */
export function defaultSeccompFilter(
  bounding: bigint,
): { compiled: CompiledFilter; prepared: PreparedSeccompFilter } {
  return seccompFilter("default", bounding, false);
}

/**
 * The filter of `profile` (an OCI exec: the container's own) for a command
 * whose bounding set is `bounding`, copied where the kernel reads it.
 */
export function profileSeccompFilter(
  profile: SeccompProfile,
  bounding: bigint,
): PreparedSeccompFilter {
  return seccompFilter(profile, bounding, false).prepared;
}

/** Compiles (or takes from the cache) the filter `spec.seccomp` asks for. */
function seccompFilter(
  seccomp: NonNullable<ContainmentSpec["seccomp"]>,
  bounding: bigint,
  contain: boolean,
): { compiled: CompiledFilter; prepared: PreparedSeccompFilter } {
  if (seccomp === "default") {
    const cached = defaultFilters.get(bounding);
    if (cached) return cached;
  }
  const options = { capabilities: bounding, kernelRelease: kernelRelease() };
  let compiled: CompiledFilter;
  try {
    if (seccomp === "default") {
      compiled = compileProfile(DEFAULT_PROFILE, options);
    } else {
      const profile = typeof seccomp === "string" ? parseProfileText(seccomp) : seccomp;
      compiled = compileProfile(contain ? denyTerminalInjection(profile) : profile, options);
    }
  } catch (error) {
    if (error instanceof SeccompProfileError) {
      throw new LaunchError("seccomp", `profile: ${error.message}`, "setup", { cause: error });
    }
    throw error;
  }
  const filter = { compiled, prepared: prepareSeccompFilter(compiled.program) };
  if (seccomp === "default") defaultFilters.set(bounding, filter);
  return filter;
}

/** The limits asked for, parsed as `--rlimit NAME=SOFT[:HARD]` would be. */
function rlimitsOf(rlimits: Record<string, RlimitValue>): Rlimit[] {
  return Object.entries(rlimits).map(([name, value]) => {
    const [soft, hard] = Array.isArray(value) ? value : [value, value];
    try {
      return parseRlimit(`${name}=${soft}:${hard}`);
    } catch (error) {
      if (error instanceof RlimitError) throw usage(error.message);
      throw error;
    }
  });
}

const CAP_SYS_RESOURCE = 1n << BigInt(CAPABILITIES.CAP_SYS_RESOURCE);

let hostBoundingSet: bigint | undefined;

/**
 * The tool's bounding set, read once (it can only shrink, and the tool
 * never drops from its own): what every request is limited to.
 */
function hostBounding(): bigint {
  return hostBoundingSet ??= boundingCapabilities();
}

/**
 * Checks the containment part of `spec` and builds its steps; throws a
 * {@link LaunchError} on bad input (exit 2) or what cannot be honoured (125).
 */
export function planContainment(spec: ContainmentSpec, context: ContainmentContext): Containment {
  const { report } = context;
  checkShapes(spec);
  const containment: Containment = {
    beforePivot: [],
    masks: [],
    credentials: [],
    last: [],
    warnings: [],
  };
  const uid = spec.uid === undefined ? context.defaultUid : id(spec.uid, "uid");
  const gid = spec.gid !== undefined
    ? id(spec.gid, "gid")
    : spec.uid !== undefined
    ? uid
    : context.defaultGid;
  const groups = spec.groups?.map((g) => id(g, "groups"));
  const changesUser = spec.uid !== undefined || spec.gid !== undefined || groups !== undefined;
  if (context.mapped) {
    if (!context.mapped.uid(uid)) {
      throw usage(
        `uid ${uid} is not mapped in the user namespace: map it with --map-users (rootless: from your /etc/subuid range)`,
      );
    }
    for (const g of [gid, ...groups ?? []]) {
      if (!context.mapped.gid(g)) {
        throw usage(`gid ${g} is not mapped in the user namespace: map it with --map-groups`);
      }
    }
  }
  if (groups && context.setgroupsDenied) {
    throw usage(
      "groups: setgroups is denied in a user namespace with one ID mapped; use --map-users and --map-groups",
    );
  }

  // Masked and read-only paths.
  const masked = [...spec.contain ? CONTAIN_MASKED_PATHS : [], ...spec.maskedPaths ?? []];
  const readonly = [...spec.contain ? CONTAIN_READONLY_PATHS : [], ...spec.readonlyPaths ?? []];
  for (const path of spec.maskedPaths ?? []) {
    const problem = maskPathProblem(path, "--mask");
    if (problem) throw usage(problem);
  }
  for (const path of spec.readonlyPaths ?? []) {
    const problem = maskPathProblem(path, "--remount-ro");
    if (problem) throw usage(problem);
  }
  if (masked.length + readonly.length > 0) {
    const optional = new Set(
      spec.skipMissingPaths
        ? [...masked, ...readonly]
        : [...CONTAIN_MASKED_PATHS, ...CONTAIN_READONLY_PATHS].filter((path) =>
          !(spec.maskedPaths ?? []).includes(path) && !(spec.readonlyPaths ?? []).includes(path)
        ),
    );
    // in a jail the host's /dev/null is out of reach once it is entered: taken before
    const steps = maskSteps({ masked, readonly, optional }, context.jail);
    containment.beforePivot = steps.beforePivot;
    containment.masks = steps.masks;
  }

  // Capabilities: the sets the command gets.
  let sets: CapabilitySets | undefined;
  const host = hostBounding();
  if (spec.capabilities || spec.contain || changesUser) {
    const request = {
      base: (spec.contain ? capabilityMask(CONTAIN_CAPABILITIES) : host) & host,
      drop: spec.capabilities?.drop ?? [],
      add: spec.capabilities?.add ?? [],
    };
    try {
      capabilityMask([...request.drop, ...request.add]);
    } catch (error) {
      if (error instanceof CapabilityError) throw usage(error.message);
      throw error;
    }
    sets = capabilitySets(request, uid);
    // what the host's bounding set lacks cannot be added back
    sets = {
      bounding: sets.bounding & host,
      permitted: sets.permitted & host,
      effective: sets.effective & host,
      inheritable: sets.inheritable & host,
      ambient: sets.ambient & host,
    };
    containment.sets = sets;
  }

  // Resource limits.
  const limits = rlimitsOf(spec.rlimits ?? {});
  const ownCaps = limits.length > 0 ? getCapabilities().effective : 0n;
  for (const limit of limits) {
    const current = getRlimit(limit.resource);
    if (limit.hard > current.hard && !(ownCaps & CAP_SYS_RESOURCE)) {
      throw new LaunchError(
        "rlimit",
        `${limit.name}: raising the hard limit from ${formatLimit(current.hard)} to ${
          formatLimit(limit.hard)
        } needs CAP_SYS_RESOURCE, which this process does not have`,
        "setup",
      );
    }
    if (
      limit.name === "nproc" && uid === 0 && context.callerUid === 0 && !context.mapped &&
      !context.container
    ) {
      throw usage(
        "--rlimit nproc does not bind uid 0 (root is exempt, and it counts the user's processes " +
          "system-wide): use --pids N for a limit of the command's own processes, or --uid",
      );
    }
  }

  // The seccomp filter.
  let filter: PreparedSeccompFilter | undefined;
  let early = false;
  if (spec.seccomp !== undefined) {
    const bounding = sets?.bounding ?? host;
    const built = seccompFilter(spec.seccomp, bounding, Boolean(spec.contain));
    containment.warnings.push(...built.compiled.warnings);
    filter = built.prepared;
    early = !(spec as { noNewPrivs?: boolean }).noNewPrivs;
  }

  const steps = containment.credentials;
  if (spec.contain) {
    if (report.verbose && !context.jail) {
      steps.push({
        name: "contain",
        calls: [],
        why: "say what --contain does not hide",
        run: () =>
          report.child(
            "--contain without a jail: the host's files are still there for a root inside to " +
              "read and write; add -c DIR (a pivot_root jail), or -U without sudo (root inside is then you)",
          ),
      });
    }
    let keyring: number | undefined;
    steps.push({
      name: "keyring",
      calls: [{ ...call("keyctl", "KEYCTL_JOIN_SESSION_KEYRING", null), returns: "<keyring>" }],
      why: "a session keyring of its own: the caller's keys are out of reach",
      run: () => {
        keyring = joinSessionKeyring();
      },
      learnt: (): Record<string, string> =>
        keyring === undefined ? {} : { "<keyring>": String(keyring) },
    });
  }
  if (limits.length > 0) {
    steps.push({
      name: "rlimit",
      calls: limits.map((l) =>
        call(
          "prlimit64",
          0,
          `RLIMIT_${l.name.toUpperCase()}`,
          `{rlim_cur=${rlimitText(l.soft)}, rlim_max=${rlimitText(l.hard)}}`,
          "<the old limits>",
        )
      ),
      why: "the command's resource limits, set while the capabilities are still there",
      run: () => {
        for (const limit of limits) setRlimit(limit.resource, limit);
      },
    });
  }
  if (filter && early) {
    steps.push(
      seccompStep(
        filter,
        "without no_new_privs the kernel takes a filter only with CAP_SYS_ADMIN: load it now",
      ),
    );
  }
  if (sets) {
    const finalSets = sets;
    if (uid !== 0 && changesUser) steps.push(keepCapabilitiesStep());
    // a new user namespace starts with a full bounding set: read it there
    steps.push(boundingStep(finalSets.bounding, context.mapped ? fullCapabilitySet() : host));
    if (changesUser) steps.push(userStep(uid, gid, groups));
    steps.push({
      name: "capset",
      calls: [capsetCall(finalSets)],
      why: "the sets that pass exec as asked",
      run: () => {
        setCapabilities(finalSets);
        if (!report.verbose) return;
        const names = capabilityNames(uid === 0 ? finalSets.bounding : finalSets.ambient);
        report.child(`the command gets capabilities: ${names.join(", ") || "none"}`);
      },
    });
    if (uid !== 0) steps.push(ambientStep(finalSets.ambient));
  } else if (changesUser) {
    steps.push(userStep(uid, gid, groups));
  }
  if (spec.chdir !== undefined) {
    const dir = String(spec.chdir);
    if (dir === "" || dir.includes("\0")) throw usage("chdir: not a directory name");
    steps.push({
      name: "chdir",
      calls: [call("chdir", dir)],
      why: "the command's working directory, as its own user",
      run: () => chdir(dir),
    });
  }
  if (spec.newSession && !spec.pty) {
    let session: number | undefined;
    steps.push({
      name: "setsid",
      calls: [{ ...call("setsid"), returns: "<session ID>" }],
      why: "a session of its own: no controlling terminal to push keystrokes into",
      run: () => {
        session = setsid();
      },
      learnt: (): Record<string, string> =>
        session === undefined ? {} : { "<session ID>": String(session) },
    });
  }
  if (filter && !early) {
    containment.last.push(
      seccompStep(filter, "with no_new_privs, the very last step before execve"),
    );
  }
  return containment;
}

/** Library input of the wrong type: one usage line rather than a TypeError later. */
function checkShapes(spec: ContainmentSpec): void {
  const strings = (value: unknown, what: string) => {
    if (value === undefined) return;
    if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
      throw usage(`${what}: must be an array of strings`);
    }
  };
  strings(spec.maskedPaths, "maskedPaths");
  strings(spec.readonlyPaths, "readonlyPaths");
  strings(spec.capabilities?.drop, "capabilities.drop");
  strings(spec.capabilities?.add, "capabilities.add");
  if (spec.groups !== undefined && !Array.isArray(spec.groups)) {
    throw usage("groups: must be an array of IDs");
  }
  if (
    spec.rlimits !== undefined &&
    (typeof spec.rlimits !== "object" || spec.rlimits === null || Array.isArray(spec.rlimits))
  ) {
    throw usage("rlimits: must be an object of limits by name, e.g. { nofile: 64 }");
  }
  if (spec.chdir !== undefined && typeof spec.chdir !== "string") {
    throw usage("chdir: must be a string");
  }
}

/** The step that becomes `uid`/`gid` with `groups` (none: cleared, or kept where setgroups is denied). */
function userStep(uid: number, gid: number, groups?: number[]): ChildStep {
  const calls = [
    call("setgroups", groups?.length ?? 0, `[${(groups ?? []).join(", ")}]`),
    call("setresgid", gid, gid, gid),
    call("setresuid", uid, uid, uid),
  ];
  let kept = false;
  return {
    name: "user",
    calls,
    why: "the command's own user and groups",
    run: () => {
      kept = becomeUser(uid, gid, groups);
    },
    // where setgroups is denied the groups are kept, as nsenter does
    made: () =>
      kept
        ? {
          calls: [
            { ...calls[0], returns: "-1 EPERM (Operation not permitted)" },
            ...calls.slice(1),
          ],
          failed: false,
        }
        : undefined,
  };
}

/** A limit as strace shows it: RLIM64_INFINITY, or the number. */
function rlimitText(value: bigint): string {
  return value === 0xffffffffffffffffn ? "RLIM64_INFINITY" : String(value);
}
