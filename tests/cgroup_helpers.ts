/**
 * Test helpers for the cgroup layer: a launch cgroup that is always killed
 * and removed, processes that join it, and the check that no invoke_ns
 * cgroup is left anywhere under the caller's cgroups.
 * @module
 */

import assert from "node:assert/strict";
import { listInvokeNsCgroups } from "../lib/cgroupfs.ts";
import { createLaunchCgroup, type LaunchCgroup, type Limits } from "../lib/limits.ts";
import type { CgroupLayout } from "../lib/cgroupfs.ts";

/** Fails when an invoke_ns cgroup is left under the caller's cgroup in any hierarchy. */
export function assertNoCgroupLeft(): void {
  assert.deepEqual(listInvokeNsCgroups(), [], "an invoke_ns cgroup was left behind");
}

/**
 * Runs `fn` with a launch cgroup for `limits`; whatever happens, kills what
 * is in it, removes it, and checks that nothing is left.
 */
export async function withLaunchCgroup(
  limits: Limits,
  fn: (cgroup: LaunchCgroup) => Promise<void>,
  layout?: CgroupLayout,
): Promise<void> {
  const cgroup = await createLaunchCgroup(limits, undefined, layout);
  try {
    await fn(cgroup);
  } finally {
    try {
      await cgroup.killAll();
    } finally {
      await cgroup.remove();
    }
    assertNoCgroupLeft();
  }
}

/** Quotes a word for sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Spawns `sh -c SCRIPT` that first joins every cgroup of `cgroup` itself
 * (`echo 0 > cgroup.procs`, as the launch child will) and then runs
 * `script`; stdout and stderr are piped.
 */
export function spawnIn(cgroup: LaunchCgroup, script: string): Deno.ChildProcess {
  const join = cgroup.procsFiles().map((file) => `echo 0 > ${shellQuote(file)}`).join(" && ");
  return new Deno.Command("sh", {
    args: ["-c", `${join} && ${script}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** What a spawned process printed and how it ended. */
export interface Finished {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Waits for `child` and decodes its output. */
export async function finish(child: Deno.ChildProcess): Promise<Finished> {
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `condition` holds, checking every 10 ms for up to `ms`; returns whether it did. */
export async function waitFor(condition: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Whether process `pid` still exists and is not a zombie. */
export function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The error `fn` throws, checked to be an instance of `type`; fails when it throws nothing. */
export function thrown<T extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => T = Error as unknown as new (...args: any[]) => T,
  message?: string,
): T {
  try {
    fn();
  } catch (error) {
    assert(error instanceof type, `${message ?? ""} threw ${error}, not a ${type.name}`);
    return error;
  }
  assert.fail(`${message ?? "it"}: nothing was thrown`);
}

/** Whether gcc is installed (the memory hog is built with it). */
export const gccAvailable = (() => {
  try {
    return new Deno.Command("gcc", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** Builds a program that allocates and touches N MiB, then exits 0. */
export async function buildHog(dir: string): Promise<string> {
  Deno.writeTextFileSync(
    `${dir}/hog.c`,
    `#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  long mib = atol(argv[1]);
  for (long i = 0; i < mib; i++) {
    char *p = malloc(1 << 20);
    if (!p) return 3;
    memset(p, 1, 1 << 20);
  }
  return 0;
}
`,
  );
  const built = await new Deno.Command("gcc", { args: ["-O0", "-o", `${dir}/hog`, `${dir}/hog.c`] })
    .output();
  assert(built.success, new TextDecoder().decode(built.stderr));
  return `${dir}/hog`;
}
