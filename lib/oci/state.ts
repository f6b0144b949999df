/**
 * A container's state directory (`ROOT/ID`, as runc's): what `create`
 * recorded (`state.json`, written atomically: a temporary file, then
 * rename), the start FIFO (`exec.fifo`), and the lock that serialises the
 * verbs on one ID (flock on the directory itself). The status is derived
 * from those facts checked against the live process — its PID *and* its
 * start time in /proc/PID/stat, so a reused PID is never mistaken for it.
 * @module
 */

import { processStat } from "../procstat.ts";
import {
  close,
  fileStatus,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_RDONLY,
  O_WRONLY,
  open,
  openAt,
  S_IFIFO,
  writeAll,
} from "../../ffi/libc.ts";
import { mknodAt, umask } from "../../ffi/files.ts";
import { flock, LOCK_EX } from "../../ffi/mountapi.ts";
import type { Hook } from "../hooks.ts";

/** The state directory's default root, as `runc --root`'s. */
export const DEFAULT_ROOT = "/run/invoke_ns";

/** The name of the start FIFO in a container's state directory (runc's). */
export const FIFO_NAME = "exec.fifo";

/** A container's status, as runtime-spec defines them (and runc's "paused"). */
export type Status = "creating" | "created" | "running" | "paused" | "stopped";

/** What `create` records about a container. */
export interface Record {
  /** runtime-spec version of the bundle. */
  ociVersion: string;
  /** The container's ID. */
  id: string;
  /** The bundle's absolute path. */
  bundle: string;
  /** The root file system's path. */
  rootfs: string;
  /** The container process's PID (0 while creating). */
  pid: number;
  /** Its start time (field 22 of /proc/PID/stat, clock ticks since boot). */
  startTime: number;
  /** When it was created (ISO 8601). */
  created: string;
  /** The cgroup directories the process joined. */
  cgroups: string[];
  /** The cgroup directories `create` made (removed by `delete`). */
  cgroupsMade: string[];
  /** The config's annotations. */
  annotations: { [key: string]: string };
  /** hooks.poststart, run by `start`. */
  poststart: Hook[];
  /** hooks.poststop, run by `delete`. */
  poststop: Hook[];
  /** The UID that created it. */
  owner: number;
  /** `start` has opened the FIFO (the program runs or ran). */
  started: boolean;
  /** `pause` froze it (and no `resume` has thawed it since). */
  paused?: boolean;
  /** What `exec` gives its processes, from config.json as it was at `create` (as runc saves it). */
  exec?: ExecDefaults;
}

/** The container's own process settings an `exec` falls back on, saved at `create`. */
export interface ExecDefaults {
  /** `process.capabilities` as config.json gave it (granted per the exec's user). */
  capabilities?: unknown;
  /** `process.noNewPrivileges`. */
  noNewPrivs: boolean;
  /** `linux.seccomp`, loaded into every process exec starts. */
  seccomp?: unknown;
}

/** Why `id` is not a container ID (runc's rule: letters, digits, `_+-.`), or null. */
export function idProblem(id: string): string | null {
  if (!/^[\w+\-.]+$/.test(id) || id === "." || id === "..") {
    return `invalid container ID ${JSON.stringify(id)}: letters, digits and _+-. only`;
  }
  return null;
}

/** The start time of process `pid` (field 22 of /proc/PID/stat), or null when it is gone. */
export function processStartTime(pid: number): { startTime: number; zombie: boolean } | null {
  const stat = processStat(pid);
  return stat && { startTime: stat.startTime, zombie: stat.state === "Z" || stat.state === "X" };
}

/** The status `record` has now, checked against the live process. */
export function statusOf(record: Record): Status {
  if (record.pid === 0) return "creating";
  const live = processStartTime(record.pid);
  if (!live || live.startTime !== record.startTime || live.zombie) return "stopped";
  if (record.paused) return "paused";
  return record.started ? "running" : "created";
}

/** The state runtime-spec defines, as `state` prints it. */
export function specState(record: Record): { [key: string]: unknown } {
  const status = statusOf(record);
  return {
    ociVersion: record.ociVersion,
    id: record.id,
    status,
    pid: status === "stopped" ? 0 : record.pid,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: String(record.owner),
    annotations: record.annotations,
  };
}

/** A container's state directory, locked while a verb works on it. */
export class StateDir {
  private constructor(readonly path: string, private fd: number) {}

  /**
   * Creates `ROOT/ID` and locks it; throws when it exists. Both are mode
   * 0711: the container's process, whatever its user (a user namespace's
   * root is another user on the host), opens the FIFO inside by name; no
   * one else may list them, read `state.json` (0600) or read the FIFO (0622).
   */
  static create(root: string, id: string): StateDir {
    const parent = root.slice(0, root.lastIndexOf("/"));
    if (parent) Deno.mkdirSync(parent, { recursive: true, mode: 0o755 });
    try {
      Deno.mkdirSync(root, { mode: 0o711 });
      Deno.chmodSync(root, 0o711); // whatever the umask (a root that exists is left as it is)
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const path = `${root}/${id}`;
    try {
      Deno.mkdirSync(path, { mode: 0o711 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new Error(`container "${id}" already exists`);
      }
      throw error;
    }
    Deno.chmodSync(path, 0o711);
    return StateDir.lock(path, id);
  }

  /** Opens and locks the existing `ROOT/ID`; throws when there is none. */
  static open(root: string, id: string): StateDir {
    return StateDir.lock(`${root}/${id}`, id);
  }

  private static lock(path: string, id: string): StateDir {
    let fd: number;
    try {
      fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } catch {
      throw new Error(`container "${id}" does not exist`);
    }
    flock(fd, LOCK_EX, path);
    // removed by a `delete` that held the lock meanwhile
    if (fileStatus(fd, path).nlink === 0) {
      close(fd);
      throw new Error(`container "${id}" does not exist`);
    }
    return new StateDir(path, fd);
  }

  /** The recorded facts. */
  read(): Record {
    return JSON.parse(Deno.readTextFileSync(`${this.path}/state.json`)) as Record;
  }

  /** Records `record` atomically (a new file, written, then renamed over the old, O_NOFOLLOW). */
  write(record: Record): void {
    const temporary = `.state.${Deno.pid}`;
    const fd = openAt(
      this.fd,
      temporary,
      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
      0o600,
    );
    try {
      writeAll(fd, new TextEncoder().encode(JSON.stringify(record)));
    } finally {
      close(fd);
    }
    Deno.renameSync(`${this.path}/${temporary}`, `${this.path}/state.json`);
  }

  /** The start FIFO's path. */
  get fifo(): string {
    return `${this.path}/${FIFO_NAME}`;
  }

  /** Makes the start FIFO (mode 0622: the container's user may open it for writing). */
  makeFifo(): void {
    const old = umask(0);
    try {
      mknodAt(this.fd, FIFO_NAME, S_IFIFO | 0o622, 0, 0);
    } finally {
      umask(old);
    }
  }

  /** Removes the directory and all in it, then lets go of the lock. */
  remove(): void {
    Deno.removeSync(this.path, { recursive: true });
    this.release();
  }

  /** Lets go of the lock. */
  release(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
  }
}

/** The IDs under `root` (none when it does not exist). */
export function containerIds(root: string): string[] {
  try {
    return [...Deno.readDirSync(root)].filter((entry) => entry.isDirectory)
      .map((entry) => entry.name).sort();
  } catch {
    return [];
  }
}

/** Writes `text` to `path` atomically (the pid file `--pid-file` asks for). */
export function writeFileAtomically(path: string, text: string): void {
  const temporary = `${path}.${Deno.pid}.tmp`;
  const fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644);
  try {
    writeAll(fd, new TextEncoder().encode(text));
  } finally {
    close(fd);
  }
  Deno.renameSync(temporary, path);
}
