/**
 * Resource limits and the usage report of one launch, on cgroup v1 or v2
 * (the hierarchy mechanics are in `lib/cgroupfs.ts`).
 *
 * **Options to files**, per version (v1 | v2):
 * - memory: `memory.limit_in_bytes` | `memory.max`.
 * - memory plus swap (`--memory-swap`, docker's meaning: the total; default
 *   equal to the memory limit, so no swap and a limit means the same on a
 *   machine with swap as on one without): `memory.memsw.limit_in_bytes`
 *   where the kernel accounts swap (else, for "no swap", `memory.swappiness`
 *   0; a total above the memory limit is refused there) | `memory.swap.max`
 *   = total − memory (skipped only when the kernel has no swap at all).
 * - pids: `pids.max` | `pids.max`.
 * - CPUs (`--cpus 0.5`): `cpu.cfs_period_us` 100000 and `cpu.cfs_quota_us`
 *   50000 | `cpu.max` "50000 100000".
 * - cpuset: `cpuset.cpus` (v1 also `cpuset.mems`, copied from the parent,
 *   as is `cpuset.cpus` when not given: a new v1 cpuset is empty) |
 *   `cpuset.cpus`.
 * - hugetlb, per page size: `hugetlb.2MB.limit_in_bytes` | `hugetlb.2MB.max`.
 *
 * **Usage**, read from the launch's own cgroups: peak memory
 * (`memory.max_usage_in_bytes` | `memory.peak`, Linux 5.19+), CPU total,
 * user and system (`cpuacct.usage`, `cpuacct.usage_user`, `cpuacct.usage_sys`
 * in ns | `cpu.stat` usage_usec, user_usec, system_usec, kept by every v2
 * cgroup even without the cpu controller), OOM kills (`memory.oom_control`
 * oom_kill, Linux 4.13+ | `memory.events` oom_kill; `memory.failcnt` |
 * `memory.events` max count hits of the limit, which reclaim may absorb, so
 * they are reported apart and never taken for kills; Linux 6.18 here leaves
 * the v1 failcnt at 0 even across an OOM kill), peak pids (`pids.peak`,
 * where the kernel keeps it) and fork refusals (`pids.events` max), and CPU
 * throttling (`cpu.stat` nr_throttled, throttled_time ns | throttled_usec).
 * An OOM kill is known only from these counters, never guessed from an exit
 * status of 137; where the kernel does not count them, `oomKills` is
 * undefined and {@link LaunchCgroup.oomKilled} false.
 *
 * **CPU time limits.** {@link LaunchCgroup.cpuTimeMicros} is the cgroup's
 * total CPU time (every process that ever ran in it), so a fork loop cannot
 * evade it as it does RLIMIT_CPU; the caller polls it and kills.
 * @module
 */

import {
  CgroupError,
  type CgroupLayout,
  cgroupLayout,
  type CgroupNode,
  type CgroupOwner,
  CgroupSet,
  type CgroupWrite,
  createCgroupSet,
  currentOwner,
  type Hierarchy,
  hierarchyOf,
  type KillMethod,
  type NodeRequest,
  parseFlatKeyed,
  parseSingleValue,
  readCgroupFile,
} from "./cgroupfs.ts";
import { getuid } from "../ffi/libc.ts";

export * from "./limit_values.ts";
import { cpuQuota, type Limits, parseCpuset, validateLimits } from "./limit_values.ts";

// ------------------------------------------------------------ limits to files

/** One file a limit writes, in the hierarchy of `controller`. */
export interface LimitWrite extends CgroupWrite {
  /** The controller whose hierarchy holds the file. */
  controller: string;
}

/**
 * The files to write for `limits`, in order (pure): `version(controller)`
 * says where each controller is. See the module notes for the table.
 */
export function limitWrites(limits: Limits, version: (controller: string) => 1 | 2): LimitWrite[] {
  const writes: LimitWrite[] = [];
  const add = (controller: string, file: string, value: string, extra: Partial<LimitWrite> = {}) =>
    writes.push({ controller, file, value, ...extra });
  if (limits.memory !== undefined) {
    const total = limits.memorySwap ?? limits.memory;
    const noSwap = total === limits.memory;
    if (version("memory") === 1) {
      add("memory", "memory.limit_in_bytes", String(limits.memory));
      add("memory", "memory.memsw.limit_in_bytes", String(total), { optional: noSwap });
      if (noSwap) {
        add("memory", "memory.swappiness", "0", { ifMissing: "memory.memsw.limit_in_bytes" });
      }
    } else {
      add("memory", "memory.max", String(limits.memory));
      add("memory", "memory.swap.max", String(total - limits.memory), { optional: noSwap });
    }
  }
  if (limits.pids !== undefined) add("pids", "pids.max", String(limits.pids));
  if (limits.cpus !== undefined) {
    const { quotaUs, periodUs } = cpuQuota(limits.cpus);
    if (version("cpu") === 1) {
      add("cpu", "cpu.cfs_period_us", String(periodUs));
      add("cpu", "cpu.cfs_quota_us", String(quotaUs));
    } else {
      add("cpu", "cpu.max", `${quotaUs} ${periodUs}`);
    }
  }
  if (limits.cpuset !== undefined) add("cpuset", "cpuset.cpus", parseCpuset(limits.cpuset));
  for (const [size, bytes] of Object.entries(limits.hugetlb ?? {})) {
    const file = version("hugetlb") === 1
      ? `hugetlb.${size}.limit_in_bytes`
      : `hugetlb.${size}.max`;
    add("hugetlb", file, String(bytes));
  }
  return writes;
}

/** The controllers a launch with `limits` needs a cgroup of (CPU accounting is `cpuacct`). */
export function controllersFor(limits: Limits): string[] {
  const needed = new Set<string>();
  if (limits.memory !== undefined || limits.accounting) needed.add("memory");
  if (limits.pids !== undefined || limits.accounting) needed.add("pids");
  if (limits.cpus !== undefined) needed.add("cpu");
  if (limits.accounting) needed.add("cpuacct");
  if (limits.cpuset !== undefined) needed.add("cpuset");
  if (Object.keys(limits.hugetlb ?? {}).length > 0) needed.add("hugetlb");
  return [...needed];
}

/**
 * The cgroups to make for `limits` in `layout` (one request per hierarchy,
 * containment first: the v2 one where mounted, else the v1 freezer), with
 * parent values filled in; a controller a limit needs and found nowhere is
 * refused by name (one wanted only for accounting is left out, as is, for
 * a user other than root (`uid`), one on v1, which is never delegated).
 */
export function planRequests(
  limits: Limits,
  layout: CgroupLayout,
  uid: number = getuid(),
): NodeRequest[] {
  const requests: NodeRequest[] = [];
  const requestFor = (hierarchy: Hierarchy): NodeRequest => {
    let request = requests.find((r) => r.hierarchy.device === hierarchy.device);
    if (!request) requests.push(request = { hierarchy, enable: [], writes: [] });
    return request;
  };
  const containment = layout.unified ?? hierarchyOf(layout, "freezer");
  if (containment) requestFor(containment);
  const where = new Map<string, Hierarchy>();
  // Accounting alone takes what is there: a missing controller only leaves a field out.
  const required = controllersFor({ ...limits, accounting: false });
  for (const controller of controllersFor(limits)) {
    // v2 keeps CPU time in every cgroup's cpu.stat: no controller needed.
    let hierarchy = hierarchyOf(layout, controller) ??
      (controller === "cpuacct" ? layout.unified : undefined);
    if (uid !== 0 && hierarchy?.version === 1 && !required.includes(controller)) {
      hierarchy = controller === "cpuacct" ? layout.unified : undefined;
    }
    if (!hierarchy && !required.includes(controller)) continue;
    if (!hierarchy) {
      throw new CgroupError(
        "detect",
        `the ${controller} controller is not available (cgroups ${layout.mode}: ` +
          `not mounted as v1, nor offered in the caller's v2 cgroup.controllers)`,
      );
    }
    where.set(controller, hierarchy);
    const request = requestFor(hierarchy);
    if (hierarchy.version === 2 && controller !== "cpuacct") request.enable!.push(controller);
  }
  for (const write of limitWrites(limits, (c) => where.get(c)!.version)) {
    const { controller: _, ...cgroupWrite } = write;
    requestFor(where.get(write.controller)!).writes!.push(cgroupWrite);
  }
  // A new v1 cpuset (also one co-mounted with another controller) has no CPUs
  // and no memory nodes, and refuses tasks until given some: copy the parent's.
  for (const request of requests) {
    const { hierarchy, writes } = request;
    if (hierarchy.version !== 1 || !hierarchy.controllers.includes("cpuset")) continue;
    const parent = (file: string) => readCgroupFile(`${hierarchy.callerDir}/${file}`).trim();
    if (!writes!.some((w) => w.file === "cpuset.cpus")) {
      writes!.unshift({ file: "cpuset.cpus", value: parent("cpuset.cpus") });
    }
    writes!.push({ file: "cpuset.mems", value: parent("cpuset.mems") });
  }
  return requests;
}

// -------------------------------------------------------------------- usage

/**
 * What a launch used, from its cgroups; a field is absent when the kernel
 * does not keep it or no cgroup of that kind was made.
 */
export interface CgroupUsage {
  /** Peak memory in bytes. */
  peakMemoryBytes?: number;
  /** Total CPU time in µs. */
  cpuMicros?: number;
  /** User CPU time in µs. */
  userCpuMicros?: number;
  /** System CPU time in µs. */
  systemCpuMicros?: number;
  /** Processes killed by the OOM killer in the cgroup. */
  oomKills?: number;
  /** Times memory use hit the limit (v1 `memory.failcnt`, v2 `memory.events` max): not kills. */
  memoryLimitHits?: number;
  /** The most processes (and threads) at once. */
  peakPids?: number;
  /**
   * `pids.events` max: forks refused in the cgroup (v1, Linux 6.12+: whichever
   * limit refused them, its own or an ancestor's) or times its own limit was
   * hit (v2).
   */
  pidsLimitHits?: number;
  /** CFS periods in which the cgroup was throttled. */
  throttledPeriods?: number;
  /** Time spent throttled, µs. */
  throttledMicros?: number;
}

/**
 * The usage report from a reader of the launch's cgroup files (pure):
 * `read(file)` gives a file's text, or undefined when there is none.
 */
export function usageFrom(read: (file: string) => string | undefined): CgroupUsage {
  const usage: CgroupUsage = {};
  const single = (file: string) => {
    const text = read(file);
    const value = text === undefined ? undefined : parseSingleValue(text);
    return typeof value === "number" ? value : undefined;
  };
  const keyed = (file: string) => {
    const text = read(file);
    return text === undefined ? undefined : parseFlatKeyed(text);
  };
  const set = <K extends keyof CgroupUsage>(key: K, value: number | undefined) => {
    if (value !== undefined && Number.isFinite(value)) usage[key] = value;
  };
  set("peakMemoryBytes", single("memory.peak") ?? single("memory.max_usage_in_bytes"));
  const cpuacct = single("cpuacct.usage");
  const cpuStat = keyed("cpu.stat") ?? {};
  if (cpuacct !== undefined) {
    set("cpuMicros", Math.round(cpuacct / 1000));
    const user = single("cpuacct.usage_user"), system = single("cpuacct.usage_sys");
    set("userCpuMicros", user === undefined ? undefined : Math.round(user / 1000));
    set("systemCpuMicros", system === undefined ? undefined : Math.round(system / 1000));
  } else {
    set("cpuMicros", cpuStat.usage_usec);
    set("userCpuMicros", cpuStat.user_usec);
    set("systemCpuMicros", cpuStat.system_usec);
  }
  const events = keyed("memory.events");
  set("oomKills", (events ?? keyed("memory.oom_control"))?.oom_kill);
  set("memoryLimitHits", events?.max ?? single("memory.failcnt"));
  set("peakPids", single("pids.peak"));
  set("pidsLimitHits", keyed("pids.events")?.max);
  set("throttledPeriods", cpuStat.nr_throttled);
  set(
    "throttledMicros",
    cpuStat.throttled_usec ??
      (cpuStat.throttled_time === undefined
        ? undefined
        : Math.round(cpuStat.throttled_time / 1000)),
  );
  return usage;
}

/** Counter files only one cgroup version has (not even looked for in the other: a launch reads a dozen). */
const ONLY_IN: Record<string, 1 | 2> = {
  "memory.peak": 2,
  "memory.events": 2,
  "memory.max_usage_in_bytes": 1,
  "memory.oom_control": 1,
  "memory.failcnt": 1,
  "cpuacct.usage": 1,
  "cpuacct.usage_user": 1,
  "cpuacct.usage_sys": 1,
};

/** Whether a cgroup of `version` may have `file`. */
function versionHas(version: 1 | 2, file: string): boolean {
  return (ONLY_IN[file] ?? version) === version;
}

/**
 * The cgroups of one launch with their limits in place: join, kill,
 * remove, read usage. Made by {@link createLaunchCgroup}. The counters
 * outlive the processes: read {@link LaunchCgroup.usage} after the command
 * ended (and after {@link LaunchCgroup.killAll}), before
 * {@link LaunchCgroup.remove}.
 */
export class LaunchCgroup {
  /** The cgroup set underneath. */
  readonly set: CgroupSet;
  /** The limits it was made with. */
  readonly limits: Readonly<Limits>;

  /** Wraps a made set (see {@link createLaunchCgroup}). */
  constructor(set: CgroupSet, limits: Limits) {
    this.set = set;
    this.limits = limits;
  }

  /** The `cgroup.procs` files a child writes `0` to in order to join itself. */
  procsFiles(): string[] {
    return this.set.procsFiles();
  }

  /** Moves the calling process into the launch's cgroups (a child, just before exec). */
  joinSelf(): void {
    this.set.joinSelf();
  }

  /** Moves process `pid` into the launch's cgroups. */
  join(pid: number): void {
    this.set.join(pid);
  }

  /** Kills every process of the launch and waits until none is left (see {@link CgroupSet.killAll}). */
  killAll(method?: KillMethod): Promise<void> {
    return this.set.killAll(method);
  }

  /** Removes the launch's cgroups (idempotent). */
  remove(): Promise<void> {
    return this.set.remove();
  }

  /** The node whose directory holds `file`: by controller prefix, else v2 core files. */
  #nodeOf(file: string): CgroupNode | undefined {
    const controller = file.slice(0, file.indexOf("."));
    return this.set.nodeFor(controller) ??
      (controller === "cgroup" || file === "cpu.stat" ? this.set.unified : undefined);
  }

  /** A file of the launch's cgroups, or undefined when none of them has it. */
  read(file: string): string | undefined {
    const node = this.#nodeOf(file);
    if (!node || !versionHas(node.hierarchy.version, file)) return undefined;
    try {
      return readCgroupFile(`${node.dir}/${file}`);
    } catch (error) {
      if (error instanceof CgroupError && error.code === "ENOENT") return undefined;
      throw error;
    }
  }

  /** What the launch used so far (see {@link CgroupUsage}). */
  usage(): CgroupUsage {
    return usageFrom((file) => this.read(file));
  }

  /** Whether the OOM killer killed a process of the launch, from the cgroup's own counter. */
  oomKilled(): boolean {
    return (this.usage().oomKills ?? 0) > 0;
  }

  /**
   * The launch's total CPU time so far in µs (every process that ran in
   * it); undefined when no CPU accounting cgroup was made (ask for
   * `accounting`).
   */
  cpuTimeMicros(): number | undefined {
    const cpuacct = this.read("cpuacct.usage");
    if (cpuacct !== undefined) {
      const ns = parseSingleValue(cpuacct);
      return typeof ns === "number" ? Math.round(ns / 1000) : undefined;
    }
    const stat = this.read("cpu.stat");
    return stat === undefined ? undefined : parseFlatKeyed(stat).usage_usec;
  }
}

/**
 * Makes the cgroups of one launch under the caller's own, with `limits`
 * written; throws a {@link LimitError} for bad limits and a
 * {@link CgroupError} naming the step and file otherwise (rootless without
 * a delegated subtree: step "delegation", with what to do).
 *
 * @example
 * ```ts
 * const cgroup = await createLaunchCgroup({ memory: parseSize("64M"), pids: 50 });
 * try {
 *   // child: cgroup.joinSelf() before exec; parent: wait…
 *   await cgroup.killAll();
 *   console.log(cgroup.usage(), cgroup.oomKilled());
 * } finally {
 *   await cgroup.killAll();
 *   await cgroup.remove();
 * }
 * ```
 */
export async function createLaunchCgroup(
  limits: Limits,
  owner: CgroupOwner = currentOwner(),
  layout: CgroupLayout = cgroupLayout(),
): Promise<LaunchCgroup> {
  validateLimits(limits);
  const requests = planRequests(limits, layout);
  if (requests.length === 0) {
    throw new CgroupError("detect", "no cgroup hierarchy is mounted (see /proc/self/mountinfo)");
  }
  return new LaunchCgroup(await createCgroupSet(requests, owner), limits);
}
