/**
 * Verbose messages in the seed's format (`Parent: …`, ` Child: …`).
 *
 * Parent and child both write straight to fd 1 with write(2), unbuffered, so
 * the lines come out complete and in order even when stdout is a pipe (the
 * parent is suspended while the child runs its setup).
 * @module
 */

import { writeText } from "../ffi/libc.ts";

/** Prints the seed's `-v` messages when enabled, and the demo's prompts always. */
export class Reporter {
  /** Whether `-v` was given. */
  readonly verbose: boolean;

  /** A reporter that prints verbose lines only when `verbose` is true. */
  constructor(verbose: boolean) {
    this.verbose = verbose;
  }

  /** A verbose line from the parent: `Parent: <message>`. */
  parent(message: string): void {
    if (this.verbose) this.print(`Parent: ${message}\n`);
  }

  /** A verbose line from the child: ` Child: <message>`. */
  child(message: string): void {
    if (this.verbose) this.print(` Child: ${message}\n`);
  }

  /** Text printed whatever the verbosity (the queue demo's dialogue). */
  print(text: string): void {
    try {
      writeText(1, text);
    } catch {
      // stdout closed or broken: the messages are informational only
    }
  }
}
