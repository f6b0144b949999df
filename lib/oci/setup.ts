/**
 * The steps only an OCI container needs, beyond a launch's: its mounts with
 * their types and options, its device nodes, the root file system's
 * propagation and read-only-ness, the domain name, sysctls, the OOM score,
 * the personality, a terminal sent to the console socket, and the process's
 * user, groups, umask and working directory. `planLaunch` pushes them when
 * {@link LaunchSpec.container} is set (`lib/oci/config.ts` fills it in from
 * a config.json). Every target is resolved inside the root file system one
 * component at a time without following a symlink out (`openInTree`), as
 * runc's securejoin.
 * @module
 */

import {
  accessible,
  becomeUser,
  close,
  F_OK,
  fileStatus,
  mount,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  open,
  openAt,
  readFile,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  setns,
  writeFile,
} from "../../ffi/libc.ts";
import { CLONE, TIOC } from "../../ffi/constants.ts";
import {
  chdir,
  chownAt,
  dup2,
  ioctlBuffer,
  ioctlValue,
  listDirectory,
  mknodAt,
  O_NOCTTY,
  personality,
  setdomainname,
  setsid,
  symlink,
  umask,
  unlinkAt,
} from "../../ffi/files.ts";
import {
  AT_RECURSIVE,
  changeMountAttributes,
  MOUNT_ATTR,
  MOUNT_ATTR_ATIME,
  moveMount,
  OPEN_TREE_CLONE,
  openTree,
} from "../../ffi/mountapi.ts";
import { connectUnix, sendFds } from "../../ffi/socket.ts";
import { Errno, SyscallError } from "../../ffi/errors.ts";
import { openInTree } from "../mount.ts";
import type { NamespaceType } from "../inspect.ts";
import { type Call, call, type ChildStep, flagNames, type ParentStep, writeCall } from "../step.ts";

/** A namespace type that may be joined by path (the tool's thread joins it before clone). */
export type JoinableNamespace = "net" | "ipc" | "uts" | "cgroup";

/** One mount of a container, in the order given. */
export type ContainerMount =
  | {
    /** Where, inside the root file system. */
    destination: string;
    /** A bind of a host path. */
    kind: "bind";
    /** The host path. */
    source: string;
    /** `rbind`: with every mount below it. */
    recursive: boolean;
    /** mount(2) flags from the options (ro, nosuid, …). */
    flags: number;
    /** Propagation changes, in order (mount(2) flags). */
    propagation: number[];
  }
  | {
    /** Where, inside the root file system. */
    destination: string;
    /** A new file system. */
    kind: "fs";
    /** Its type: proc, sysfs, tmpfs, devpts, mqueue, cgroup, cgroup2. */
    type: string;
    /** Its source name (shown in mountinfo). */
    source: string;
    /** mount(2) flags from the options. */
    flags: number;
    /** Propagation changes, in order. */
    propagation: number[];
    /** The options that are the file system's own (`mode=755`, `newinstance`). */
    data: string[];
    /**
     * runc's `tmpcopyup`: the tmpfs starts with what the directory held.
     * Honoured for an empty (or new) directory, where there is nothing to
     * copy; a directory with entries is refused at mount time.
     */
    copyUp?: boolean;
  };

/** A device node the container gets. */
export interface ContainerDevice {
  /** Its path inside. */
  path: string;
  /** Character, block or FIFO. */
  type: "c" | "b" | "p";
  /** Major number. */
  major: number;
  /** Minor number. */
  minor: number;
  /** Permission bits. */
  fileMode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
}

/** What a container needs beyond a launch (all serialisable: the init stage plans from it). */
export interface ContainerSetup {
  /** Namespaces to create that the launch has no other field for (`uts` without a hostname). */
  namespaces: NamespaceType[];
  /** Namespaces joined by path, before clone. */
  joins: { spec: string; type: JoinableNamespace; path: string }[];
  /** The mounts, in order, made in the root file system before pivot_root. */
  mounts: ContainerMount[];
  /** The device nodes (made with mknod as root, bound from the host's in a user namespace). */
  devices: ContainerDevice[];
  /** `root.readonly`. */
  readonlyRoot: boolean;
  /** `linux.rootfsPropagation`, as mount(2) flags. */
  rootfsPropagation?: number;
  /** The process's environment, exactly (it replaces the caller's). */
  env: string[];
  /** The working directory, inside. */
  cwd: string;
  /** Who the process runs as. */
  user: { uid: number; gid: number; additionalGids: number[]; umask?: number };
  /**
   * The user is changed by the engine's credential steps (`LaunchSpec.uid`,
   * with the capabilities), not by {@link containerUserSteps}.
   */
  userByContainment?: boolean;
  /** Give the process a terminal (a pty whose master goes to `consoleSocket`). */
  terminal: boolean;
  /** The terminal's size. */
  consoleSize?: { height: number; width: number };
  /** The AF_UNIX socket the terminal's master is sent to (`--console-socket`). */
  consoleSocket?: string;
  /** The NIS domain name. */
  domainname?: string;
  /** Kernel parameters written under /proc/sys, inside. */
  sysctl: Record<string, string>;
  /** personality(2). */
  personality?: number;
  /** /proc/self/oom_score_adj. */
  oomScoreAdj?: number;
}

const MS_RDONLY = 0x1, MS_NOSUID = 0x2, MS_NODEV = 0x4, MS_NOEXEC = 0x8;
const MS_NOATIME = 0x400, MS_NODIRATIME = 0x800, MS_RELATIME = 0x200000;
const MS_STRICTATIME = 0x1000000, MS_BIND = 0x1000, MS_REMOUNT = 0x20;

/** The mount_setattr attributes to set and clear for a bind with mount(2) `flags`. */
export function bindAttributes(flags: number): { set: bigint; clear: bigint } {
  let set = 0n, clear = 0n;
  if (flags & MS_RDONLY) set |= MOUNT_ATTR.RDONLY;
  if (flags & MS_NOSUID) set |= MOUNT_ATTR.NOSUID;
  if (flags & MS_NODEV) set |= MOUNT_ATTR.NODEV;
  if (flags & MS_NOEXEC) set |= MOUNT_ATTR.NOEXEC;
  if (flags & MS_NODIRATIME) set |= MOUNT_ATTR_ATIME.NODIRATIME;
  const atime = flags & MS_NOATIME
    ? MOUNT_ATTR_ATIME.NOATIME
    : flags & MS_STRICTATIME
    ? MOUNT_ATTR_ATIME.STRICTATIME
    : flags & MS_RELATIME
    ? MOUNT_ATTR_ATIME.RELATIME
    : null;
  if (atime !== null) {
    set |= atime;
    clear |= MOUNT_ATTR_ATIME.MASK;
  }
  return { set, clear };
}

/** The fd path of an O_PATH fd, which mount(2) follows to the file itself. */
const fdPath = (fd: number) => `/proc/self/fd/${fd}`;

/** mount(2)'s flags by name, for the calls the mounts step lists. */
const MOUNT_FLAGS: Record<string, number> = {
  RDONLY: MS_RDONLY,
  NOSUID: MS_NOSUID,
  NODEV: MS_NODEV,
  NOEXEC: MS_NOEXEC,
  SYNCHRONOUS: 0x10,
  REMOUNT: MS_REMOUNT,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOATIME: MS_NOATIME,
  NODIRATIME: MS_NODIRATIME,
  BIND: MS_BIND,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: MS_RELATIME,
  STRICTATIME: MS_STRICTATIME,
};

/** mount_setattr(2)'s attributes by name. */
const ATTR_NAMES: Record<string, bigint> = {
  RDONLY: MOUNT_ATTR.RDONLY,
  NOSUID: MOUNT_ATTR.NOSUID,
  NODEV: MOUNT_ATTR.NODEV,
  NOEXEC: MOUNT_ATTR.NOEXEC,
  NOATIME: MOUNT_ATTR_ATIME.NOATIME,
  STRICTATIME: MOUNT_ATTR_ATIME.STRICTATIME,
  NODIRATIME: MOUNT_ATTR_ATIME.NODIRATIME,
};

/** A mode or umask as strace prints it (`000`, `022`, `0666`). */
const octal = (mode: number) => mode === 0 ? "000" : `0${mode.toString(8)}`.padStart(3, "0");

/** A device node's type and mode as mknodat(2) gets it (`S_IFCHR|0666`). */
function nodeMode(device: ContainerDevice): string {
  const type = device.type === "c" ? "S_IFCHR" : device.type === "b" ? "S_IFBLK" : "S_IFIFO";
  return `${type}|${octal(device.fileMode)}`;
}

/** A number as C's `%#x` prints it (`0x1f`, `0`). */
const hex = (n: number) => n === 0 ? "0" : `0x${n.toString(16)}`;

/** A device number as strace prints it (`makedev(0x1, 0x3)`). */
const makedev = (device: ContainerDevice) => `makedev(${hex(device.major)}, ${hex(device.minor)})`;

/** The calls of a mount(2): `target` as the fd path of the open target. */
function mountCall(
  source: string | null,
  target: string,
  type: string | null,
  flags: number,
  data: string | null,
): Call {
  return call("mount", source, target, type, flagNames(flags, MOUNT_FLAGS, "MS_"), data);
}

/** The mount_setattr(2) of `fd` that sets `set` and clears `clear`. */
function setattrCall(fd: number | string, set: bigint, clear: bigint, recursive: boolean): Call {
  const names = (mask: bigint) =>
    mask === MOUNT_ATTR_ATIME.MASK
      ? "MOUNT_ATTR__ATIME"
      : flagNames(mask, ATTR_NAMES, "MOUNT_ATTR_");
  // relatime is the atime mode 0: named when it is the mode set
  const relatime = clear === MOUNT_ATTR_ATIME.MASK && (set & MOUNT_ATTR_ATIME.MASK) === 0n;
  const setNames = relatime
    ? [names(set), "MOUNT_ATTR_RELATIME"].filter((name) => name !== "0").join("|")
    : names(set);
  return call(
    "mount_setattr",
    fd,
    "",
    recursive ? "AT_EMPTY_PATH|AT_RECURSIVE" : "AT_EMPTY_PATH",
    `{attr_set=${setNames}, attr_clr=${names(clear)}, propagation=0, userns_fd=0}`,
    32,
  );
}

/** The move_mount(2) of the detached mount `from` onto the file open at `to`. */
function moveCall(from: number | string, to: number | string): Call {
  return call("move_mount", from, "", to, "", "MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH");
}

/** The open_tree(2) of the host's `path` (`recursive`: with its submounts). */
function openTreeCall(path: string, recursive: boolean): Call {
  const flags = `OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC${recursive ? "|AT_RECURSIVE" : ""}`;
  return call("open_tree", "AT_FDCWD", path, flags);
}

/** The calls the mounts step has made while it runs (for `--trace`); the last failed with `failed`. */
let made: { calls: Call[]; failed: boolean } | undefined;

/** Makes `c` by `fn`, recorded in {@link made} while the mounts step runs (`shown`: its result). */
function making<T>(c: Call, fn: () => T, shown?: (result: T) => string): T {
  if (!made) return fn();
  made.calls.push(c);
  made.failed = true;
  const result = fn();
  made.failed = false;
  if (shown) c.returns = shown(result);
  return result;
}

/** Opens `destination` inside the tree at `root` (creating it: a file when `file`). */
function target(root: number, rootPath: string, destination: string, file: boolean): number {
  return openInTree(root, destination, file, null, rootPath, made ? making : undefined).fd;
}

/** Applies `propagation` to the mount now at `destination`. */
function propagate(root: number, rootPath: string, destination: string, changes: number[]) {
  if (changes.length === 0) return;
  const fd = target(root, rootPath, destination, false);
  try {
    for (const change of changes) {
      making(
        mountCall(null, fdPath(fd), null, change, null),
        () => mount(null, fdPath(fd), null, BigInt(change), null),
      );
    }
  } finally {
    close(fd);
  }
}

/** A bind of the host's `source` at `destination`, then its attributes. */
function bindMount(root: number, rootPath: string, m: ContainerMount & { kind: "bind" }): void {
  const detached = making(
    openTreeCall(m.source, m.recursive),
    () => openTree(-100, m.source, OPEN_TREE_CLONE | (m.recursive ? AT_RECURSIVE : 0)),
    String,
  );
  try {
    const { set, clear } = bindAttributes(m.flags);
    if (set !== 0n || clear !== 0n) {
      making(
        setattrCall(detached, set, clear, m.recursive),
        () => changeMountAttributes(detached, set, clear, m.recursive, m.source),
      );
    }
    const file = fileStatus(detached, m.source).type !== S_IFDIR;
    const at = target(root, rootPath, m.destination, file);
    try {
      making(moveCall(detached, at), () => moveMount(detached, at, m.destination));
    } finally {
      close(at);
    }
  } finally {
    close(detached);
  }
}

/** The cgroup hierarchies of this process, from /proc/self/cgroup: v1 controller lists, "" for v2. */
function cgroupHierarchies(): string[] {
  return readFile("/proc/self/cgroup").trim().split("\n")
    .map((line) => line.split(":")[1]).filter((list) => list !== undefined);
}

/** The links for co-mounted controllers in the directory `destination` (cpu → cpu,cpuacct). */
function comountLinks(root: number, rootPath: string, destination: string, name: string): void {
  if (!name.includes(",")) return;
  for (const single of name.split(",")) {
    const dir = target(root, rootPath, destination, false);
    try {
      symlink(name, `${fdPath(dir)}/${single}`);
    } catch (error) {
      if (!(error instanceof SyscallError) || error.errno !== Errno.EEXIST) throw error;
    } finally {
      close(dir);
    }
  }
}

/** The directory under /sys/fs/cgroup of a hierarchy's mount point: its name in a container. */
const CGROUP_ROOT = "/sys/fs/cgroup";

/** One thing a `cgroup` mount does, in order: what {@link cgroupMount} makes and the mounts step lists. */
type CgroupAction =
  /** A bind of the host's cgroup directory `dir` at `destination`. */
  | { kind: "bind"; dir: string; destination: string }
  /** A mount(2) of a new file system at `destination`. */
  | { kind: "mount"; type: string; destination: string; flags: number; data: string | null }
  /** The links for the co-mounted controllers of `name`. */
  | { kind: "links"; name: string }
  /** The tmpfs made read-only once its hierarchies are in. */
  | { kind: "remount"; flags: number };

/**
 * What a `cgroup` mount does, in order (read from /proc/self/cgroup, the
 * same at planning and when it runs): on a v2-only host, cgroup2 itself; on
 * a v1 or hybrid host, a tmpfs holding each hierarchy of this process
 * mounted again (in a cgroup namespace the container sees its own cgroup as
 * the root), with the usual links for co-mounted controllers (cpu →
 * cpu,cpuacct), then read-only when asked. Without a cgroup namespace, a
 * container with cgroups of its own (`own`, their host directories) gets
 * those bound instead, under their hierarchy's name (in a tmpfs but on a
 * v2-only host), so it sees its own cgroup and nothing above it, as runc does.
 */
function cgroupActions(m: ContainerMount & { kind: "fs" }, own: string[] | null): CgroupAction[] {
  const hierarchies = cgroupHierarchies();
  const v1 = hierarchies.filter((list) => list !== "");
  const tmpfs: CgroupAction = {
    kind: "mount",
    type: "tmpfs",
    destination: m.destination,
    flags: m.flags & ~MS_RDONLY,
    data: "mode=755",
  };
  const remount: CgroupAction[] = m.flags & MS_RDONLY
    ? [{ kind: "remount", flags: MS_BIND | MS_REMOUNT | MS_RDONLY | (m.flags & 0xe) }]
    : [];
  if (own && own.length > 0) {
    if (own.length === 1 && v1.length === 0) {
      return [{ kind: "bind", dir: own[0], destination: m.destination }]; // v2 only
    }
    return [
      tmpfs,
      ...own.flatMap((dir): CgroupAction[] => {
        const name = dir.slice(CGROUP_ROOT.length + 1).split("/")[0];
        return [{ kind: "bind", dir, destination: `${m.destination}/${name}` }, {
          kind: "links",
          name,
        }];
      }),
      ...remount,
    ];
  }
  if (m.type === "cgroup2" || v1.length === 0) {
    const data = m.data.join(",") || null;
    return [{ kind: "mount", type: "cgroup2", destination: m.destination, flags: m.flags, data }];
  }
  const names: [string, string, string][] = v1.map((list) => {
    const name = list.startsWith("name=") ? list.slice(5) : list;
    return [name, list.startsWith("name=") ? `none,${list}` : list, "cgroup"];
  });
  if (hierarchies.includes("")) names.push(["unified", "", "cgroup2"]);
  return [
    tmpfs,
    ...names.flatMap(([name, data, type]): CgroupAction[] => [
      {
        kind: "mount",
        type,
        destination: `${m.destination}/${name}`,
        flags: m.flags,
        data: data || null,
      },
      { kind: "links", name },
    ]),
    ...remount,
  ];
}

/** The calls of `actions` (a `cgroup` mount's), each target as `at` names it. */
function cgroupCalls(
  m: ContainerMount & { kind: "fs" },
  actions: CgroupAction[],
  at: (path: string) => string,
): Call[] {
  const { set, clear } = bindAttributes(m.flags);
  // a hierarchy's directory in the tmpfs, new: made as the walk to it finds it missing
  const mkdir = (destination: string) =>
    destination === m.destination
      ? []
      : [call("mkdirat", at(m.destination), destination.slice(m.destination.length + 1), "0755")];
  return actions.flatMap((action): Call[] => {
    if (action.kind === "bind") {
      const clone = `<clone of ${action.dir}>`;
      return [
        { ...openTreeCall(action.dir, false), returns: clone },
        ...mkdir(action.destination),
        ...set !== 0n || clear !== 0n ? [setattrCall(clone, set, clear, false)] : [],
        moveCall(clone, at(action.destination)),
      ];
    }
    if (action.kind === "mount") {
      const { type, destination, flags, data } = action;
      return [
        ...mkdir(destination),
        mountCall(type, `/proc/self/fd/${at(destination)}`, type, flags, data),
      ];
    }
    if (action.kind === "remount") {
      return [mountCall(null, `/proc/self/fd/${at(m.destination)}`, null, action.flags, null)];
    }
    return [];
  });
}

/** Makes the `cgroup` mount `m` ({@link cgroupActions}) in the tree at `root`. */
function cgroupMount(
  root: number,
  rootPath: string,
  m: ContainerMount & { kind: "fs" },
  own: string[] | null,
): void {
  const { set, clear } = bindAttributes(m.flags);
  for (const action of cgroupActions(m, own)) {
    if (action.kind === "links") {
      comountLinks(root, rootPath, m.destination, action.name);
    } else if (action.kind === "bind") {
      const { dir, destination } = action;
      const detached = making(
        openTreeCall(dir, false),
        () => openTree(-100, dir, OPEN_TREE_CLONE),
        String,
      );
      try {
        if (set !== 0n || clear !== 0n) {
          making(
            setattrCall(detached, set, clear, false),
            () => changeMountAttributes(detached, set, clear, false, dir),
          );
        }
        const at = target(root, rootPath, destination, false);
        try {
          making(moveCall(detached, at), () => moveMount(detached, at, destination));
        } finally {
          close(at);
        }
      } finally {
        close(detached);
      }
    } else {
      const [type, destination, flags, data] = action.kind === "mount"
        ? [action.type, action.destination, action.flags, action.data]
        : [null, m.destination, action.flags, null];
      const at = target(root, rootPath, destination, false);
      try {
        making(
          mountCall(type, fdPath(at), type, flags, data),
          () => mount(type, fdPath(at), type, BigInt(flags), data),
        );
      } finally {
        close(at);
      }
    }
  }
}

/**
 * Makes the container's mounts in order in the root file system open at
 * `root`; `ownCgroups`: the container's cgroup directories when it has no
 * cgroup namespace (a `cgroup` mount binds them), else null.
 */
export function performContainerMounts(
  mounts: ContainerMount[],
  root: number,
  rootPath: string,
  ownCgroups: string[] | null = null,
): void {
  for (const m of mounts) {
    if (m.kind === "bind") bindMount(root, rootPath, m);
    else if (m.type === "cgroup" || m.type === "cgroup2") {
      cgroupMount(root, rootPath, m, ownCgroups);
    } else {
      const at = target(root, rootPath, m.destination, false);
      try {
        if (m.copyUp) refuseCopyUp(at, m.destination);
        const data = m.data.join(",") || null;
        making(
          mountCall(m.source, fdPath(at), m.type, m.flags, data),
          () => mount(m.source, fdPath(at), m.type, BigInt(m.flags), data),
        );
      } finally {
        close(at);
      }
    }
    propagate(root, rootPath, m.destination, m.propagation);
  }
}

/** Refuses `tmpcopyup` onto the directory open at `at` when it holds anything to copy. */
function refuseCopyUp(at: number, destination: string): void {
  const dir = openAt(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    if (listDirectory(fdPath(dir)).length > 0) {
      throw new Error(
        `${destination}: "tmpcopyup" of a directory with entries is not implemented`,
      );
    }
  } finally {
    close(dir);
  }
}

/** The symlinks every container's /dev has (runc's). */
const DEV_LINKS: [string, string][] = [
  ["/proc/self/fd", "fd"],
  ["/proc/self/fd/0", "stdin"],
  ["/proc/self/fd/1", "stdout"],
  ["/proc/self/fd/2", "stderr"],
  ["/proc/kcore", "core"],
];

/** Makes `device` in the tree at `root`: by mknod, or bound from the host's (`bindFromHost`). */
function makeDevice(
  device: ContainerDevice,
  root: number,
  rootPath: string,
  bindFromHost: boolean,
): void {
  const slash = device.path.lastIndexOf("/");
  const name = device.path.slice(slash + 1);
  const dir = target(root, rootPath, device.path.slice(0, slash) || "/", false);
  try {
    if (bindFromHost) {
      const node = target(root, rootPath, device.path, true);
      try {
        const detached = making(
          openTreeCall(device.path, false),
          () => openTree(-100, device.path, OPEN_TREE_CLONE),
          String,
        );
        try {
          making(moveCall(detached, node), () => moveMount(detached, node, device.path));
        } finally {
          close(detached);
        }
      } finally {
        close(node);
      }
      return;
    }
    const type = device.type === "c" ? S_IFCHR : device.type === "b" ? S_IFBLK : S_IFIFO;
    const node = () =>
      making(
        call("mknodat", dir, name, nodeMode(device), makedev(device)),
        () => mknodAt(dir, name, type | device.fileMode, device.major, device.minor),
      );
    try {
      node();
    } catch (error) {
      if (!(error instanceof SyscallError) || error.errno !== Errno.EEXIST) throw error;
      // the image has one already (a regular file in a tar): replace it
      const failed = made?.calls.at(-1);
      if (failed) failed.returns = "-1 EEXIST (File exists)";
      unlinkAt(dir, name, 0);
      node();
    }
    if (device.uid !== 0 || device.gid !== 0) chownAt(dir, name, device.uid, device.gid);
  } finally {
    close(dir);
  }
}

/**
 * Makes the container's device nodes: with mknod (as root on the host), or,
 * in a user namespace (where mknod is refused), bound from the host's node
 * of the same path; then the usual /dev links, and /dev/ptmx to pts/ptmx
 * when a devpts is mounted at /dev/pts.
 */
export function createDevices(
  devices: ContainerDevice[],
  root: number,
  rootPath: string,
  bindFromHost: boolean,
  ptmx: boolean,
): void {
  // mknod as asked: no umask in the way (set once for every node, then put back)
  const old = !bindFromHost && devices.length > 0
    ? making(call("umask", "000"), () => umask(0), octal)
    : undefined;
  try {
    for (const device of devices) makeDevice(device, root, rootPath, bindFromHost);
  } finally {
    if (old !== undefined) making(call("umask", octal(old)), () => umask(old), octal);
  }
  const dev = target(root, rootPath, "/dev", false);
  try {
    // /dev/core only where the host has a /proc/kcore (runc's rule)
    const links = DEV_LINKS.filter(([to]) => to !== "/proc/kcore" || accessible(to, F_OK));
    if (ptmx) links.push(["pts/ptmx", "ptmx"]);
    for (const [to, name] of links) {
      try {
        symlink(to, `${fdPath(dev)}/${name}`);
      } catch (error) {
        if (!(error instanceof SyscallError) || error.errno !== Errno.EEXIST) throw error;
        if (name !== "ptmx") continue;
        // an image's own /dev/ptmx (a node or a file) would bypass the container's devpts
        unlinkAt(dev, name, 0);
        symlink(to, `${fdPath(dev)}/${name}`);
      }
    }
  } finally {
    close(dev);
  }
}

/**
 * The child step that makes the container's mounts and devices, before
 * pivot_root; `ownCgroups` as {@link performContainerMounts}'s.
 */
export function containerMountsStep(
  setup: ContainerSetup,
  rootfs: string,
  jail: { root?: number },
  inUserNamespace: boolean,
  ownCgroups: string[] | null,
): ChildStep {
  const ptmx = setup.mounts.some((m) => m.destination === "/dev/pts" && m.kind === "fs");
  const at = (path: string) => `<fd of ${rootfs}${path === "/" ? "" : path}>`;
  const propagation = (m: ContainerMount) =>
    m.propagation.map((change) =>
      mountCall(null, `/proc/self/fd/${at(m.destination)}`, null, change, null)
    );
  const mknod = !inUserNamespace && setup.devices.length > 0;
  const calls = [
    ...setup.mounts.flatMap((m) => {
      if (m.kind === "fs" && (m.type === "cgroup" || m.type === "cgroup2")) {
        return [...cgroupCalls(m, cgroupActions(m, ownCgroups), at), ...propagation(m)];
      }
      if (m.kind === "fs") {
        const data = m.data.join(",") || null;
        const made = `/proc/self/fd/${at(m.destination)}`;
        return [mountCall(m.source, made, m.type, m.flags, data), ...propagation(m)];
      }
      const clone = `<clone of ${m.source}>`;
      const { set, clear } = bindAttributes(m.flags);
      return [
        { ...openTreeCall(m.source, m.recursive), returns: clone },
        ...set !== 0n || clear !== 0n ? [setattrCall(clone, set, clear, m.recursive)] : [],
        moveCall(clone, at(m.destination)),
        ...propagation(m),
      ];
    }),
    ...mknod ? [{ ...call("umask", "000"), returns: "<the old umask>" }] : [],
    ...setup.devices.flatMap((d) => {
      if (!inUserNamespace) {
        const slash = d.path.lastIndexOf("/");
        const dir = at(d.path.slice(0, slash) || "/");
        return [call("mknodat", dir, d.path.slice(slash + 1), nodeMode(d), makedev(d))];
      }
      const clone = `<clone of ${d.path}>`;
      return [{ ...openTreeCall(d.path, false), returns: clone }, moveCall(clone, at(d.path))];
    }),
    ...mknod ? [{ ...call("umask", "<the old umask>"), returns: "000" }] : [],
  ];
  const record = { calls: [] as Call[], failed: false };
  return {
    name: "mounts",
    calls,
    why: "config.json's mounts and devices, each target walked inside the root file system",
    run: () => {
      made = record;
      try {
        performContainerMounts(setup.mounts, jail.root!, rootfs, ownCgroups);
        createDevices(setup.devices, jail.root!, rootfs, inUserNamespace, ptmx);
      } finally {
        made = undefined;
      }
    },
    made: () => record,
  };
}

/** The state the container's own steps share (fds opened before pivot_root, used after). */
export interface ContainerState {
  /** The console socket, connected before pivot_root (its path is the host's). */
  console?: number;
  /** The terminal's pty as made (for `--trace`): its master, number and slave. */
  pty?: { master: number; number?: number; slave?: number };
}

/** The child step that connects to the console socket while its host path is reachable. */
export function consoleSocketStep(path: string, state: ContainerState): ChildStep {
  return {
    name: "console-socket",
    calls: [
      { ...call("socket", "AF_UNIX", "SOCK_STREAM|SOCK_CLOEXEC", 0), returns: "<console socket>" },
      call(
        "connect",
        "<console socket>",
        `{sa_family=AF_UNIX, sun_path=${JSON.stringify(path)}}`,
        110,
      ),
    ],
    why: "the terminal's master goes to the caller's socket, named by a host path",
    run: () => {
      state.console = connectUnix(path);
    },
    learnt: (): Record<string, string> =>
      state.console === undefined ? {} : { "<console socket>": String(state.console) },
  };
}

/**
 * Makes a pty in the container's devpts, sends its master to the console
 * socket (SCM_RIGHTS), and makes its slave the process's controlling
 * terminal and its stdin, stdout and stderr.
 */
function setUpTerminal(setup: ContainerSetup, state: ContainerState): void {
  const master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  state.pty = { master };
  try {
    ioctlBuffer(master, TIOC.SPTLCK, new Uint8Array(4));
    const number = new Uint8Array(4);
    ioctlBuffer(master, TIOC.GPTN, number);
    state.pty.number = new DataView(number.buffer).getUint32(0, true);
    if (setup.consoleSize) {
      const size = new Uint8Array(8);
      const view = new DataView(size.buffer);
      view.setUint16(0, setup.consoleSize.height, true);
      view.setUint16(2, setup.consoleSize.width, true);
      ioctlBuffer(master, TIOC.SWINSZ, size);
    }
    const slave = open(`/dev/pts/${state.pty.number}`, O_RDWR | O_NOCTTY);
    state.pty.slave = slave;
    try {
      sendFds(state.console!, [master]);
      setsid();
      ioctlValue(slave, TIOC.SCTTY, 0);
      for (const fd of [0, 1, 2]) dup2(slave, fd);
    } finally {
      if (slave > 2) close(slave);
    }
  } finally {
    close(master);
    close(state.console!);
    state.console = undefined;
  }
}

/** The terminal step: the calls {@link setUpTerminal} makes, in order. */
function terminalStep(setup: ContainerSetup, state: ContainerState): ChildStep {
  const size = setup.consoleSize;
  let console: number | undefined;
  return {
    name: "terminal",
    calls: [
      {
        ...call("openat", "AT_FDCWD", "/dev/ptmx", "O_RDWR|O_NOCTTY|O_CLOEXEC"),
        returns: "<pty master>",
      },
      call("ioctl", "<pty master>", "TIOCSPTLCK", "[0]"),
      call("ioctl", "<pty master>", "TIOCGPTN", "[<pty number>]"),
      ...size
        ? [call(
          "ioctl",
          "<pty master>",
          "TIOCSWINSZ",
          `{ws_row=${size.height}, ws_col=${size.width}, ws_xpixel=0, ws_ypixel=0}`,
        )]
        : [],
      {
        ...call("openat", "AT_FDCWD", "/dev/pts/<pty number>", "O_RDWR|O_NOCTTY"),
        returns: "<pty slave>",
      },
      call("sendmsg", "<console socket>", "SCM_RIGHTS [<pty master>]", 0),
      { ...call("setsid"), returns: "<session ID>" },
      call("ioctl", "<pty slave>", "TIOCSCTTY", 0),
      ...[0, 1, 2].map((fd) => ({ ...call("dup2", "<pty slave>", fd), returns: String(fd) })),
    ],
    why: "process.terminal: a pty, its master to the console socket, its slave the terminal",
    run: () => {
      console = state.console;
      setUpTerminal(setup, state);
    },
    learnt: (): Record<string, string> => {
      const values: Record<string, string> = {};
      if (console !== undefined) values["<console socket>"] = String(console);
      const pty = state.pty;
      if (pty) values["<pty master>"] = String(pty.master);
      if (pty?.number !== undefined) values["<pty number>"] = String(pty.number);
      if (pty?.slave !== undefined) values["<pty slave>"] = String(pty.slave);
      return values;
    },
  };
}

/** The child steps after pivot_root: the root's propagation and mode, then the kernel's knobs. */
export function containerSystemSteps(setup: ContainerSetup, state: ContainerState): ChildStep[] {
  const steps: ChildStep[] = [];
  const propagation = setup.rootfsPropagation;
  if (propagation !== undefined) {
    steps.push({
      name: "rootfsPropagation",
      calls: [call("mount", null, "/", null, propagation, null)],
      why: "linux.rootfsPropagation",
      run: () => mount(null, "/", null, BigInt(propagation), null),
    });
  }
  if (setup.readonlyRoot) {
    let root: number | undefined;
    steps.push({
      name: "readonly",
      calls: [setattrCall("<fd of />", MOUNT_ATTR.RDONLY, 0n, false)],
      why: "root.readonly: the root file system is read-only (its submounts keep their own mode)",
      run: () => {
        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        try {
          changeMountAttributes(root, MOUNT_ATTR.RDONLY, 0n, false, "/");
        } finally {
          close(root);
        }
      },
      learnt: (): Record<string, string> => root === undefined ? {} : { "<fd of />": String(root) },
    });
  }
  const domainname = setup.domainname;
  if (domainname !== undefined) {
    steps.push({
      name: "setdomainname",
      calls: [call("setdomainname", domainname, new TextEncoder().encode(domainname).length)],
      why: "domainname, in the container's UTS namespace",
      run: () => setdomainname(domainname),
    });
  }
  const sysctl = Object.entries(setup.sysctl);
  if (sysctl.length > 0) {
    const file = (key: string) => `/proc/sys/${key.replaceAll(".", "/")}`;
    steps.push({
      name: "sysctl",
      calls: sysctl.map(([key, value]) => writeCall(file(key), value)),
      why: "linux.sysctl, through the container's own /proc",
      run: () => {
        for (const [key, value] of sysctl) writeFile(file(key), value);
      },
    });
  }
  const oom = setup.oomScoreAdj;
  if (oom !== undefined) {
    steps.push({
      name: "oom_score_adj",
      calls: [call("write", "/proc/self/oom_score_adj", String(oom))],
      why: "process.oomScoreAdj (kept across exec)",
      run: () => writeFile("/proc/self/oom_score_adj", String(oom)),
    });
  }
  const persona = setup.personality;
  if (persona !== undefined) {
    steps.push({
      name: "personality",
      calls: [call("personality", persona)],
      why: "linux.personality (kept across exec)",
      run: () => personality(persona),
    });
  }
  if (setup.terminal) steps.push(terminalStep(setup, state));
  return steps;
}

/** The child steps that make the process the config's user, in its directory, with its umask. */
export function containerUserSteps(setup: ContainerSetup): ChildStep[] {
  const { uid, gid, additionalGids, umask: mask } = setup.user;
  const steps: ChildStep[] = [{
    name: "chdir",
    calls: [call("chdir", setup.cwd)],
    why: "process.cwd (as root, before the user changes)",
    run: () => chdir(setup.cwd),
  }];
  if (!setup.userByContainment) {
    steps.push({
      name: "user",
      calls: [
        call("setgroups", additionalGids.length, `[${additionalGids.join(", ")}]`),
        call("setresgid", gid, gid, gid),
        call("setresuid", uid, uid, uid),
      ],
      why: "process.user",
      run: () => void becomeUser(uid, gid, additionalGids),
    });
  }
  if (mask !== undefined) {
    steps.push({
      name: "umask",
      calls: [call("umask", mask)],
      why: "process.user.umask",
      run: () => void umask(mask),
    });
  }
  return steps;
}

/** Opens `path` (a cgroup.procs file) for writing now, to join later by writing "0". */
export function openForJoin(path: string): number {
  return openAt(-100, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
}

/** The clone flag of each namespace type a container may join by path. */
const JOIN_FLAG = {
  net: CLONE.NEWNET,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  cgroup: CLONE.NEWCGROUP,
};

/**
 * Parent steps: the tool's thread joins each namespace `setup` names by
 * path just before clone (the child is born in them, before it creates any
 * other: a user namespace made first would forbid joining the host's), and
 * goes back to its own once the child exists.
 */
export function joinNamespaceSteps(setup: ContainerSetup): ParentStep[] {
  return setup.joins.map((join) => {
    let restore: (() => void) | undefined;
    return {
      name: "setns",
      calls: [
        call("open", join.path, "O_RDONLY"),
        call("setns", `<fd of ${join.path}>`, `CLONE_NEW${join.type.toUpperCase()}`),
      ],
      why: `linux.namespaces: join the ${join.spec} namespace at ${join.path}`,
      run: () => {
        const flag = JOIN_FLAG[join.type];
        const saved = open(`/proc/thread-self/ns/${join.type}`, O_RDONLY | O_CLOEXEC);
        try {
          const target = open(join.path, O_RDONLY | O_CLOEXEC);
          try {
            setns(target, flag, join.path);
          } finally {
            close(target);
          }
        } catch (error) {
          close(saved);
          throw error;
        }
        restore = () => {
          try {
            setns(saved, flag, `the tool's ${join.spec} namespace`);
          } finally {
            close(saved);
          }
        };
      },
      undo: () => restore?.(),
      undoAfterClone: true,
      undoing: {
        name: "setns",
        calls: [
          call(
            "setns",
            `<the tool's ${join.type} namespace>`,
            `CLONE_NEW${join.type.toUpperCase()}`,
          ),
        ],
        why: `the tool's thread goes back to its own ${join.spec} namespace once the child is born`,
      },
    };
  });
}
