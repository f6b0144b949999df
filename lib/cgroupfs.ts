/**
 * The cgroup file system (cgroups(7)): finding the hierarchies, and making,
 * joining, emptying and removing the cgroups of one launch. What to write
 * into them for a limit, and the usage report, are in `lib/limits.ts`; the
 * cgroup *namespace* is `lib/cgroup.ts`.
 *
 * **Detection.** `/proc/self/mountinfo` gives the cgroup mounts (`cgroup2`:
 * the unified v2 hierarchy; `cgroup` with controller names in its super
 * options: one v1 hierarchy, possibly co-mounted such as `cpu,cpuacct`;
 * `name=systemd` ones hold no controller and are never used), and
 * `/proc/self/cgroup` the caller's cgroup in each. The machine is "v2" (only
 * a unified mount), "v1" (only v1 controller mounts) or "hybrid" (both: a
 * controller bound to a v1 hierarchy is absent from v2, e.g. here memory,
 * pids, cpu, cpuacct, cpuset, freezer on v1 and only hugetlb on v2). A
 * controller is looked up where it is: its v1 hierarchy, else the unified
 * one if the caller's v2 cgroup lists it in `cgroup.controllers`.
 *
 * **Where.** Each launch gets one cgroup *under the caller's own cgroup* in
 * every hierarchy it needs, so the limits the caller is under still bind it.
 * Its name is `invoke_ns-<PID>-<start time>-<n>`: the tool's PID, that
 * process's start time in clock ticks (`/proc/PID/stat` field 22) and a
 * per-process serial, so `ls` shows whose it is and {@link sweepOrphans}
 * can tell a dead owner (no such PID, or one with another start time: a
 * reused PID) from a live one. Every set also has a *containment* cgroup:
 * the v2 one where a unified hierarchy is mounted (`cgroup.kill`,
 * `cgroup.events` populated), else the v1 freezer, so that every process of
 * a launch can be found and killed even without a limit.
 *
 * **v2's no-internal-processes rule.** A controller is enabled for the new
 * cgroup by writing `+name` to the caller's `cgroup.subtree_control`, which a
 * non-root cgroup refuses (EBUSY) while it holds processes. The choice here
 * is the leaf move (nsjail's `NSJAIL_SELF.<pid>` in its cgroup2.cc does the
 * same): when the only process in the caller's cgroup is this one, it moves
 * itself into a leaf `invoke_ns-<PID>-<start>-supervisor` beside the launch
 * cgroups and enables the controllers. The leaf is kept while the process
 * lives (a process cannot go back into a cgroup with controllers enabled)
 * and, unlike nsjail's, swept once its owner is dead and it is empty. When
 * other processes share the caller's cgroup (a login shell's session
 * scope), moving them would change someone else's accounting, so it refuses
 * and says to start the tool in a scope of its own (`systemd-run --scope -p
 * Delegate=yes`). A controller missing from the
 * caller's own `cgroup.controllers` is refused by name (enabling it above the
 * caller's cgroup belongs to whoever manages that tree, systemd here). The
 * root cgroup is exempt from the rule; enabling a controller there is left
 * in place (others may use it meanwhile; disabling it would yank it from
 * them).
 *
 * **v1 specifics.** A new cpuset cgroup has empty `cpuset.cpus` and
 * `cpuset.mems` and refuses tasks: both are copied from the parent (or set
 * from the limit). Joining writes the PID to `cgroup.procs` (the whole
 * thread group) of each hierarchy.
 *
 * **Rootless.** v1 hierarchies are never delegated to users: a limit that
 * needs one is refused. On v2, the caller's cgroup must be writable by the
 * user (a delegated subtree, e.g. a `systemd-run --user --scope -p
 * Delegate=yes` scope); otherwise one error says so and what to run.
 *
 * **Killing.** v2: write 1 to `cgroup.kill` (Linux 5.14+; before that,
 * `cgroup.freeze`, SIGKILL each, thaw). v1: freeze (`freezer.state` FROZEN),
 * SIGKILL every PID in `cgroup.procs`, thaw; frozen processes cannot fork,
 * so a fork loop cannot outrun it. Without a freezer, SIGKILL each PID.
 * Whichever, repeated until every cgroup of the set is empty.
 *
 * **Safety.** cgroupfs is root-owned and not user-writable (a delegated
 * subtree is the user's own, and cgroupfs has no symlinks), so there is no
 * path race to guard against there; but every hierarchy's directory is
 * checked to be on the cgroup mount's own device (statx), so a symlink
 * never leads out of it, and cgroup paths with `.` or `..` components (seen
 * from outside a cgroup namespace) are not used. All I/O goes through
 * `ffi/libc.ts` (Deno's file API asks for --allow-all under /sys and
 * /proc/self).
 * @module
 */

import { processStat } from "./procstat.ts";
import { SIGNALS } from "../ffi/constants.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { accessible, getpid, getuid, kill, readFile, W_OK, writeFile } from "../ffi/libc.ts";
import { listDirectory, mkdir, rmdir } from "../ffi/files.ts";
import { deviceOf } from "../ffi/mountapi.ts";

/** The prefix of every cgroup the tool makes. */
export const CGROUP_PREFIX = "invoke_ns";

/**
 * A cgroup step that failed: `step` names it (`"mkdir"`, `"write"`,
 * `"read"`, `"rmdir"`, `"kill"`, `"detect"`, `"delegation"`), `path` the
 * file, `code` the errno name when a call failed.
 *
 * @example
 * ```ts
 * // "cgroup: write /sys/fs/cgroup/memory/…/memory.limit_in_bytes: EBUSY (Device or resource busy)"
 * ```
 */
export class CgroupError extends Error {
  /** The step that failed. */
  readonly step: string;
  /** The cgroup file or directory, when there is one. */
  readonly path?: string;
  /** The errno name, e.g. `"EBUSY"`, when a call failed. */
  readonly code?: string;

  /** Builds the error; `detail` is what went wrong. */
  constructor(step: string, detail: string, path?: string, code?: string, options?: ErrorOptions) {
    super(`cgroup: ${step}${path ? ` ${path}` : ""}: ${detail}`, options);
    this.name = "CgroupError";
    this.step = step;
    this.path = path;
    this.code = code;
  }
}

function failed(step: string, path: string, error: unknown): CgroupError {
  if (error instanceof SyscallError) {
    return new CgroupError(step, `${error.code} (${error.description})`, path, error.code, {
      cause: error,
    });
  }
  return new CgroupError(step, String(error), path, undefined, { cause: error });
}

// ------------------------------------------------------------------ parsing

/** One line of /proc/self/mountinfo (proc(5)), the fields the tool uses. */
export interface MountEntry {
  /** `major:minor` of the file system. */
  device: string;
  /** The path inside the file system that is mounted (`/` unless a subtree is). */
  root: string;
  /** Where it is mounted. */
  mountPoint: string;
  /** The file system type, e.g. `"cgroup2"`. */
  fsType: string;
  /** The super-block options, e.g. `["rw", "memory"]`. */
  superOptions: string[];
}

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses /proc/self/mountinfo; lines that do not have the documented shape are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-", 6);
    if (separator === -1 || fields.length < separator + 4) continue;
    entries.push({
      device: fields[2],
      root: unescapeMountPath(fields[3]),
      mountPoint: unescapeMountPath(fields[4]),
      fsType: fields[separator + 1],
      superOptions: fields[separator + 3].split(","),
    });
  }
  return entries;
}

/** One line of /proc/PID/cgroup: the hierarchy, its controllers and the cgroup's path in it. */
export interface CgroupMembership {
  /** The hierarchy ID; 0 for the unified (v2) one. */
  hierarchyId: number;
  /** Its controllers (`["cpu", "cpuacct"]`, `["name=systemd"]`); empty for v2. */
  controllers: string[];
  /** The cgroup's path from the hierarchy's root, e.g. `"/user.slice"`. */
  path: string;
}

/** Parses /proc/PID/cgroup (`4:memory:/a/b`, `0::/`); a path may itself contain colons. */
export function parseProcCgroup(text: string): CgroupMembership[] {
  const found: CgroupMembership[] = [];
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first <= 0 || second === -1 || !/^\d+$/.test(line.slice(0, first))) continue;
    const list = line.slice(first + 1, second);
    found.push({
      hierarchyId: Number(line.slice(0, first)),
      controllers: list === "" ? [] : list.split(","),
      path: line.slice(second + 1),
    });
  }
  return found;
}

/**
 * Parses a flat-keyed cgroup file (`key value` lines: `memory.stat`,
 * `cpu.stat`, `memory.events`, `pids.events`, v1 `memory.oom_control`,
 * `cpuacct.stat`) into numbers; lines without a numeric value are skipped.
 */
export function parseFlatKeyed(text: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\S+) (\d+)$/.exec(line.trim());
    if (match) values[match[1]] = Number(match[2]);
  }
  return values;
}

/** Parses a single-value cgroup file (`memory.peak`, `cpuacct.usage`, `pids.max`): a number or `"max"`. */
export function parseSingleValue(text: string): number | "max" | undefined {
  const value = text.trim();
  if (value === "max") return "max";
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

// ---------------------------------------------------------------- detection

/** One cgroup hierarchy, and the caller's cgroup in it. */
export interface Hierarchy {
  /** 1 for a v1 hierarchy, 2 for the unified one. */
  version: 1 | 2;
  /** v1: the controllers bound to it; v2: those the caller's cgroup offers (`cgroup.controllers`). */
  controllers: string[];
  /** Where it is mounted, e.g. `/sys/fs/cgroup/memory`. */
  mountPoint: string;
  /** The mount's device (`major:minor`). */
  device: string;
  /** The directory of the caller's cgroup, e.g. `/sys/fs/cgroup/memory/user.slice`. */
  callerDir: string;
}

/** The cgroup hierarchies of this machine, as the caller sees them. */
export interface CgroupLayout {
  /** "v2" (unified only), "v1" (v1 controllers only), "hybrid" (both), "none". */
  mode: "v2" | "v1" | "hybrid" | "none";
  /** The unified hierarchy, if mounted. */
  unified?: Hierarchy;
  /** The v1 hierarchies with controllers (named ones like `name=systemd` left out). */
  v1: Hierarchy[];
}

/** The controllers a v1 mount's super options may name (the rest are options like `xattr`). */
const V1_CONTROLLERS = [
  "cpuset",
  "cpu",
  "cpuacct",
  "blkio",
  "io",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "perf_event",
  "net_prio",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
  "debug",
];

/** The path of `cgroupPath` relative to a mount of `mountRoot`, or undefined when outside it or unusable. */
function relativeCgroupPath(cgroupPath: string, mountRoot: string): string | undefined {
  const parts = cgroupPath.split("/").filter((part) => part !== "");
  if (!cgroupPath.startsWith("/") || parts.some((part) => part === "." || part === "..")) {
    return undefined;
  }
  const rootParts = mountRoot.split("/").filter((part) => part !== "");
  if (rootParts.some((part, i) => parts[i] !== part)) return undefined;
  const rest = parts.slice(rootParts.length);
  return rest.length === 0 ? "" : `/${rest.join("/")}`;
}

/**
 * Builds the layout from parsed mountinfo and /proc/self/cgroup (pure);
 * `v2Controllers(dir)` reads the caller's v2 `cgroup.controllers`. A
 * hierarchy is left out when the caller's cgroup lies outside its mount
 * (e.g. seen from inside a cgroup namespace mounted elsewhere).
 */
export function layoutOf(
  mounts: MountEntry[],
  memberships: CgroupMembership[],
  v2Controllers: (dir: string) => string[],
): CgroupLayout {
  const v1: Hierarchy[] = [];
  let unified: Hierarchy | undefined;
  let v1Mounted = false;
  for (const mount of mounts) {
    if (mount.fsType === "cgroup2") {
      if (unified) continue;
      const member = memberships.find((m) => m.hierarchyId === 0);
      const relative = member && relativeCgroupPath(member.path, mount.root);
      if (relative === undefined) continue;
      const callerDir = mount.mountPoint + relative;
      unified = {
        version: 2,
        controllers: v2Controllers(callerDir),
        mountPoint: mount.mountPoint,
        device: mount.device,
        callerDir,
      };
    } else if (mount.fsType === "cgroup") {
      const controllers = mount.superOptions.filter((option) => V1_CONTROLLERS.includes(option));
      if (controllers.length === 0) continue;
      v1Mounted = true;
      if (v1.some((h) => h.device === mount.device)) continue;
      const member = memberships.find((m) =>
        m.hierarchyId !== 0 && controllers.every((c) => m.controllers.includes(c))
      );
      const relative = member && relativeCgroupPath(member.path, mount.root);
      if (relative === undefined) continue;
      v1.push({
        version: 1,
        controllers,
        mountPoint: mount.mountPoint,
        device: mount.device,
        callerDir: mount.mountPoint + relative,
      });
    }
  }
  const mode = unified ? (v1Mounted ? "hybrid" : "v2") : (v1Mounted ? "v1" : "none");
  return { mode, unified, v1 };
}

/** Reads a cgroup or /proc file, as a {@link CgroupError} on failure. */
export function readCgroupFile(path: string): string {
  try {
    return readFile(path);
  } catch (error) {
    throw failed("read", path, error);
  }
}

/** Writes a cgroup file, as a {@link CgroupError} on failure. */
export function writeCgroupFile(path: string, value: string): void {
  try {
    writeFile(path, value);
  } catch (error) {
    throw failed("write", path, error);
  }
}

/** Whether a cgroup file exists (and can be read by the caller). */
export function cgroupFileExists(path: string): boolean {
  return accessible(path, 0);
}

/**
 * The hierarchies as the calling process sees them now. Each caller
 * directory is checked to be on its mount's device (so no symlink leads
 * elsewhere); one that is not, or is missing, is left out.
 */
export function detectCgroups(): CgroupLayout {
  const layout = layoutOf(
    parseMountinfo(readCgroupFile("/proc/self/mountinfo")),
    parseProcCgroup(readCgroupFile("/proc/self/cgroup")),
    (dir) => {
      try {
        return readFile(`${dir}/cgroup.controllers`).trim().split(/\s+/).filter(Boolean);
      } catch {
        return [];
      }
    },
  );
  const onItsMount = (hierarchy: Hierarchy) => {
    try {
      return deviceOf(hierarchy.callerDir) === hierarchy.device;
    } catch {
      return false;
    }
  };
  const unified = layout.unified && onItsMount(layout.unified) ? layout.unified : undefined;
  return { mode: layout.mode, unified, v1: layout.v1.filter(onItsMount) };
}

let detected: CgroupLayout | undefined;

/**
 * The layout detected on first use and kept for the life of the process, so
 * the caller's cgroup stays the one it started in even after a move into a
 * supervisor leaf (see the module notes).
 */
export function cgroupLayout(): CgroupLayout {
  return detected ??= detectCgroups();
}

/** The hierarchy that holds `controller`: its v1 one, else the unified one if it offers it. */
export function hierarchyOf(layout: CgroupLayout, controller: string): Hierarchy | undefined {
  return layout.v1.find((h) => h.controllers.includes(controller)) ??
    (layout.unified?.controllers.includes(controller) ? layout.unified : undefined);
}

// -------------------------------------------------------------------- owners

/** Who made a cgroup: a PID and that process's start time (clock ticks since boot). */
export interface CgroupOwner {
  /** The tool's PID. */
  pid: number;
  /** Field 22 of /proc/PID/stat. */
  startTime: number;
}

/** The start time of process `pid` (field 22 of /proc/PID/stat), or undefined when it does not exist. */
export function processStartTime(pid: number): number | undefined {
  return processStat(pid)?.startTime;
}

let self: CgroupOwner | undefined;

/** The calling process as a {@link CgroupOwner} (read once per process). */
export function currentOwner(): CgroupOwner {
  const pid = getpid();
  if (self?.pid === pid) return self;
  const startTime = processStartTime(pid);
  if (startTime === undefined) {
    throw new CgroupError("read", "no start time for this process", `/proc/${pid}/stat`);
  }
  return self = { pid, startTime };
}

/** The name of an owner's cgroup: `invoke_ns-<pid>-<start>-<suffix>`. */
export function cgroupName(owner: CgroupOwner, suffix: string | number): string {
  return `${CGROUP_PREFIX}-${owner.pid}-${owner.startTime}-${suffix}`;
}

/** The owner named in a cgroup name made by {@link cgroupName}, or undefined for any other name. */
export function ownerOf(name: string): CgroupOwner | undefined {
  const match = new RegExp(`^${CGROUP_PREFIX}-(\\d+)-(\\d+)-[a-z0-9]+$`).exec(name);
  return match ? { pid: Number(match[1]), startTime: Number(match[2]) } : undefined;
}

/** Whether `owner` still runs: its PID exists with the same start time. */
export function ownerAlive(owner: CgroupOwner): boolean {
  return processStartTime(owner.pid) === owner.startTime;
}

// ---------------------------------------------------------------- mechanics

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The PIDs in cgroup directory `dir` (its `cgroup.procs`); none when it is gone. */
export function pidsIn(dir: string): number[] {
  let text: string;
  try {
    text = readFile(`${dir}/cgroup.procs`);
  } catch (error) {
    if (error instanceof SyscallError && error.errno === Errno.ENOENT) return [];
    throw failed("read", `${dir}/cgroup.procs`, error);
  }
  return text.split("\n").filter((line) => line !== "").map(Number);
}

/** mkdir of a cgroup directory, as a {@link CgroupError} on failure. */
function makeDirectory(dir: string): void {
  try {
    mkdir(dir, 0o755);
  } catch (error) {
    throw failed("mkdir", dir, error);
  }
}

/**
 * rmdir of a cgroup directory, and of child cgroups made inside it (by a
 * contained process, or a nested leaf) when it is busy; true when gone (or
 * already gone), false when processes remain.
 */
function removeTree(dir: string): boolean {
  const attempt = (): boolean | "busy" => {
    try {
      rmdir(dir);
      return true;
    } catch (error) {
      if (error instanceof SyscallError && error.errno === Errno.ENOENT) return true;
      if (error instanceof SyscallError && error.errno === Errno.EBUSY) return "busy";
      throw failed("rmdir", dir, error);
    }
  };
  if (attempt() === true) return true;
  if (pidsIn(dir).length > 0) return false;
  let names: string[];
  try {
    names = listDirectory(dir);
  } catch (error) {
    if (error instanceof SyscallError && error.errno === Errno.ENOENT) return true;
    throw failed("rmdir", dir, error);
  }
  for (const name of names) {
    const child = `${dir}/${name}`;
    if (cgroupFileExists(`${child}/cgroup.procs`) && !removeTree(child)) return false;
  }
  return attempt() === true;
}

/** How long {@link CgroupSet.remove} and {@link CgroupSet.killAll} wait for the kernel. */
const DRAIN_MS = 2000;

/** How {@link CgroupSet.killAll} empties a set (see {@link CgroupSet.killMethods}). */
export type KillMethod = "cgroup.kill" | "v2-freeze" | "v1-freeze" | "signal";

/** One cgroup of a set: a directory in one hierarchy. */
export interface CgroupNode {
  /** The hierarchy it is in. */
  hierarchy: Hierarchy;
  /** Its directory. */
  dir: string;
}

/**
 * The cgroups of one launch, one per hierarchy, all with the same name.
 * Made by {@link createCgroupSet}.
 */
export class CgroupSet {
  /** The cgroups, containment first. */
  readonly nodes: readonly CgroupNode[];
  #removed = false;

  /** Wraps existing directories (see {@link createCgroupSet}). */
  constructor(nodes: CgroupNode[]) {
    this.nodes = nodes;
  }

  /** The node in the hierarchy holding `controller`, if the set has one. */
  nodeFor(controller: string): CgroupNode | undefined {
    return this.nodes.find((node) => node.hierarchy.controllers.includes(controller));
  }

  /** The v2 node, if the set has one. */
  get unified(): CgroupNode | undefined {
    return this.nodes.find((node) => node.hierarchy.version === 2);
  }

  /**
   * The `cgroup.procs` files a process writes `0` to in order to join
   * itself, one per hierarchy (`cgroup.procs` in v1 too: its `tasks` file
   * would move one thread only).
   */
  procsFiles(): string[] {
    return this.nodes.map((node) => `${node.dir}/cgroup.procs`);
  }

  /** Moves process `pid` (0: the caller itself) into every cgroup of the set. */
  join(pid = 0): void {
    for (const file of this.procsFiles()) writeCgroupFile(file, String(pid));
  }

  /** Moves the calling process into every cgroup of the set (for a child just before exec). */
  joinSelf(): void {
    this.join(0);
  }

  /** Every PID in any cgroup of the set. */
  pids(): number[] {
    const all = new Set<number>();
    for (const node of this.nodes) for (const pid of pidsIn(node.dir)) all.add(pid);
    return [...all];
  }

  /** Whether any process is in the set (v2: `cgroup.events` populated; v1: `cgroup.procs`). */
  populated(): boolean {
    const unified = this.unified;
    let nodes = this.nodes;
    if (unified && cgroupFileExists(`${unified.dir}/cgroup.events`)) {
      const events = parseFlatKeyed(readCgroupFile(`${unified.dir}/cgroup.events`));
      if (events.populated === 1) return true;
      // populated 0 covers the v2 cgroup and its descendants: only v1 ones are left to look at
      nodes = nodes.filter((node) => node !== unified);
    }
    return nodes.some((node) => pidsIn(node.dir).length > 0);
  }

  /**
   * The ways {@link CgroupSet.killAll} can empty the set, best first, that
   * this set and kernel offer: `cgroup.kill` (v2, Linux 5.14+), `v2-freeze`
   * (`cgroup.freeze`, Linux 5.2+), `v1-freeze` (`freezer.state`), `signal`
   * (SIGKILL each PID, repeated: a fork loop can outrun a round, not all).
   */
  killMethods(): KillMethod[] {
    const methods: KillMethod[] = [];
    const unified = this.unified;
    if (unified && cgroupFileExists(`${unified.dir}/cgroup.kill`)) methods.push("cgroup.kill");
    if (unified && cgroupFileExists(`${unified.dir}/cgroup.freeze`)) methods.push("v2-freeze");
    if (this.#freezer()) methods.push("v1-freeze");
    methods.push("signal");
    return methods;
  }

  #freezer(): CgroupNode | undefined {
    return this.nodes.find((node) =>
      node.hierarchy.version === 1 && node.hierarchy.controllers.includes("freezer")
    );
  }

  /**
   * Kills every process in the set and waits until it is empty, by
   * `chosen` (default: the first of {@link CgroupSet.killMethods}). Frozen
   * processes cannot fork, so the freezing methods and `cgroup.kill` stop a
   * fork loop at once. Processes found only in v1 cgroups of the set (moved
   * out of the v2 one) are signalled one by one.
   */
  async killAll(chosen?: KillMethod): Promise<void> {
    if (this.#removed || !this.populated()) return;
    const method = chosen ?? this.killMethods()[0];
    const deadline = Date.now() + DRAIN_MS;
    const unified = this.unified;
    const freezer = this.#freezer();
    while (this.populated()) {
      if (Date.now() > deadline) {
        throw new CgroupError("kill", `processes remain: ${this.pids().join(" ")}`);
      }
      if (unified && method !== "v1-freeze" && pidsIn(unified.dir).length === 0) {
        this.#killEach();
      } else if (method === "cgroup.kill" && unified) {
        writeCgroupFile(`${unified.dir}/cgroup.kill`, "1");
      } else if (method === "v2-freeze" && unified) {
        await this.#frozen(`${unified.dir}/cgroup.freeze`, "1", "0", () => {
          const events = parseFlatKeyed(readCgroupFile(`${unified.dir}/cgroup.events`));
          return events.frozen === 1 || events.populated === 0;
        });
      } else if (method === "v1-freeze" && freezer) {
        const state = `${freezer.dir}/freezer.state`;
        await this.#frozen(
          state,
          "FROZEN",
          "THAWED",
          () => readCgroupFile(state).trim() === "FROZEN",
        );
      } else if (method === "signal") {
        this.#killEach();
      } else {
        throw new CgroupError("kill", `${method} is not offered by this cgroup set`);
      }
      await sleep(1);
    }
  }

  /** Freezes with `freeze` written to `file`, SIGKILLs each PID, thaws with `thaw`. */
  async #frozen(file: string, freeze: string, thaw: string, isFrozen: () => boolean) {
    writeCgroupFile(file, freeze);
    try {
      const until = Date.now() + DRAIN_MS;
      while (!isFrozen() && Date.now() < until) await sleep(1);
      this.#killEach();
    } finally {
      writeCgroupFile(file, thaw);
    }
  }

  #killEach(): void {
    for (const pid of this.pids()) {
      try {
        kill(pid, SIGNALS.SIGKILL);
      } catch (error) {
        throw failed("kill", String(pid), error);
      }
    }
  }

  /**
   * Removes every cgroup of the set (rmdir, deepest first), retrying while
   * the kernel drains exited processes; idempotent. Fails when processes
   * remain after the drain time: call {@link CgroupSet.killAll} first.
   */
  async remove(): Promise<void> {
    if (this.#removed) return;
    const deadline = Date.now() + DRAIN_MS;
    for (const node of [...this.nodes].reverse()) {
      while (!removeTree(node.dir)) {
        if (Date.now() > deadline) {
          throw new CgroupError("rmdir", "EBUSY (processes remain)", node.dir, "EBUSY");
        }
        await sleep(2);
      }
    }
    this.#removed = true;
  }
}

let serial = 0;

/** One file to write in a new cgroup. */
export interface CgroupWrite {
  /** The file's name, e.g. `"pids.max"`. */
  file: string;
  /** What to write. */
  value: string;
  /** Skip it when the kernel has no such file (e.g. no swap accounting). */
  optional?: boolean;
  /** Write it only when this other file is missing (a fallback). */
  ifMissing?: string;
}

/** A description of a cgroup to make in one hierarchy: what to enable, then what to write. */
export interface NodeRequest {
  /** The hierarchy. */
  hierarchy: Hierarchy;
  /** v2: the controllers to enable in the parent's `cgroup.subtree_control`. */
  enable?: string[];
  /** Files to write once it exists, in order. */
  writes?: CgroupWrite[];
}

/** Whether the calling user can manage cgroups below `dir` (a delegated subtree). */
function writableBy(dir: string): boolean {
  return accessible(dir, W_OK) && accessible(`${dir}/cgroup.procs`, W_OK);
}

/**
 * Refuses, with one message that says why and what to do, what an
 * unprivileged user cannot do: a v1 hierarchy (never delegated), or a v2
 * cgroup that is not delegated to them.
 */
export function delegationProblem(requests: NodeRequest[], uid = getuid()): string | undefined {
  if (uid === 0) return undefined;
  const v1 = requests.find(({ hierarchy }) => hierarchy.version === 1);
  if (v1) {
    return `the ${v1.hierarchy.controllers.join(",")} controller is on cgroup v1 ` +
      `(${v1.hierarchy.mountPoint}), which is never delegated to unprivileged users: run as root`;
  }
  const v2 = requests.find(({ hierarchy }) => !writableBy(hierarchy.callerDir));
  if (v2) {
    return `no delegated cgroup v2 subtree: ${v2.hierarchy.callerDir} is not writable by uid ${uid}; ` +
      "run the tool in a delegated scope, e.g. `systemd-run --user --scope -p Delegate=yes invoke_ns …`";
  }
  return undefined;
}

/**
 * v2: enables `controllers` in the caller's `cgroup.subtree_control`,
 * moving this process into a leaf first when it is the only one there (the
 * no-internal-processes rule).
 */
function enableControllers(hierarchy: Hierarchy, controllers: string[], owner: CgroupOwner): void {
  const control = `${hierarchy.callerDir}/cgroup.subtree_control`;
  const missing = controllers.filter((c) => !hierarchy.controllers.includes(c));
  if (missing.length > 0) {
    throw new CgroupError(
      "enable",
      `the ${missing.join(", ")} controller is not available there (not in cgroup.controllers)`,
      hierarchy.callerDir,
    );
  }
  const enabled = readCgroupFile(control).trim().split(/\s+/);
  const wanted = controllers.filter((c) => !enabled.includes(c));
  if (wanted.length === 0) return;
  const line = wanted.map((c) => `+${c}`).join(" ");
  try {
    writeFile(control, line);
    return;
  } catch (error) {
    if (!(error instanceof SyscallError && error.errno === Errno.EBUSY)) {
      throw failed("write", control, error);
    }
  }
  const others = pidsIn(hierarchy.callerDir).filter((pid) => pid !== owner.pid);
  if (others.length > 0) {
    throw new CgroupError(
      "enable",
      `cannot enable ${wanted.join(", ")}: the cgroup holds other processes (${
        others.slice(0, 5).join(" ")
      }), and v2 allows no controllers above processes; start the tool in a cgroup of its own, ` +
        "e.g. `systemd-run --scope -p Delegate=yes invoke_ns …`",
      hierarchy.callerDir,
    );
  }
  const leaf = `${hierarchy.callerDir}/${cgroupName(owner, "supervisor")}`;
  if (!cgroupFileExists(`${leaf}/cgroup.procs`)) makeDirectory(leaf);
  writeCgroupFile(`${leaf}/cgroup.procs`, String(owner.pid));
  writeCgroupFile(control, line);
}

/**
 * Makes one cgroup per request, named {@link cgroupName}(owner, n), under
 * the caller's cgroup in each hierarchy, enabling v2 controllers and
 * writing each request's files; on any failure removes what it made and
 * throws a {@link CgroupError}.
 */
export async function createCgroupSet(
  requests: NodeRequest[],
  owner: CgroupOwner = currentOwner(),
): Promise<CgroupSet> {
  const problem = delegationProblem(requests);
  if (problem) throw new CgroupError("delegation", problem);
  const name = cgroupName(owner, ++serial);
  const made: CgroupNode[] = [];
  try {
    for (const request of requests) {
      const { hierarchy } = request;
      if (hierarchy.version === 2 && request.enable?.length) {
        enableControllers(hierarchy, request.enable, owner);
      }
      const dir = `${hierarchy.callerDir}/${name}`;
      makeDirectory(dir);
      made.push({ hierarchy, dir });
      const written = new Set<string>();
      for (const write of request.writes ?? []) {
        if (
          write.ifMissing &&
          (written.has(write.ifMissing) || cgroupFileExists(`${dir}/${write.ifMissing}`))
        ) continue;
        try {
          writeCgroupFile(`${dir}/${write.file}`, write.value);
          written.add(write.file);
        } catch (error) {
          // one call, not access() then open(): this is on every launch's path
          if (!(write.optional && error instanceof CgroupError && error.code === "ENOENT")) {
            throw error;
          }
        }
      }
    }
  } catch (error) {
    await new CgroupSet(made).remove().catch(() => {});
    throw error;
  }
  return new CgroupSet(made);
}

/** What {@link sweepOrphans} did with each invoke_ns cgroup it found. */
export interface SweepResult {
  /** Removed: empty, owner dead. */
  removed: string[];
  /** Kept: owner alive, or processes still inside. */
  kept: string[];
}

/**
 * Removes the invoke_ns cgroups under the caller's cgroup, in every
 * hierarchy, that are empty *and* whose owner (PID and start time in the
 * name) is dead, as left by a tool that was SIGKILLed. A live owner's
 * cgroups, non-empty ones, and those the caller may not remove are kept.
 */
export function sweepOrphans(layout: CgroupLayout = cgroupLayout()): SweepResult {
  const result: SweepResult = { removed: [], kept: [] };
  const hierarchies = [...layout.unified ? [layout.unified] : [], ...layout.v1];
  for (const hierarchy of hierarchies) {
    let names: string[];
    try {
      names = listDirectory(hierarchy.callerDir);
    } catch {
      continue;
    }
    for (const name of names) {
      const owner = ownerOf(name);
      if (!owner) continue;
      const dir = `${hierarchy.callerDir}/${name}`;
      let removed = false;
      try {
        removed = !ownerAlive(owner) && removeTree(dir);
      } catch {
        // not ours to remove (EACCES as another user): kept, as a busy one
      }
      (removed ? result.removed : result.kept).push(dir);
    }
  }
  return result;
}

/** Every invoke_ns cgroup directory under the caller's cgroups (for checks that none is left). */
export function listInvokeNsCgroups(layout: CgroupLayout = cgroupLayout()): string[] {
  const found: string[] = [];
  for (const hierarchy of [...layout.unified ? [layout.unified] : [], ...layout.v1]) {
    try {
      for (const name of listDirectory(hierarchy.callerDir)) {
        if (name.startsWith(`${CGROUP_PREFIX}-`)) found.push(`${hierarchy.callerDir}/${name}`);
      }
    } catch {
      // hierarchy gone meanwhile
    }
  }
  return found;
}
