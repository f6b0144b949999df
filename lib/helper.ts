/**
 * Programs the tool runs for a launch — the standard setuid helpers
 * (newuidmap, newgidmap) and hooks (as OCI's) — started through the clone
 * engine (clone, then exec), so the tool needs no `--allow-run`. Their
 * stderr is captured so that a failure is still one line of the tool's.
 * @module
 */

import { cloneChild } from "../ffi/clone.ts";
import { SIGNALS } from "../ffi/constants.ts";
import {
  close,
  F_GETFL,
  F_SETFL,
  fcntl,
  kill,
  O_NONBLOCK,
  pipe,
  read,
  writeAll,
} from "../ffi/libc.ts";
import { dup2 } from "../ffi/files.ts";
import { DEFAULT_PATH } from "./env.ts";
import { superviseChild } from "./supervise.ts";

/** How a helper ended, with what it wrote on stderr. */
export interface HelperResult {
  /** Its exit status (128+N when killed by signal N). */
  code: number;
  /** Its stderr, trimmed. */
  stderr: string;
  /** Whether it was killed for running past its timeout. */
  timedOut: boolean;
}

/** How to run a helper. */
export interface HelperOptions {
  /** Its environment (default: a PATH only). */
  env?: string[];
  /** Written to its stdin, which is then closed (default: stdin is /dev/null's end of a pipe). */
  stdin?: string;
  /** Killed (SIGKILL) after this long. */
  timeoutMs?: number;
  /** The program to run, when `argv[0]` is not it (an OCI hook's `path`, with its `args`). */
  program?: string;
}

/**
 * Runs `argv` (`argv[0]` a path, unless `options.program` names it; a bare
 * name is looked up on the default PATH) and waits for it.
 */
export async function runHelper(
  argv: string[],
  options: HelperOptions = {},
): Promise<HelperResult> {
  const [errRead, errWrite] = pipe();
  const [inRead, inWrite] = pipe();
  const open = new Set([errRead, errWrite, inRead, inWrite]);
  const release = (fd: number) => {
    if (open.delete(fd)) close(fd);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    const outcome = cloneChild({
      namespaces: 0,
      setup: () => {
        dup2(inRead, 0);
        dup2(errWrite, 2);
      },
      exec: {
        command: options.program ?? argv[0],
        argv,
        env: options.env ?? [`PATH=${DEFAULT_PATH}`],
      },
    });
    release(errWrite);
    release(inRead);
    if (options.stdin !== undefined && !outcome.failure) {
      try {
        writeAll(inWrite, new TextEncoder().encode(options.stdin) as Uint8Array<ArrayBuffer>);
      } catch {
        // it did not read its stdin: that is its business
      }
    }
    release(inWrite);
    if (options.timeoutMs !== undefined && !outcome.failure) {
      timer = setTimeout(() => {
        timedOut = true;
        kill(outcome.pid, SIGNALS.SIGKILL);
      }, options.timeoutMs);
    }
    const { code } = await superviseChild(outcome, null);
    // What it left in the pipe (up to the pipe's 64 KiB), without waiting for
    // anything it may have left running with the pipe open.
    fcntl(errRead, F_SETFL, fcntl(errRead, F_GETFL) | O_NONBLOCK);
    const chunks: string[] = [];
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (;;) {
      let n = 0;
      try {
        n = read(errRead, buffer);
      } catch {
        break; // EAGAIN: nothing more now
      }
      if (n === 0) break;
      chunks.push(decoder.decode(buffer.subarray(0, n), { stream: true }));
    }
    return { code, stderr: chunks.join("").trim(), timedOut };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    for (const fd of [...open]) release(fd);
  }
}
