/**
 * Supervising a child once it exists: signal forwarding, waiting, and turning
 * its end into a {@link LaunchResult} or a {@link LaunchError}. Shared by the
 * launcher and `enter`.
 * @module
 */

import type { ChildFailure, CloneOutcome } from "../ffi/clone.ts";
import { signalName, SIGNALS } from "../ffi/constants.ts";
import {
  F_GETFL,
  F_SETFL,
  fcntl,
  ignoreSignal,
  kill,
  O_NONBLOCK,
  signalsIgnoredByCaller,
  waitForExit,
} from "../ffi/libc.ts";
import type { LaunchUsage } from "./usage.ts";

/**
 * How the command ended.
 *
 * @example
 * ```ts
 * const result: LaunchResult = await launch({ command: ["sh", "-c", "kill -TERM $$"] });
 * // { code: 143, signal: "SIGTERM" }
 * ```
 */
export interface LaunchResult {
  /** Its exit status, or 128+N when it was killed by signal N. */
  code: number;
  /** The signal's name when it was killed by one, e.g. `"SIGKILL"`. */
  signal?: string;
  /**
   * With `LaunchSpec.limits`: what it used and why it ended (an OOM kill, a
   * time limit), from its own cgroups.
   */
  usage?: LaunchUsage;
}

/**
 * A launch that failed before the command ran, with the exit status to report.
 *
 * @example
 * ```ts
 * try {
 *   await launch({ command: ["no-such-command"] });
 * } catch (error) {
 *   if (error instanceof LaunchError) console.error(error.step, error.exitCode); // "exec" 127
 * }
 * ```
 */
export class LaunchError extends Error {
  /** The setup step that failed, e.g. `"sethostname"`, `"jail"`, `"exec"`. */
  readonly step: string;
  /** What kind of failure: bad input (`"usage"`), or what went wrong in setup. */
  readonly kind: FailureKind;
  /** With `"interrupted"`: the signal number. */
  readonly signal?: number;

  /** Builds the error; `message` is the one line shown to the user. */
  constructor(
    step: string,
    message: string,
    kind: FailureKind,
    options?: ErrorOptions & { signal?: number },
  ) {
    super(message, options);
    this.name = "LaunchError";
    this.step = step;
    this.kind = kind;
    this.signal = options?.signal;
  }

  /** The exit status the run form gives this failure: 2, 125, 126, 127, or 128+N. */
  get exitCode(): number {
    return exitStatus(this.kind, this.signal);
  }
}

/** Why a launch failed before its command ran: bad input, or the child's {@link ChildFailure}. */
export type FailureKind = "usage" | ChildFailure;

/** The exit status of each kind of failure (README's table; `timeout(1)` and `env(1)`'s). */
const EXIT_STATUS: Record<FailureKind, number> = {
  usage: 2,
  setup: 125,
  "not-executable": 126,
  "not-found": 127,
  interrupted: 128,
};

/** The exit status of a failure of `kind` (128+N when interrupted by signal N). */
export function exitStatus(kind: FailureKind, signal = 0): number {
  return kind === "interrupted" ? EXIT_STATUS.interrupted + signal : EXIT_STATUS[kind];
}

/** Default grace period after a forwarded SIGTERM/SIGHUP before SIGKILL. */
export const STOP_TIMEOUT_MS = 10_000;

/**
 * Ignores SIGINT/SIGQUIT (the terminal sends them to the child too) and
 * forwards SIGTERM/SIGHUP to the child, then SIGKILLs it if it is still alive
 * after `stopTimeoutMs` (a PID 1 ignores signals it has no handler for).
 * Installed before the child exists; signals that arrive before `child.pid`
 * is known are held until {@link SignalForwarder.started}.
 */
export class SignalForwarder {
  #pid = 0;
  #held: number[] = [];
  #escalation: ReturnType<typeof setTimeout> | undefined;
  #stopTimeoutMs: number;
  #listeners: [Deno.Signal, () => void][];

  /** Installs the listeners; `stopTimeoutMs` is the grace period before SIGKILL. */
  constructor(stopTimeoutMs = STOP_TIMEOUT_MS) {
    this.#stopTimeoutMs = stopTimeoutMs;
    const ignore = () => {};
    const forward = (name: "SIGTERM" | "SIGHUP") => () => this.#send(SIGNALS[name]);
    // A signal the caller left ignored (`nohup`: SIGHUP) stays ignored, by the
    // tool too: it is neither caught nor forwarded (and the child keeps it ignored).
    const ignoredByCaller = signalsIgnoredByCaller();
    const listeners: [Deno.Signal, () => void][] = [
      ["SIGINT", ignore],
      ["SIGQUIT", ignore],
      ["SIGTERM", forward("SIGTERM")],
      ["SIGHUP", forward("SIGHUP")],
    ];
    this.#listeners = listeners.filter(([signal]) => !ignoredByCaller.has(SIGNALS[signal]));
    for (const [signal, listener] of this.#listeners) Deno.addSignalListener(signal, listener);
    // Deno installs its handler for SIGHUP, SIGINT and SIGTERM together as soon as
    // any listener is added (measured in /proc/self/status SigCgt), and then dies of
    // a signal nobody listens to: put the caller's SIG_IGN back on those.
    for (const [signal] of listeners) {
      if (ignoredByCaller.has(SIGNALS[signal])) ignoreSignal(SIGNALS[signal]);
    }
  }

  /** The child exists: deliver what was held. */
  started(pid: number): void {
    this.#pid = pid;
    for (const signal of this.#held.splice(0)) this.#send(signal);
  }

  /** Removes the listeners and any pending escalation. */
  stop(): void {
    // Only when armed: Deno sets its timers up on first use, ~5 ms of a CLI run.
    if (this.#escalation !== undefined) clearTimeout(this.#escalation);
    for (const [signal, listener] of this.#listeners) Deno.removeSignalListener(signal, listener);
  }

  #send(signal: number): void {
    if (this.#pid === 0) {
      this.#held.push(signal);
      return;
    }
    const pid = this.#pid;
    kill(pid, signal);
    this.#escalation ??= setTimeout(() => kill(pid, SIGNALS.SIGKILL), this.#stopTimeoutMs);
  }
}

/**
 * Waits for the child of `outcome` and reports how it ended; rejects with a
 * {@link LaunchError} when setup or exec failed in the child (which has then
 * been reaped).
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const superviseChild = (async function superviseChild(
  outcome: CloneOutcome,
  forwarder: SignalForwarder | null,
  onStart?: (pid: number) => void,
): Promise<LaunchResult> {
  forwarder?.started(outcome.pid);
  if (!outcome.failure) onStart?.(outcome.pid);
  const status = await waitForExit(outcome.pid);
  restoreNonblocking(outcome.clearedNonblock);
  if (outcome.failure) {
    const { step, message, kind, cause, signal } = outcome.failure;
    throw new LaunchError(step, message, kind, { cause, signal });
  }
  return status.exited
    ? { code: status.code }
    : { code: 128 + status.signal, signal: signalName(status.signal) };
}).bind(null);

/** Puts back O_NONBLOCK on the fds the child cleared it on (shared file descriptions). */
function restoreNonblocking(fds: number[]): void {
  for (const fd of fds) {
    try {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    } catch {
      // the fd was closed meanwhile: nothing to restore
    }
  }
}
