/**
 * The one runner: executes a {@link Plan} — the parent's steps, the clone
 * (the child runs its steps and execs), supervision, and clean-up — with the
 * `try/finally` written once, so that whatever fails, every step that ran is
 * undone and nothing is left behind. `launch` and `enter` both end here.
 * @module
 */

import { ChildSetupError, cloneChild, type CloneOutcome, type CloneRequest } from "../ffi/clone.ts";
import { SIGNALS } from "../ffi/constants.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import {
  close,
  defaultSignalAction,
  getuid,
  kill,
  raiseAmbientCapabilities,
  restoreSignalAction,
  signalsIgnoredByCaller,
  waitForExit,
} from "../ffi/libc.ts";
import type { Plan } from "./plan.ts";
import type { FromInit, ToInit } from "./stage.ts";
import { type ParentContext, type ParentStep, type PlanObserver, runChildSteps } from "./step.ts";
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
  /** Told of each step as it runs (`--trace`). */
  observer?: PlanObserver;
}

const STOP_SIGNALS = [SIGNALS.SIGTERM, SIGNALS.SIGHUP];

/** Runs `fn` with `signals` at their default action, then puts the previous ones back. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const withDefaultActions = (function withDefaultActions<T>(signals: number[], fn: () => T): T {
  const previous = signals.map((signal) => [signal, defaultSignalAction(signal)] as const);
  try {
    return fn();
  } finally {
    for (const [signal, action] of previous) restoreSignalAction(signal, action);
  }
}).bind(null);

/** One line explaining why clone refused, with a hint where one helps. */
function cloneFailure(error: SyscallError, plan: Plan): LaunchError {
  const rootless = getuid() !== 0;
  if (plan.mapping && (error.errno === Errno.ENOSPC || error.errno === Errno.EPERM)) {
    const reason = userNamespacesDisabled() ??
      "the kernel refused to create a user namespace";
    const hint = rootless ? "; run with sudo instead" : "";
    return new LaunchError(
      "clone",
      `${reason} (${error.code}: ${error.description})${hint}`,
      "setup",
      {
        cause: error,
      },
    );
  }
  const hint = error.errno === Errno.EPERM && !plan.mapping ? "; run as root or add -U" : "";
  return new LaunchError(
    "clone",
    `cannot create the namespaces (${error.code}: ${error.description})${hint}`,
    "setup",
    { cause: error },
  );
}

/** Runs a parent step, naming it in a failed call's error. */
async function runParentStep(
  step: ParentStep,
  context: ParentContext,
  observer?: PlanObserver,
): Promise<void> {
  const values = () => context.childPid ? { "<child-pid>": String(context.childPid) } : undefined;
  try {
    await step.run(context);
    observer?.ran(step, undefined, values());
  } catch (error) {
    observer?.ran(step, error, values());
    if (error instanceof SyscallError) {
      throw new LaunchError(step.name, error.message, "setup", { cause: error });
    }
    throw error;
  }
}

/** Runs the undo of each step in `steps`, last first; an undo never stops the others. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const undoAll =
  (async function undoAll(steps: ParentStep[], observer?: PlanObserver): Promise<void> {
    for (const step of [...steps].reverse()) {
      try {
        await step.undo?.();
        if (step.undoing) observer?.ran(step.undoing);
      } catch (error) {
        // clean-up is best effort: the rest still runs
        if (step.undoing) observer?.ran(step.undoing, error);
      }
    }
  }).bind(null);

/** The end of a launch: the plan's clean-up steps (best effort, as undo), then `undo`'s undos. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const cleanUp = (async function cleanUp(
  plan: Plan,
  context: ParentContext,
  undo: ParentStep[],
  observer?: PlanObserver,
): Promise<void> {
  for (const step of plan.cleanup) {
    try {
      await step.run(context);
      observer?.ran(step);
    } catch (error) {
      observer?.ran(step, error);
    }
  }
  await undoAll(undo, observer);
}).bind(null);

/**
 * Executes `plan` and resolves with how the command ended. Rejects with a
 * {@link LaunchError} when anything fails before the command starts; every
 * step that ran has then been undone and the child reaped.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const runPlan =
  (async function runPlan(plan: Plan, options: RunOptions = {}): Promise<LaunchResult> {
    const observer = options.observer;
    const forwarder = options.forwardSignals ? new SignalForwarder(options.stopTimeoutMs) : null;
    const context: ParentContext = { childPid: 0 };
    const undoAtEnd: ParentStep[] = [];
    try {
      const undoAfterClone: ParentStep[] = [];
      let outcome;
      try {
        for (const step of plan.parent) {
          await runParentStep(step, context, observer);
          if (step.undo) (step.undoAfterClone ? undoAfterClone : undoAtEnd).push(step);
        }
        outcome = plan.stage === "init"
          ? await startInitStage(plan, context, undoAfterClone, undefined, observer)
          : cloneForPlan(plan, {
            setup: (child) => {
              cloneStarted(child.outerPid, observer);
              runChildSteps(plan.child, child, observer);
            },
            beforeExec: plan.beforeExec,
            exec: plan.exec,
          }, observer);
        context.childPid = outcome.pid;
        for (const step of plan.parent) step.afterClone?.();
      } finally {
        await undoAll(undoAfterClone, observer);
      }
      // --pty: the relay runs while the command does, and drains once it has ended
      const relay = plan.pty && !outcome.failure ? plan.pty.relay() : null;
      let result;
      try {
        result = await superviseChild(outcome, forwarder, (pid) => {
          plan.limits?.started();
          options.onStart?.(pid);
        });
      } finally {
        plan.pty?.finish();
        await relay?.catch(() => {});
      }
      return plan.limits ? await plan.limits.ended(result) : result;
    } finally {
      plan.pty?.restore();
      forwarder?.stop();
      await cleanUp(plan, context, undoAtEnd, observer);
    }
  }).bind(null);

/** In the child, first: the clone and the engine's PR_SET_PDEATHSIG have been made. */
function cloneStarted(outerPid: number, observer?: PlanObserver): void {
  observer?.ran("clone", undefined, { "<child-pid>": String(outerPid) });
  observer?.ran("pdeathsig");
}

/**
 * Starts `plan` and resolves once its child has passed the sync point
 * `point` (the `"created"` of a plan with a start FIFO): the child then goes
 * on without the tool, waiting for whoever opens the FIFO, and the tool may
 * exit (the plan must not have `dieWithParent`). Nothing is cleaned up on
 * success — what the launch made lives as long as the container; on failure
 * every step is undone and the child reaped, as with {@link runPlan}.
 */
export async function runPlanDetached(
  plan: Plan,
  point: string,
  observer?: PlanObserver,
): Promise<{ pid: number }> {
  if (plan.stage !== "init" || !plan.child.some((step) => step.name === point)) {
    throw new Error(`a detached launch needs the init stage and a "${point}" sync point`);
  }
  const context: ParentContext = { childPid: 0 };
  const undo: ParentStep[] = [];
  try {
    const undoAfterClone: ParentStep[] = [];
    let outcome;
    try {
      for (const step of plan.parent) {
        await runParentStep(step, context, observer);
        if (step.undo) (step.undoAfterClone ? undoAfterClone : undo).push(step);
      }
      outcome = await startInitStage(plan, context, undoAfterClone, point, observer);
    } finally {
      await undoAll(undoAfterClone, observer);
    }
    if (outcome.failure) await superviseChild(outcome, null); // reaps it, then throws
    return { pid: outcome.pid };
  } catch (error) {
    await cleanUp(plan, context, undo, observer);
    throw error;
  }
}

/** The clone of `plan` (its namespaces and grandchild), with what the child does. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const cloneForPlan = (function cloneForPlan(
  plan: Plan,
  child: Pick<CloneRequest, "setup" | "beforeExec" | "exec" | "keepFds">,
  observer?: PlanObserver,
): CloneOutcome {
  // The demo's child may wait at its prompt for long, with the parent
  // suspended and unable to forward anything: meanwhile SIGTERM and SIGHUP
  // end the tool at once (and the child with it, PR_SET_PDEATHSIG).
  // (a signal the caller left ignored stays so: nohup)
  const stoppable = plan.interruptibleSetup
    ? STOP_SIGNALS.filter((signal) => !signalsIgnoredByCaller().has(signal))
    : [];
  return withDefaultActions(stoppable, () => {
    let outcome;
    try {
      outcome = cloneChild({
        namespaces: plan.cloneFlags,
        ...child,
        execInGrandchild: plan.execInGrandchild,
        grandchildSteps: plan.grandchild.map((step) => step.native()),
        dieWithParent: plan.dieWithParent,
      });
    } catch (error) {
      if (!(error instanceof SyscallError)) throw error;
      observer?.ran("clone", error);
      throw cloneFailure(error, plan);
    }
    observer?.cloned(outcome);
    return outcome;
  });
}).bind(null);

/**
 * The `"init"` stage: the clone child execs into the init stage
 * (`cli/init.ts`), which plans the same launch and runs the child's steps;
 * meanwhile this side runs the parent's steps at each sync point. Resolves
 * once the init stage has exec'd the command (its end of the channel closes)
 * or failed, or, with `detachAt`, once it has passed that sync point (it then
 * goes on alone). `undoAfterClone` steps are undone as soon as the child exists.
 */
async function startInitStage(
  plan: Plan,
  context: ParentContext,
  undoAfterClone: ParentStep[],
  detachAt?: string,
  observer?: PlanObserver,
): Promise<CloneOutcome> {
  // loaded only for the init stage
  const { channelPair, receiveMessageAsync, sendMessage } = await import("../ffi/channel.ts");
  const { initExec } = await import("./stage.ts");
  const [mine, theirs] = channelPair();
  let outcome: CloneOutcome;
  try {
    outcome = cloneForPlan(plan, {
      setup: ({ outerPid }) => {
        cloneStarted(outerPid, observer);
        // Until the parent maps its IDs, an exec would drop every capability.
        if (!plan.create.includes("user")) return;
        try {
          raiseAmbientCapabilities();
        } catch (error) {
          observer?.ran("ambient", error);
          throw error;
        }
        observer?.ran("ambient");
      },
      exec: initExec(theirs),
      keepFds: [theirs],
    }, observer);
  } catch (error) {
    close(mine);
    throw error;
  } finally {
    close(theirs);
  }
  await undoAll(undoAfterClone.splice(0), observer);
  if (outcome.failure) {
    close(mine);
    return outcome;
  }
  context.childPid = outcome.pid;
  let failure: ChildSetupError | undefined;
  let clearedNonblock: number[] = [];
  let program: string | undefined;
  let reaped = false;
  try {
    sendMessage(mine, { type: "plan", ...plan.request, outerPid: outcome.pid } satisfies ToInit);
    for (;;) {
      const { message, fds } = await receiveMessageAsync<FromInit>(mine);
      if (message?.type !== "sync") { for (const fd of fds) close(fd); }
      if (message === null) break;
      if (message.type === "sync") {
        try {
          context.received = { data: message.data, fds };
          for (const step of plan.sync.find((s) => s.point === message.point)?.steps ?? []) {
            await runParentStep(step, context, observer);
          }
          context.received = undefined;
        } catch (error) {
          sendMessage(mine, { type: "abort" } satisfies ToInit);
          await waitForExit(outcome.pid);
          reaped = true;
          throw error;
        }
        sendMessage(mine, { type: "go" } satisfies ToInit);
        if (message.point === detachAt) break;
      } else if (message.type === "failed") {
        failure = new ChildSetupError(
          message.step,
          message.message,
          message.kind,
          undefined,
          message.signal,
        );
      } else if (message.type === "exec") {
        clearedNonblock = message.clearedNonblock;
        program = message.program;
      }
    }
    if (!failure && program !== undefined) observer?.execed(program);
  } catch (error) {
    // The init stage must not outlive a launch that failed: ended and reaped.
    if (!reaped) {
      kill(outcome.pid, SIGNALS.SIGKILL);
      await waitForExit(outcome.pid);
    }
    if (error instanceof LaunchError) throw error;
    throw new LaunchError("init", error instanceof Error ? error.message : String(error), "setup", {
      cause: error,
    });
  } finally {
    close(mine);
  }
  return { pid: outcome.pid, failure, clearedNonblock };
}
