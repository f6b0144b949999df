/**
 * Mount namespace (mount_namespaces(7)): the child gets a copy of the mount
 * table. Like `unshare --mount`, propagation is made private recursively
 * first, so nothing mounted inside ever shows up on the host. With `-m`, the
 * bubblewrap-style mounts `--bind SRC:DST`, `--ro-bind SRC:DST`,
 * `--tmpfs DST` and `--dev` are made in it (inside the jail when there is one).
 * @module
 */

import { CLONE, MS } from "../ffi/constants.ts";
import { realPathInRoot, RootPathError } from "../jail/rootpath.ts";
import { call, type ChildStep } from "./step.ts";
import {
  accessible,
  close,
  F_OK,
  mkdir,
  mount,
  mountFlags,
  O_CLOEXEC,
  O_CREAT,
  O_PATH,
  O_WRONLY,
  open,
  symlink,
} from "../ffi/libc.ts";

/** The clone flag for a new mount namespace. */
export const MOUNT_NAMESPACE = CLONE.NEWNS;

/** Child step: `mount --make-rprivate /`. */
export function makeMountsPrivate(): void {
  mount(null, "/", null, MS.REC | MS.PRIVATE);
}

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
  | {
    kind: "bind" | "ro-bind";
    source: string;
    target: string;
    /** Whether the source is a file (set by {@link mountProblem}'s caller in the parent). */
    file?: boolean;
  }
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

/** Parses `SRC:DST` (or `SRC`, meaning the same path inside). */
export function parseBindSpec(spec: string): { source: string; target: string } {
  const at = spec.indexOf(":");
  return at === -1
    ? { source: spec, target: spec }
    : { source: spec.slice(0, at), target: spec.slice(at + 1) };
}

/**
 * Why `request` cannot be done, or null when it can. Checked in the parent,
 * before anything is created: sources must exist and targets must be
 * absolute. Inside a jail, the target is resolved as the jailed process
 * will see it (symlinks followed from the jail's root, never out of it) and
 * `request.target` becomes that path, which holds no symlink.
 */
export function mountProblem(request: MountRequest, jail?: string): string | null {
  const target = request.target;
  if (!target.startsWith("/")) return `${target}: a mount target must be an absolute path`;
  if (target.split("/").includes("..")) return `${target}: a mount target may not contain ".."`;
  if ([target, "source" in request ? request.source : ""].some((path) => path.includes("\0"))) {
    return "a mount path contains a NUL byte";
  }
  if (request.kind === "bind" || request.kind === "ro-bind") {
    if (request.source === "") return "a bind mount needs a source";
    try {
      request.file = !Deno.statSync(request.source).isDirectory;
    } catch {
      return `${request.source}: no such file or directory (bind source)`;
    }
  }
  if (jail) {
    try {
      request.target = realPathInRoot(jail, target);
    } catch (error) {
      return error instanceof RootPathError ? error.message : String(error);
    }
  }
  return null;
}

/**
 * The paths `requests` will create as mount points under `root` (`""` for
 * the current root), outermost first: those that do not exist yet.
 */
export function missingMountPoints(requests: MountRequest[], root: string): string[] {
  const missing: string[] = [];
  for (const request of requests) {
    let path = root;
    for (const part of request.target.split("/").filter(Boolean)) {
      path += `/${part}`;
      if (!missing.includes(path) && !accessible(path, F_OK)) missing.push(path);
    }
  }
  return missing;
}

/**
 * Parent step, once the command has ended: removes the mount points a launch
 * created (from {@link missingMountPoints}), innermost first, where they are
 * still empty; the mounts themselves went with the mount namespace.
 */
export function removeMountPoints(paths: string[]): void {
  for (const path of [...paths].reverse()) {
    try {
      const info = Deno.lstatSync(path);
      if (info.isFile && info.size === 0 || info.isDirectory) Deno.removeSync(path);
    } catch {
      // not empty, or gone already: left as it is
    }
  }
}

/** Creates `path` (and its parents) as a directory, or as an empty file when `file`. */
function createMountPoint(path: string, file: boolean): void {
  const parts = path.split("/").filter(Boolean);
  let current = "";
  parts.forEach((part, i) => {
    current += `/${part}`;
    if (accessible(current, F_OK)) return;
    if (file && i === parts.length - 1) close(open(current, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644));
    else mkdir(current, 0o755);
  });
}

/** A read-only remount that keeps the flags the kernel locks in a user namespace. */
export function remountReadOnly(target: string): void {
  const kept = mountFlags(target) & (MS.NOSUID | MS.NODEV | MS.NOEXEC | 1024n | 2048n | 4096n);
  mount(null, target, null, MS.BIND | MS.REMOUNT | MS.RDONLY | kept);
}

/**
 * A tmpfs on `target` holding the host's {@link DEV_NODES}, bind-mounted, and
 * the usual symlinks. The nodes are held open (O_PATH) before the tmpfs goes
 * up and bound through `/proc/self/fd`: without a jail, `target` is the very
 * `/dev` they come from, which the tmpfs hides.
 */
function mountMinimalDev(target: string): void {
  const nodes = DEV_NODES.map((node) => ({ node, fd: open(`/dev/${node}`, O_PATH | O_CLOEXEC) }));
  try {
    createMountPoint(target, false);
    mount("tmpfs", target, "tmpfs", MS.NOSUID | MS.NOEXEC, "mode=0755");
    for (const { node, fd } of nodes) {
      createMountPoint(`${target}/${node}`, true);
      mount(`/proc/self/fd/${fd}`, `${target}/${node}`, null, MS.BIND);
    }
  } finally {
    for (const { fd } of nodes) close(fd);
  }
  for (const [name, link] of DEV_LINKS) symlink(link, `${target}/${name}`);
}

/**
 * Child step: makes `requests` under `root` (`""` for the current root).
 * Sources are paths as the caller sees them.
 */
export function performMounts(requests: MountRequest[], root: string): void {
  for (const request of requests) {
    const target = `${root}${request.target}`;
    switch (request.kind) {
      case "bind":
      case "ro-bind": {
        createMountPoint(target, request.file ?? false);
        mount(request.source, target, null, MS.BIND | MS.REC);
        if (request.kind === "ro-bind") remountReadOnly(target);
        break;
      }
      case "tmpfs":
        createMountPoint(target, false);
        mount("tmpfs", target, "tmpfs", MS.NOSUID | MS.NODEV, "mode=0755");
        break;
      case "dev":
        mountMinimalDev(target);
        break;
    }
  }
}

/** The child step that makes the new mount namespace's propagation private. */
export function privateMountsStep(): ChildStep {
  return {
    name: "mount",
    calls: [call("mount", null, "/", null, "MS_REC|MS_PRIVATE", null)],
    why: "so nothing mounted inside shows on the host, even where / is shared",
    run: makeMountsPrivate,
  };
}

/** The child step that makes `requests` under `root` (`""` for the current root). */
export function mountsStep(requests: MountRequest[], root: string): ChildStep {
  const calls = requests.flatMap((request) => {
    const target = `${root}${request.target}`;
    switch (request.kind) {
      case "bind":
        return [call("mount", request.source, target, null, "MS_BIND|MS_REC", null)];
      case "ro-bind":
        return [
          call("mount", request.source, target, null, "MS_BIND|MS_REC", null),
          call("mount", null, target, null, "MS_BIND|MS_REMOUNT|MS_RDONLY", null),
        ];
      case "tmpfs":
        return [call("mount", "tmpfs", target, "tmpfs", "MS_NOSUID|MS_NODEV", "mode=0755")];
      case "dev":
        return [
          call("mount", "tmpfs", target, "tmpfs", "MS_NOSUID|MS_NOEXEC", "mode=0755"),
          ...DEV_NODES.map((node) =>
            call("mount", `/dev/${node}`, `${target}/${node}`, null, "MS_BIND", null)
          ),
        ];
    }
  });
  return {
    name: "mount",
    calls,
    why: "the bind, tmpfs and /dev mounts asked for",
    run: () => performMounts(requests, root),
  };
}
