/**
 * Copying host files into a jail directory (a future root file system) without ever writing
 * outside it.
 *
 * Symlinks already inside the jail are followed the way the jailed process will see them:
 * absolute targets start again at the jail root and ".." stops there, so a planted
 * `ROOT/lib -> /tmp/elsewhere` leads to `ROOT/tmp/elsewhere`, never to the host's directory.
 * A symlink at the destination itself is replaced (atomically, by rename), never written
 * through. Host symlinks on the copied path are recreated as symlinks and their targets copied
 * too, so the jail has the same names the loader opens. (Races with someone rewriting the jail
 * while we copy are not guarded against: the jail directory is assumed to be ours.)
 *
 * @module
 */

import { posix } from "node:path";
import { openRegularFile } from "./regular.ts";
import { resolveInRoot, RootPathError } from "./rootpath.ts";
import { MAX_SYMLINKS } from "../ffi/constants.ts";

/** Symlinks followed per copied path, as the kernel's ELOOP limit. */

/** What {@link copyIntoRoot} did. */
export type CopyOutcome = "copied" | "skipped";

/** Options for {@link copyIntoRoot}. */
export interface CopyOptions {
  /** Leave existing destination entries alone (like `cp -n`). Default false. */
  noClobber?: boolean;
}

/**
 * Creates `dir` (a path inside `root`, absolute or not) and its missing parents like
 * `mkdir -p`, following existing symlinks only within `root`. Returns the host path of the
 * directory, which always lies under `root`.
 */
export async function safeMkdirp(root: string, dir: string): Promise<string> {
  const realRoot = await Deno.realPath(root);
  const host = resolveInRoot(realRoot, dir, { createDirs: true });
  assertInside(realRoot, host, dir);
  return host;
}

/**
 * Copies the host file `hostPath` to the same path inside `root`, like `cp -p` (mode,
 * ownership when permitted, access and modification times). When `hostPath` (or what it leads
 * to) is a symlink, the symlink is recreated with the same target text and the target copied
 * as well, hop by hop. Returns "skipped" when `noClobber` left every entry untouched.
 * Throws Deno's file system errors or {@link RootPathError}.
 */
export async function copyIntoRoot(
  root: string,
  hostPath: string,
  options: CopyOptions = {},
): Promise<CopyOutcome> {
  const realRoot = await Deno.realPath(root);
  const start = posix.resolve(hostPath);
  if (start === "/") throw new RootPathError(hostPath, "cannot copy the root directory");
  let current = start;
  let wrote = false;
  for (let hop = 0; hop <= MAX_SYMLINKS; hop++) {
    let source = current;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(current);
    } catch (error) {
      // A relative link through a host directory symlink can name a path that only the
      // kernel's resolution finds: place the real file at the lexical name.
      if (hop === 0 || !(error instanceof Deno.errors.NotFound)) throw error;
      source = await Deno.realPath(start);
      info = await Deno.lstat(source);
    }
    const destination = posix.join(
      await safeMkdirp(realRoot, posix.dirname(current)),
      posix.basename(current),
    );
    assertInside(realRoot, destination, current);
    const keep = options.noClobber === true && await entryExists(destination);
    if (info.isSymlink) {
      const target = await Deno.readLink(source);
      if (!keep) {
        await replaceWithSymlink(target, destination);
        wrote = true;
      }
      current = posix.resolve(posix.dirname(current), target);
      continue;
    }
    if (!info.isFile) throw new RootPathError(current, "not a regular file");
    if (!keep) {
      await replaceWithCopy(source, info, destination);
      wrote = true;
    }
    return wrote ? "copied" : "skipped";
  }
  throw new RootPathError(hostPath, "too many levels of symlinks");
}

function assertInside(root: string, host: string, path: string): void {
  if (host !== root && !host.startsWith(root.endsWith("/") ? root : root + "/")) {
    throw new RootPathError(path, `resolves outside ${root}`);
  }
}

/** Whether anything (even a dangling symlink) exists at `path`, without following it. */
async function entryExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A fresh name next to `destination` for building the replacement before renaming it. */
function temporaryName(destination: string): string {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  return posix.join(posix.dirname(destination), `.${posix.basename(destination)}.${suffix}~`);
}

async function replaceWithSymlink(target: string, destination: string): Promise<void> {
  const temporary = temporaryName(destination);
  await Deno.symlink(target, temporary);
  await renameOrCleanUp(temporary, destination);
}

/** Copies content, then ownership, mode and times, into a new file renamed over `destination`. */
async function replaceWithCopy(
  source: string,
  info: Deno.FileInfo,
  destination: string,
): Promise<void> {
  const temporary = temporaryName(destination);
  const output = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
  try {
    // A regular file only (a FIFO swapped in meanwhile would block a plain open).
    using input = openRegularFile(source);
    const chunk = new Uint8Array(64 * 1024);
    for (let position = 0;;) {
      const count = input.readAt(chunk, position);
      if (count === 0) break;
      for (let written = 0; written < count;) {
        written += await output.write(chunk.subarray(written, count));
      }
      position += count;
    }
    output.close();
  } catch (error) {
    try {
      output.close();
    } catch {
      // Already closed.
    }
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  try {
    if (info.uid !== null && info.gid !== null) {
      await Deno.chown(temporary, info.uid, info.gid).catch((error) => {
        if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
      });
    }
    if (info.mode !== null) await Deno.chmod(temporary, info.mode & 0o7777);
    if (info.atime !== null && info.mtime !== null) {
      await Deno.utime(temporary, info.atime, info.mtime);
    }
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  await renameOrCleanUp(temporary, destination);
}

async function renameOrCleanUp(temporary: string, destination: string): Promise<void> {
  try {
    await Deno.rename(temporary, destination);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** The name a temporary file of {@link temporaryName} stands for; other paths unchanged. */
export function nameBehindTemporary(path: string): string {
  const match = path.match(/^(.*\/)?\.(.+)\.\d+~$/);
  return match ? `${match[1] ?? ""}${match[2]}` : path;
}
