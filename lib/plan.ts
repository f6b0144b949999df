/**
 * The plan of a launch: a {@link LaunchSpec} checked and turned into data —
 * which namespaces the clone creates, the parent's steps before it, the
 * child's steps in order, what is exec'd, and the clean-up — before anything
 * is created. Each namespace module contributes its own steps; the runner
 * (`lib/runner.ts`) executes any plan, and `enter` builds the same kind of
 * plan with joined namespaces (`lib/enter.ts`).
 *
 * Planning reads the host (the caller's IDs, the jail and bind sources,
 * which mount points exist) but changes nothing, so a plan can be printed
 * and unit-tested without privilege.
 * @module
 */

import { unsupportedPlatform } from "../ffi/arch.ts";
import { CLONE } from "../ffi/constants.ts";
import {
  becomeUser,
  clearAmbientCapabilities,
  close,
  getgid,
  getpid,
  getuid,
  PR_SET_NO_NEW_PRIVS,
  prctl,
  writeFile,
} from "../ffi/libc.ts";
import {
  fileStatus,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  O_WRONLY,
  openAt,
  S_IFIFO,
  writeText,
} from "../ffi/libc.ts";
import { cgroupNamespaceStep, cgroupProblem, joinCgroups } from "./cgroupns.ts";
import { commandEnvironment, DEFAULT_PATH, environmentProblem } from "./env.ts";
import type { NamespaceEntry, NamespaceType } from "./inspect.ts";
import type { QueueDemo } from "./ipc.ts";
import { queueNameProblem } from "./ipcns.ts";
import type { MountRecord, MountRequest } from "./mount.ts";
import { privateMountsStep } from "./mountns.ts";
import type { PreparedNetwork, VethSpec } from "./net.ts";
import { procStep } from "./pid.ts";
import { Reporter } from "./report.ts";
import { call, type ChildStep, type GrandchildStep, type ParentStep, writeCall } from "./step.ts";
import { LaunchError } from "./supervise.ts";
import { timeNamespaceStep, type TimeOffsets } from "./time.ts";
import { type IdMapping, idMapStep, type IdRange, type IdRanges } from "./user.ts";
import type { Hook, Hooks } from "./hooks.ts";
import type { StageOptions } from "./stage.ts";
import { hostnameProblem, hostnameStep } from "./uts.ts";
import type { LaunchLimits, LimitRun } from "./usage.ts";
// Containment (issue 16): its own fields and checks; its code (lib/contain.ts,
// with the seccomp compiler) is loaded only when a launch asks for it.
import type { Containment } from "./contain.ts";
import {
  containmentAsked,
  type ContainmentSpec,
  wantsContainment,
  withContainDefaults,
} from "./contain_spec.ts";
import type { PtySteps } from "./pty.ts";
import type { ContainerSetup, ContainerState } from "./oci/setup.ts";

/**
 * What to run, and in which new namespaces.
 *
 * @example
 * ```ts
 * const spec: LaunchSpec = { command: ["bash"], pid: true, mount: true, jail: "/var/local/jail" };
 * ```
 */
export interface LaunchSpec extends ContainmentSpec {
  /** The command and its arguments; empty: set up, then exit 0 (as the seed). */
  command: string[];
  /** New PID namespace: the command is PID 1 (with `mount`, a fresh /proc). */
  pid?: boolean;
  /** New mount namespace, propagation made private. */
  mount?: boolean;
  /** New UTS namespace with this hostname. */
  hostname?: string;
  /** New network namespace (loopback only, down). */
  net?: boolean;
  /** New IPC namespace. */
  ipc?: boolean;
  /**
   * Jail the command in this directory (`/proc` created inside when missing):
   * with `mount`, by pivot_root (the old root detached); without, by chroot.
   */
  jail?: string;
  /** Use a plain chroot for `jail` even with `mount` (the seed's behaviour). */
  chrootOnly?: boolean;
  /** Extra mounts (bind, read-only bind, tmpfs, a minimal /dev); need `mount`. */
  mounts?: MountRequest[];
  /** Set PR_SET_NO_NEW_PRIVS: setuid binaries and file capabilities grant nothing. */
  noNewPrivs?: boolean;
  /**
   * A veth link to the host (implies `net`; needs root): `eth0` inside with
   * `guest`'s address, the host end named `name` with `host`'s, a default route.
   */
  veth?: VethSpec;
  /**
   * New user namespace mapping the caller to root (or to `uid`/`gid`).
   * Implied when the caller is not root and asks for any namespace.
   */
  user?: boolean | { uid?: number; gid?: number };
  /**
   * Whole ID maps for a new user namespace (implies `user`): ranges written
   * by the parent while the child waits, as root directly and rootless
   * through newuidmap/newgidmap (which allow your own ID and your ranges in
   * /etc/subuid and /etc/subgid). The command runs as root inside when 0 is
   * mapped.
   */
  idRanges?: IdRanges;
  /**
   * The ID maps from /etc/subuid and /etc/subgid: you become 0 inside and
   * your first subordinate range 1 and up (as rootless podman).
   */
  mapAuto?: boolean;
  /**
   * New cgroup namespace. It is made by the child's last step (unshare), so
   * that the command's cgroups (`cgroups`) are joined first and become its
   * root, `0::/`, as docker shows.
   */
  cgroup?: boolean;
  /**
   * Cgroups the command joins (their directories, under /sys/fs/cgroup, v1
   * or v2): the child joins them just before it makes its cgroup namespace,
   * and in the init stage as its very last step before exec, so that nothing
   * of the tool (its memory, its threads) is ever charged to them.
   */
  cgroups?: string[];
  /**
   * New time namespace, with CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets in
   * seconds (Linux 5.17 or later). The child makes it and enters it at exec;
   * the caller's clocks are never touched, so every launch gets its own.
   */
  time?: boolean | Partial<TimeOffsets>;
  /** Programs run at given points of the launch (as OCI hooks); see {@link Hooks}. */
  hooks?: Hooks;
  /** Merged into the state given to hooks on stdin (`{"pid": …}` is always there). */
  hookState?: Record<string, unknown>;
  /**
   * The child waits, before its last steps and the command, until someone
   * opens this FIFO for reading (as OCI `start` does runc's `exec.fifo`).
   */
  startFifo?: string;
  /** Variables added to the clean default environment. */
  env?: Record<string, string>;
  /** Pass the caller's whole environment instead of the clean default. */
  keepEnv?: boolean;
  /**
   * Resource limits (cgroups v1 or v2, found at run time) and time limits:
   * the launch gets cgroups of its own under the caller's, which the child
   * joins before exec; every process in them is killed and they are removed
   * when the command ends, and the result carries its `usage`. Root, or a
   * delegated v2 subtree the user can write. See {@link LaunchLimits}. A
   * detached launch keeps its cgroups while it runs; the next CLI run with
   * limits removes them once they are empty.
   */
  limits?: LaunchLimits;

  // ---- OCI containers (issue 18) ----
  /**
   * An OCI container's setup beyond a launch's (`lib/oci/setup.ts`, filled
   * in from a config.json by `lib/oci/config.ts`): its own mounts instead
   * of the automatic /proc, device nodes, namespaces joined by path, the
   * exact environment, user, directory, terminal. Needs `jail` (the root
   * file system) and `mount`.
   */
  container?: ContainerSetup;
}

/**
 * CLI-level extras: verbose messages, the queue demo, signal forwarding.
 *
 * @example
 * ```ts
 * await launch({ command: ["bash"], pid: true }, { verbose: true, forwardSignals: true });
 * ```
 */
export interface LaunchOptions {
  /** Print the seed's `-v` messages. */
  verbose?: boolean;
  /** Run the seed's message-queue demo under this queue name (`-i`). */
  queueDemo?: string;
  /** Ignore SIGINT/SIGQUIT and forward SIGTERM/SIGHUP to the child while waiting. */
  forwardSignals?: boolean;
  /** After a forwarded signal, SIGKILL the child if it is still alive after this long. */
  stopTimeoutMs?: number;
  /** Called with the child's PID once the command has started. */
  onStart?: (pid: number) => void;
  /** Kill the command when the tool dies (PR_SET_PDEATHSIG; default true). */
  dieWithParent?: boolean;
  /**
   * Print a JSON line `{"event":"start","pid":…,"pidInside":…,"namespaces":{…}}`
   * on stdout from the child itself, just before the command starts, so it
   * comes before anything the command prints (the CLI's `--json`).
   */
  announceStart?: boolean;
  /** Told what does not stop the launch but should be heard (a seccomp profile's unknown names). */
  onWarning?: (message: string) => void;
  /**
   * Print each step on stderr as it runs, with each call's result and time
   * (the CLI's `--trace`; lib/explain.ts).
   */
  trace?: boolean;
  /**
   * Create nothing: `launch()` resolves with the plan as data, every system
   * call in order (the CLI's `--explain`; see {@link launch}).
   */
  explain?: boolean;
}

/** The facts about the caller that a plan depends on (a seam for tests). */
export interface Caller {
  /** The caller's real UID. */
  uid: number;
  /** The caller's real GID. */
  gid: number;
  /** /etc/subuid and /etc/subgid as text, when read (for ID ranges). */
  subordinate?: { uid: string; gid: string };
  /** The caller's user name, when known (subuid lines may name it). */
  name?: string;
}

/** The real caller; the subordinate ID files are read only when `ranges` is set. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const currentCaller = (function currentCaller(ranges = false): Caller {
  const caller: Caller = { uid: getuid(), gid: getgid() };
  if (!ranges) return caller;
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  caller.subordinate = { uid: read("/etc/subuid"), gid: read("/etc/subgid") };
  caller.name = read("/etc/passwd").split("\n").map((line) => line.split(":"))
    .find((fields) => fields[2] === String(caller.uid))?.[0];
  return caller;
}).bind(null);

/** What is exec'd once setup is done. */
export interface ExecPlan {
  /** The command's name or path, as given (argv[0]). */
  command: string;
  /** Full argument vector. */
  argv: string[];
  /** The environment, as `KEY=VALUE` strings. */
  env: string[];
  /** Searched for a command without a slash when `env` has no PATH. */
  fallbackPath?: string;
}

/** A namespace joined by file rather than created. */
export interface JoinedNamespace {
  /** Its type. */
  type: NamespaceType;
  /** The file it is joined by, e.g. `/proc/4242/ns/uts`. */
  path: string;
}

/** A launch as data: see the module docs. */
export interface Plan {
  /** The namespaces the clone creates, by type, in clone-flag order. */
  create: NamespaceType[];
  /** The namespaces joined by file, in joining order. */
  join: JoinedNamespace[];
  /** The CLONE_NEW* flags passed to clone. */
  cloneFlags: number;
  /** The parent's steps before clone, in order (each may carry its undo). */
  parent: ParentStep[];
  /** The child's steps, in order. */
  child: ChildStep[];
  /** The grandchild's checked native steps, in order (with `execInGrandchild`). */
  grandchild: GrandchildStep[];
  /** What the child execs; none: it exits 0 after setup (as the seed). */
  exec?: ExecPlan;
  /** Exec in a grandchild (a PID namespace joined by setns applies to children only). */
  execInGrandchild: boolean;
  /** The child is killed when the tool dies (PR_SET_PDEATHSIG). */
  dieWithParent: boolean;
  /** Runs in the child once the command is found, just before exec (`--json`). */
  beforeExec?: () => void;
  /** The parent's steps once the command has ended (and on every failure), in order. */
  cleanup: ParentStep[];
  /** Prints the `-v` lines; the runner and the steps share it. */
  report: Reporter;
  /** The ID mapping of a new user namespace, if any. */
  mapping?: IdMapping;
  /** The ID ranges the parent writes for the child, if any. */
  ranges?: IdRanges;
  /** Whether the caller asked for the user namespace (not implied). */
  userAsked: boolean;
  /** Whether `SIGTERM`/`SIGHUP` should end the tool at once during setup (the queue demo). */
  interruptibleSetup: boolean;
  /**
   * Where the child's steps run: in the clone child itself (`"child"`, the
   * fast way: it shares the tool's memory while the tool waits), or in an
   * init stage the child execs (`"init"`: a fresh Deno, independent of the
   * tool, so the tool can act while it waits at the plan's sync points).
   */
  stage: "child" | "init";
  /** The parent's steps at each sync point of the child (`"init"` stage only). */
  sync: { point: string; steps: ParentStep[] }[];
  /** What the init stage plans from: the same spec, options and caller. */
  request: { spec: LaunchSpec; options: StageOptions; caller: Caller };
  /** Things the caller should hear about, that do not stop the launch (a profile's unknown names). */
  warnings?: string[];
  /** The pseudo-terminal relay, with `pty` (run by the tool while the command runs). */
  pty?: PtySteps;
  /** With limits: the time limits watched while the command runs, and its usage at the end. */
  limits?: LimitRun;
}

/** Clone flags by namespace type, in the order `create` lists them. */
const CLONE_FLAG: [NamespaceType, number][] = [
  ["user", CLONE.NEWUSER],
  ["pid", CLONE.NEWPID],
  ["mnt", CLONE.NEWNS],
  ["uts", CLONE.NEWUTS],
  ["ipc", CLONE.NEWIPC],
  ["net", CLONE.NEWNET],
];

/** A launch refused for bad input (exit 2 in the CLI). */
export function usage(message: string): LaunchError {
  return new LaunchError("usage", message, "usage");
}

/** `value` if it is a safe integer; a {@link usage} error naming `what` otherwise. */
export function requireInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw usage(`${what}: not an integer: ${String(value)}`);
  }
  return value;
}

/** Checks the command vector. */
function checkCommand(command: unknown): asserts command is string[] {
  if (!Array.isArray(command)) throw usage("command: must be an array of strings");
  for (const word of command) {
    if (typeof word !== "string") throw usage("command: must be an array of strings");
    if (word.includes("\0")) throw usage("command: an argument contains a NUL byte");
  }
  if (command.length > 0 && command[0] === "") throw usage("command: empty name");
}

/** The state the steps of one launch share while it runs. */
interface LaunchState {
  demo?: QueueDemo;
  network?: PreparedNetwork;
  namespaces: NamespaceEntry[];
  start: Record<string, unknown>;
}

/**
 * Validates `spec` and turns it into a {@link Plan}; throws a
 * {@link LaunchError} on bad input. Nothing is created.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const planLaunch = (async function planLaunch(
  spec: LaunchSpec,
  options: LaunchOptions = {},
  caller: Caller = currentCaller(Boolean(spec.idRanges || spec.mapAuto)),
): Promise<Plan> {
  const platform = unsupportedPlatform();
  if (platform) throw new LaunchError("platform", platform, "setup");
  // Each optional feature's code is loaded only when it is asked for: a plain
  // launch starts without it (every module costs start-up time).
  const ipc = options.queueDemo !== undefined ? await import("./ipc.ts") : undefined;
  const inspect = options.announceStart ? await import("./inspect.ts") : undefined;
  const jails = spec.jail !== undefined ? await import("./jail.ts") : undefined;
  const mounting = spec.mounts?.length || spec.jail !== undefined
    ? await import("./mount.ts")
    : undefined;
  const net = spec.veth ? await import("./net.ts") : undefined;
  const hooking = spec.hooks ? await import("./hooks.ts") : undefined;
  const oci = spec.container ? await import("./oci/setup.ts") : undefined;
  const limiting = spec.limits !== undefined
    ? { ...await import("./usage.ts"), ...await import("./limits.ts") }
    : undefined;
  checkCommand(spec.command);
  if (spec.contain && spec.chrootOnly) {
    throw usage(
      "--contain jails by pivot_root only: drop --chroot (a root inside escapes a chroot)",
    );
  }
  spec = withContainDefaults(spec, () => Deno.stdin.isTerminal());
  const containing = containmentAsked(spec) ? await import("./contain.ts") : undefined;
  const ptyModule = spec.pty ? await import("./pty.ts") : undefined;
  const wanted = new Set<NamespaceType>();
  if (spec.pid) wanted.add("pid");
  if (spec.mount) wanted.add("mnt");
  if (spec.net && !spec.veth) wanted.add("net");
  if (spec.veth && caller.uid !== 0) {
    throw new LaunchError(
      "veth",
      "a veth link needs root (CAP_NET_ADMIN on the host); run with sudo, or use -n alone",
      "setup",
    );
  }
  if (spec.ipc) wanted.add("ipc");
  if (spec.cgroup) wanted.add("cgroup");
  if (spec.hostname !== undefined) {
    const problem = hostnameProblem(String(spec.hostname));
    if (problem) throw usage(problem);
    wanted.add("uts");
  }
  let time: TimeOffsets | undefined;
  if (spec.time) {
    const offsets = spec.time === true ? {} : spec.time;
    time = {
      monotonic: requireInteger(offsets.monotonic ?? 0, "monotonic offset"),
      boottime: requireInteger(offsets.boottime ?? 0, "boottime offset"),
    };
  }
  let jail: string | undefined;
  if (spec.jail !== undefined) {
    const problem = jails!.jailProblem(String(spec.jail));
    if (problem) throw new LaunchError("jail", problem, "setup");
    jail = Deno.realPathSync(spec.jail);
  }
  const mounts = (spec.mounts ?? []).map((request) => ({ ...request }));
  if (mounts.length > 0 && !spec.mount) throw usage("bind, tmpfs and dev mounts need -m");
  if ((spec.maskedPaths?.length || spec.readonlyPaths?.length) && !spec.mount) {
    throw usage("--mask and --remount-ro need -m");
  }
  for (const request of mounts) {
    const problem = mounting!.mountProblem(request);
    if (problem) throw new LaunchError("mount", problem, "setup");
  }
  const env = spec.env ?? {};
  for (const [key, value] of Object.entries(env)) {
    const problem = environmentProblem(key, String(value));
    if (problem) throw usage(`env: ${problem}`);
  }
  // ID ranges (--map-users, --map-groups, --map-auto): their code is loaded only for them
  const idranges = spec.idRanges || spec.mapAuto ? await import("./idranges.ts") : undefined;
  const ranges = idranges ? idranges.idRangesOf(spec, caller) : null;
  if (ranges && (typeof spec.user === "object")) {
    throw usage("--map-user/--map-group give one ID; --map-users/--map-groups the whole map");
  }
  if (ranges && options.queueDemo !== undefined) {
    throw usage("-i cannot be combined with --map-users, --map-groups or --map-auto");
  }
  let mapping: IdMapping | undefined;
  const wantsIsolation = wanted.size > 0 || time !== undefined || jail !== undefined ||
    spec.veth !== undefined || wantsContainment(spec);
  if (ranges) {
    wanted.add("user");
  } else if (spec.user || (caller.uid !== 0 && wantsIsolation)) {
    const inside = typeof spec.user === "object" ? spec.user : {};
    mapping = {
      uid: requireInteger(inside.uid ?? 0, "map-user"),
      gid: requireInteger(inside.gid ?? 0, "map-group"),
      outsideUid: caller.uid,
      outsideGid: caller.gid,
    };
    for (const id of [mapping.uid, mapping.gid]) {
      if (id < 0 || id > 0xfffffffe) throw usage(`${id}: not a valid user or group ID`);
    }
    wanted.add("user");
  }
  // ---- OCI containers (issue 18): namespaces with no other field ----
  const container = spec.container;
  if (container) {
    if (jail === undefined || !spec.mount) {
      throw usage("container: needs a root file system and -m");
    }
    for (const type of container.namespaces) wanted.add(type);
  }
  // ----
  if (spec.chrootOnly && jail === undefined) throw usage("--chroot needs a jail (-c DIR)");
  const pivot = Boolean(jail && spec.mount && !spec.chrootOnly);
  const create = CLONE_FLAG.filter(([type]) => wanted.has(type));
  const cgroups = [...spec.cgroups ?? []];
  for (const dir of cgroups) {
    const problem = cgroupProblem(dir);
    if (problem) throw new LaunchError("cgroup", problem, "setup");
  }
  const report = new Reporter(options.verbose ?? false);
  const state: LaunchState = { namespaces: [], start: {} };
  const containment = containing
    ? containmentOf(containing, spec, caller, { mapping, ranges, jail, report })
    : NO_CONTAINMENT;
  const pty = ptyModule?.ptySteps();
  // The child resolves the targets itself, as it mounts (see lib/mount.ts).
  const mountPoints = mounting ? new mounting.MountPoints(jail ?? "/") : undefined;
  const jailRoot: { root?: number } = {};
  const stage: Plan["stage"] = ranges || spec.startFifo !== undefined ||
      Object.values(spec.hooks ?? {}).some((list) => list?.length)
    ? "init"
    : "child";

  const parent: ParentStep[] = [];
  const cleanup: ParentStep[] = [];
  if (options.queueDemo !== undefined) {
    const name = options.queueDemo;
    const problem = queueNameProblem(name);
    if (problem) throw usage(problem);
    const steps = ipc!.queueDemoParentSteps(name, Boolean(spec.ipc), report, state);
    parent.push(steps.open);
    cleanup.push(steps.report);
  }
  if (spec.veth) parent.push(...net!.vethParentSteps(spec.veth, report, state));
  // ---- OCI containers (issue 18): namespaces joined by path, before clone ----
  if (container) parent.push(...oci!.joinNamespaceSteps(container));
  // ----
  if (mounts.length > 0) {
    parent.push({
      name: "mount",
      calls: [call("socketpair", "AF_UNIX", "SOCK_DGRAM")],
      why: "the child hands over a lock on each mount point it uses, so no other run removes it",
      run: () => {
        if (stage === "child") mountPoints!.prepare();
      },
      // once the child has made them (the init stage's are marked as they arrive)
      afterClone: () => {
        if (stage === "child") mountPoints!.mark();
      },
    });
  }
  if (mounts.length > 0 || (jail && pivot)) {
    cleanup.push({
      name: "mount",
      calls: [call("unlinkat", "<each mount point this run made, walked with O_NOFOLLOW>")],
      why: "the mount points this run created go again, unless another run uses them",
      run: () => mountPoints!.remove(),
    });
  }

  const request: Plan["request"] = {
    spec,
    options: {
      verbose: options.verbose,
      announceStart: options.announceStart,
      dieWithParent: options.dieWithParent,
    },
    caller,
  };
  const limits = limitsOf(spec, limiting);
  if (limits) parent.push(limiting!.limitsStep(limits, cgroups, request));

  const child: ChildStep[] = [];
  if (report.verbose) {
    child.push({
      name: "getpid",
      calls: [{ ...call("getpid"), returns: spec.pid ? "1" : "<child-pid>" }],
      why: "the seed prints the child's PID outside and inside",
      run: ({ outerPid }) => {
        report.parent(`PID of child is ${outerPid}`);
        report.child(`PID of child is ${getpid()}`);
      },
    });
  }
  if (options.announceStart) {
    child.push({
      name: "getpid",
      calls: [{ ...call("getpid"), returns: spec.pid ? "1" : "<child-pid>" }],
      why: "--json announces the child's PIDs",
      run: ({ outerPid }) => {
        state.start = { event: "start", pid: outerPid, pidInside: getpid() };
      },
    });
  }
  if (mapping) child.push(idMapStep(mapping));
  const sync: Plan["sync"] = [];
  if (ranges) {
    sync.push({ point: "uid_map", steps: [idranges!.idRangesStep(ranges, caller)] });
    child.push(
      syncStep("uid_map", "wait while the parent writes the ID maps (ranges need its privilege)"),
    );
    if (idranges!.mapsRoot(ranges)) {
      child.push({
        name: "setresuid",
        calls: [call("setgroups", 0, "[]"), call("setresgid", 0, 0, 0), call("setresuid", 0, 0, 0)],
        why: "become root inside: 0 is mapped",
        run: () => void becomeUser(0, 0),
      });
    }
  }
  if (options.queueDemo !== undefined) {
    child.push(ipc!.queueDemoStep(options.queueDemo, () => state.demo!, report, Boolean(spec.ipc)));
  }
  const hooks = spec.hooks ?? {};
  for (const [point, list] of Object.entries(hooks)) {
    if (!["createRuntime", "createContainer", "startContainer"].includes(point)) {
      throw usage(
        `hooks.${point}: not a hook point (createRuntime, createContainer, startContainer)`,
      );
    }
    (list as Hook[]).forEach((hook, i) => {
      const problem = hooking!.hookProblem(hook, `hooks.${point}[${i}]`);
      if (problem) throw usage(problem);
    });
  }
  const hookState = (pid: number) => ({ ...spec.hookState, pid });
  if (hooks.createRuntime?.length) {
    const list = hooks.createRuntime;
    sync.push({
      point: "createRuntime",
      steps: [{
        name: "createRuntime",
        calls: hooking!.hookCalls(list),
        why: "OCI createRuntime hooks: in the runtime's namespaces, once the container's exist",
        run: ({ childPid }) => hooking!.runHooks("createRuntime", list, hookState(childPid)),
      }],
    });
    child.push(syncStep("createRuntime", "wait while the tool runs the createRuntime hooks"));
  }
  if (time) child.push(timeNamespaceStep(time));
  // Read before any chroot, which may leave no /proc to read them from.
  if (options.announceStart) {
    child.push({
      name: "namespaces",
      calls: [call("readlink", "/proc/self/ns/*")],
      why: "--json announces the command's namespaces",
      run: () => {
        state.namespaces = inspect!.namespacesAtExec();
      },
    });
  }
  // A container mounts its own /proc (config.json's mounts).
  const withProc = Boolean(spec.pid && spec.mount && !container);
  if (spec.mount) child.push(privateMountsStep());
  const createContainer = hooks.createContainer ?? [];
  if (jail && pivot) child.push(jails!.jailMountStep(jail, jailRoot));
  if (mounts.length) child.push(mounting!.mountsStep(mounts, mountPoints!, jailRoot));
  // In a pivot_root jail /proc is mounted before the pivot: once the old root is
  // detached no procfs is visible, and a user namespace may only mount one then.
  if (jail && pivot && withProc) child.push(jails!.jailProcStep(jail, mountPoints!, jailRoot));
  if (stage === "init" && (mounts.length > 0 || (jail && pivot))) {
    // The init stage has its own memory: what it made, and its locks, go to the tool.
    child.push({
      name: "mount",
      syncPoint: "mount-points",
      calls: [call("sendmsg", "<channel>", "<mount points made>", "<SCM_RIGHTS locks>")],
      why: "the tool removes the mount points this run made once it ends",
      run: ({ sync }) => {
        const { record, fds } = mountPoints!.transfer();
        try {
          sync!("mount-points", record, fds);
        } finally {
          for (const fd of fds) close(fd);
        }
      },
    });
    sync.push({
      point: "mount-points",
      steps: [{
        name: "mount",
        calls: [call("recvmsg", "<channel>")],
        why: "take over the init stage's record and locks, and mark what it made",
        run: ({ received }) => {
          mountPoints!.adopt(received?.data as MountRecord, received?.fds ?? []);
          mountPoints!.mark();
        },
      }],
    });
  }
  // ---- OCI containers (issue 18): what needs host paths, before pivot_root ----
  const containerState: ContainerState & { fifoDir?: number } = {};
  if (container) {
    if (spec.startFifo !== undefined) {
      const dir = spec.startFifo.slice(0, spec.startFifo.lastIndexOf("/")) || "/";
      child.push({
        name: "start",
        calls: [{
          ...call("openat", "AT_FDCWD", dir, "O_PATH|O_DIRECTORY|O_CLOEXEC"),
          returns: `<fd of ${dir}>`,
        }],
        why:
          "the start FIFO is opened at start relative to its directory: pivot_root hides its path",
        run: () => {
          containerState.fifoDir = openAt(-100, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        },
        learnt: (): Record<string, string> =>
          containerState.fifoDir === undefined
            ? {}
            : { [`<fd of ${dir}>`]: String(containerState.fifoDir) },
      });
    }
    if (container.terminal) {
      if (container.consoleSocket === undefined) {
        throw usage("container: a terminal needs a console socket");
      }
      child.push(oci!.consoleSocketStep(container.consoleSocket, containerState));
    }
    const ownCgroups = spec.cgroup ? null : cgroups;
    child.push(
      oci!.containerMountsStep(container, jail!, jailRoot, wanted.has("user"), ownCgroups),
    );
  }
  // ----
  if (createContainer.length) {
    child.push({
      name: "createContainer",
      calls: hooking!.hookCalls(createContainer),
      why: "OCI createContainer hooks: in the container's namespaces, before pivot_root",
      run: ({ outerPid }) =>
        hooking!.runHooks("createContainer", createContainer, hookState(outerPid)),
    });
  }
  if (jail) child.push(...containment.beforePivot);
  if (jail && pivot) child.push(jails!.pivotStep(jail, report, jailRoot));
  if (jail && !pivot) child.push(jails!.chrootStep(jail, report));
  if (withProc && !(jail && pivot)) child.push(procStep("/proc"));
  child.push(...containment.masks);
  if (spec.hostname !== undefined) child.push(hostnameStep(spec.hostname));
  // ---- OCI containers (issue 18): the root's mode, the kernel's knobs, the terminal ----
  if (container) child.push(...oci!.containerSystemSteps(container, containerState));
  // ----
  if (spec.noNewPrivs) {
    child.push({
      name: "prctl",
      calls: [call("prctl", "PR_SET_NO_NEW_PRIVS", 1)],
      why: "setuid binaries and file capabilities grant nothing from here on",
      run: () => prctl(PR_SET_NO_NEW_PRIVS, 1),
    });
  }
  if (ranges) {
    child.push({
      name: "capabilities",
      calls: [
        call("prctl", "PR_CAP_AMBIENT", "PR_CAP_AMBIENT_CLEAR_ALL"),
        call(
          "capset",
          "{version=_LINUX_CAPABILITY_VERSION_3, pid=0}",
          "<capget's sets, inheritable 0>",
        ),
      ],
      why:
        "the init stage kept its capabilities through its own exec; the command's come from its UID",
      run: clearAmbientCapabilities,
    });
  }
  // the cgroups asked for, and those the limits step makes (named once made)
  const ownCgroups = [...cgroups];
  const launchCgroups = () => limits ? limiting!.launchCgroupsOf(limits).dirs : [];
  if ((cgroups.length > 0 || limits) && (ranges || container)) {
    // The tool moves the child in, last: after setresuid the child is a mapped ID the
    // host's cgroup files refuse, and after pivot_root a container no longer sees them.
    sync.push({ point: "cgroup", steps: [cgroupMoveStep(cgroups, launchCgroups)] });
    child.push(syncStep("cgroup", "wait while the tool moves the child into its cgroups, last"));
  } else if (cgroups.length > 0 || limits) {
    child.push({
      name: "cgroup",
      get calls() {
        return [...ownCgroups, ...launchCgroups()]
          .map((dir) => writeCall(`${dir}/cgroup.procs`, "0"));
      },
      why: "join the command's cgroups last: nothing of the tool is charged to them",
      run: () => joinCgroups(cgroups),
    });
  }
  if (spec.cgroup) child.push(cgroupNamespaceStep());
  // ---- OCI containers (issue 18): the process's user, directory and umask ----
  if (container) child.push(...oci!.containerUserSteps(container));
  // ----
  if (spec.startFifo !== undefined) {
    const fifo = spec.startFifo;
    if (!fifo.startsWith("/")) throw usage("startFifo: must be an absolute path");
    child.push(syncStep("created", "tell the tool the container is created (it may leave now)"));
    child.push({
      name: "start",
      calls: [
        container
          ? {
            ...call(
              "openat",
              `<fd of ${fifo.slice(0, fifo.lastIndexOf("/")) || "/"}>`,
              fifo.slice(fifo.lastIndexOf("/") + 1),
              "O_WRONLY|O_NOFOLLOW|O_CLOEXEC",
            ),
            returns: `<fd of ${fifo}>`,
          }
          : {
            ...call("openat", "AT_FDCWD", fifo, "O_WRONLY|O_CLOEXEC"),
            returns: `<fd of ${fifo}>`,
          },
        writeCall(fifo, "0"),
      ],
      why: "wait until start opens the FIFO: the command runs only then",
      run: () => waitForStart(fifo, containerState.fifoDir),
    });
  }
  child.push(...containment.credentials);
  if (pty) child.push(pty.child);
  const startContainer = hooks.startContainer ?? [];
  if (startContainer.length) {
    child.push({
      name: "startContainer",
      calls: hooking!.hookCalls(startContainer),
      why: "OCI startContainer hooks: in the container, just before the command",
      run: ({ outerPid }) =>
        hooking!.runHooks("startContainer", startContainer, hookState(outerPid)),
    });
  }
  const command = spec.command[0];
  if (command !== undefined && report.verbose) {
    child.push({
      name: "exec",
      calls: [],
      why: "the seed says what it runs",
      run: () => report.child(`executing command ${command} ...`),
    });
  }
  child.push(...containment.last);
  if (pty) {
    const problem = ptyModule!.ptyProblem(stage, command);
    if (problem) throw usage(problem);
    parent.push(pty.parent);
  }
  const announce = () => {
    const inodes = Object.fromEntries(state.namespaces.map((ns) => [ns.type, ns.inode]));
    report.print(`${JSON.stringify({ ...state.start, namespaces: inodes })}\n`);
  };
  return {
    create: [
      ...create.map(([type]) => type),
      ...(time ? ["time" as const] : []),
      ...(spec.cgroup ? ["cgroup" as const] : []),
    ],
    join: [],
    cloneFlags: create.reduce((flags, [, flag]) => flags | flag, 0),
    parent,
    child,
    grandchild: [],
    exec: command === undefined ? undefined : {
      command,
      argv: spec.command,
      env: container ? [...container.env] : commandEnvironment(env, spec.keepEnv),
      fallbackPath: DEFAULT_PATH,
    },
    execInGrandchild: false,
    dieWithParent: options.dieWithParent ?? true,
    beforeExec: options.announceStart ? announce : undefined,
    cleanup,
    report,
    mapping,
    ranges: ranges ?? undefined,
    userAsked: Boolean(spec.user),
    interruptibleSetup: options.queueDemo !== undefined && (options.forwardSignals ?? false),
    stage,
    sync,
    warnings: containment.warnings,
    pty,
    request,
    limits,
  };
}).bind(null);

// ---------------------------------------------------------------- limits (issue 17)

/**
 * The tool's step at the child's `cgroup` sync point (ID ranges: the child
 * has become a mapped ID by then): writes the child's PID into each of
 * `cgroups` (filled in by the time it runs).
 */
function cgroupMoveStep(cgroups: string[], launchCgroups: () => string[]): ParentStep {
  const own = [...cgroups];
  return {
    name: "cgroup",
    get calls() {
      return [...own, ...launchCgroups()]
        .map((dir) => call("write", `<fd of ${dir}/cgroup.procs>`, "<child-pid>"));
    },
    why: "the tool moves the child into the command's cgroups as its last step before exec",
    run: ({ childPid }) => {
      for (const dir of cgroups) writeFile(`${dir}/cgroup.procs`, String(childPid));
    },
  };
}

/** The limits of `spec` checked (bad ones are a usage error), or undefined without any. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const limitsOf = (function limitsOf(
  spec: LaunchSpec,
  limiting: typeof import("./usage.ts") & typeof import("./limits.ts") | undefined,
): LimitRun | undefined {
  if (spec.limits === undefined || !limiting) return undefined;
  const { LimitError, LimitRun } = limiting;
  if (typeof spec.limits !== "object" || spec.limits === null) {
    throw usage("limits: must be an object");
  }
  try {
    return new LimitRun(spec.limits);
  } catch (error) {
    if (error instanceof LimitError) throw usage(error.message);
    throw error;
  }
}).bind(null);

/** What a launch that asks for no containment gets from it: nothing. */
const NO_CONTAINMENT: Containment = {
  beforePivot: [],
  masks: [],
  credentials: [],
  last: [],
  warnings: [],
};

/**
 * The containment steps of `spec` (lib/contain.ts, loaded as `containing`),
 * given what the plan decided: the command's default IDs, which IDs the user
 * namespace maps, the jail.
 */
function containmentOf(
  containing: typeof import("./contain.ts"),
  spec: LaunchSpec,
  caller: Caller,
  decided: {
    mapping?: IdMapping;
    ranges: IdRanges | null;
    jail?: string;
    report: Reporter;
  },
): Containment {
  const { mapping, ranges } = decided;
  const inRanges = (list: IdRange[]) => (value: number) =>
    list.some((r) => value >= r.inside && value < r.inside + r.count);
  return containing.planContainment(spec, {
    callerUid: caller.uid,
    defaultUid: mapping ? mapping.uid : ranges ? 0 : caller.uid,
    defaultGid: mapping ? mapping.gid : ranges ? 0 : caller.gid,
    mapped: mapping
      ? { uid: (id) => id === mapping.uid, gid: (id) => id === mapping.gid }
      : ranges
      ? { uid: inRanges(ranges.users), gid: inRanges(ranges.groups) }
      : null,
    setgroupsDenied: Boolean(mapping),
    jail: decided.jail,
    container: spec.container !== undefined,
    report: decided.report,
  });
}

/** A child step that waits at sync point `point` while the tool runs its steps there. */
function syncStep(point: string, why: string): ChildStep {
  return {
    name: point,
    syncPoint: point,
    calls: [
      call("sendmsg", "<channel>", `{type: "sync", point: ${JSON.stringify(point)}}`),
      call("recvmsg", "<channel>"),
    ],
    why,
    run: ({ sync }) => {
      if (!sync) throw new Error(`${point}: a sync point needs the init stage`);
      sync(point);
    },
  };
}

/**
 * Child step: blocks until a reader opens `fifo` (a FIFO, never a file it
 * would write to); with `dir`, the fd of its directory, relative to that.
 */
function waitForStart(fifo: string, dir?: number): void {
  if (dir !== undefined) {
    // ---- OCI containers (issue 18): the path is gone after pivot_root ----
    const name = fifo.slice(fifo.lastIndexOf("/") + 1);
    const fd = openAt(dir, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    try {
      if (fileStatus(fd, fifo).type !== S_IFIFO) throw new Error(`${fifo}: not a FIFO`);
      writeText(fd, "0");
    } finally {
      close(fd);
      close(dir);
    }
    return;
  }
  if (!Deno.lstatSync(fifo).isFifo) throw new Error(`${fifo}: not a FIFO`);
  const file = Deno.openSync(fifo, { write: true });
  try {
    if (!file.statSync().isFifo) throw new Error(`${fifo}: not a FIFO`);
    file.writeSync(new Uint8Array([0x30]));
  } finally {
    file.close();
  }
}

// ---- OCI containers (issue 18) ----

// ----
