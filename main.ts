/**
 * invoke_ns: run a command in new Linux namespaces.
 *
 * This file is the CLI: it dispatches to a subcommand (recognised only as the
 * first argument) or to the seed-compatible run form, and maps every error to
 * one line on stderr and a documented exit status.
 * @module
 */

// First: the permission check runs as this module loads, before anything could prompt.
// Nothing else is imported statically beyond what every path needs (reading argv[0], the
// platform check): each path loads its own code when the arguments name it (docs/performance.md).
import "./cli/permission_check.ts";
import { UsageError } from "./cli/getopt.ts";
import { osErrorLine, OutputError, writeErrorLine, writeOut } from "./cli/output.ts";
import { readFile } from "./ffi/libc.ts";
import { unsupportedPlatform } from "./ffi/arch.ts";
import config from "./deno.json" with { type: "json" };
import type { SubcommandName } from "./cli/subcommands.ts";

/** The name the tool reports itself under. */
export const PROGRAM = "invoke_ns";

/** The tool's version (its one home is deno.json, which `deno publish` reads too). */
export const VERSION: string = config.version;

/** `--version`: the tool's, Deno's and V8's versions. */
function versionText(): string {
  return `${PROGRAM} ${VERSION}\ndeno ${Deno.version.deno}\nv8 ${Deno.version.v8}\n`;
}

/**
 * The name this process was invoked under (argv[0], from /proc/self/cmdline:
 * Deno.execPath() resolves symlinks), so that a link or copy named
 * `binlibdepcp` acts as that tool.
 */
function invokedAs(): string {
  try {
    // Through libc: Deno refuses /proc/self/* without --allow-all.
    const argv0 = readFile("/proc/self/cmdline").split("\0")[0];
    return argv0.slice(argv0.lastIndexOf("/") + 1);
  } catch {
    return PROGRAM;
  }
}

/**
 * Subcommands, by the first argument that selects them. Each is loaded only
 * when asked for, so the run form starts without their code.
 */
const SUBCOMMANDS: Record<SubcommandName, (args: string[]) => Promise<number>> = {
  enter: async (args) => (await import("./cli/enter.ts")).runEnter(args, PROGRAM),
  ns: async (args) => (await import("./cli/ns.ts")).runNs(args, PROGRAM),
  tour: async (args) => (await import("./cli/tour.ts")).runTour(args, PROGRAM),
  jail: async (args) => (await import("./cli/jail.ts")).runJail(args, PROGRAM),
  binlibdepcp: async (args) => (await import("./cli/jail.ts")).runBinlibdepcp(args),
  completions: async (args) => (await import("./cli/completions.ts")).runCompletions(args, PROGRAM),
  oci: async (args) => (await import("./cli/oci.ts")).runOci(args, PROGRAM),
};

function fail(message: string): void {
  try {
    writeErrorLine(`${PROGRAM}: ${message}`);
  } catch {
    // stderr is gone: the exit status still tells
  }
}

/** Runs the CLI on `args`; returns the exit status. Never throws. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const main = (async function main(args: string[]): Promise<number> {
  // The compiled executable is also the init stage of its launches (cli/init.ts).
  if (Deno.build.standalone) {
    const { INIT_VARIABLE } = await import("./lib/stage.ts");
    if (Deno.env.get(INIT_VARIABLE) !== undefined) {
      const channel = Number(Deno.env.get(INIT_VARIABLE));
      Deno.env.delete(INIT_VARIABLE);
      return await (await import("./cli/init.ts")).runInitStage(channel);
    }
  }
  const name = invokedAs();
  if (name === "binlibdepcp") args = ["binlibdepcp", ...args];
  // The OCI runtime's name (podman --runtime takes one path): runc's argv, unchanged.
  if (name === "invoke_ns-oci" || Deno.env.get("INVOKE_NS_NAME") === "invoke_ns-oci") {
    return await (await import("./cli/oci.ts")).runOci(args, "invoke_ns-oci");
  }
  const subcommand = Object.hasOwn(SUBCOMMANDS, args[0] ?? "")
    ? SUBCOMMANDS[args[0] as SubcommandName]
    : null;
  try {
    if (args[0] === "--version" || args[0] === "-V") {
      writeOut(versionText());
      return 0;
    }
    // Before any path's modules load: the engine's opens libc as it loads.
    const platform = unsupportedPlatform();
    if (platform) {
      fail(platform);
      return 125;
    }
    return subcommand
      ? await subcommand(args.slice(1))
      : await (await import("./cli/run.ts")).run(args, PROGRAM, Object.keys(SUBCOMMANDS));
  } catch (error) {
    const see = subcommand ? `${PROGRAM} ${args[0]} --help` : `${PROGRAM} -h`;
    if (error instanceof UsageError) {
      fail(`${error.message} (see '${see}')`);
      return 2;
    }
    // Loaded by whatever threw one; imported here, not up front, for the same reason.
    const { LaunchError } = await import("./lib/supervise.ts");
    if (error instanceof LaunchError) {
      // The step names the message, unless the message (a failed call's) already starts with it.
      const named = error.kind === "usage" || error.message.startsWith(`${error.step}: `);
      fail(named ? error.message : `${error.step}: ${error.message}`);
      return error.exitCode;
    }
    // Whoever read our output has gone (`| head`): stop quietly, as SIGPIPE would.
    if (error instanceof Deno.errors.BrokenPipe) return 128 + 13;
    // A full disk or an unwritable output (ENOSPC, EIO) is the system's answer, not a bug.
    const system = error instanceof OutputError ? error.message : osErrorLine(error);
    fail(system ?? `internal error: ${error instanceof Error ? error.message : String(error)}`);
    return subcommand && args[0] !== "enter" ? 1 : 125;
  }
}).bind(null);

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
