/**
 * invoke_ns: run a command in new Linux namespaces.
 *
 * This file is the CLI: it dispatches to a subcommand (recognised only as the
 * first argument) or to the seed-compatible run form, and maps every error to
 * one line on stderr and a documented exit status.
 * @module
 */

import { runEnter } from "./cli/enter.ts";
import { UsageError } from "./cli/getopt.ts";
import { runNs } from "./cli/ns.ts";
import { writeErr } from "./cli/output.ts";
import { run } from "./cli/run.ts";
import { runTour } from "./cli/tour.ts";
import { unsupportedPlatform } from "./ffi/arch.ts";
import { LaunchError } from "./lib/launch.ts";

/** The name the tool reports itself under. */
export const PROGRAM = "invoke_ns";

/** Subcommands, by the first argument that selects them. */
const SUBCOMMANDS: Record<string, (args: string[]) => Promise<number> | number> = {
  enter: (args) => runEnter(args, PROGRAM),
  ns: (args) => runNs(args, PROGRAM),
  tour: () => runTour(PROGRAM),
};

function fail(message: string): void {
  try {
    writeErr(`${PROGRAM}: ${message.replace(/[\r\n]+/g, " ")}\n`);
  } catch {
    // stderr is gone: the exit status still tells
  }
}

/** Runs the CLI on `args`; returns the exit status. Never throws. */
export async function main(args: string[]): Promise<number> {
  const subcommand = Object.hasOwn(SUBCOMMANDS, args[0] ?? "") ? SUBCOMMANDS[args[0]] : null;
  try {
    const platform = unsupportedPlatform();
    if (platform) {
      fail(platform);
      return 125;
    }
    return subcommand ? await subcommand(args.slice(1)) : await run(args, PROGRAM);
  } catch (error) {
    const see = subcommand ? `${PROGRAM} ${args[0]} --help` : `${PROGRAM} -h`;
    if (error instanceof UsageError) {
      fail(`${error.message} (see '${see}')`);
      return 2;
    }
    if (error instanceof LaunchError) {
      fail(error.exitCode === 2 ? error.message : `${error.step}: ${error.message}`);
      return error.exitCode;
    }
    fail(`internal error: ${error instanceof Error ? error.message : String(error)}`);
    return subcommand && args[0] !== "enter" ? 1 : 125;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
