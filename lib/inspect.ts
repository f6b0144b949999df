/**
 * Which namespaces a process is in, read from `/proc/PID/ns` (namespaces(7)),
 * and every namespace on the system with the processes in it, as `lsns`
 * shows them. /proc is read through libc: Deno's own file API asks for
 * `--allow-all` there.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errors.ts";
import { close, O_CLOEXEC, O_RDONLY, open, readFile, setns } from "../ffi/libc.ts";
import { listDirectory, readLink } from "../ffi/files.ts";

/**
 * The namespace types, as named in `/proc/PID/ns`.
 *
 * @example
 * ```ts
 * NAMESPACE_TYPES.includes("uts"); // true
 * ```
 */
export const NAMESPACE_TYPES = [
  "cgroup",
  "ipc",
  "mnt",
  "net",
  "pid",
  "time",
  "user",
  "uts",
] as const;

/**
 * A namespace type's name, e.g. `"uts"`.
 *
 * @example
 * ```ts
 * const type: NamespaceType = "mnt";
 * ```
 */
export type NamespaceType = typeof NAMESPACE_TYPES[number];

/**
 * One namespace a process is in.
 *
 * @example
 * ```ts
 * const entry: NamespaceEntry = { type: "uts", inode: 4026531838 };
 * ```
 */
export interface NamespaceEntry {
  /** Its type, e.g. `"uts"`. */
  type: NamespaceType;
  /** Its inode number, the namespace's identity. */
  inode: number;
}

/** The namespace a `/proc/PID/ns/TYPE` link points to, e.g. `uts:[4026531838]`. */
function parseLink(link: string): number {
  const match = link.match(/^\w+:\[(\d+)\]$/);
  if (!match) throw new Error(`unexpected namespace link: ${link}`);
  return Number(match[1]);
}

/**
 * The namespaces the calling process will be in once it execs: its own, but
 * `time_for_children` for the time namespace (entered at exec). Used by the
 * clone child, before any chroot, to announce the command's namespaces.
 */
export function namespacesAtExec(): NamespaceEntry[] {
  return NAMESPACE_TYPES.map((type) => ({
    type,
    inode: parseLink(readLink(`/proc/self/ns/${type === "time" ? "time_for_children" : type}`)),
  }));
}

/**
 * The namespaces of process `pid` (or of the caller, for `"self"`). Throws a
 * {@link SyscallError}: ENOENT when there is no such process, EACCES when its
 * namespaces may not be read.
 *
 * @example
 * ```ts
 * for (const { type, inode } of namespacesOf("self")) console.log(type, inode);
 * ```
 */
export function namespacesOf(pid: number | "self"): NamespaceEntry[] {
  return NAMESPACE_TYPES.flatMap((type) => {
    try {
      return [{ type, inode: parseLink(readLink(`/proc/${pid}/ns/${type}`)) }];
    } catch (error) {
      // a kernel without this namespace type has no link for it
      if (error instanceof SyscallError && error.code === "ENOENT" && type === "time") return [];
      throw error;
    }
  });
}

/**
 * One namespace on the system, with who is in it.
 *
 * @example
 * ```ts
 * const [first]: SystemNamespace[] = listAllNamespaces().namespaces;
 * ```
 */
export interface SystemNamespace extends NamespaceEntry {
  /** How many processes are in it. */
  processes: number;
  /** The lowest PID in it. */
  pid: number;
  /** That process's user name (or UID). */
  user: string;
  /** That process's command line (its name for a kernel thread), as lsns shows it. */
  command: string;
}

/** User names by UID, from /etc/passwd. */
function userNames(): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const [name, , uid] = line.split(":");
      if (uid !== undefined && !names.has(Number(uid))) names.set(Number(uid), name);
    }
  } catch {
    // no passwd file: show numeric IDs
  }
  return names;
}

/** A process's command line as lsns shows it: its name for a kernel thread. */
function commandOf(pid: number): string {
  try {
    const line = readFile(`/proc/${pid}/cmdline`).replace(/\0+$/, "").replaceAll("\0", " ");
    return line || readFile(`/proc/${pid}/comm`).trim();
  } catch {
    return "?"; // exited meanwhile
  }
}

/**
 * Every namespace any readable process is in, sorted by type then inode,
 * with the number of processes in it and its lowest PID, like `lsns`.
 * `unreadable` counts the processes whose namespaces could not be read
 * (not ours, or hidden), `unreadablePids` names them; processes that exit
 * meanwhile are left out.
 *
 * @example
 * ```ts
 * const { namespaces } = listAllNamespaces();
 * console.log(namespaces.filter((ns) => ns.type === "pid").length, "PID namespaces");
 * ```
 */
export function listAllNamespaces(): {
  namespaces: SystemNamespace[];
  unreadable: number;
  unreadablePids: number[];
} {
  const found = new Map<string, SystemNamespace>();
  const names = userNames();
  const unreadablePids: number[] = [];
  const pids = listDirectory("/proc").filter((name) => /^\d+$/.test(name)).map(Number)
    .sort((a, b) => a - b);
  for (const pid of pids) {
    let entries: NamespaceEntry[];
    let uid: number;
    try {
      entries = namespacesOf(pid);
      uid = Number(readFile(`/proc/${pid}/status`).match(/^Uid:\s+(\d+)/m)?.[1] ?? -1);
    } catch (error) {
      const exited = error instanceof SyscallError && ["ENOENT", "ESRCH"].includes(error.code);
      if (!exited) unreadablePids.push(pid); // not ours to read
      continue;
    }
    for (const { type, inode } of entries) {
      const key = `${type}:${inode}`;
      const known = found.get(key);
      if (known) {
        known.processes++;
        continue;
      }
      const user = names.get(uid) ?? String(uid);
      found.set(key, { type, inode, processes: 1, pid, user, command: commandOf(pid) });
    }
  }
  const namespaces = [...found.values()].sort((a, b) =>
    a.type === b.type ? a.inode - b.inode : a.type < b.type ? -1 : 1
  );
  return { namespaces, unreadable: unreadablePids.length, unreadablePids };
}

/** A network interface as `ns` shows it. */
export interface LinkSummary {
  /** The interface name, e.g. `eth0`. */
  name: string;
  /** Whether it is up. */
  up: boolean;
  /** Its IPv4 addresses, `a.b.c.d/len`. */
  addresses: string[];
}

/**
 * The network interfaces of process `pid`'s network namespace, read through
 * rtnetlink from inside it (the main thread joins it for the moment). Throws
 * a {@link SyscallError} when the namespace cannot be joined (not root).
 */
export async function linksOf(pid: number | "self"): Promise<LinkSummary[]> {
  const { RouteSocket } = await import("./rtnetlink.ts");
  const target = open(`/proc/${pid}/ns/net`, O_RDONLY | O_CLOEXEC);
  const saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  try {
    let socket: InstanceType<typeof RouteSocket>;
    setns(target, CLONE.NEWNET, "network namespace");
    try {
      socket = new RouteSocket();
    } finally {
      setns(saved, CLONE.NEWNET, "network namespace (back)");
    }
    try {
      const addresses = socket.listAddresses();
      return socket.listLinks().map((link) => ({
        name: link.name,
        up: link.up,
        addresses: addresses.filter((entry) => entry.index === link.index)
          .map((entry) => `${entry.address}/${entry.prefixLength}`),
      }));
    } finally {
      socket.close();
    }
  } finally {
    close(target);
    close(saved);
  }
}
