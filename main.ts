/**
 * invoke_ns: run a command in new Linux namespaces.
 *
 * This file is the CLI: it turns argv into a request, dispatches to the run
 * form (or a subcommand), and maps every error to one line on stderr and a
 * documented exit status.
 * @module
 */

import { UsageError } from "./cli/getopt.ts";
import { run } from "./cli/run.ts";
import { LaunchError } from "./lib/launch.ts";

/** The name the tool reports itself under. */
export const PROGRAM = "invoke_ns";

function fail(message: string): void {
  const line = message.replace(/[\r\n]+/g, " ");
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`${PROGRAM}: ${line}\n`));
  } catch {
    // stderr is gone: the exit status still tells
  }
}

/** Runs the CLI on `args`; returns the exit status. Never throws. */
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args, PROGRAM);
  } catch (error) {
    if (error instanceof UsageError) {
      fail(`${error.message} (see '${PROGRAM} -h')`);
      return 2;
    }
    if (error instanceof LaunchError) {
      fail(error.exitCode === 2 ? error.message : `${error.step}: ${error.message}`);
      return error.exitCode;
    }
    fail(`internal error: ${error instanceof Error ? error.message : String(error)}`);
    return 125;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
