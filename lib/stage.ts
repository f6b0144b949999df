/**
 * The init stage's protocol: how the tool starts it and what the two say to
 * each other over their channel (`ffi/channel.ts`). The tool's side is in
 * `lib/runner.ts`, the init stage's in `cli/init.ts`.
 *
 * ```
 * tool                                  init stage (the clone child, exec'd into Deno)
 * plan {spec, options, caller, pid} ──▶ plans the same launch, runs the child's steps
 *                                   ◀── sync {point}     (waits)
 * runs its steps for that point     ──▶ go | abort
 *                                   ◀── failed {step, message, exitCode} | exec {clearedNonblock}
 *                                   ◀── end of file: it exec'd the command (the channel is
 *                                       close-on-exec) or it died
 * ```
 * @module
 */

import type { ChildFailure, ExecRequest } from "../ffi/clone.ts";
import type { Caller, LaunchSpec } from "./plan.ts";
import { NO_CONFIG_FLAGS, PERMISSION_FLAGS } from "./deno_run.ts";

/** The environment variable that tells a starting Deno it is an init stage, and its channel fd. */
export const INIT_VARIABLE = "INVOKE_NS_INIT";

/** The launch options the init stage needs (the serialisable ones). */
export interface StageOptions {
  /** `-v`. */
  verbose?: boolean;
  /** `--json`'s start line. */
  announceStart?: boolean;
  /** PR_SET_PDEATHSIG. */
  dieWithParent?: boolean;
  /** `--trace`: when the tool's trace began (CLOCK_MONOTONIC, ns, as text). */
  traceOrigin?: string;
}

/** Tool to init stage. */
export type ToInit =
  | { type: "plan"; spec: LaunchSpec; options: StageOptions; caller: Caller; outerPid: number }
  | { type: "go" }
  | { type: "abort" };

/** Init stage to tool. */
export type FromInit =
  | { type: "sync"; point: string; data?: unknown }
  | { type: "failed"; step: string; message: string; kind: ChildFailure; signal?: number }
  | { type: "exec"; clearedNonblock: number[]; program: string };

/**
 * What the clone child execs to become the init stage: this Deno running
 * `cli/init.ts` with the CLI's permissions, or, in the compiled executable,
 * the executable itself (its `main.ts` looks at {@link INIT_VARIABLE} first).
 */
export function initExec(channel: number): ExecRequest {
  const deno = Deno.execPath();
  const env = Object.entries(Deno.env.toObject())
    .filter(([key]) => key !== INIT_VARIABLE)
    .map(([key, value]) => `${key}=${value}`);
  env.push(`${INIT_VARIABLE}=${channel}`);
  if (Deno.build.standalone) return { command: deno, argv: [deno], env };
  const entry = decodeURIComponent(new URL("../cli/init.ts", import.meta.url).pathname);
  return {
    command: deno,
    argv: [
      deno,
      "run",
      "-q",
      ...NO_CONFIG_FLAGS, // as the launcher
      "--no-prompt",
      ...PERMISSION_FLAGS, // the CLI's own four
      entry,
    ],
    env,
  };
}
