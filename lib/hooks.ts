/**
 * Hooks: programs a launch runs at given points, as the OCI runtime spec's
 * `hooks` (createRuntime in the tool once the namespaces exist,
 * createContainer in the container's namespaces before pivot_root,
 * startContainer there just before the command), each with the launch's
 * state as JSON on its stdin and an optional timeout. They are started
 * through the engine (`lib/helper.ts`), so no `--allow-run` is needed.
 * @module
 */

import { type Call, call } from "./step.ts";
import { runHelper } from "./helper.ts";

/**
 * A program run at one point of a launch.
 *
 * @example
 * ```ts
 * const hook: Hook = { path: "/usr/bin/logger", args: ["logger", "container created"], timeout: 5 };
 * ```
 */
export interface Hook {
  /** Absolute path of the program. */
  path: string;
  /** Its argv (argv[0] included); default `[path]`. */
  args?: string[];
  /** Its environment as `KEY=VALUE`; default empty. */
  env?: string[];
  /** Seconds before it is killed and the launch fails. */
  timeout?: number;
}

/** The hooks of a launch, by the point they run at. */
export interface Hooks {
  /** In the tool, once the container's namespaces exist, before its mounts. */
  createRuntime?: Hook[];
  /** In the container's namespaces, before pivot_root (paths resolve on the host). */
  createContainer?: Hook[];
  /** In the container, just before the command is exec'd (paths resolve in it). */
  startContainer?: Hook[];
}

/** Why `hook` cannot be run, or null. */
export function hookProblem(hook: Hook, where: string): string | null {
  if (typeof hook?.path !== "string" || !hook.path.startsWith("/")) {
    return `${where}: a hook's path must be absolute`;
  }
  if (hook.timeout !== undefined && !(Number.isInteger(hook.timeout) && hook.timeout > 0)) {
    return `${where}: a hook's timeout must be a positive number of seconds`;
  }
  return null;
}

/** The argv {@link runHooks} runs `hook` with: its args as given (execv's), else its path. */
function hookArgv(hook: Hook): string[] {
  return hook.args?.length ? [...hook.args] : [hook.path];
}

/** A list of strings as C would initialise an array of them: `["a", "b"]`. */
const arrayText = (list: string[]) => `[${list.map((word) => JSON.stringify(word)).join(", ")}]`;

/**
 * The calls running `hooks` makes, as data: each hook's execve, with its
 * argv and environment (the clone that starts it is the engine's, as a
 * helper's: lib/helper.ts).
 */
export function hookCalls(hooks: Hook[]): Call[] {
  return hooks.map((hook) =>
    call("execve", hook.path, arrayText(hookArgv(hook)), arrayText(hook.env ?? []))
  );
}

/** Runs `hooks` in order with `state` on stdin; throws an Error naming the failed one. */
export async function runHooks(name: string, hooks: Hook[], state: unknown): Promise<void> {
  for (const hook of hooks) {
    const ran = await runHelper(
      hookArgv(hook),
      {
        program: hook.path,
        env: hook.env ?? [],
        stdin: JSON.stringify(state),
        timeoutMs: hook.timeout === undefined ? undefined : hook.timeout * 1000,
      },
    );
    if (ran.timedOut) {
      throw new Error(`${name} hook ${hook.path}: timed out after ${hook.timeout} s`);
    }
    if (ran.code !== 0) {
      const said = ran.stderr.split("\n").pop();
      throw new Error(
        `${name} hook ${hook.path} exited with ${ran.code}${said ? `: ${said}` : ""}`,
      );
    }
  }
}
