/**
 * Setup steps as data: what a launch does, in order, each step named, with
 * the libc calls it makes and their arguments, and the closure that makes
 * them. A plan ({@link ../lib/plan.ts}) is a list of these; one runner
 * ({@link ../lib/runner.ts}) executes any plan. Modelled on bubblewrap's
 * `SetupOp` list and crun's `configure_init_status`.
 *
 * Values known only at run time (the child's PID, the program path found on
 * PATH) appear in a step's arguments as named placeholders (`<child-pid>`).
 * @module
 */

import { ChildSetupError, type CloneOutcome, type NativeCall } from "../ffi/clone.ts";

/** Who runs a step: the tool, the clone child, or the grandchild it forks. */
export type Actor = "parent" | "child" | "grandchild";

/**
 * A system call a step makes, as data: the function and its arguments,
 * C-style. A step lists the calls that set the container up, not the
 * helpers they go through (the open and close around a write to a file,
 * the openat of each component of a path walk, fstat): see lib/explain.ts.
 */
export interface Call {
  /** The function, e.g. `"mount"`, `"sethostname"`. */
  fn: string;
  /** Its arguments: strings, numbers, flag names joined by `|`, or placeholders. */
  args: (string | number | null)[];
  /** What it returns on success when that is not 0: a placeholder (`"<child-pid>"`). */
  returns?: string;
}

/**
 * Told of each step as the runner runs it (`--trace`, lib/explain.ts): a
 * plan's step, or a part of the engine's (`"clone"`, …) named by
 * {@link EnginePart}. In the `"child"` stage it is called in the clone
 * child, which may only call `ffi/` functions, synchronously.
 */
export interface PlanObserver {
  /** `source` has run; `error` is why it failed; `values` fill in its placeholders. */
  ran(source: StepBase | EnginePart, error?: unknown, values?: Record<string, string>): void;
  /** The clone has returned in the tool: what the engine did after the child's steps. */
  cloned(outcome: CloneOutcome): void;
  /** The init stage has exec'd the command, `program` (the PATH search's pick). */
  execed(program: string): void;
  /**
   * In the init stage: the child has told the tool it waits at sync point
   * `point` (its step's sendmsg is made) and now blocks until the tool answers.
   */
  syncing?(point: string): void;
}

/**
 * The engine's own parts of a launch, around the plan's steps (see
 * lib/explain.ts): the clone; in the child PR_SET_PDEATHSIG, then (after
 * the steps) the hygiene before exec and PR_SET_PDEATHSIG again; the init
 * stage's exec and the same three in it (`init-`); the grandchild's clone
 * and its PR_SET_PDEATHSIG; the command's exec, or the exit without one.
 */
export type EnginePart =
  | "clone"
  | "pdeathsig"
  | "ambient"
  | "hygiene"
  | "pdeathsig-again"
  | "init"
  | "init-pdeathsig"
  | "init-pdeathsig-again"
  | "init-hygiene"
  | "grandchild"
  | "grandchild-pdeathsig"
  | "exec"
  | "exit";

/** What a child step may read at run time. */
export interface ChildContext {
  /** The child's PID in the parent's PID namespace (CLONE_PARENT_SETTID). */
  outerPid: number;
  /**
   * In the init stage: tells the parent the child waits at `point` (with
   * `data` and `fds` for it), and returns once the parent is done there.
   */
  sync?: (point: string, data?: unknown, fds?: number[]) => void;
}

/** What a parent step may read at run time. */
export interface ParentContext {
  /** The child's PID (0 before clone). */
  childPid: number;
  /** At a sync point: what the child sent with it (its fds are the step's to keep or close). */
  received?: { data: unknown; fds: number[] };
}

/** The parts every step has. */
export interface StepBase {
  /** The step's name, which is the `step` of any error it raises. */
  name: string;
  /** The calls it makes, in order. */
  calls: Call[];
  /** A few words on why, for `--explain`. */
  why: string;
  /**
   * For a step whose calls depend on what it finds as it runs (lib/masks.ts):
   * the calls it made, for `--trace` (`calls` is then what planning
   * predicts); with `failed`, the last of them failed. Undefined: the calls
   * it lists are the calls it made.
   */
  made?: () => { calls: Call[]; failed: boolean } | undefined;
  /** What it learnt as it ran that fills in its placeholders (a descriptor's number), for `--trace`. */
  learnt?: () => Record<string, string>;
}

/**
 * A step the clone child runs before exec. In the `"child"` stage it must be
 * synchronous and may call only `ffi/` functions: it runs in the parent's
 * memory while the parent waits. In the `"init"` stage (its own process) it
 * may be asynchronous (run a hook, for one).
 */
export interface ChildStep extends StepBase {
  /** The sync point it waits at, in the init stage, while the tool runs its steps there. */
  syncPoint?: string;
  /** Runs the step; throws on failure. */
  run: (context: ChildContext) => void | Promise<void>;
}

/**
 * A step the grandchild runs: one libc call, made by native code and checked
 * (see ffi/clone.ts). Its arguments may be known only once the parent's
 * steps have run (an fd they opened): `native` is asked just before clone.
 */
export interface GrandchildStep extends StepBase {
  /** The call, with its real arguments. */
  native: () => NativeCall;
}

/**
 * A step the tool itself runs. `undo` (if any) runs when the launch ends,
 * whatever the exit path, in the reverse order of the steps that ran; with
 * `undoAfterClone` it runs as soon as the child exists instead.
 */
export interface ParentStep extends StepBase {
  /** Runs the step; throws on failure. */
  run: (context: ParentContext) => void | Promise<void>;
  /** Reverts what `run` did; never throws. */
  undo?: () => void | Promise<void>;
  /** Whether `undo` runs right after clone rather than at the end. */
  undoAfterClone?: boolean;
  /** What `undo` does, as a step of its own (its calls and why), for `--explain` and `--trace`. */
  undoing?: StepBase;
  /** Runs once the child exists (it has exec'd, failed, or reached the init stage). */
  afterClone?: () => void;
}

/** Shorthand for a {@link Call}. */
export function call(fn: string, ...args: (string | number | null)[]): Call {
  return { fn, args };
}

/**
 * The write(2) of `text` to the file at `path`, as a step lists it: the
 * open and close around it are helpers (ffi/libc.ts `writeFile`).
 */
export function writeCall(path: string, text: string): Call {
  const bytes = new TextEncoder().encode(text).length;
  return { ...call("write", `<fd of ${path}>`, text, bytes), returns: String(bytes) };
}

/**
 * Runs child steps in order. A failure is re-thrown as a
 * {@link ChildSetupError} whose step is the failing step's name.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const runChildSteps = (function runChildSteps(
  steps: ChildStep[],
  context: ChildContext,
  observer?: PlanObserver,
): void {
  for (const step of steps) {
    try {
      if (step.run(context) instanceof Promise) {
        throw new Error("an asynchronous step needs the init stage");
      }
    } catch (error) {
      observer?.ran(step, error);
      throw named(step, error);
    }
    observer?.ran(step);
  }
}).bind(null);

/** {@link runChildSteps} for the init stage, where steps may be asynchronous. */
export async function runChildStepsAsync(
  steps: ChildStep[],
  context: ChildContext,
  observer?: PlanObserver,
): Promise<void> {
  for (const step of steps) {
    try {
      await step.run(context);
    } catch (error) {
      observer?.ran(step, error);
      throw named(step, error);
    }
    observer?.ran(step);
  }
}

/** `error` as a {@link ChildSetupError} of `step`. */
function named(step: ChildStep, error: unknown): ChildSetupError {
  if (error instanceof ChildSetupError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ChildSetupError(step.name, message, "setup", error);
}

/**
 * Names the bits of `value` from `table` as C would write them
 * (`flagNames(MS.REC | MS.PRIVATE, MS, "MS_")` is `"MS_REC|MS_PRIVATE"`),
 * with any unnamed rest in hex; `"0"` when no bit is set.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const flagNames = (function flagNames(
  value: number | bigint,
  table: Record<string, number | bigint>,
  prefix: string,
): string {
  let rest = BigInt(value);
  const names: string[] = [];
  for (const [name, bit] of Object.entries(table)) {
    const flag = BigInt(bit);
    if (flag !== 0n && (rest & flag) === flag) {
      names.push(`${prefix}${name}`);
      rest &= ~flag;
    }
  }
  if (rest !== 0n) names.push(`0x${rest.toString(16)}`);
  return names.length ? names.join("|") : "0";
}).bind(null);
