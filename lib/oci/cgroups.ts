/**
 * A container's cgroup (`linux.cgroupsPath`): the same path made in every
 * hierarchy mounted under /sys/fs/cgroup (each v1 controller's and the v2
 * one), which the container's process joins itself as its last step
 * (`LaunchSpec.cgroups`), and which `delete` removes. Only the directories
 * `create` made are removed, deepest first.
 * @module
 */

import { Errno, SyscallError } from "../../ffi/errors.ts";
import { AT_FDCWD, AT_REMOVEDIR, mkdir, readFile, unlinkAt, writeFile } from "../../ffi/libc.ts";

const isErrno = (error: unknown, errno: number) =>
  error instanceof SyscallError && error.errno === errno;

/** The cgroup hierarchies' mount points (v1 controllers' and v2's), from /proc/self/mountinfo. */
export function cgroupMountPoints(): { path: string; cpuset: boolean }[] {
  const points: { path: string; cpuset: boolean }[] = [];
  for (const line of readFile("/proc/self/mountinfo").split("\n")) {
    const [mine, theirs] = line.split(" - ");
    if (!theirs) continue;
    const [type, , options = ""] = theirs.split(" ");
    const point = mine.split(" ")[4];
    if (type !== "cgroup" && type !== "cgroup2") continue;
    if (!point.startsWith("/sys/fs/cgroup")) continue;
    points.push({
      path: point,
      cpuset: type === "cgroup" && options.split(",").includes("cpuset"),
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
