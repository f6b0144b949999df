/**
 * Path resolution confined to a root directory, the way a process chrooted there sees it:
 * absolute symlink targets start again at the root and ".." never climbs above it.
 *
 * Used to read a foreign root file system (jail/resolve.ts) and to write into a jail without
 * ever leaving it, even when the jail already holds symlinks pointing outside (jail/copy.ts).
 * Synchronous: one lstat per path component.
 *
 * @module
 */

import { MAX_SYMLINKS } from "../ffi/constants.ts";

/** Raised when a path inside a root cannot be resolved or created; the message is one line. */
export class RootPathError extends Error {
  /** Builds the error; `path` is the path inside the root that failed. */
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "RootPathError";
  }
}

/** One symlink met at the last component of a path. */
export interface SymlinkHop {
  /** The symlink, as a path inside the root. */
  path: string;
  /** Its target, verbatim (absolute targets are meant relative to the root). */
  target: string;
}

/** Options for {@link resolveInRoot}. */
export interface ResolveInRootOptions {
  /** Create missing components as directories (for mkdir -p). Default false. */
  createDirs?: boolean;
  /** Follow a symlink in the last component. Default true. */
  followFinal?: boolean;
}

/** Splits a path into its components, dropping empty ones and ".". */
function components(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

/** Host path of `parts` (already resolved components) under `root`. */
function joinRoot(root: string, parts: readonly string[]): string {
  if (parts.length === 0) return root;
  return `${root.endsWith("/") ? root : `${root}/`}${parts.join("/")}`;
}

/*
 * `path` made absolute against `base` and normalised, as node:path's
 * posix.resolve does: this module is on the launcher's path, and loading
 * node:path costs a CLI run ~7 ms.
 */
function resolveAbsolute(base: string, path: string): string {
  const parts: string[] = [];
  for (const part of components(path.startsWith("/") ? path : `${base}/${path}`)) {
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** The directory part of a normalised absolute path. */
function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * Resolves `path` inside `root` with chroot semantics and returns the resulting host path,
 * which always lies under `root` (barring concurrent changes to the tree). Components that do
 * not exist are kept as they are, or created as directories with `createDirs`.
 */
export function resolveInRoot(
  root: string,
  path: string,
  options: ResolveInRootOptions = {},
): string {
  const followFinal = options.followFinal ?? true;
  if (root === "/" && !options.createDirs) return path.startsWith("/") ? path : "/" + path;
  const pending = components(path).reverse();
  const resolved: string[] = [];
  let symlinks = 0;
  let missing = false;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = joinRoot(root, [...resolved, part]);
    const isFinal = pending.length === 0;
    if (missing) {
      resolved.push(part);
      continue;
    }
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(candidate);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      if (options.createDirs) {
        try {
          Deno.mkdirSync(candidate);
        } catch (mkdirError) {
          if (!(mkdirError instanceof Deno.errors.AlreadyExists)) throw mkdirError;
        }
        pending.push(part);
      } else {
        missing = true;
        resolved.push(part);
      }
      continue;
    }
    if (info.isSymlink && (!isFinal || followFinal || options.createDirs)) {
      if (++symlinks > MAX_SYMLINKS) throw new RootPathError(path, "too many levels of symlinks");
      const target = Deno.readLinkSync(candidate);
      if (target.startsWith("/")) resolved.length = 0;
      pending.push(...components(target).reverse());
      continue;
    }
    if (!isFinal && !info.isDirectory) throw new RootPathError(path, "not a directory");
    if (isFinal && options.createDirs && !info.isDirectory) {
      throw new RootPathError(path, "exists and is not a directory");
    }
    resolved.push(part);
  }
  return joinRoot(root, resolved);
}

/**
 * Follows symlinks at the last component of `path` inside `root`, lexically (each target taken
 * relative to the symlink's directory, absolute ones relative to the root). Returns the hops
 * and the path where the chain ends: a non-symlink, or a name that does not exist.
 */
export function symlinkChain(root: string, path: string): { hops: SymlinkHop[]; end: string } {
  const hops: SymlinkHop[] = [];
  let current = resolveAbsolute("/", path);
  for (let count = 0; count <= MAX_SYMLINKS; count++) {
    const host = resolveInRoot(root, current, { followFinal: false });
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(host);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        return { hops, end: current };
      }
      throw error;
    }
    if (!info.isSymlink) return { hops, end: current };
    const target = Deno.readLinkSync(host);
    hops.push({ path: current, target });
    current = resolveAbsolute(parentOf(current), target);
  }
  throw new RootPathError(path, "too many levels of symlinks");
}

/** The canonical path of `path` inside `root` (all symlinks resolved), as seen from inside. */
export function realPathInRoot(root: string, path: string): string {
  if (root === "/") return Deno.realPathSync(path);
  const host = resolveInRoot(root, path);
  return host.slice(root.replace(/\/$/, "").length) || "/";
}
