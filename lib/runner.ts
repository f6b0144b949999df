/**
 * The one runner: executes a {@link Plan} — the parent's steps, the clone
 * (the child runs its steps and execs), supervision, and clean-up — with the
 * `try/finally` written once, so that whatever fails, every step that ran is
 * undone and nothing is left behind. `launch` and `enter` both end here.
 * @module
 */

import { cloneChild } from "../ffi/clone.ts";
import { SIGNALS } from "../ffi/constants.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { defaultSignalAction, getuid, restoreSignalAction } from "../ffi/libc.ts";
import type { Plan } from "./plan.ts";
import { type ParentStep, runChildSteps } from "./step.ts";
import { LaunchError, type LaunchResult, SignalForwarder, superviseChild } from "./supervise.ts";
import { userNamespacesDisabled } from "./user.ts";

/** How the runner supervises the command. */
export interface RunOptions {
  /** Ignore SIGINT/SIGQUIT and forward SIGTERM/SIGHUP to the child while waiting. */
  forwardSignals?: boolean;
  /** After a forwarded signal, SIGKILL the child if it is still alive after this long. */
  stopTimeoutMs?: number;
  /** Called with the child's PID once the command has started. */
  onStart?: (pid: number) => void;
}

const STOP_SIGNALS = [SIGNALS.SIGTERM, SIGNALS.SIGHUP];

/** Runs `fn` with `signals` at their default action, then puts the previous ones back. */
function withDefaultActions<T>(signals: number[], fn: () => T): T {
  const previous = signals.map((signal) => [signal, defaultSignalAction(signal)] as const);
  try {
    return fn();
  } finally {
    for (const [signal, action] of previous) restoreSignalAction(signal, action);
  }
}

/** One line explaining why clone refused, with a hint where one helps. */
function cloneFailure(error: SyscallError, plan: Plan): LaunchError {
  const rootless = getuid() !== 0;
  if (plan.mapping && (error.errno === Errno.ENOSPC || error.errno === Errno.EPERM)) {
    const reason = userNamespacesDisabled() ??
      "the kernel refused to create a user namespace";
    const hint = rootless ? "; run with sudo instead" : "";
    return new LaunchError("clone", `${reason} (${error.code}: ${error.description})${hint}`, 125, {
      cause: error,
    });
  }
  const hint = error.errno === Errno.EPERM && !plan.mapping ? "; run as root or add -U" : "";
  return new LaunchError(
    "clone",
    `cannot create the namespaces (${error.code}: ${error.description})${hint}`,
    125,
    { cause: error },
  );
}

/** Runs a parent step, naming it in a failed call's error. */
async function runParentStep(step: ParentStep): Promise<void> {
  try {
    await step.run();
  } catch (error) {
    if (error instanceof SyscallError) {
      throw new LaunchError(step.name, error.message, 125, { cause: error });
    }
    throw error;
  }
}

/** Runs the undo of each step in `steps`, last first; an undo never stops the others. */
async function undoAll(steps: ParentStep[]): Promise<void> {
  for (const step of [...steps].reverse()) {
    try {
      await step.undo?.();
    } catch {
      // clean-up is best effort: the rest still runs
    }
  }
}

/**
 * Executes `plan` and resolves with how the command ended. Rejects with a
 * {@link LaunchError} when anything fails before the command starts; every
 * step that ran has then been undone and the child reaped.
 */
export async function runPlan(plan: Plan, options: RunOptions = {}): Promise<LaunchResult> {
  const forwarder = options.forwardSignals ? new SignalForwarder(options.stopTimeoutMs) : null;
  const undoAtEnd: ParentStep[] = [];
  try {
    const undoAfterClone: ParentStep[] = [];
    let outcome;
    try {
      for (const step of plan.parent) {
        await runParentStep(step);
        if (step.undo) (step.undoAfterClone ? undoAfterClone : undoAtEnd).push(step);
      }
      // The demo's child may wait at its prompt for long, with the parent
      // suspended and unable to forward anything: meanwhile SIGTERM and SIGHUP
      // end the tool at once (and the child with it, PR_SET_PDEATHSIG).
      outcome = withDefaultActions(plan.interruptibleSetup ? STOP_SIGNALS : [], () => {
        try {
          return cloneChild({
            namespaces: plan.cloneFlags,
            setup: (context) => runChildSteps(plan.child, context),
            beforeExec: plan.beforeExec,
            exec: plan.exec,
            execInGrandchild: plan.execInGrandchild,
            grandchildSteps: plan.grandchild.map((step) => step.native()),
            dieWithParent: plan.dieWithParent,
          });
        } catch (error) {
          throw error instanceof SyscallError ? cloneFailure(error, plan) : error;
        }
      });
    } finally {
      await undoAll(undoAfterClone);
    }
    return await superviseChild(outcome, forwarder, options.onStart);
  } finally {
    forwarder?.stop();
    for (const step of plan.cleanup) {
      try {
        await step.run();
      } catch {
        // best effort, as undo
      }
    }
    await undoAll(undoAtEnd);
  }
}
