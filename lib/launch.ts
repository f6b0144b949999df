/**
 * The launcher: turns a {@link LaunchSpec} into a child-setup plan (an ordered
 * list of steps, each owned by one namespace module), hands it to the clone
 * engine, and waits for the command.
 *
 * Repeated launches: every launch is independent (nothing is unshared in the
 * calling process, and the time namespace is entered by the child at exec), so
 * `launch()` may be called any number of times from one process, each with
 * its own namespaces and time offsets. Launches must come from Deno's main
 * thread (not a Worker): the clone engine carves the child's stacks from it.
 * @module
 */

import { ChildSetupError, cloneChild } from "../ffi/clone.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { SIGNALS } from "../ffi/constants.ts";
import {
  close,
  defaultSignalAction,
  getgid,
  getpid,
  getuid,
  PR_SET_NO_NEW_PRIVS,
  prctl,
  restoreSignalAction,
  signalsIgnoredByCaller,
} from "../ffi/libc.ts";
import { unsupportedPlatform } from "../ffi/arch.ts";
import { CGROUP_NAMESPACE } from "./cgroup.ts";
import { commandEnvironment, environmentProblem } from "./env.ts";
import {
  DEMO_QUEUE,
  IPC_NAMESPACE,
  openDemoQueue,
  type QueueDemo,
  queueNameProblem,
  receiveInParent,
  removeDemoQueue,
  reportDemoQueueRemoved,
  sendFromChild,
} from "./ipc.ts";
import { enterChrootJail, jailProblem, pivotIntoJail, prepareJailMount } from "./jail.ts";
import {
  makeMountsPrivate,
  missingMountPoints,
  MOUNT_NAMESPACE,
  mountProblem,
  type MountRequest,
  performMounts,
  removeMountPoints,
} from "./mount.ts";
import {
  bornInNetwork,
  NET_NAMESPACE,
  type PreparedNetwork,
  prepareVeth,
  removeVeth,
  vethProblem,
  type VethSpec,
} from "./net.ts";
import { mountProc, PID_NAMESPACE } from "./pid.ts";
import { Reporter } from "./report.ts";
import { prepareTimeNamespace, type TimeOffsets } from "./time.ts";
import {
  describeMapping,
  type IdMapping,
  USER_NAMESPACE,
  userNamespacesDisabled,
  writeIdMaps,
} from "./user.ts";
import { hostnameProblem, setHostname, UTS_NAMESPACE } from "./uts.ts";
import { type NamespaceEntry, namespacesAtExec } from "./inspect.ts";
import { LaunchError, type LaunchResult, SignalForwarder, superviseChild } from "./supervise.ts";

export { LaunchError, type LaunchResult };

/**
 * What to run, and in which new namespaces.
 *
 * @example
 * ```ts
 * const spec: LaunchSpec = { command: ["bash"], pid: true, mount: true, jail: "/var/local/jail" };
 * ```
 */
export interface LaunchSpec {
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
  /** New cgroup namespace. */
  cgroup?: boolean;
  /**
   * New time namespace, with CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets in
   * seconds (Linux 5.17 or later). The child makes it and enters it at exec;
   * the caller's clocks are never touched, so every launch gets its own.
   */
  time?: boolean | Partial<TimeOffsets>;
  /** Variables added to the clean default environment. */
  env?: Record<string, string>;
  /** Pass the caller's whole environment instead of the clean default. */
  keepEnv?: boolean;
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
  /**
   * Print a JSON line `{"event":"start","pid":…,"pidInside":…,"namespaces":{…}}`
   * on stdout from the child itself, just before the command starts, so it
   * comes before anything the command prints (the CLI's `--json`).
   */
  announceStart?: boolean;
}

/** Everything the launcher derived from a spec, checked before anything is created. */
interface Plan {
  namespaces: number;
  mapping?: IdMapping;
  time?: TimeOffsets;
  jail?: string;
  pivot: boolean;
  mounts: MountRequest[];
  /** The mount points the mounts will create, removed again once the command has ended. */
  mountPoints: string[];
  veth?: VethSpec;
  env: string[];
}

function usage(message: string): LaunchError {
  return new LaunchError("usage", message, 2);
}

function requireInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw usage(`${what}: not an integer: ${String(value)}`);
  }
  return value;
}

/** Validates `spec` and derives the plan; throws a {@link LaunchError} on bad input. */
function planLaunch(spec: LaunchSpec): Plan {
  const platform = unsupportedPlatform();
  if (platform) throw new LaunchError("platform", platform, 125);
  if (!Array.isArray(spec.command)) throw usage("command: must be an array of strings");
  for (const word of spec.command) {
    if (typeof word !== "string") throw usage("command: must be an array of strings");
    if (word.includes("\0")) throw usage("command: an argument contains a NUL byte");
  }
  if (spec.command.length > 0 && spec.command[0] === "") throw usage("command: empty name");
  let namespaces = 0;
  if (spec.pid) namespaces |= PID_NAMESPACE;
  if (spec.mount) namespaces |= MOUNT_NAMESPACE;
  if (spec.net && !spec.veth) namespaces |= NET_NAMESPACE;
  if (spec.veth) {
    if (getuid() !== 0) {
      throw new LaunchError(
        "veth",
        "a veth link needs root (CAP_NET_ADMIN on the host); run with sudo, or use -n alone",
        125,
      );
    }
  }
  if (spec.ipc) namespaces |= IPC_NAMESPACE;
  if (spec.cgroup) namespaces |= CGROUP_NAMESPACE;
  if (spec.hostname !== undefined) {
    const problem = hostnameProblem(String(spec.hostname));
    if (problem) throw usage(problem);
    namespaces |= UTS_NAMESPACE;
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
    const problem = jailProblem(String(spec.jail));
    if (problem) throw new LaunchError("jail", problem, 125);
    jail = Deno.realPathSync(spec.jail);
  }
  // copies: mountProblem settles each target (inside the jail, as seen from there)
  const mounts = (spec.mounts ?? []).map((request) => ({ ...request }));
  if (mounts.length > 0 && !spec.mount) throw usage("bind, tmpfs and dev mounts need -m");
  for (const request of mounts) {
    const problem = mountProblem(request, jail);
    if (problem) throw new LaunchError("mount", problem, 125);
  }
  const mountPoints = missingMountPoints(mounts, jail ?? "");
  const env = spec.env ?? {};
  for (const [key, value] of Object.entries(env)) {
    const problem = environmentProblem(key, String(value));
    if (problem) throw usage(`env: ${problem}`);
  }
  let mapping: IdMapping | undefined;
  const caller = { uid: getuid(), gid: getgid() };
  const wantsIsolation = namespaces !== 0 || time !== undefined || jail !== undefined ||
    spec.veth !== undefined;
  if (spec.user || (caller.uid !== 0 && wantsIsolation)) {
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
    namespaces |= USER_NAMESPACE;
  }
  if (spec.chrootOnly && jail === undefined) throw usage("--chroot needs a jail (-c DIR)");
  const pivot = Boolean(jail && spec.mount && !spec.chrootOnly);
  const environment = commandEnvironment(env, spec.keepEnv);
  return {
    namespaces,
    mapping,
    time,
    jail,
    pivot,
    mounts,
    mountPoints,
    veth: spec.veth,
    env: environment,
  };
}

/** One line explaining why clone refused, with a hint where one helps. */
function cloneFailure(error: SyscallError, plan: Plan): LaunchError {
  const rootless = getuid() !== 0;
  if (plan.mapping && (error.errno === Errno.ENOSPC || error.errno === Errno.EPERM)) {
    const reason = userNamespacesDisabled() ??
      "the kernel refused to create a user namespace";
    const hint = rootless ? "; run with sudo instead" : "";
    return new LaunchError("clone", `${reason} (${error.code}: ${error.description})${hint}`, 125, {
      cause: error,
    });
  }
  const hint = error.errno === Errno.EPERM && !plan.mapping ? "; run as root or add -U" : "";
  return new LaunchError(
    "clone",
    `cannot create the namespaces (${error.code}: ${error.description})${hint}`,
    125,
    { cause: error },
  );
}

/** The steps the child runs, in order, each owned by its namespace module. */
function childSteps(
  spec: LaunchSpec,
  plan: Plan,
  report: Reporter,
  demo: QueueDemo | null,
  announceStart: boolean,
): { setup: (outerPid: number) => void; announce?: () => void } {
  let namespaces: NamespaceEntry[] = [];
  let start = {};
  const hostname = spec.hostname;
  const command = spec.command[0];
  const withProc = Boolean(spec.pid && spec.mount);
  const setup = (outerPid: number) => {
    start = { event: "start", pid: outerPid, pidInside: getpid() };
    report.parent(`PID of child is ${outerPid}`);
    report.child(`PID of child is ${getpid()}`);
    if (plan.mapping) step("uid_map", () => writeIdMaps(plan.mapping!));
    if (demo) {
      step("mq", () => sendFromChild(demo, report));
      receiveInParent(demo, report);
    }
    if (plan.time) step("timens", () => prepareTimeNamespace(plan.time!));
    // Read before any chroot, which may leave no /proc to read them from.
    if (announceStart) step("namespaces", () => (namespaces = namespacesAtExec()));
    if (spec.mount) step("mount", makeMountsPrivate);
    const jail = plan.jail;
    if (jail && plan.pivot) step("jail", () => prepareJailMount(jail));
    if (plan.mounts.length) step("mount", () => performMounts(plan.mounts, jail ?? ""));
    // In a pivot_root jail /proc is mounted before the pivot: once the old root is
    // detached no procfs is visible, and a user namespace may only mount one then.
    if (jail && plan.pivot && withProc) step("proc", () => mountProc(`${jail}/proc`));
    if (jail && plan.pivot) step("pivot_root", () => pivotIntoJail(jail, report));
    if (jail && !plan.pivot) step("chroot", () => enterChrootJail(jail, report));
    if (withProc && !(jail && plan.pivot)) step("proc", () => mountProc("/proc"));
    if (hostname !== undefined) step("sethostname", () => setHostname(hostname));
    if (spec.noNewPrivs) step("prctl", () => prctl(PR_SET_NO_NEW_PRIVS, 1));
    if (command !== undefined) report.child(`executing command ${command} ...`);
  };
  const announce = () => {
    const inodes = Object.fromEntries(namespaces.map((ns) => [ns.type, ns.inode]));
    report.print(`${JSON.stringify({ ...start, namespaces: inodes })}\n`);
  };
  return { setup, announce: announceStart ? announce : undefined };
}

const STOP_SIGNALS = [SIGNALS.SIGTERM, SIGNALS.SIGHUP];

/** Runs `fn` with `signals` at their default action, then puts the previous ones back. */
function withDefaultActions<T>(signals: number[], fn: () => T): T {
  const previous = signals.map((signal) => [signal, defaultSignalAction(signal)] as const);
  try {
    return fn();
  } finally {
    for (const [signal, action] of previous) restoreSignalAction(signal, action);
  }
}

/** Runs one child step, naming it in any failure. */
function step(name: string, run: () => void): void {
  try {
    run();
  } catch (error) {
    if (error instanceof ChildSetupError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new ChildSetupError(name, message, 125, error);
  }
}

/**
 * Runs `spec.command` in the namespaces `spec` asks for and resolves with how
 * it ended. Rejects with a {@link LaunchError} when anything fails before
 * the command starts (bad spec, setup step, command not found); the child
 * has then been reaped and nothing is left behind.
 *
 * Call it any number of times from one process, one after another or
 * concurrently: nothing is unshared in the calling process, so each launch
 * gets its own namespaces, and a time namespace with its own offsets (the
 * child enters it at exec). Call it from Deno's main thread, not a Worker:
 * the child's stacks are carved from that thread's stack.
 *
 * @example
 * ```ts
 * const { code, signal } = await launch({
 *   command: ["sh", "-c", "hostname; echo $$"],
 *   pid: true,
 *   mount: true,
 *   hostname: "box",
 * });
 * ```
 */
export async function launch(spec: LaunchSpec, options: LaunchOptions = {}): Promise<LaunchResult> {
  const vethIssue = spec.veth ? await vethProblem(spec.veth) : null;
  if (vethIssue) throw usage(`veth: ${vethIssue}`);
  const plan = planLaunch(spec);
  const report = new Reporter(options.verbose ?? false);
  if (options.queueDemo !== undefined) {
    const problem = queueNameProblem(options.queueDemo);
    if (problem) throw usage(problem);
  }
  report.parent(`PID of parent is ${getpid()}`);
  if (plan.mapping) {
    const implied = spec.user ? "" : " (implied: you are not root)";
    report.parent(`new user namespace${implied}: ${describeMapping(plan.mapping)}`);
  }
  let demo: QueueDemo | null = null;
  let network: PreparedNetwork | null = null;
  const forwarder = options.forwardSignals ? new SignalForwarder(options.stopTimeoutMs) : null;
  try {
    if (options.queueDemo !== undefined) {
      try {
        demo = openDemoQueue(options.queueDemo, Boolean(spec.ipc), report);
      } catch (error) {
        if (!(error instanceof SyscallError)) throw error;
        const exists = error.errno === Errno.EEXIST
          ? `; remove it or choose another name${
            options.queueDemo === DEMO_QUEUE ? " with --mq-name" : ""
          }`
          : "";
        throw new LaunchError("mq_open", `${error.message}${exists}`, 125, { cause: error });
      }
    }
    const steps = childSteps(spec, plan, report, demo, options.announceStart ?? false);
    if (plan.veth) {
      try {
        network = await prepareVeth(plan.veth);
      } catch (error) {
        if (!(error instanceof SyscallError)) throw error;
        throw new LaunchError("veth", error.message, 125, { cause: error });
      }
      report.parent(`veth ${network.hostName} ${network.host} <-> eth0 ${network.guest}`);
    }
    const clone = () =>
      cloneChild({
        namespaces: plan.namespaces,
        setup: ({ outerPid }) => steps.setup(outerPid),
        beforeExec: steps.announce,
        exec: spec.command.length > 0
          ? { command: spec.command[0], argv: spec.command, env: plan.env }
          : undefined,
      });
    let outcome;
    try {
      // The demo's child may wait at its prompt for long, with the parent
      // suspended and unable to forward anything: meanwhile SIGTERM and SIGHUP
      // end the tool at once (and the child with it, PR_SET_PDEATHSIG).
      const stoppable = demo && forwarder
        ? STOP_SIGNALS.filter((signal) => !signalsIgnoredByCaller().has(signal))
        : [];
      outcome = withDefaultActions(
        stoppable,
        () => network ? bornInNetwork(network, clone) : clone(),
      );
    } catch (error) {
      throw error instanceof SyscallError ? cloneFailure(error, plan) : error;
    } finally {
      // The child holds the namespace now: once it ends, the pair goes with it.
      if (network) close(network.namespaceFd);
    }
    if (demo) removeDemoQueue(demo);
    return await superviseChild(outcome, forwarder, options.onStart);
  } finally {
    forwarder?.stop();
    if (demo) {
      removeDemoQueue(demo);
      reportDemoQueueRemoved(demo, report);
    }
    if (network) await removeVeth(network);
    removeMountPoints(plan.mountPoints);
  }
}
