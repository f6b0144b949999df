/**
 * Joining the namespaces of a running process, as `nsenter` does (setns(2)).
 *
 * Every join happens in the clone child, which is its own thread group with
 * its own fs attributes (Deno's threads share theirs, so the parent could not
 * join a mount or user namespace). The user namespace is joined first when
 * the caller is not root (it is what grants the rights to join the rest) and
 * last when it is; joining one makes the command that namespace's root.
 * Joining a mount namespace of a process also takes its root and working
 * directory. A PID namespace joined with `setns` only applies to the
 * joiner's *children*, so then the command runs in a grandchild the child
 * forks (like `nsenter --fork`; see `execInGrandchild` in ffi/clone.ts):
 * this works rootless too, once the container's user namespace is joined.
 * A time namespace cannot be joined by a task that shares its memory (EUSERS),
 * and the clone child shares Deno's: it is joined by that grandchild too, as
 * a checked native step just before exec.
 * @module
 */

import { ChildSetupError } from "../ffi/clone.ts";
import { CLONE } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errors.ts";
import {
  accessible,
  becomeUser,
  close,
  getuid,
  NS_GET_NSTYPE,
  NS_GET_USERNS,
  O_CLOEXEC,
  O_DIRECTORY,
  O_RDONLY,
  open,
  setns,
  X_OK,
} from "../ffi/libc.ts";
import { chdir, chroot, fchdir, ioctl } from "../ffi/files.ts";
import { inodeOf } from "../ffi/mountapi.ts";
import { type PreparedSeccompFilter, setCapabilities, setNoNewPrivs } from "../ffi/contain.ts";
import {
  ambientStep,
  boundingStep,
  capsetCall,
  keepCapabilitiesStep,
  seccompStep,
} from "./credentials.ts";
import { CapabilityError, type CapabilitySets, capabilitySets } from "./capabilities.ts";
import { joinCgroups } from "./cgroupns.ts";
import { commandEnvironment, DEFAULT_PATH } from "./env.ts";
import { NAMESPACE_TYPES, namespacesOf, type NamespaceType } from "./inspect.ts";
import { currentCaller, type JoinedNamespace, type Plan } from "./plan.ts";
import { Reporter } from "./report.ts";
import { runPlan } from "./runner.ts";
import { call, type ChildStep, flagNames } from "./step.ts";
import { LaunchError, type LaunchResult } from "./supervise.ts";
import type { Explanation } from "./explain.ts";

/** CLONE_NEW* value of each namespace type. */
const FLAGS: Record<NamespaceType, number> = {
  cgroup: CLONE.NEWCGROUP,
  ipc: CLONE.NEWIPC,
  mnt: CLONE.NEWNS,
  net: CLONE.NEWNET,
  pid: CLONE.NEWPID,
  time: CLONE.NEWTIME,
  user: CLONE.NEWUSER,
  uts: CLONE.NEWUTS,
};

/** The order the child joins in (user goes first or last, see the module docs). */
const JOIN_ORDER: NamespaceType[] = ["cgroup", "ipc", "uts", "net", "mnt", "pid"];

/**
 * What to run in the target's namespaces.
 *
 * @example
 * ```ts
 * const spec: EnterSpec = { namespaces: ["uts", "net"], command: ["hostname"] };
 * ```
 */
export interface EnterSpec {
  /** The command and its arguments; default: `$SHELL`, else `/bin/sh`. */
  command?: string[];
  /**
   * Which of a PID target's namespaces to join; default: every one that
   * differs from the caller's. Ignored for a namespace-file target.
   */
  namespaces?: NamespaceType[];
  /** Variables added to the clean default environment. */
  env?: Record<string, string>;
  /** Pass the caller's whole environment. */
  keepEnv?: boolean;
  /** The environment exactly, as `KEY=VALUE` (OCI `exec`): replaces the default and `env`. */
  exactEnv?: string[];
  /** The working directory, once inside (OCI `exec --cwd`). */
  cwd?: string;
  /** Who the command runs as, once inside (OCI `exec --user`). */
  user?: { uid: number; gid: number; additionalGids?: number[] };
  /**
   * Exactly these capabilities (names, e.g. `CAP_KILL`), in every set for
   * root, or as ambient ones for another `user` (OCI `exec`, as the
   * container's process got them); default: the caller's.
   */
  capabilities?: string[];
  /** Cgroup directories to join before any namespace (OCI `exec`: the container's). */
  cgroups?: string[];
  /** Set PR_SET_NO_NEW_PRIVS before the command (OCI `exec`). */
  noNewPrivs?: boolean;
  /**
   * A seccomp filter to load (the container's, from lib/contain.ts's
   * `profileSeccompFilter`): last with `noNewPrivs`, else before the
   * capabilities drop.
   */
  seccompFilter?: PreparedSeccompFilter;
  /** Forward SIGTERM/SIGHUP and ignore SIGINT/SIGQUIT while waiting (the CLI does). */
  forwardSignals?: boolean;
  /** Print each step on stderr as it runs, with each call's result (`--trace`). */
  trace?: boolean;
}

/** An open namespace to join (while planning). */
interface Join {
  type: NamespaceType;
  fd: number;
}

function cannot(message: string, cause?: unknown): LaunchError {
  return new LaunchError("enter", message, "setup", { cause });
}

function openOrExplain(path: string, what: string, flags = O_RDONLY | O_CLOEXEC): number {
  try {
    return open(path, flags);
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    const why = error.code === "ENOENT"
      ? "no such process or file"
      : `cannot open it (${error.code}: ${error.description})`;
    throw cannot(`${what}: ${why}`, error);
  }
}

/**
 * Opens the namespaces to join for a PID target (`shown` as the caller gave
 * it: a long one rounds as a number); also notes what was skipped.
 */
function openProcessNamespaces(pid: number, shown: string, spec: EnterSpec): Join[] {
  const wanted = spec.namespaces;
  let theirs;
  try {
    theirs = namespacesOf(pid);
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    const hint = error.code === "EACCES" && getuid() !== 0 ? "; it is not yours: run as root" : "";
    throw cannot(
      error.code === "ENOENT"
        ? `no such process: ${shown}`
        : `process ${shown}: cannot read its namespaces (${error.code}: ${error.description})${hint}`,
      error,
    );
  }
  const ours = new Map(namespacesOf("self").map((entry) => [entry.type, entry.inode]));
  const differs = (type: NamespaceType) =>
    theirs.find((entry) => entry.type === type)?.inode !== ours.get(type);
  // Re-entering one's own user namespace is refused by the kernel (it would
  // regain dropped capabilities); like nsenter, it is skipped.
  const types = (wanted ?? NAMESPACE_TYPES.filter(differs))
    .filter((type) => type !== "user" || differs("user"));
  return types.map((type) => ({
    type,
    fd: openOrExplain(`/proc/${pid}/ns/${type}`, `process ${pid}`),
  }));
}

/**
 * Opens a namespace file (e.g. `/proc/PID/ns/uts` or a bind mount of one).
 * Null for our own user namespace: the kernel refuses to re-enter it and we
 * are in it already, so, as for a PID target, it is skipped.
 */
function openNamespaceFile(path: string): Join | null {
  const fd = openOrExplain(path, path);
  try {
    const flag = ioctl(fd, NS_GET_NSTYPE);
    const type = NAMESPACE_TYPES.find((name) => FLAGS[name] === flag);
    if (!type) throw cannot(`${path}: unknown namespace type ${flag}`);
    if (type === "user" && inodeOf(fd) === ownNamespace("user")) {
      close(fd);
      return null;
    }
    return { type, fd };
  } catch (error) {
    close(fd);
    if (error instanceof SyscallError) throw cannot(`${path}: not a namespace file`, error);
    throw error;
  }
}

/** The inode of the caller's namespace of `type`. */
function ownNamespace(type: NamespaceType): number | undefined {
  return namespacesOf("self").find((entry) => entry.type === type)?.inode;
}

/**
 * Rootless, joining a namespace takes the rights its owning user namespace
 * grants: as the run form implies `-U`, that user namespace is joined too
 * (first) unless it is ours or already among `joins`. Returns how the plan
 * names it, or null when it need not be joined.
 */
function owningUserNamespace(joins: Join[]): string | null {
  if (joins.length === 0 || joins.some((join) => join.type === "user")) return null;
  let owner: number;
  try {
    owner = ioctl(joins[0].fd, NS_GET_USERNS);
  } catch {
    return null; // not allowed to see it: the join itself will say why
  }
  try {
    return inodeOf(owner) === ownNamespace("user") ? null : "<owner of the namespaces>";
  } finally {
    close(owner);
  }
}

/** Child step: joins a namespace of `type` by `fd`; a refusal names the namespace and the reason. */
function joinNamespace(type: NamespaceType, fd: number): void {
  try {
    setns(fd, FLAGS[type]);
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    const hint = error.code === "EPERM" && getuid() !== 0 ? "; it needs root" : "";
    throw new ChildSetupError(
      "enter",
      `cannot join the ${type} namespace (${error.code}: ${error.description})${hint}`,
      "setup",
      error,
    );
  }
}

/**
 * Plans joining the namespaces of a running process (`target` a PID) or the
 * one namespace a namespace file names (`target` a path): which namespaces
 * are joined, in which order, and the child's steps. The namespace files are
 * opened by the plan's first parent step (and closed by its undo); planning
 * itself only reads. Throws a {@link LaunchError} for a target that cannot
 * be entered.
 */
export function planEnter(target: number | string, spec: EnterSpec = {}): Plan {
  const pid = typeof target === "number" || /^\d+$/.test(target) ? Number(target) : null;
  const probe = pid !== null
    ? openProcessNamespaces(pid, String(target), spec)
    : [openNamespaceFile(String(target))].filter((join) => join !== null);
  const rootless = getuid() !== 0;
  // Learn the joins (and the owning user namespace) from these fds, then let
  // them go: the parent's step opens its own when the plan runs.
  let owner: string | null = null;
  try {
    if (rootless) owner = owningUserNamespace(probe);
  } finally {
    for (const join of probe) close(join.fd);
  }
  const source = (type: NamespaceType) => pid !== null ? `/proc/${pid}/ns/${type}` : String(target);
  const joins: JoinedNamespace[] = probe.map((join) => ({
    type: join.type,
    path: source(join.type),
  }));
  if (owner) joins.unshift({ type: "user", path: owner });
  const byType = new Map(joins.map((join) => [join.type, join]));
  const user = byType.get("user");
  const joinOrder = [
    ...(user && rootless ? [user] : []),
    ...JOIN_ORDER.flatMap((type) => byType.has(type) ? [byType.get(type)!] : []),
    ...(user && !rootless ? [user] : []),
  ];
  const withRoot = byType.has("mnt") && pid !== null;
  const fds = new Map<string, number>();
  const openAll = (): void => {
    // the owning user namespace is found from an open namespace of it: last
    for (const join of joins.filter((join) => join.path !== owner)) {
      fds.set(join.path, openOrExplain(join.path, pid !== null ? `process ${pid}` : join.path));
    }
    if (owner) fds.set(owner, ioctl(fds.values().next().value!, NS_GET_USERNS));
    if (withRoot) {
      const flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
      fds.set("root", openOrExplain(`/proc/${pid}/root`, `process ${pid}`, flags));
      fds.set("cwd", openOrExplain(`/proc/${pid}/cwd`, `process ${pid}`, flags));
    }
  };
  const time = byType.get("time");
  const child: ChildStep[] = joinOrder.filter((join) => join !== time).flatMap(
    (join): ChildStep[] => {
      const steps: ChildStep[] = [{
        name: "enter",
        calls: [
          call("setns", `<fd of ${join.path}>`, flagNames(FLAGS[join.type], CLONE, "CLONE_")),
        ],
        why: `join the ${join.type} namespace`,
        run: () => joinNamespace(join.type, fds.get(join.path)!),
      }];
      if (join.type === "mnt" && withRoot) {
        steps.push({
          name: "enter",
          calls: [
            call("fchdir", `<fd of /proc/${pid}/root>`),
            call("chroot", "."),
            call("fchdir", `<fd of /proc/${pid}/cwd>`),
          ],
          why: "take the target's root and working directory too",
          run: () => {
            fchdir(fds.get("root")!);
            chroot(".");
            fchdir(fds.get("cwd")!);
          },
        });
      }
      if (join.type === "user") {
        steps.push({
          name: "enter",
          calls: [call("setresuid", 0, 0, 0), call("setresgid", 0, 0, 0)],
          why: "become the user namespace's root, as nsenter does",
          run: becomeRootIfMapped,
        });
      }
      return steps;
    },
  );
  // ---- OCI exec (issue 18): the container's cgroups, first (their paths are the host's) ----
  const cgroups = spec.cgroups ?? [];
  if (cgroups.length > 0) {
    child.unshift({
      name: "cgroup",
      calls: cgroups.map((dir) => call("write", `${dir}/cgroup.procs`, "0")),
      why: "join the container's cgroups while the host's hierarchies are still in view",
      run: () => joinCgroups(cgroups),
    });
  }
  // ---- OCI exec (issue 18): the process's directory and user, once inside ----
  const cwd = spec.cwd;
  if (cwd !== undefined) {
    child.push({
      name: "chdir",
      calls: [call("chdir", cwd)],
      why: "the directory asked for, in the namespaces joined",
      run: () => chdir(cwd),
    });
  }
  child.push(...credentialSteps(spec));
  // ----
  const command = spec.command?.length ? spec.command : [defaultShell(withRoot ? pid : null)];
  return {
    create: [],
    join: time ? [...joinOrder, time] : joinOrder,
    cloneFlags: 0,
    parent: [{
      name: "enter",
      calls: [
        ...joins.map((join) => ({
          ...join.path === owner
            ? call("ioctl", "<a namespace fd>", "NS_GET_USERNS")
            : call("open", join.path, "O_RDONLY|O_CLOEXEC"),
          returns: `<fd of ${join.path}>`,
        })),
        ...(withRoot ? [`/proc/${pid}/root`, `/proc/${pid}/cwd`] : []).map((path) => ({
          ...call("open", path, "O_RDONLY|O_DIRECTORY|O_CLOEXEC"),
          returns: `<fd of ${path}>`,
        })),
      ],
      why: "hold the namespaces to join",
      run: openAll,
      learnt: () =>
        Object.fromEntries(
          [...fds].map(([key, fd]) => [
            // root and cwd are held under their names, the namespaces under their paths
            `<fd of ${key === "root" || key === "cwd" ? `/proc/${pid}/${key}` : key}>`,
            String(fd),
          ]),
        ),
      undo: () => {
        for (const fd of fds.values()) close(fd);
        fds.clear();
      },
      undoing: {
        name: "enter",
        calls: [
          ...joins.map((join) => join.path),
          ...(withRoot ? [`/proc/${pid}/root`, `/proc/${pid}/cwd`] : []),
        ].map((path) => call("close", `<fd of ${path}>`)),
        why: "the namespaces held are let go once the command has ended",
      },
    }],
    child,
    grandchild: time
      ? [{
        name: "enter",
        calls: [call("setns", `<fd of ${time.path}>`, "CLONE_NEWTIME")],
        why: "a time namespace is joined by a task that shares its memory with nobody",
        native: () => ({
          step: "enter",
          symbol: "setns",
          args: [fds.get(time.path)!, CLONE.NEWTIME],
          what: "the time namespace",
          fds: [fds.get(time.path)!],
        }),
      }]
      : [],
    exec: {
      command: command[0],
      argv: command,
      env: spec.exactEnv ? [...spec.exactEnv] : commandEnvironment(spec.env, spec.keepEnv),
      fallbackPath: DEFAULT_PATH,
    },
    execInGrandchild: byType.has("pid") || time !== undefined,
    dieWithParent: true,
    cleanup: [],
    report: new Reporter(false),
    userAsked: false,
    interruptibleSetup: false,
    stage: "child",
    sync: [],
    request: { spec: { command }, options: {}, caller: currentCaller() },
  };
}

/**
 * Runs a command in the namespaces of a running process (`target` a PID) or
 * in the one namespace a namespace file names (`target` a path), and resolves
 * with how it ended. Rejects with a {@link LaunchError} when a namespace
 * cannot be joined (exit status 125) or the command cannot be run (126, 127).
 *
 * @example
 * ```ts
 * await enter(4242, { command: ["hostname"] }); // the namespaces of PID 4242 that differ from ours
 * await enter("/proc/4242/ns/net", { command: ["cat", "/proc/net/dev"] }); // one namespace, by file
 * ```
 */
export async function enter(target: number | string, spec: EnterSpec = {}): Promise<LaunchResult> {
  const plan = planEnter(target, spec);
  // loaded only for --trace
  const observer = spec.trace ? new (await import("./explain.ts")).Tracer(plan) : undefined;
  return await runPlan(plan, { forwardSignals: spec.forwardSignals, observer });
}

/** What {@link enter} would do, as data, creating and joining nothing (`enter --explain`). */
export async function explainEnter(
  target: number | string,
  spec: EnterSpec = {},
): Promise<Explanation> {
  return (await import("./explain.ts")).explainPlan(planEnter(target, spec));
}

/** `$SHELL` when the command's root (the target's, when `pid` is given) has it, else /bin/sh. */
function defaultShell(pid: number | null): string {
  const shell = Deno.env.get("SHELL");
  if (!shell?.startsWith("/")) return "/bin/sh";
  return accessible(`${pid === null ? "" : `/proc/${pid}/root`}${shell}`, X_OK) ? shell : "/bin/sh";
}

/** After joining a user namespace: become its root, as nsenter does, when 0 is mapped. */
function becomeRootIfMapped(): void {
  try {
    becomeUser(0, 0);
  } catch (error) {
    if (!(error instanceof SyscallError) || error.code !== "EINVAL") throw error;
  }
}

/**
 * The steps that make the entered command's credentials (OCI `exec`): no
 * new privileges, the filter, the bounding set, the user, the capability
 * sets; in the order lib/contain.ts uses for a launch.
 */
function credentialSteps(spec: EnterSpec): ChildStep[] {
  const steps: ChildStep[] = [];
  const asUser = spec.user;
  const uid = asUser?.uid ?? 0;
  let sets: CapabilitySets | undefined;
  if (spec.capabilities !== undefined) {
    try {
      sets = capabilitySets({ base: 0n, add: spec.capabilities }, uid);
    } catch (error) {
      if (error instanceof CapabilityError) throw cannot(error.message, error);
      throw error;
    }
  }
  const filter = spec.seccompFilter;
  if (spec.noNewPrivs) {
    steps.push({
      name: "prctl",
      calls: [call("prctl", "PR_SET_NO_NEW_PRIVS", 1)],
      why: "setuid binaries and file capabilities grant nothing from here on",
      run: setNoNewPrivs,
    });
  }
  if (filter && !spec.noNewPrivs) {
    steps.push(
      seccompStep(filter, "without no_new_privs the filter needs CAP_SYS_ADMIN: load it now"),
    );
  }
  if (sets) {
    const keep = sets;
    if (uid !== 0) steps.push(keepCapabilitiesStep());
    steps.push(boundingStep(keep.bounding));
  }
  if (asUser !== undefined) {
    const groups = asUser.additionalGids ?? [];
    steps.push({
      name: "user",
      calls: [
        call("setgroups", groups.length, `[${groups.join(", ")}]`),
        call("setresgid", asUser.gid, asUser.gid, asUser.gid),
        call("setresuid", asUser.uid, asUser.uid, asUser.uid),
      ],
      why: "the user asked for",
      run: () => void becomeUser(asUser.uid, asUser.gid, groups),
    });
  }
  if (sets) {
    const keep = sets;
    steps.push({
      name: "capset",
      calls: [capsetCall(keep)],
      why: "the sets that pass exec as asked",
      run: () => setCapabilities(keep),
    });
    if (uid !== 0) steps.push(ambientStep(keep.ambient));
  }
  if (filter && spec.noNewPrivs) steps.push(seccompStep(filter, "the filter, last before execve"));
  return steps;
}
