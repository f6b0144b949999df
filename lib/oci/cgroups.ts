/**
 * A container's cgroup (`linux.cgroupsPath`): the same path made in every
 * hierarchy mounted under /sys/fs/cgroup (each v1 controller's and the v2
 * one), which the container's process joins itself as its last step
 * (`LaunchSpec.cgroups`), and which `delete` removes. Only the directories
 * `create` made are removed, deepest first.
 * @module
 */

import { Errno, SyscallError } from "../../ffi/errors.ts";
import { AT_FDCWD, AT_REMOVEDIR, readFile, writeFile } from "../../ffi/libc.ts";
import { mkdir, unlinkAt } from "../../ffi/files.ts";

const isErrno = (error: unknown, errno: number) =>
  error instanceof SyscallError && error.errno === errno;

/** One cgroup hierarchy's mount point and the controllers it offers. */
export interface CgroupMountPoint {
  /** Where it is mounted, under /sys/fs/cgroup. */
  path: string;
  /** Whether it is v1's cpuset hierarchy (a new cgroup there needs cpus and mems). */
  cpuset: boolean;
  /** 1 or 2. */
  version: 1 | 2;
  /** Its controllers (v1: its mount options; v2: `cgroup.controllers`). */
  controllers: string[];
}

/** The cgroup hierarchies' mount points (v1 controllers' and v2's), from /proc/self/mountinfo. */
export function cgroupMountPoints(): CgroupMountPoint[] {
  const points: CgroupMountPoint[] = [];
  for (const line of readFile("/proc/self/mountinfo").split("\n")) {
    const [mine, theirs] = line.split(" - ");
    if (!theirs) continue;
    const [type, , options = ""] = theirs.split(" ");
    const point = mine.split(" ")[4];
    if (type !== "cgroup" && type !== "cgroup2") continue;
    if (!point.startsWith("/sys/fs/cgroup")) continue;
    let controllers = options.split(",");
    if (type === "cgroup2") {
      try {
        controllers = readFile(`${point}/cgroup.controllers`).trim().split(" ").filter(Boolean);
      } catch {
        controllers = [];
      }
    }
    points.push({
      path: point,
      cpuset: type === "cgroup" && controllers.includes("cpuset"),
      version: type === "cgroup" ? 1 : 2,
      controllers,
    });
  }
  return points;
}

/** The directories of `cgroupsPath` (absolute below each hierarchy's root). */
export function cgroupDirectories(cgroupsPath: string): string[] {
  const relative = cgroupsPath.replace(/^\/+/, "").replace(/\/+$/, "");
  return cgroupMountPoints().map((point) => `${point.path}/${relative}`);
}

/**
 * Makes `cgroupsPath` in every hierarchy; returns the directories the
 * process joins and the ones made (to remove, deepest first). A new v1
 * cpuset cgroup gets its parent's cpus and mems, without which no process
 * may join it.
 */
export function createCgroups(cgroupsPath: string): { join: string[]; made: string[] } {
  const relative = cgroupsPath.replace(/^\/+/, "").replace(/\/+$/, "").split("/");
  const join: string[] = [];
  const made: string[] = [];
  try {
    for (const point of cgroupMountPoints()) {
      let dir = point.path;
      for (const part of relative) {
        const parent = dir;
        dir = `${dir}/${part}`;
        try {
          mkdir(dir, 0o755);
        } catch (error) {
          if (isErrno(error, Errno.EEXIST)) continue;
          throw error;
        }
        made.push(dir);
        if (point.cpuset) {
          for (const file of ["cpuset.cpus", "cpuset.mems"]) {
            writeFile(`${dir}/${file}`, readFile(`${parent}/${file}`));
          }
        }
      }
      join.push(dir);
    }
  } catch (error) {
    removeCgroups(made);
    throw error;
  }
  return { join, made };
}

/** Removes `made` (cgroup directories), deepest first; says which could not go. */
export function removeCgroups(made: string[]): string[] {
  const left: string[] = [];
  for (const dir of [...made].sort((a, b) => b.length - a.length)) {
    try {
      unlinkAt(AT_FDCWD, dir, AT_REMOVEDIR);
    } catch (error) {
      if (!isErrno(error, Errno.ENOENT)) left.push(dir);
    }
  }
  return left;
}

/** The PIDs in the cgroups `dirs` (every process of the container), without duplicates. */
export function cgroupPids(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const dir of dirs) {
    try {
      for (const line of readFile(`${dir}/cgroup.procs`).split("\n")) {
        if (line) pids.add(Number(line));
      }
    } catch {
      // a hierarchy that went away has no processes
    }
  }
  return [...pids].sort((a, b) => a - b);
}

/**
 * Freezes (`frozen`) or thaws the processes of the cgroups `dirs`: through
 * the v1 freezer controller when one of them is the freezer's, else v2's
 * `cgroup.freeze`; waits until the kernel says it is done. Throws when the
 * container has no cgroup that can freeze.
 */
export async function freeze(dirs: string[], frozen: boolean): Promise<void> {
  const v1 = dirs.find((dir) => /^\/sys\/fs\/cgroup\/freezer(\/|$)/.test(dir));
  const v2 = dirs.find((dir) => {
    try {
      readFile(`${dir}/cgroup.freeze`);
      return true;
    } catch {
      return false;
    }
  });
  if (v1) {
    const want = frozen ? "FROZEN" : "THAWED";
    writeFile(`${v1}/freezer.state`, want);
    while (readFile(`${v1}/freezer.state`).trim() !== want) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } else if (v2) {
    writeFile(`${v2}/cgroup.freeze`, frozen ? "1" : "0");
    while (!readFile(`${v2}/cgroup.events`).includes(`frozen ${frozen ? 1 : 0}`)) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } else {
    throw new Error("the container has no cgroup to freeze (give it a linux.cgroupsPath)");
  }
}

// ---------------------------------------------------------- linux.resources

/** One rule of `linux.resources.devices`, in the v1 devices controller's terms. */
export interface DeviceRule {
  /** Allow (`devices.allow`) or deny (`devices.deny`). */
  allow: boolean;
  /** `a` (all), `c` or `b`. */
  type: "a" | "c" | "b";
  /** Major number, or `*`. */
  major: number | "*";
  /** Minor number, or `*`. */
  minor: number | "*";
  /** Any of `r`, `w`, `m`. */
  access: string;
}

/**
 * The `linux.resources` this runtime honours (every other field is refused
 * by `lib/oci/config.ts`); an absent field leaves the kernel's default.
 */
export interface ContainerResources {
  /** Bytes. */
  memoryLimit?: number;
  /** Memory plus swap, bytes (the spec's `memory.swap`). */
  memorySwap?: number;
  /** A soft limit, bytes. */
  memoryReservation?: number;
  /** The most tasks at once. */
  pids?: number;
  /** CFS quota in µs a period (-1: none). */
  cpuQuota?: number;
  /** CFS period in µs. */
  cpuPeriod?: number;
  /** v1 `cpu.shares` (v2: converted to `cpu.weight`, as runc). */
  cpuShares?: number;
  /** The CPUs, in the kernel's list syntax. */
  cpus?: string;
  /** The memory nodes. */
  mems?: string;
  /** Device rules, in order (the runtime adds runc's default allowed devices after them). */
  devices: DeviceRule[];
}

/** One write `linux.resources` needs: which controller's cgroup, which file, what. */
export interface ResourceWrite {
  /** The controller (its hierarchy holds the file). */
  controller: string;
  /** The file. */
  file: string;
  /** What to write. */
  value: string;
  /** The config.json field it comes from (for the error). */
  field: string;
}

/** The devices a container may always use, after its own rules (runc's allowed list). */
export const ALLOWED_DEVICE_RULES: readonly DeviceRule[] = [
  { allow: true, type: "c", major: "*", minor: "*", access: "m" },
  { allow: true, type: "b", major: "*", minor: "*", access: "m" },
  { allow: true, type: "c", major: 136, minor: "*", access: "rwm" }, // /dev/pts/*
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" }, // /dev/ptmx
  { allow: true, type: "c", major: 5, minor: 1, access: "rwm" }, // /dev/console
];

/** `rule` as the v1 devices controller reads it: `c 1:3 rwm`. */
export function deviceRuleText(rule: DeviceRule): string {
  return rule.type === "a" ? "a" : `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}

/**
 * The cgroup files to write for `resources`, in order (pure): `version`
 * says which cgroup version holds each controller. Device rules need v1's
 * devices controller (v2 needs an eBPF program, which is refused).
 */
export function resourceWrites(
  resources: ContainerResources,
  version: (controller: string) => 1 | 2,
): ResourceWrite[] {
  const writes: ResourceWrite[] = [];
  const add = (controller: string, file: string, value: string | number, field: string) =>
    writes.push({ controller, file, value: String(value), field });
  const r = resources;
  const v1 = (controller: string) => version(controller) === 1;
  if (r.memoryLimit !== undefined) {
    add(
      "memory",
      v1("memory") ? "memory.limit_in_bytes" : "memory.max",
      r.memoryLimit,
      "memory.limit",
    );
  }
  if (r.memorySwap !== undefined) {
    const field = "memory.swap";
    if (v1("memory")) add("memory", "memory.memsw.limit_in_bytes", r.memorySwap, field);
    else add("memory", "memory.swap.max", Math.max(0, r.memorySwap - (r.memoryLimit ?? 0)), field);
  }
  if (r.memoryReservation !== undefined) {
    add(
      "memory",
      v1("memory") ? "memory.soft_limit_in_bytes" : "memory.low",
      r.memoryReservation,
      "memory.reservation",
    );
  }
  if (r.pids !== undefined) add("pids", "pids.max", r.pids, "pids.limit");
  if (r.cpuQuota !== undefined || r.cpuPeriod !== undefined) {
    if (v1("cpu")) {
      if (r.cpuPeriod !== undefined) add("cpu", "cpu.cfs_period_us", r.cpuPeriod, "cpu.period");
      if (r.cpuQuota !== undefined) add("cpu", "cpu.cfs_quota_us", r.cpuQuota, "cpu.quota");
    } else {
      const quota = r.cpuQuota === undefined || r.cpuQuota < 0 ? "max" : String(r.cpuQuota);
      add("cpu", "cpu.max", `${quota} ${r.cpuPeriod ?? 100000}`, "cpu.quota");
    }
  }
  if (r.cpuShares !== undefined) {
    if (v1("cpu")) add("cpu", "cpu.shares", r.cpuShares, "cpu.shares");
    else {
      const weight = Math.floor(1 + ((Math.max(2, r.cpuShares) - 2) * 9999) / 262142);
      add("cpu", "cpu.weight", weight, "cpu.shares");
    }
  }
  if (r.cpus !== undefined) add("cpuset", "cpuset.cpus", r.cpus, "cpu.cpus");
  if (r.mems !== undefined) add("cpuset", "cpuset.mems", r.mems, "cpu.mems");
  if (r.devices.length > 0) {
    for (const given of [...r.devices, ...ALLOWED_DEVICE_RULES]) {
      const file = given.allow ? "devices.allow" : "devices.deny";
      // the kernel reads a bare "a" as every device with rwm: fewer rights are both kinds'
      const rules: DeviceRule[] = given.type === "a" && given.access.length < 3
        ? (["c", "b"] as const).map((type) => ({ ...given, type, major: "*", minor: "*" }))
        : [given];
      for (const rule of rules) add("devices", file, deviceRuleText(rule), "devices");
    }
  }
  return writes;
}

/**
 * Writes `resources` into the container's cgroup `cgroupsPath` (made by
 * {@link createCgroups}). A controller found nowhere, or a file the kernel
 * refuses, is an error naming the config.json field.
 */
export function applyResources(cgroupsPath: string, resources: ContainerResources): void {
  const relative = cgroupsPath.replace(/^\/+/, "").replace(/\/+$/, "");
  const points = cgroupMountPoints();
  const find = (controller: string) =>
    points.find((p) => p.version === 1 && p.controllers.includes(controller)) ??
      points.find((p) => p.version === 2 && p.controllers.includes(controller));
  const version = (controller: string) => find(controller)?.version ?? 1;
  for (const write of resourceWrites(resources, version)) {
    const point = find(write.controller);
    const field = `linux.resources.${write.field}`;
    if (!point) throw new ResourceError(field, `no ${write.controller} controller is mounted`);
    if (write.controller === "devices" && point.version === 2) {
      throw new ResourceError(
        field,
        "cgroup v2 device rules (an eBPF program) are not implemented",
      );
    }
    try {
      writeFile(`${point.path}/${relative}/${write.file}`, write.value);
    } catch (error) {
      const why = error instanceof SyscallError ? error.message : String(error);
      throw new ResourceError(field, `${write.file} = ${write.value}: ${why}`);
    }
  }
}

/** A `linux.resources` field that could not be applied; the message names it. */
export class ResourceError extends Error {
  /** The config.json field, e.g. `linux.resources.memory.limit`. */
  readonly field: string;

  /** Builds the error; the message is `field: why`. */
  constructor(field: string, why: string) {
    super(`${field}: ${why}`);
    this.name = "ResourceError";
    this.field = field;
  }
}
