/**
 * The launcher: checks a {@link LaunchSpec}, turns it into a plan of named
 * steps (`lib/plan.ts`), and hands the plan to the runner (`lib/runner.ts`),
 * which runs the parent's steps, clones the child (which runs its steps and
 * execs the command), waits for the command and cleans up.
 *
 * Repeated launches: every launch is independent (nothing is unshared in the
 * calling process, and the time namespace is entered by the child at exec), so
 * `launch()` may be called any number of times from one process, each with
 * its own namespaces and time offsets. Launches must come from Deno's main
 * thread (not a Worker): the clone engine carves the child's stacks from it.
 * @module
 */

import { getpid } from "../ffi/libc.ts";
import { type LaunchOptions, type LaunchSpec, planLaunch } from "./plan.ts";
import { runPlan, runPlanDetached } from "./runner.ts";
import { LaunchError, type LaunchResult } from "./supervise.ts";
import { describeMapping, formatIdRange, type IdRange } from "./user.ts";
import type { Explanation } from "./explain.ts";

export { type Explanation, LaunchError, type LaunchOptions, type LaunchResult, type LaunchSpec };

/**
 * Runs `spec.command` in the namespaces `spec` asks for and resolves with how
 * it ended. Rejects with a {@link LaunchError} when anything fails before
 * the command starts (bad spec, setup step, command not found); the child
 * has then been reaped and nothing is left behind.
 *
 * Call it any number of times from one process, one after another or
 * concurrently: nothing is unshared in the calling process, so each launch
 * gets its own namespaces, and a time namespace with its own offsets (the
 * child enters it at exec). Call it from Deno's main thread, not a Worker:
 * the child's stacks are carved from that thread's stack.
 *
 * @example
 * ```ts
 * const { code, signal } = await launch({
 *   command: ["sh", "-c", "hostname; echo $$"],
 *   pid: true,
 *   mount: true,
 *   hostname: "box",
 * });
 * ```
 *
 * With `explain: true` nothing is created: it resolves with the plan as
 * data, every system call in order (`invoke_ns --explain`):
 *
 * ```ts
 * const { steps } = await launch({ command: ["bash"], pid: true }, { explain: true });
 * ```
 */
export async function launch(
  spec: LaunchSpec,
  options: LaunchOptions & { explain: true },
): Promise<Explanation>;
/** Runs `spec.command` (see above). */
export async function launch(
  spec: LaunchSpec,
  options?: LaunchOptions & { explain?: false },
): Promise<LaunchResult>;
export async function launch(
  spec: LaunchSpec,
  options: LaunchOptions = {},
): Promise<LaunchResult | Explanation> {
  const vethIssue = spec.veth ? await (await import("./net.ts")).vethProblem(spec.veth) : null;
  if (vethIssue) throw new LaunchError("usage", `veth: ${vethIssue}`, "usage");
  const plan = await planLaunch(spec, options);
  for (const warning of plan.warnings ?? []) options.onWarning?.(warning);
  // loaded only for explain and trace
  const explaining = options.explain || options.trace ? await import("./explain.ts") : undefined;
  if (options.explain) return explaining!.explainPlan(plan);
  const tracer = options.trace ? new explaining!.Tracer(plan) : undefined;
  if (tracer) plan.request.options.traceOrigin = String(tracer.origin);
  plan.report.parent(`PID of parent is ${getpid()}`);
  if (plan.mapping) {
    const implied = plan.userAsked ? "" : " (implied: you are not root)";
    plan.report.parent(`new user namespace${implied}: ${describeMapping(plan.mapping)}`);
  }
  if (plan.ranges) {
    const ranges = (list: IdRange[]) => list.map(formatIdRange).join(",");
    plan.report.parent(
      `new user namespace: uid ${ranges(plan.ranges.users)}, gid ${
        ranges(plan.ranges.groups)
      } (INNER:OUTER:COUNT, written by the parent)`,
    );
  }
  return await runPlan(plan, { ...options, observer: tracer });
}

/**
 * Sets a launch up and resolves with its PID once it waits at its start
 * FIFO (`spec.startFifo`, required), leaving it to go on alone: it runs the
 * command when someone opens the FIFO for reading, as OCI `create` and
 * `start` do. It is not killed when the caller exits. Nothing is cleaned up
 * for it: what it made lasts until whoever ends it cleans up. With
 * `trace`, each step is printed on stderr as it runs, by the tool until it
 * returns, then by the waiting process (its stderr is the command's).
 */
export async function launchDetached(
  spec: LaunchSpec,
  options: LaunchOptions = {},
): Promise<{ pid: number }> {
  if (spec.startFifo === undefined) throw new LaunchError("usage", "startFifo: required", "usage");
  const plan = await planLaunch(spec, { ...options, dieWithParent: false });
  // loaded only for trace
  const tracer = options.trace ? new (await import("./explain.ts")).Tracer(plan) : undefined;
  if (tracer) plan.request.options.traceOrigin = String(tracer.origin);
  return await runPlanDetached(plan, "created", tracer);
}
