/**
 * Port of the seed script binlibdepcp.sh: copies a binary, the shared libraries it loads and
 * /etc/ld.so.cache into a target directory, at their full paths, for use as a chroot/jail.
 *
 * Same interface, messages, checks and exit codes as the script; the differences are:
 *  - libraries come from jail/resolve.ts (no `ldd`, nothing is executed), in ldd's order, and
 *    every library the loader would open is copied (the script took ldd's "/lib..." paths);
 *  - symlinks on the binary's and libraries' paths are kept as symlinks, their targets copied
 *    too (the script's `cp -p` copied dereferenced content);
 *  - nothing is ever written outside TARGET: symlinks in TARGET resolve as in a chroot there
 *    (absolute targets restart at TARGET, ".." stops at it, and a symlink at a destination is
 *    replaced, not written through; see jail/copy.ts);
 *  - `test -r`/`test -w` are done by opening the binary and by creating and removing a probe
 *    file in the directory (no uid needed, so no --allow-sys);
 *  - exactly two operands are required after the options, a relative binary path is taken
 *    from the current directory, and a failed copy prints `[FAILED]` (plus the reason on
 *    stderr) and makes the exit code 1 instead of printing `[OK]`.
 *
 * @module
 */

import { posix } from "node:path";
import { copyIntoRoot, type CopyOutcome } from "./copy.ts";
import { ElfError } from "./elf.ts";
import { describeFileError } from "./fserror.ts";
import { NotRegularFileError } from "./regular.ts";
import { resolveDependencies } from "./resolve.ts";

const LD_SO_CACHE = "/etc/ld.so.cache";
const ROW_WIDTH = 25;

/** Where {@link binlibdepcpMain} writes; defaults to the process's stdout and stderr. */
export interface OutputStreams {
  /** Receives the usage text for -h and the progress table. */
  stdout: { write(bytes: Uint8Array): Promise<number> };
  /** Receives usage errors and abort messages. */
  stderr: { write(bytes: Uint8Array): Promise<number> };
}

/**
 * Runs binlibdepcp with the command line `args` (without the program name); `prog` is the
 * name shown in the usage text (its basename is used). Returns the exit code: 0 done (or -h),
 * 1 aborted or a copy failed, 2 usage error.
 */
export async function binlibdepcpMain(
  args: string[],
  prog: string,
  streams: OutputStreams = { stdout: Deno.stdout, stderr: Deno.stderr },
): Promise<number> {
  const out = (text: string) => writeAll(streams.stdout, text);
  const err = (text: string) => writeAll(streams.stderr, text);
  const usage = usageText(posix.basename(prog));

  if (args.length === 1 && args[0] === "-h") {
    await out(usage);
    return 0;
  }
  const parsed = args.length < 2 || args.length > 3 ? null : parseOptions(args);
  if (parsed === null) {
    await err(usage);
    return 2;
  }
  const { noClobber, binary, target } = parsed;

  if (!await isFile(binary) || !await isReadable(binary)) {
    await err(`${binary}: not accessible ...... aborting\n`);
    return 1;
  }
  if (!await isDirectory(target) || !await isWritableDirectory(target)) {
    const problem = await targetProblem(target);
    if (problem !== null) {
      await err(`${target}: ${problem} ...... aborting\n`);
      return 1;
    }
    try {
      await Deno.mkdir(target, { recursive: true });
    } catch (error) {
      await err(`${posix.basename(prog)}: ${describe(error)}\n`);
      return 1;
    }
  }

  let failed = false;
  const copyRow = async (label: string, hostPath: string) => {
    let outcome: CopyOutcome | "failed";
    try {
      outcome = await copyIntoRoot(target, hostPath, { noClobber });
    } catch (error) {
      await err(`${posix.basename(prog)}: ${describe(error, hostPath)}\n`);
      outcome = "failed";
      failed = true;
    }
    const status = outcome === "copied" ? "[OK]" : outcome === "skipped" ? "[SKIPPED]" : "[FAILED]";
    await out(`${label.slice(0, ROW_WIDTH).padStart(ROW_WIDTH)} : ${status}\n`);
  };

  const binaryPath = posix.resolve(binary);
  const dependencies = await libraryPaths(binaryPath, posix.basename(prog));
  if ("refused" in dependencies) {
    await err(`${dependencies.refused} ...... aborting\n`);
    return 1;
  }
  await out("Copying ...\n\n");
  await copyRow(posix.basename(binary), binaryPath);
  if (dependencies.said) await err(dependencies.said);
  const libraries = dependencies.paths;
  for (const library of libraries) await copyRow(posix.basename(library), library);
  if (libraries.length > 0 && await isFile(LD_SO_CACHE)) {
    await copyRow(posix.basename(LD_SO_CACHE), LD_SO_CACHE);
  }
  await out("\n...... Done\n");
  return failed ? 1 : 0;
}

function usageText(name: string): string {
  return [
    "Useage:",
    ` ${name} -h`,
    ` ${name} [-n] <full path of binary> <target directory>`,
    "",
    "Option:",
    " -h   print this help text",
    " -n   noclobber, i.e. skip overwrite of existing file",
    "",
  ].join("\n");
}

/**
 * getopts ":n" followed by BINARY and TARGET; null for any usage error. As
 * in the script (which only counts 2 or 3 words in all), an operand after
 * TARGET is ignored.
 */
function parseOptions(
  args: string[],
): { noClobber: boolean; binary: string; target: string } | null {
  let noClobber = false;
  let index = 0;
  for (; index < args.length; index++) {
    const arg = args[index];
    if (arg === "--") {
      index++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    for (const letter of arg.slice(1)) {
      if (letter !== "n") return null;
      noClobber = true;
    }
  }
  const operands = args.slice(index);
  if (operands.length < 2 || operands[0] === "" || operands[1] === "") return null;
  return { noClobber, binary: operands[0], target: operands[1] };
}

/** The script's diagnosis of a TARGET that is not a writable directory; null: create it. */
async function targetProblem(target: string): Promise<string | null> {
  if (await isFile(target)) return "a regular file of this name already exists";
  if (await isDirectory(target)) return "no write permission on directory";
  let existing = target;
  while (!await isDirectory(existing)) existing = posix.dirname(existing);
  return await isWritableDirectory(existing) ? null : `no write permission at ${existing}`;
}

/**
 * The libraries the loader opens for `binary`, in ldd's order; none for
 * static or non-ELF files, with what the script's ldd said on stderr about
 * such files (`said`): "not a dynamic executable" for a script or a classic
 * static binary, and for a damaged ELF file one line with what is wrong.
 * `refused` when the binary needs something that is not a regular file (a
 * FIFO, a device: the loader would block or worse): nothing is copied then.
 */
async function libraryPaths(
  binary: string,
  prog: string,
): Promise<{ paths: string[]; said?: string } | { refused: string }> {
  try {
    const closure = await resolveDependencies(binary);
    const special = closure.skipped.find((entry) => entry.notRegular);
    if (special) return { refused: `${binary}: needs ${special.path}: ${special.reason}` };
    const said = closure.isStatic && !closure.elf.hasDynamic ? NOT_DYNAMIC : undefined;
    return { paths: closure.objects.map((object) => object.path), said };
  } catch (error) {
    if (!(error instanceof ElfError)) throw error;
    if (error.cause instanceof NotRegularFileError) return { refused: error.message };
    return {
      paths: [],
      said: error.reason === "not an ELF file" ? NOT_DYNAMIC : `${prog}: ${error.message}\n`,
    };
  }
}

/** What ldd prints on stderr for a file it has nothing to say about. */
const NOT_DYNAMIC = "\tnot a dynamic executable\n";

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** `test -r`: whether this process can open the file for reading. */
async function isReadable(path: string): Promise<boolean> {
  try {
    (await Deno.open(path, { read: true })).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * `test -w` for a directory: whether this process can create a file in it, found out by
 * creating and removing an empty temporary file (no uid/mode guesswork, and read-only mounts
 * and ACLs count as they do for access(2)).
 */
async function isWritableDirectory(dir: string): Promise<boolean> {
  let probe: string;
  try {
    probe = await Deno.makeTempFile({ dir, prefix: ".binlibdepcp-probe-" });
  } catch {
    return false;
  }
  await Deno.remove(probe);
  return true;
}

/** A failure in the tool's words; `subject` names the file when the error names none. */
function describe(error: unknown, subject?: string): string {
  const file = describeFileError(error, subject);
  if (file !== null) return file;
  const message = error instanceof Error ? error.message : String(error);
  return subject ? `${subject}: ${message}` : message;
}

async function writeAll(
  stream: { write(bytes: Uint8Array): Promise<number> },
  text: string,
): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let offset = 0; offset < bytes.length;) offset += await stream.write(bytes.subarray(offset));
}

/**
 * The name to show in the usage text: the launcher (`./binlibdepcp.sh`) passes the name it was
 * called by in INVOKE_NS_NAME, and grants reading only that variable.
 */
function invokedName(): string {
  const variable = "INVOKE_NS_NAME";
  const granted = Deno.permissions.querySync({ name: "env", variable }).state === "granted";
  return (granted ? Deno.env.get(variable) : undefined) || "binlibdepcp";
}

if (import.meta.main) Deno.exit(await binlibdepcpMain(Deno.args, invokedName()));
