/**
 * `invoke_ns jail DIR [BINARY...]` and `invoke_ns binlibdepcp` (also when
 * the executable is invoked under the name `binlibdepcp`).
 * @module
 */

import { binlibdepcpMain } from "../jail/binlibdepcp.ts";
import { ElfError } from "../jail/elf.ts";
import { NotRegularFileError } from "../jail/regular.ts";
import { RootPathError } from "../jail/rootpath.ts";
import { buildJail, JailError, LAB_BINARIES } from "../jail/rootfs.ts";
import { describeFileError } from "../jail/fserror.ts";
import { getopt, type OptionSpec, UsageError } from "./getopt.ts";
import { writeErrorLine, writeOut } from "./output.ts";

const OPTIONS: OptionSpec[] = [{ name: "help", short: "h", value: "none" }];

/** `jail --help`. */
export function jailHelp(program: string): string {
  return `Usage:
 ${program} jail DIR [BINARY...]

Build a root filesystem in DIR that the binaries (names on PATH, or paths;
default: ${LAB_BINARIES.join(" ")}) can run in: each binary with every shared
library it loads (found by reading the ELF files, never by running ldd), the
loader, /etc/ld.so.cache, the terminfo entries for $TERM, xterm and dumb, /proc and
/dev mount points, and minimal /etc/passwd and /etc/group.

Options:
 -h, --help   display this help

Examples:
 ${program} jail /var/local/jail
 ${program} -vpmu calculus -c /var/local/jail env PS1='\\h [\\W] ' bash --norc

Exit status: 0 on success, 1 on failure, 2 for a usage error.
`;
}

/**
 * The one line for a failure that is a problem with the files (exit 1, not
 * "internal error"), in the tool's words; null for anything else.
 */
function jailFailure(error: unknown, subject?: string): string | null {
  if (
    error instanceof JailError || error instanceof ElfError || error instanceof RootPathError ||
    error instanceof NotRegularFileError
  ) {
    return error.message;
  }
  return describeFileError(error, subject);
}

/** Runs `jail`; returns the exit status. */
export async function runJail(args: string[], program: string): Promise<number> {
  const { options, operands } = getopt(args, OPTIONS);
  if (options.length) {
    writeOut(jailHelp(program));
    return 0;
  }
  const [dir, ...binaries] = operands;
  if (!dir) throw new UsageError("jail: a directory is required");
  const terminal = Deno.stdout.isTerminal();
  let summary;
  let copying = ""; // the file being copied, for an error that names none
  try {
    summary = await buildJail(dir, binaries.length ? binaries : undefined, {
      onProgress: (done, total, path) => {
        copying = path;
        if (terminal) writeOut(`\r\x1b[K  copying ${done}/${total}${path ? ` ${path}` : ""}`);
      },
    });
  } catch (error) {
    if (terminal) writeOut("\r\x1b[K");
    const failure = jailFailure(error, copying ? `cannot copy ${copying}` : undefined);
    if (failure === null) throw error;
    writeErrorLine(`${program}: jail: ${failure}`);
    return 1;
  }
  if (terminal) writeOut("\r\x1b[K");
  writeOut(
    `${program}: jail ready in ${summary.root}: ${summary.binaries.length} binaries, ` +
      `${summary.copied.length} files and links` +
      (summary.terminals.length ? `, terminfo for ${summary.terminals.join(", ")}` : "") +
      "\n",
  );
  return 0;
}

/** Runs `binlibdepcp` with the seed script's interface; returns its exit status. */
export function runBinlibdepcp(args: string[]): Promise<number> {
  return binlibdepcpMain(args, "binlibdepcp");
}
