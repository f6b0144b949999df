/**
 * Standard helpers (newuidmap, newgidmap; later OCI hooks) started through
 * the clone engine — clone, then exec — so the tool needs no `--allow-run`.
 * Their stderr is captured so a failure is still one line of the tool's.
 * @module
 */

import { cloneChild } from "../ffi/clone.ts";
import { close, dup2, pipe, read } from "../ffi/libc.ts";
import { DEFAULT_PATH } from "./env.ts";
import { superviseChild } from "./supervise.ts";

/** How a helper ended, with what it wrote on stderr. */
export interface HelperResult {
  /** Its exit status (128+N when killed by signal N). */
  code: number;
  /** Its stderr, trimmed. */
  stderr: string;
}

/** Runs `argv` (a path, no PATH search beyond the default) and waits for it. */
export async function runHelper(argv: string[]): Promise<HelperResult> {
  const [readEnd, writeEnd] = pipe();
  let writing = true;
  try {
    const outcome = cloneChild({
      namespaces: 0,
      setup: () => dup2(writeEnd, 2),
      exec: { command: argv[0], argv, env: [`PATH=${DEFAULT_PATH}`] },
    });
    close(writeEnd);
    writing = false;
    const ended = superviseChild(outcome, null);
    const chunks: string[] = [];
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (let n = read(readEnd, buffer); n > 0; n = read(readEnd, buffer)) {
      chunks.push(decoder.decode(buffer.subarray(0, n), { stream: true }));
    }
    const { code } = await ended;
    return { code, stderr: chunks.join("").trim() };
  } finally {
    if (writing) close(writeEnd);
    close(readEnd);
  }
}
