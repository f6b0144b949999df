/**
 * The mounts made in a new mount namespace (its private propagation is
 * `lib/mountns.ts`'s): with `-m`, the bubblewrap-style mounts `--bind SRC:DST`, `--ro-bind SRC:DST`,
 * `--tmpfs DST` and `--dev` are made in it (inside the jail when there is one).
 *
 * Every mount target lies in a tree someone else may be able to write (a
 * jail, /tmp), so the child never trusts a path there: it walks each target
 * from a directory fd, one component at a time with O_NOFOLLOW, following
 * symlinks itself as a process chrooted in the tree would (never out of it),
 * creates what is missing with mkdirat/openat(O_EXCL) at that moment, and
 * mounts onto the fd it holds (open_tree/fsmount + move_mount), never onto a
 * path checked earlier. The mount points it created are recorded by device
 * and inode; every mount point in use is held with a shared flock(2); and
 * {@link MountPoints.remove} deletes only what a run made and no run holds,
 * walking with O_NOFOLLOW (docs/how-it-works.md, "Mounting in a tree
 * someone else can write").
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { MAX_SYMLINKS } from "../ffi/constants.ts";
import { type Call, call, type ChildStep } from "./step.ts";
import {
  accessible,
  AT_FDCWD,
  AT_REMOVEDIR,
  close,
  F_OK,
  type FileStatus,
  fileStatus,
  getuid,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  open,
  openAt,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
} from "../ffi/libc.ts";
import { mkdirAt, readLink, readLinkAt, symlink, unlinkAt } from "../ffi/files.ts";
import {
  AT_RECURSIVE,
  flock,
  hasXattr,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  MOUNT_ATTR,
  moveMount,
  newMount,
  OPEN_TREE_CLONE,
  openResolved,
  openTree,
  RESOLVE,
  setMountAttributes,
  setXattr,
} from "../ffi/mountapi.ts";
import { fdChannel, pollReadable, receiveFds, sendFds } from "../ffi/socket.ts";

/** The clone flag for a new mount namespace. */
export const MOUNT_NAMESPACE = CLONE.NEWNS;

/**
 * One extra mount, as bubblewrap's options name them.
 *
 * @example
 * ```ts
 * const mounts: MountRequest[] = [
 *   { kind: "ro-bind", source: "/etc", target: "/host-etc" },
 *   { kind: "tmpfs", target: "/tmp" },
 *   { kind: "dev", target: "/dev" },
 * ];
 * ```
 */
export type MountRequest =
  | { kind: "bind" | "ro-bind"; source: string; target: string }
  | { kind: "tmpfs"; target: string }
  | { kind: "dev"; target: "/dev" };

/** The device nodes `--dev` provides, bound from the host's (mknod is refused in a user namespace). */
export const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"];

/** The symlinks `--dev` adds, as in a usual /dev. */
const DEV_LINKS = [
  ["fd", "/proc/self/fd"],
  ["stdin", "/proc/self/fd/0"],
  ["stdout", "/proc/self/fd/1"],
  ["stderr", "/proc/self/fd/2"],
];

/**
 * The attributes every bind gets, on the bound mount and each one below it:
 * nosuid and nodev, as bubblewrap's `--bind` (a bind is a view of files, not
 * a way to bring setuid programs or device nodes in); `--ro-bind` adds rdonly.
 * The atime mode is left as the source has it.
 */
const BIND_ATTRIBUTES = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV;

/**
 * Why `request` cannot be done, or null when it can. Checked in the parent,
 * before anything is created: sources must exist and targets must be
 * absolute. The target itself is resolved only by the child, as it mounts.
 */
export function mountProblem(request: MountRequest): string | null {
  const target = request.target;
  if (!target.startsWith("/")) return `${target}: a mount target must be an absolute path`;
  if (target.split("/").includes("..")) return `${target}: a mount target may not contain ".."`;
  if ([target, "source" in request ? request.source : ""].some((path) => path.includes("\0"))) {
    return "a mount path contains a NUL byte";
  }
  if (request.kind === "bind" || request.kind === "ro-bind") {
    if (request.source === "") return "a bind mount needs a source";
    // through libc: Deno refuses /proc and /sys to the CLI's permissions (not --allow-all)
    if (!accessible(request.source, F_OK)) {
      return `${request.source}: no such file or directory (bind source)`;
    }
  }
  return null;
}

/**
 * A tree that changed under the tool while it walked it (a component swapped
 * for a symlink, a directory moved away, a name that keeps vanishing). The
 * message is one line.
 */
export class TreeChangedError extends Error {
  /** Builds the error; `path` is the path inside the tree that was being walked. */
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "TreeChangedError";
  }
}

/**
 * A mount point this run used or created, by where it is: components below a
 * base directory on the host (the tree's root, or the source of a bind this
 * run made when it lies inside one).
 */
export interface Entry {
  base: string;
  parts: string[];
  /** Device and inode of the file, when this run created it. */
  made?: { dev: number; ino: number };
}

/**
 * The extended attribute that marks a mount point some run of the tool
 * created, so that the last run using it can remove it even when its
 * creator ended first (or was killed). The parent sets it and trusts it: as
 * root in the `trusted.` namespace, which only real root can write (not the
 * root of a user namespace), so a jailed process cannot get root to remove a
 * directory it could not remove itself; rootless in `user.`, where a forger
 * could only make the tool do what its own user may do anyway.
 */
function marker(): string {
  return `${getuid() === 0 ? "trusted" : "user"}.invoke_ns.mount-point`;
}

/** What one run's child recorded of its mount points, as the init stage sends it. */
export interface MountRecord {
  /** The mount points used or created. */
  entries: Entry[];
  /** The mounts made. */
  mounts: MadeMount[];
}

/** A mount this run made inside the tree, so that later walks know what lies below it. */
export interface MadeMount {
  parts: string[];
  /** The bind's source on the host, or null for a filesystem that goes with the namespace. */
  source: string | null;
}

/** How often a walk starts again when a name it created is gone the next moment. */
const MAX_RETRIES = 8;
/** How long the child waits for another run's cleanup to let go of a mount point, at most. */
const LOCK_WAIT_MS = 2000;

function isErrno(error: unknown, ...codes: number[]): error is SyscallError {
  return error instanceof SyscallError && codes.includes(error.errno);
}

function components(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

/**
 * The mount points of one launch, shared by parent and child (the child runs
 * in the parent's memory): the child records what it creates and hands the
 * parent a shared flock(2) on every mount point it uses, through a socket
 * made before the clone; the parent, once the command has ended, removes
 * what this run created and no other run holds.
 */
export class MountPoints {
  readonly #entries = new Map<string, Entry>();
  readonly #mounts: MadeMount[] = [];
  #channel: [number, number] | null = null;
  /** The child's locks, until {@link MountPoints.handOver}. */
  readonly #held: number[] = [];
  /** The locks an init stage's child handed over (see {@link MountPoints.adopt}). */
  readonly #adopted: number[] = [];

  /** `root` is the host path of the tree the targets are in: the jail, or `/`. */
  constructor(readonly root: string) {}

  /** Parent, before the clone: the socket the child hands its locks over. */
  prepare(): void {
    this.#channel ??= fdChannel();
  }

  /** Notes `parts` (below the tree's root) as a candidate for removal. */
  #note(parts: string[], made?: { dev: number; ino: number }): void {
    // Inside a mount this run made, the file is in that bind's source on the
    // host, or in a filesystem that goes with the namespace (nothing to remove).
    let within: MadeMount | null = null;
    for (const mount of this.#mounts) {
      const inside = mount.parts.length < parts.length &&
        mount.parts.every((part, i) => parts[i] === part);
      if (inside && (!within || mount.parts.length >= within.parts.length)) within = mount;
    }
    if (within && within.source === null) return;
    const base = within?.source ?? this.root;
    const below = within ? parts.slice(within.parts.length) : parts;
    const key = `${base}\0${below.join("/")}`;
    const entry = this.#entries.get(key) ?? { base, parts: below };
    if (made) entry.made = made;
    this.#entries.set(key, entry);
  }

  /** Child: records a mount point it created at `parts` below the tree's root. */
  recordCreated(parts: string[], status: FileStatus): void {
    this.#note(parts, { dev: status.dev, ino: status.ino });
  }

  /** Child: records the mount point at `parts` and every directory on its way as used. */
  recordUsed(parts: string[]): void {
    for (let i = 1; i <= parts.length; i++) this.#note(parts.slice(0, i));
  }

  /** Child: records a mount made at `parts`; `source` is a bind's host path. */
  recordMount(parts: string[], source: string | null): void {
    this.#mounts.push({ parts, source });
  }

  /**
   * Child: holds a shared lock on the mount point open at `fd` (O_PATH) for
   * the rest of the run, so that no other run's cleanup removes it; the lock
   * travels to the parent with the fd. False when the mount point was
   * removed meanwhile (by the cleanup of a run that created it): walk again.
   */
  holdInUse(fd: number, directory: boolean, what: string): boolean {
    // a device node or FIFO is never opened (a watchdog starts when opened):
    // no run makes one, so no run's cleanup removes it
    if (!directory && fileStatus(fd, what).type !== S_IFREG) return true;
    let lock: number;
    try {
      lock = directory
        ? openAt(fd, ".", O_RDONLY | O_DIRECTORY)
        : open(`/proc/self/fd/${fd}`, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    } catch (error) {
      // unreadable to the caller: it is not one a run made (those are 0755/0644)
      if (isErrno(error, Errno.EACCES)) return true;
      throw error;
    }
    try {
      const deadline = Date.now() + LOCK_WAIT_MS;
      while (!flock(lock, LOCK_SH | LOCK_NB, what)) {
        if (Date.now() > deadline) {
          throw new TreeChangedError(what, "is locked by another process");
        }
        pollReadable([], 1);
      }
      if (fileStatus(lock, what).nlink === 0) {
        close(lock);
        return false;
      }
      this.#held.push(lock);
      return true;
    } catch (error) {
      close(lock);
      throw error;
    }
  }

  /**
   * Child, after its mounts: hands the locks to the parent, a few messages
   * in all (one per lock could fill the socket while the parent, suspended
   * until exec, cannot read it).
   */
  handOver(): void {
    if (!this.#channel) return; // the init stage: kept for {@link MountPoints.transfer}
    const held = this.#held.splice(0);
    try {
      sendFds(this.#channel[1], held);
    } finally {
      for (const fd of held) close(fd);
    }
  }

  /**
   * The init stage's child (its own process, not the parent's memory): what
   * it recorded and the locks it holds, to send to the parent, which takes
   * them with {@link MountPoints.adopt}.
   */
  transfer(): { record: MountRecord; fds: number[] } {
    return {
      record: { entries: [...this.#entries.values()], mounts: [...this.#mounts] },
      fds: this.#held.splice(0),
    };
  }

  /** Parent: takes over what the init stage's child recorded, and its locks (held until removal). */
  adopt(record: MountRecord, fds: number[]): void {
    for (const entry of record.entries) {
      this.#entries.set(`${entry.base}\0${entry.parts.join("/")}`, entry);
    }
    this.#mounts.push(...record.mounts);
    this.#adopted.push(...fds);
  }

  /**
   * Parent, once the child has exec'd (or failed): marks each mount point
   * this run created (still the same file, by device and inode) with
   * {@link marker}, where the filesystem can, so that the last run using it
   * removes it.
   */
  mark(): void {
    for (const entry of this.#entries.values()) {
      if (!entry.made) continue;
      try {
        withEntry(entry, (_parent, _name, handle, status) => {
          if (status.dev !== entry.made!.dev || status.ino !== entry.made!.ino) return;
          setXattr(`/proc/self/fd/${handle}`, marker(), "");
        });
      } catch {
        // changed meanwhile, or no such attributes here: only this run removes it, by inode
      }
    }
  }

  /**
   * Parent, once the command has ended: lets go of the locks, then removes,
   * innermost first, each mount point this run used or created that is
   * still a run's own (the very file this run made, by device and inode, or
   * one marked by the run that made it), empty, and used by no other run (an
   * exclusive flock is refused while one holds its shared lock). Walks from
   * the base directory with O_NOFOLLOW: a symlink the command planted on the
   * way makes it leave that entry alone.
   */
  remove(): void {
    for (const fd of this.#adopted.splice(0)) close(fd);
    if (this.#channel) {
      for (const fd of receiveFds(this.#channel[0])) close(fd);
      for (const fd of this.#channel) close(fd);
      this.#channel = null;
    }
    const entries = [...this.#entries.values()].sort((a, b) => b.parts.length - a.parts.length);
    this.#entries.clear();
    for (const entry of entries) {
      try {
        removeEntry(entry);
      } catch {
        // changed, in use, not empty, or gone already: left as it is
      }
    }
  }
}

/** Removes one {@link Entry} if it is still a run's own mount point and unused; throws otherwise. */
function removeEntry(entry: Entry): void {
  withEntry(entry, (parent, name, handle, status) => {
    const directory = status.type === S_IFDIR;
    if (!directory && (status.type !== S_IFREG || status.size !== 0)) return;
    // reopened through the O_PATH handle: the very file checked, whatever the name holds now
    const fd = open(`/proc/self/fd/${handle}`, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    try {
      const ours = entry.made?.dev === status.dev && entry.made.ino === status.ino;
      if (!ours && !hasXattr(fd, marker())) return;
      if (!flock(fd, LOCK_EX | LOCK_NB)) return; // another run uses it
      unlinkAt(parent, name, directory ? AT_REMOVEDIR : 0);
    } finally {
      close(fd);
    }
  });
}

/**
 * Walks to `entry` from its base with O_NOFOLLOW and calls `use` with its
 * parent directory's fd, its name, an O_PATH handle and what statx says of
 * it; throws when the walk meets a symlink or a missing name.
 */
function withEntry(
  entry: Entry,
  use: (parent: number, name: string, handle: number, status: FileStatus) => void,
): void {
  if (entry.parts.length === 0) return;
  const fds = [openAt(AT_FDCWD, entry.base, O_PATH | O_DIRECTORY)];
  try {
    for (const part of entry.parts.slice(0, -1)) {
      fds.push(openAt(fds.at(-1)!, part, O_PATH | O_NOFOLLOW | O_DIRECTORY));
    }
    const parent = fds.at(-1)!;
    const name = entry.parts.at(-1)!;
    const handle = openAt(parent, name, O_PATH | O_NOFOLLOW);
    fds.push(handle);
    use(parent, name, handle, fileStatus(handle));
  } finally {
    for (const fd of fds) close(fd);
  }
}

/** Makes a call by `fn`, recording it as `c` (a step's `made` calls, for `--trace`). */
export type Making = (c: Call, fn: () => void) => void;

/** What {@link openInTree} found or made. */
interface Walked {
  /** An O_PATH fd of the mount point. */
  fd: number;
  /** Its path below the tree's root, every component a real directory (no symlinks). */
  parts: string[];
}

/**
 * Opens `path` inside the tree open at `root` as a process chrooted there
 * would resolve it (absolute symlinks start again at the root, ".." stops
 * there), one component at a time with O_NOFOLLOW from a directory fd, so
 * no symlink can lead out. Missing components are created (directories, or
 * an empty file at the end when `file`) and recorded in `points`. With
 * `rootPath` (the tree's host path), the result is checked to lie below it:
 * a directory moved out of the tree during the walk is caught. With
 * `making`, each mkdirat it makes goes through it (as its call, for `--trace`).
 */
export function openInTree(
  root: number,
  path: string,
  file: boolean,
  points: MountPoints | null,
  rootPath?: string,
  making?: Making,
): Walked {
  const stack: number[] = [];
  const parts: string[] = [];
  const pending = components(path).reverse();
  const here = () => stack.at(-1) ?? root;
  let symlinks = 0;
  let retries = 0;
  try {
    while (pending.length > 0) {
      const part = pending.pop()!;
      if (part === "..") {
        if (stack.length > 0) close(stack.pop()!);
        parts.pop();
        continue;
      }
      const final = pending.length === 0;
      const shown = `/${[...parts, part].join("/")}`;
      let fd: number;
      try {
        fd = openAt(here(), part, O_PATH | O_NOFOLLOW);
      } catch (error) {
        if (!isErrno(error, Errno.ENOENT)) throw error;
        if (++retries > MAX_RETRIES) throw new TreeChangedError(shown, "keeps vanishing");
        const made = create(here(), part, final && file, shown, making);
        if (made === "gone") {
          // the directory it was made in was removed meanwhile: start again
          while (stack.length > 0) close(stack.pop()!);
          parts.length = 0;
          pending.length = 0;
          pending.push(...components(path).reverse());
          continue;
        }
        if (made === "made") {
          fd = openAt(here(), part, O_PATH | O_NOFOLLOW);
          try {
            const status = fileStatus(fd, shown);
            if (status.type === (final && file ? S_IFREG : S_IFDIR)) {
              points?.recordCreated([...parts, part], status);
            }
          } finally {
            close(fd);
          }
        }
        pending.push(part);
        continue;
      }
      const status = fileStatus(fd, shown);
      if (status.type === S_IFLNK) {
        const target = readLinkAt(fd, "", shown);
        close(fd);
        if (++symlinks > MAX_SYMLINKS) {
          throw new TreeChangedError(shown, "too many levels of symlinks");
        }
        if (target.startsWith("/")) {
          while (stack.length > 0) close(stack.pop()!);
          parts.length = 0;
        }
        pending.push(...components(target).reverse());
        continue;
      }
      stack.push(fd);
      parts.push(part);
      if (!final && status.type !== S_IFDIR) {
        throw new TreeChangedError(shown, "not a directory");
      }
    }
    const fd = stack.pop() ?? openAt(root, ".", O_PATH | O_DIRECTORY);
    if (rootPath !== undefined && rootPath !== "/") {
      const where = readLink(`/proc/self/fd/${fd}`);
      if (where !== rootPath && !where.startsWith(`${rootPath}/`)) {
        close(fd);
        throw new TreeChangedError(path, `left the tree during the walk (now ${where})`);
      }
    }
    return { fd, parts };
  } finally {
    for (const fd of stack) close(fd);
  }
}

/**
 * Creates `name` in the directory `dir`: a directory, or an empty file when
 * `file`. "exists" when something of that name appeared meanwhile, "gone"
 * when `dir` itself was removed.
 */
function create(
  dir: number,
  name: string,
  file: boolean,
  shown: string,
  making?: Making,
): "made" | "exists" | "gone" {
  const mkdir = call("mkdirat", dir, name, "0755");
  try {
    if (file) close(openAt(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644));
    else if (making) making(mkdir, () => mkdirAt(dir, name, 0o755));
    else mkdirAt(dir, name, 0o755);
    return "made";
  } catch (error) {
    if (isErrno(error, Errno.EEXIST)) {
      if (!file) mkdir.returns = "-1 EEXIST (File exists)";
      return "exists";
    }
    if (isErrno(error, Errno.ENOENT) && fileStatus(dir, shown).nlink === 0) return "gone";
    if (error instanceof SyscallError) {
      throw new SyscallError(file ? "open" : "mkdir", error.errno, error.description, shown);
    }
    throw error;
  }
}

/**
 * Walks to `target` (creating it), takes the in-use lock, then calls
 * `attach` with the target's fd; starts again when another run's cleanup
 * removed the mount point in between.
 */
function atMountPoint(
  tree: Tree,
  target: string,
  file: boolean,
  attach: (fd: number, parts: string[]) => void,
): void {
  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    const { fd, parts } = openInTree(tree.fd, target, file, tree.points, tree.path);
    try {
      const directory = fileStatus(fd, target).type === S_IFDIR;
      if (!tree.points.holdInUse(fd, directory, target)) continue;
      tree.points.recordUsed(parts);
      attach(fd, parts);
      return;
    } finally {
      close(fd);
    }
  }
  throw new TreeChangedError(target, "was removed each time it was made");
}

/** The tree the child mounts in: its root fd and host path, and the launch's mount points. */
interface Tree {
  fd: number;
  path: string;
  points: MountPoints;
}

/** A bind of the host's `source` (and every mount below it), with {@link BIND_ATTRIBUTES}. */
function bind(tree: Tree, source: string, target: string, readOnly: boolean): void {
  const detached = openTree(AT_FDCWD, source, OPEN_TREE_CLONE | AT_RECURSIVE);
  try {
    const attributes = BIND_ATTRIBUTES | (readOnly ? MOUNT_ATTR.RDONLY : 0n);
    try {
      setMountAttributes(detached, attributes, true, source);
    } catch (error) {
      if (!isErrno(error, Errno.ENOSYS)) throw error;
      throw new SyscallError(
        "mount_setattr",
        error.errno,
        "binds need Linux 5.12 or later, to make every submount nosuid, nodev (and read-only)",
        source,
      );
    }
    const file = fileStatus(detached, source).type !== S_IFDIR;
    atMountPoint(tree, target, file, (fd, parts) => {
      moveMount(detached, fd, target);
      tree.points.recordMount(parts, source);
    });
  } finally {
    close(detached);
  }
}

/**
 * A tmpfs on `target` holding the host's {@link DEV_NODES}, bound, and the
 * usual symlinks. The nodes are cloned (open_tree) before the tmpfs goes up:
 * without a jail, `target` is the very `/dev` they come from.
 */
function mountMinimalDev(tree: Tree, target: string): void {
  const nodes = DEV_NODES.map((node) => ({
    node,
    fd: openTree(AT_FDCWD, `/dev/${node}`, OPEN_TREE_CLONE),
  }));
  try {
    const dev = newMount("tmpfs", { mode: "0755" }, MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC);
    try {
      atMountPoint(tree, target, false, (fd, parts) => {
        moveMount(dev, fd, target);
        tree.points.recordMount(parts, null);
      });
      for (const { node, fd } of nodes) {
        close(openAt(dev, node, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644));
        const point = openAt(dev, node, O_PATH | O_NOFOLLOW);
        try {
          moveMount(fd, point, `${target}/${node}`);
        } finally {
          close(point);
        }
      }
      for (const [name, link] of DEV_LINKS) symlink(link, `/proc/self/fd/${dev}/${name}`);
    } finally {
      close(dev);
    }
  } finally {
    for (const { fd } of nodes) close(fd);
  }
}

/** Opens the tree at `path` (a real path: a symlink on it now means it changed since the check). */
function openTreeRoot(path: string): number {
  try {
    return openResolved(AT_FDCWD, path, O_PATH | O_DIRECTORY, RESOLVE.NO_SYMLINKS);
  } catch (error) {
    if (!isErrno(error, Errno.ELOOP)) throw error;
    throw new TreeChangedError(path, "a symlink appeared on its path since it was checked");
  }
}

/**
 * Child step: makes `requests` in the tree open at `root` (the jail's root
 * mount), or, without one, in the tree at `points.root` (opened here).
 * Sources are paths as the caller sees them.
 */
export function performMounts(
  requests: MountRequest[],
  points: MountPoints,
  root?: number,
): void {
  const fd = root ?? openTreeRoot(points.root);
  const tree = { fd, path: points.root, points };
  try {
    for (const request of requests) {
      switch (request.kind) {
        case "bind":
        case "ro-bind":
          bind(tree, request.source, request.target, request.kind === "ro-bind");
          break;
        case "tmpfs": {
          const tmpfs = newMount("tmpfs", { mode: "0755" }, MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV);
          try {
            atMountPoint(tree, request.target, false, (at, parts) => {
              moveMount(tmpfs, at, request.target);
              points.recordMount(parts, null);
            });
          } finally {
            close(tmpfs);
          }
          break;
        }
        case "dev":
          mountMinimalDev(tree, request.target);
          break;
      }
    }
    points.handOver();
  } finally {
    if (root === undefined) close(fd);
  }
}

/** The child step that makes `requests` in the jail open at `jail.root`, or in `points.root`. */
export function mountsStep(
  requests: MountRequest[],
  points: MountPoints,
  jail: { root?: number },
): ChildStep {
  const tree = points.root === "/" ? "" : points.root;
  const calls = requests.flatMap((request) => {
    const target = `${tree}${request.target}`;
    switch (request.kind) {
      case "bind":
      case "ro-bind":
        return [
          call("openat2", target, "RESOLVE_IN_ROOT-like walk, O_NOFOLLOW"),
          call("open_tree", request.source, "OPEN_TREE_CLONE|AT_RECURSIVE"),
          call(
            "mount_setattr",
            "<the clone>",
            "AT_RECURSIVE",
            request.kind === "ro-bind"
              ? "MOUNT_ATTR_RDONLY|MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV"
              : "MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV",
          ),
          call("move_mount", "<the clone>", `<fd of ${target}>`),
        ];
      case "tmpfs":
        return [
          call("fsopen", "tmpfs"),
          call("fsmount", "<tmpfs>", "MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV"),
          call("move_mount", "<tmpfs>", `<fd of ${target}>`),
        ];
      case "dev":
        return [
          call("fsopen", "tmpfs"),
          call("move_mount", "<tmpfs>", `<fd of ${target}>`),
          ...DEV_NODES.map((node) =>
            call("move_mount", `<clone of /dev/${node}>`, `${target}/${node}`)
          ),
        ];
    }
  });
  return {
    name: "mount",
    calls,
    why:
      "the bind, tmpfs and /dev mounts asked for, made on fds walked without following links out",
    run: () => performMounts(requests, points, jail.root),
  };
}
