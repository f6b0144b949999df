/**
 * A working root filesystem in one call: the lab's hand-made jail (step 8)
 * built from the ELF files themselves. Binaries with their whole dependency
 * closure (the loader included), `/etc/ld.so.cache`, terminfo entries for the
 * terminal, `/proc` and `/dev` mount points, and minimal account files.
 * @module
 */

import { posix } from "node:path";
import { DEFAULT_PATH } from "../lib/env.ts";
import { copyIntoRoot, safeMkdirp } from "./copy.ts";
import { resolveDependencies, ResolverCache } from "./resolve.ts";
import { resolveInRoot } from "./rootpath.ts";
import { openRegularFile } from "./regular.ts";

/** The lab's binaries (step 8): what `invoke_ns jail DIR` copies by default. */
export const LAB_BINARIES = ["env", "bash", "ps", "ls", "top"];

/** Where terminfo databases live, in the order ncurses looks. */
const TERMINFO_DIRS = ["/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo"];

/** The PATH binary names are looked up on. */
const SEARCH_PATH = DEFAULT_PATH.split(":");

/**
 * A jail-building problem that is the caller's to fix (a binary not found, ...).
 *
 * @example
 * ```ts
 * try {
 *   await buildJail("/tmp/jail", ["no-such-binary"]);
 * } catch (error) {
 *   if (error instanceof JailError) console.error(error.message); // "no-such-binary: not found on PATH"
 * }
 * ```
 */
export class JailError extends Error {
  /** Builds the error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "JailError";
  }
}

/**
 * What {@link buildJail} did.
 *
 * @example
 * ```ts
 * const { root, copied }: JailSummary = await buildJail("/tmp/jail", ["ls"]);
 * ```
 */
export interface JailSummary {
  /** The jail's directory. */
  root: string;
  /** The binaries copied, as host paths. */
  binaries: string[];
  /** Every file and symlink copied (host paths), in order. */
  copied: string[];
  /** Terminal types whose terminfo entry was found and copied. */
  terminals: string[];
}

/**
 * Options for {@link buildJail}.
 *
 * @example
 * ```ts
 * await buildJail("/tmp/jail", ["top"], { terminals: ["xterm-256color"] });
 * ```
 */
export interface JailOptions {
  /**
   * Terminal types to copy terminfo entries for; default `$TERM`, `xterm` and
   * `dumb` (what `top -b` asks for when its output is not a terminal).
   */
  terminals?: string[];
  /** Called before each file is copied, e.g. to show progress. */
  onProgress?: (done: number, total: number, path: string) => void;
}

/** The host path of a binary given by name (looked up on PATH) or by path. */
export function findBinary(name: string): string {
  const candidates = name.includes("/") ? [name] : SEARCH_PATH.map((dir) => `${dir}/${name}`);
  let special: string | undefined;
  for (const candidate of candidates) {
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile) return posix.resolve(candidate);
      if (!info.isDirectory) special ??= candidate;
    } catch {
      // not here
    }
  }
  if (special) throw new JailError(`${special}: a FIFO, device or socket, not a regular file`);
  throw new JailError(`${name}: not found${name.includes("/") ? "" : " on PATH"}`);
}

/** Interpreters followed from a script to its interpreter, at most (as the kernel's limit). */
const MAX_INTERPRETERS = 4;

/**
 * The programs `path` needs to run: itself and, for a script, its `#!`
 * interpreter (and the program `/usr/bin/env` is asked for), followed as the
 * kernel does.
 */
function withInterpreters(path: string, depth = 0): { path: string; script: boolean }[] {
  const head = new Uint8Array(256);
  let length = 0;
  try {
    using file = openRegularFile(path); // never a FIFO or a device: see jail/regular.ts
    length = file.readAt(head, 0);
  } catch {
    return [{ path, script: false }]; // unreadable: the ELF reader says why
  }
  const text = new TextDecoder().decode(head.subarray(0, length));
  if (!text.startsWith("#!")) return [{ path, script: false }];
  if (depth >= MAX_INTERPRETERS) throw new JailError(`${path}: too many levels of interpreters`);
  const [interpreter, argument] = text.slice(2).split("\n")[0].trim().split(/\s+/);
  if (!interpreter) throw new JailError(`${path}: a #! line without an interpreter`);
  const programs = [
    { path, script: true },
    ...withInterpreters(findBinary(interpreter), depth + 1),
  ];
  if (posix.basename(interpreter) === "env" && argument && !argument.startsWith("-")) {
    programs.push(...withInterpreters(findBinary(argument), depth + 1));
  }
  return programs;
}

/** The terminfo entry for `term`, if the host has one. */
function terminfoEntry(term: string): string | null {
  if (!/^[\w.+-]+$/.test(term)) return null;
  for (const dir of TERMINFO_DIRS) {
    for (const sub of [term[0], term.charCodeAt(0).toString(16)]) {
      const path = `${dir}/${sub}/${term}`;
      try {
        Deno.statSync(path);
        return path;
      } catch {
        // try the next place
      }
    }
  }
  return null;
}

/** Top-level directories that a merged-/usr system makes symlinks (e.g. /bin -> usr/bin). */
const MERGED_USR = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/**
 * Gives the jail the host's merged-/usr links (`/bin -> usr/bin`, ...) where
 * the jail has no such entry yet, so that `/bin/sh` and `/usr/bin/sh` are
 * one file inside as outside.
 */
function mirrorMergedUsr(root: string): void {
  for (const name of MERGED_USR) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/${name}`);
    } catch {
      continue; // a real directory (or nothing) on the host
    }
    try {
      Deno.lstatSync(`${root}/${name}`);
    } catch {
      Deno.symlinkSync(target, `${root}/${name}`);
    }
  }
}

/**
 * The real path of the jail directory `dir`, refused when it is the host's
 * `/` (the copies would replace the host's own programs and libraries) or
 * when `dir` leads elsewhere through a symlink: the tree written to must be
 * the one the user named, so a link is followed only when given as its
 * target's own path. A `dir` not made yet is judged by its nearest existing
 * ancestor, before anything is created.
 */
function jailRoot(dir: string): string {
  const named = posix.resolve(dir);
  const missing: string[] = [];
  let existing = named;
  let real: string;
  for (;;) {
    try {
      real = Deno.realPathSync(existing);
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound) || existing === "/") throw error;
      missing.unshift(posix.basename(existing));
      existing = posix.dirname(existing);
    }
  }
  const root = posix.join(real, ...missing);
  if (root === "/") {
    throw new JailError(
      `${dir}: is the host's root directory; a jail needs a directory of its own`,
    );
  }
  if (root !== named) {
    throw new JailError(
      `${dir}: leads through a symlink to ${root}; name that directory itself to build the jail there`,
    );
  }
  return root;
}

const PASSWD =
  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\n";

/**
 * Builds a root filesystem in `dir` (created when missing) holding
 * `binaries` (names on PATH or paths; default {@link LAB_BINARIES}) and all
 * they need to run (for a script, its `#!` interpreter too). Existing files are overwritten; nothing is ever written
 * outside `dir`, even through a symlink planted in it.
 *
 * @example
 * ```ts
 * const summary = await buildJail("/var/local/jail"); // env bash ps ls top, as the lab
 * await launch({ command: ["bash"], pid: true, mount: true, jail: summary.root });
 * ```
 */
export async function buildJail(
  dir: string,
  binaries: string[] = LAB_BINARIES,
  options: JailOptions = {},
): Promise<JailSummary> {
  const programs = binaries.map(findBinary).flatMap((path) => withInterpreters(path));
  const hostBinaries = [...new Set(programs.map((program) => program.path))];
  const scripts = new Set(programs.filter((program) => program.script).map((p) => p.path));
  const existing = await Deno.stat(dir).catch(() => null);
  if (existing && !existing.isDirectory) {
    throw new JailError(`${dir}: exists and is not a directory`);
  }
  jailRoot(dir);
  await Deno.mkdir(dir, { recursive: true });
  const root = jailRoot(dir); // again: the path may have changed meanwhile
  const cache = new ResolverCache();
  const files = new Set<string>();
  for (const binary of hostBinaries) {
    files.add(binary);
    if (scripts.has(binary)) continue; // its interpreter is among hostBinaries
    const closure = await resolveDependencies(binary, { cache });
    const special = closure.skipped.find((entry) => entry.notRegular);
    if (special) throw new JailError(`${binary}: needs ${special.path}: ${special.reason}`);
    if (closure.missing.length) {
      const names = closure.missing.map((lib) => lib.name).join(", ");
      throw new JailError(`${binary}: needs libraries that cannot be found: ${names}`);
    }
    for (const object of closure.objects) files.add(object.path);
  }
  files.add("/etc/ld.so.cache");
  const wanted = options.terminals ?? [Deno.env.get("TERM") ?? "", "xterm", "dumb"];
  const terminals: string[] = [];
  for (const term of new Set(wanted.filter(Boolean))) {
    const entry = terminfoEntry(term);
    if (entry) {
      files.add(entry);
      terminals.push(term);
    }
  }
  mirrorMergedUsr(root);
  const copied: string[] = [];
  let done = 0;
  for (const file of files) {
    options.onProgress?.(done++, files.size, file);
    try {
      await copyIntoRoot(root, file);
    } catch (error) {
      if (file === "/etc/ld.so.cache" && error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    copied.push(file);
  }
  options.onProgress?.(done, files.size, "");
  for (const mountPoint of ["/proc", "/dev", "/root"]) await safeMkdirp(root, mountPoint);
  // chmod where /tmp resolves inside the jail: a planted DIR/tmp link must not lead outside
  await Deno.chmod(await safeMkdirp(root, "/tmp"), 0o1777);
  const etc = await safeMkdirp(root, "/etc");
  for (const [name, text] of [["passwd", PASSWD], ["group", GROUP]]) {
    await Deno.remove(`${etc}/${name}`).catch(() => {}); // never write through a planted link
    await Deno.writeTextFile(`${etc}/${name}`, text, { mode: 0o644 });
  }
  return { root, binaries: hostBinaries, copied, terminals };
}

/**
 * Whether the jail at `root` has a terminfo entry for `term` where ncurses looks (symlinks
 * resolved as they are inside the jail): without one, programs like `top` cannot run there.
 */
export function jailHasTerminfo(root: string, term: string): boolean {
  if (!/^[\w.+-]+$/.test(term)) return false;
  const realRoot = Deno.realPathSync(root);
  for (const dir of TERMINFO_DIRS) {
    for (const sub of [term[0], term.charCodeAt(0).toString(16)]) {
      try {
        if (Deno.statSync(resolveInRoot(realRoot, `${dir}/${sub}/${term}`)).isFile) return true;
      } catch {
        // not here
      }
    }
  }
  return false;
}
