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
import { getgid, getpid, getuid, PR_SET_NO_NEW_PRIVS, prctl } from "../ffi/libc.ts";
import { CGROUP_NAMESPACE } from "./cgroup.ts";
import { commandEnvironment, environmentProblem } from "./env.ts";
import { type NamespaceEntry, namespacesAtExec, type NamespaceType } from "./inspect.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import {
  DEMO_QUEUE,
  IPC_NAMESPACE,
  openDemoQueue,
  type QueueDemo,
  queueDemoStep,
  queueNameProblem,
  removeDemoQueue,
  reportDemoQueueRemoved,
} from "./ipc.ts";
import { chrootStep, jailMountStep, jailProblem, pivotStep } from "./jail.ts";
import {
  missingMountPoints,
  MOUNT_NAMESPACE,
  mountProblem,
  type MountRequest,
  mountsStep,
  privateMountsStep,
  removeMountPoints,
} from "./mount.ts";
import {
  enterNetwork,
  NET_NAMESPACE,
  type PreparedNetwork,
  prepareVeth,
  removeVeth,
  type VethSpec,
} from "./net.ts";
import { PID_NAMESPACE, procStep } from "./pid.ts";
import { Reporter } from "./report.ts";
import { call, type ChildStep, flagNames, type GrandchildStep, type ParentStep } from "./step.ts";
import { LaunchError } from "./supervise.ts";
import { timeNamespaceStep, type TimeOffsets } from "./time.ts";
import { type IdMapping, idMapStep, USER_NAMESPACE } from "./user.ts";
import { hostnameProblem, hostnameStep, UTS_NAMESPACE } from "./uts.ts";

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

/** The facts about the caller that a plan depends on (a seam for tests). */
export interface Caller {
  /** The caller's real UID. */
  uid: number;
  /** The caller's real GID. */
  gid: number;
}

/** The real caller. */
export function currentCaller(): Caller {
  return { uid: getuid(), gid: getgid() };
}

/** What is exec'd once setup is done. */
export interface ExecPlan {
  /** The command's name or path, as given (argv[0]). */
  command: string;
  /** Full argument vector. */
  argv: string[];
  /** The environment, as `KEY=VALUE` strings. */
  env: string[];
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
  /** The mount points the launch will create (removed again in clean-up). */
  mountPoints: string[];
  /** The ID mapping of a new user namespace, if any. */
  mapping?: IdMapping;
  /** Whether the caller asked for the user namespace (not implied). */
  userAsked: boolean;
  /** Whether `SIGTERM`/`SIGHUP` should end the tool at once during setup (the queue demo). */
  interruptibleSetup: boolean;
}

/** Clone flags by namespace type, in the order `create` lists them. */
const CLONE_FLAG: [NamespaceType, number][] = [
  ["user", USER_NAMESPACE],
  ["pid", PID_NAMESPACE],
  ["mnt", MOUNT_NAMESPACE],
  ["uts", UTS_NAMESPACE],
  ["ipc", IPC_NAMESPACE],
  ["net", NET_NAMESPACE],
  ["cgroup", CGROUP_NAMESPACE],
];

function usage(message: string): LaunchError {
  return new LaunchError("usage", message, 2);
}

function requireInteger(value: unknown, what: string): number {
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
export function planLaunch(
  spec: LaunchSpec,
  options: LaunchOptions = {},
  caller: Caller = currentCaller(),
): Plan {
  const platform = unsupportedPlatform();
  if (platform) throw new LaunchError("platform", platform, 125);
  checkCommand(spec.command);
  const wanted = new Set<NamespaceType>();
  if (spec.pid) wanted.add("pid");
  if (spec.mount) wanted.add("mnt");
  if (spec.net && !spec.veth) wanted.add("net");
  if (spec.veth && caller.uid !== 0) {
    throw new LaunchError(
      "veth",
      "a veth link needs root (CAP_NET_ADMIN on the host); run with sudo, or use -n alone",
      125,
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
  const env = spec.env ?? {};
  for (const [key, value] of Object.entries(env)) {
    const problem = environmentProblem(key, String(value));
    if (problem) throw usage(`env: ${problem}`);
  }
  let mapping: IdMapping | undefined;
  const wantsIsolation = wanted.size > 0 || time !== undefined || jail !== undefined ||
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
    wanted.add("user");
  }
  if (spec.chrootOnly && jail === undefined) throw usage("--chroot needs a jail (-c DIR)");
  const pivot = Boolean(jail && spec.mount && !spec.chrootOnly);
  const create = CLONE_FLAG.filter(([type]) => wanted.has(type));
  const report = new Reporter(options.verbose ?? false);
  const state: LaunchState = { namespaces: [], start: {} };
  const mountPoints = missingMountPoints(mounts, jail ?? "");

  const parent: ParentStep[] = [];
  const cleanup: ParentStep[] = [];
  if (options.queueDemo !== undefined) {
    const name = options.queueDemo;
    const problem = queueNameProblem(name);
    if (problem) throw usage(problem);
    parent.push({
      name: "mq_open",
      calls: [call("mq_open", name, "O_CREAT|O_EXCL|O_RDWR", 0o600, "{10 messages, 81 bytes}")],
      why: "the seed's demo queue, made in the tool's IPC namespace",
      run: () => {
        try {
          state.demo = openDemoQueue(name, report);
        } catch (error) {
          if (!(error instanceof SyscallError) || error.errno !== Errno.EEXIST) throw error;
          const hint = name === DEMO_QUEUE ? " with --mq-name" : "";
          throw new LaunchError(
            "mq_open",
            `${error.message}; remove it or choose another name${hint}`,
            125,
            { cause: error },
          );
        }
      },
      // The child has opened it by then (or could not): nothing needs the name any more.
      undo: () => state.demo && removeDemoQueue(state.demo),
      undoAfterClone: true,
    });
    cleanup.push({
      name: "mq_unlink",
      calls: [call("mq_close", name), call("mq_unlink", name)],
      why: "the queue goes with the demo, on every exit path",
      run: () => {
        if (!state.demo) return;
        removeDemoQueue(state.demo);
        reportDemoQueueRemoved(state.demo, report);
      },
    });
  }
  if (spec.veth) {
    const veth = spec.veth;
    parent.push({
      name: "veth",
      calls: [
        call("unshare", "CLONE_NEWNET"),
        call("socket", "AF_NETLINK", "SOCK_RAW", "NETLINK_ROUTE"),
        call("sendmsg", "RTM_NEWLINK veth", veth.name ?? "<host-end>", "eth0"),
        call("sendmsg", "RTM_NEWADDR", veth.host ?? "<host-cidr>", veth.guest ?? "<guest-cidr>"),
      ],
      why: "a network namespace with a veth pair to the host, ready before the child is born",
      run: async () => {
        state.network = await prepareVeth(veth);
        const network = state.network;
        report.parent(`veth ${network.hostName} ${network.host} <-> eth0 ${network.guest}`);
      },
      undo: () => state.network && removeVeth(state.network),
    });
    let restore: (() => void) | undefined;
    parent.push({
      name: "netns",
      calls: [call("setns", "<veth namespace>", "CLONE_NEWNET")],
      why: "the clone child is born in the thread's network namespace",
      run: () => {
        restore = enterNetwork(state.network!);
      },
      undo: () => restore?.(),
      undoAfterClone: true,
    });
  }
  if (mountPoints.length > 0) {
    cleanup.push({
      name: "mount",
      calls: [...mountPoints].reverse().map((path) => call("rmdir", path)),
      why: "the mount points this launch created go again",
      run: () => removeMountPoints(mountPoints),
    });
  }

  const child: ChildStep[] = [];
  if (report.verbose) {
    child.push({
      name: "getpid",
      calls: [call("getpid")],
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
      calls: [call("getpid")],
      why: "--json announces the child's PIDs",
      run: ({ outerPid }) => {
        state.start = { event: "start", pid: outerPid, pidInside: getpid() };
      },
    });
  }
  if (mapping) child.push(idMapStep(mapping));
  if (options.queueDemo !== undefined) {
    child.push(queueDemoStep(options.queueDemo, () => state.demo!, report));
  }
  if (time) child.push(timeNamespaceStep(time));
  // Read before any chroot, which may leave no /proc to read them from.
  if (options.announceStart) {
    child.push({
      name: "namespaces",
      calls: [call("readlink", "/proc/self/ns/*")],
      why: "--json announces the command's namespaces",
      run: () => {
        state.namespaces = namespacesAtExec();
      },
    });
  }
  const withProc = Boolean(spec.pid && spec.mount);
  if (spec.mount) child.push(privateMountsStep());
  if (jail && pivot) child.push(jailMountStep(jail));
  if (mounts.length) child.push(mountsStep(mounts, jail ?? ""));
  // In a pivot_root jail /proc is mounted before the pivot: once the old root is
  // detached no procfs is visible, and a user namespace may only mount one then.
  if (jail && pivot && withProc) child.push(procStep(`${jail}/proc`));
  if (jail && pivot) child.push(pivotStep(jail, report));
  if (jail && !pivot) child.push(chrootStep(jail, report));
  if (withProc && !(jail && pivot)) child.push(procStep("/proc"));
  if (spec.hostname !== undefined) child.push(hostnameStep(spec.hostname));
  if (spec.noNewPrivs) {
    child.push({
      name: "prctl",
      calls: [call("prctl", "PR_SET_NO_NEW_PRIVS", 1)],
      why: "setuid binaries and file capabilities grant nothing from here on",
      run: () => prctl(PR_SET_NO_NEW_PRIVS, 1),
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
  const announce = () => {
    const inodes = Object.fromEntries(state.namespaces.map((ns) => [ns.type, ns.inode]));
    report.print(`${JSON.stringify({ ...state.start, namespaces: inodes })}\n`);
  };
  return {
    create: create.map(([type]) => type),
    join: [],
    cloneFlags: create.reduce((flags, [, flag]) => flags | flag, 0),
    parent,
    child,
    grandchild: [],
    exec: command === undefined
      ? undefined
      : { command, argv: spec.command, env: commandEnvironment(env, spec.keepEnv) },
    execInGrandchild: false,
    dieWithParent: true,
    beforeExec: options.announceStart ? announce : undefined,
    cleanup,
    report,
    mountPoints,
    mapping,
    userAsked: Boolean(spec.user),
    interruptibleSetup: options.queueDemo !== undefined && (options.forwardSignals ?? false),
  };
}

/** The clone call of a plan, as data (for printing). */
export function cloneCall(plan: Plan): string {
  const flags = plan.cloneFlags | CLONE.VM | CLONE.VFORK | CLONE.PARENT_SETTID;
  return `clone(${flagNames(flags, CLONE, "CLONE_")}|SIGCHLD)`;
}

/** A plan's steps in order as `who: name: call(args)` lines (a debugging aid and test oracle). */
export function describePlan(plan: Plan): string[] {
  const format = (who: string, name: string, calls: { fn: string; args: unknown[] }[]) =>
    calls.length === 0
      ? [`${who}: ${name}`]
      : calls.map((c) =>
        `${who}: ${name}: ${c.fn}(${c.args.map((a) => JSON.stringify(a) ?? "NULL").join(", ")})`
      );
  return [
    ...plan.parent.flatMap((step) => format("parent", step.name, step.calls)),
    `parent: clone: ${cloneCall(plan)}`,
    ...plan.child.flatMap((step) => format("child", step.name, step.calls)),
    ...plan.grandchild.flatMap((step) => format("grandchild", step.name, step.calls)),
    ...(plan.exec
      ? [
        `${plan.execInGrandchild ? "grandchild" : "child"}: exec: execve(${
          JSON.stringify(plan.exec.command)
        }, …)`,
      ]
      : []),
    ...plan.cleanup.flatMap((step) => format("parent", step.name, step.calls)),
  ];
}
