/**
 * The init stage: the clone child, exec'd into a fresh Deno (as runc's
 * `runc init`), runs the child's steps of a plan as an ordinary process,
 * independent of the tool, so the tool can act while it waits at the plan's
 * sync points (writing ID maps for ranges, for one). It then execs the
 * command itself. See `lib/stage.ts` for the protocol. This file is the
 * init stage's entry point (the compiled executable reaches it through
 * `main.ts`).
 *
 * It plans the launch again from the same spec and caller the tool planned
 * it from, so both run the same steps; it has its own memory, so nothing of
 * the tool's is shared (and, being its own process, it may outlive it).
 * @module
 */

import { ChildSetupError, execInPlace } from "../ffi/clone.ts";
import { receiveMessage, sendMessage } from "../ffi/channel.ts";
import { SIGNALS } from "../ffi/constants.ts";
import { fcntl, PR_SET_PDEATHSIG, prctl, signalsIgnoredByCaller } from "../ffi/libc.ts";
import { planLaunch } from "../lib/plan.ts";
import { type FromInit, INIT_VARIABLE, type ToInit } from "../lib/stage.ts";
import { runChildStepsAsync } from "../lib/step.ts";
import { exitStatus } from "../lib/supervise.ts";
import { writeErrorLine } from "./output.ts";

/**
 * Tells the tool about a failure, or, once the tool has left (a detached
 * launch), says it on stderr; returns the status to exit with.
 */
function report(channel: number, error: unknown): number {
  const failure = error instanceof ChildSetupError ? error : new ChildSetupError(
    "setup",
    error instanceof Error ? error.message : String(error),
  );
  try {
    sendMessage(
      channel,
      {
        type: "failed",
        step: failure.step,
        message: failure.message,
        kind: failure.kind,
        signal: failure.signal,
      } satisfies FromInit,
    );
  } catch {
    writeErrorLine(`invoke_ns: ${failure.step}: ${failure.message}`);
  }
  return exitStatus(failure.kind, failure.signal);
}

const F_DUPFD_CLOEXEC = 1030;

/** A close-on-exec copy of stderr (fd 2 itself when it cannot be copied). */
function stderrCopy(): number {
  try {
    return fcntl(2, F_DUPFD_CLOEXEC, 3);
  } catch {
    return 2;
  }
}

/** Runs the init stage on `channel`; returns only when it failed (or had no command). */
export async function runInitStage(channel: number): Promise<number> {
  // Now, while /proc is the host's: after pivot_root a jail may have none, and a set read
  // then would be empty (the command would lose what its caller left ignored, nohup's SIGHUP).
  signalsIgnoredByCaller();
  let message;
  try {
    if (!Number.isInteger(channel) || channel < 3) throw new Error("not a channel");
    message = receiveMessage<ToInit>(channel).message;
  } catch {
    message = null;
  }
  if (message?.type !== "plan") {
    // INVOKE_NS_INIT inherited by accident, or the tool gone before it spoke
    writeErrorLine(`invoke_ns: ${INIT_VARIABLE} is set, but no launch is waiting on its channel`);
    return 125;
  }
  try {
    const plan = await planLaunch(message.spec, message.options, message.caller);
    const origin = message.options.traceOrigin;
    // --trace writes to a copy of stderr, which a terminal step leaves the container's pty
    const traceFd = origin === undefined ? undefined : stderrCopy();
    // loaded only for --trace
    const tracer = origin === undefined
      ? undefined
      : new (await import("../lib/explain.ts")).Tracer(plan, BigInt(origin), traceFd);
    if (plan.dieWithParent) prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL);
    tracer?.ran("init-pdeathsig");
    await runChildStepsAsync(plan.child, {
      outerPid: message.outerPid,
      sync: (point, data, fds) => {
        sendMessage(channel, { type: "sync", point, data } satisfies FromInit, fds);
        tracer?.syncing(point);
        const answer = receiveMessage<ToInit>(channel).message;
        if (answer?.type !== "go") throw new ChildSetupError(point, "stopped by the tool");
      },
    }, tracer);
    if (!plan.exec) return 0;
    // credential changes clear it: set again, last
    if (plan.dieWithParent) prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL);
    tracer?.ran("init-pdeathsig-again");
    let found = false;
    const keep = traceFd === undefined || traceFd === 2 ? [channel] : [channel, traceFd];
    const failure = execInPlace(plan.exec, keep, (clearedNonblock, program) => {
      found = true;
      tracer?.ran("init-hygiene");
      plan.beforeExec?.();
      try {
        sendMessage(channel, { type: "exec", clearedNonblock, program } satisfies FromInit);
      } catch {
        // a detached launch: the tool has left, nobody restores O_NONBLOCK (or traces the exec)
        tracer?.executing(program);
      }
    });
    if (!found) tracer?.ran("init-hygiene");
    tracer?.ran("exec", failure);
    return report(channel, failure);
  } catch (error) {
    return report(channel, error);
  }
}

if (import.meta.main) {
  const channel = Number(Deno.env.get(INIT_VARIABLE));
  Deno.env.delete(INIT_VARIABLE);
  Deno.exit(await runInitStage(channel));
}
