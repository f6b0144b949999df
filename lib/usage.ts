/**
 * Resource limits in a launch (`LaunchSpec.limits`): the launch's cgroups
 * made by a parent step before clone and joined by the child
 * (`LaunchSpec.cgroups`), the CPU and wall time limits watched while the
 * command runs, and the usage report it resolves with. The cgroup mechanics
 * are in `lib/cgroupfs.ts`, the limits' files and counters in
 * `lib/limits.ts`.
 *
 * Facts only: how the command ended ({@link EndReason}) and what it used;
 * the CLI words them and chooses the exit status.
 * @module
 */

import { CgroupError, cgroupFileExists, cgroupLayout } from "./cgroupfs.ts";
import {
  type CgroupUsage,
  createLaunchCgroup,
  type LaunchCgroup,
  LimitError,
  type Limits,
  planRequests,
  validateLimits,
} from "./limits.ts";
import { type Call, call, type ParentStep, writeCall } from "./step.ts";
import { LaunchError, type LaunchResult } from "./supervise.ts";

/**
 * The limits of a launch: cgroup limits, plus time limits the tool watches.
 *
 * @example
 * ```ts
 * const limits: LaunchLimits = { memory: 64 * 2 ** 20, pids: 50, wallTimeMs: 10_000 };
 * ```
 */
export interface LaunchLimits extends Limits {
  /**
   * Kill every process of the launch once the cgroup's total CPU time (all
   * its processes, so a fork loop cannot evade it as RLIMIT_CPU) passes
   * this many milliseconds; polled.
   */
  cpuTimeMs?: number;
  /** Kill every process of the launch once the command has run this many milliseconds. */
  wallTimeMs?: number;
}

/**
 * Why the command ended: it exited, a signal killed it, the OOM killer did
 * (known from the cgroup's counter, never from the status), or a time
 * limit was exceeded (the tool killed it).
 */
export type EndReason = "exit" | "signal" | "oom" | "cpu-time" | "wall-time";

/**
 * What a launch with limits used, and why it ended; the counters come from
 * its own cgroups (see {@link CgroupUsage}; a field is absent where the
 * kernel does not keep it).
 */
export interface LaunchUsage extends CgroupUsage {
  /** Why the command ended. */
  reason: EndReason;
  /** Whether the OOM killer killed a process of the launch (from the cgroup's counter). */
  oom: boolean;
  /** Wall time from the command's start to its end, µs. */
  wallMicros: number;
  /** The limits it ran under. */
  limits: LaunchLimits;
}

/** The cgroup limits of `limits` (without the time limits), with what they need to be watched. */
function cgroupLimits(limits: LaunchLimits): Limits {
  const { cpuTimeMs: _cpu, wallTimeMs: _wall, ...rest } = limits;
  return { ...rest, accounting: rest.accounting || limits.cpuTimeMs !== undefined };
}

/** Checks the time limits: positive whole milliseconds. */
function checkTime(ms: number | undefined, option: string): void {
  if (ms !== undefined && (!Number.isSafeInteger(ms) || ms < 1)) {
    throw new LimitError(option, `${ms} is not a whole number of milliseconds of at least 1`);
  }
}

/** Checks `limits` as given through `launch()`; throws a {@link LimitError}. */
export function validateLaunchLimits(limits: LaunchLimits): void {
  validateLimits(cgroupLimits(limits));
  checkTime(limits.cpuTimeMs, "--cpu-time");
  checkTime(limits.wallTimeMs, "--wall-time");
}

/**
 * One launch's limits at run time: makes its cgroups, watches the time
 * limits once the command runs, reports usage when it ends, and kills and
 * removes everything on every exit path ({@link LimitRun.release}).
 */
export class LimitRun {
  /** The limits asked for. */
  readonly limits: LaunchLimits;
  #cgroup?: LaunchCgroup;
  #startedAt = performance.now();
  #exceeded?: "cpu-time" | "wall-time";
  #killing?: Promise<void>;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #emptied = false;

  /** Checks `limits` (a {@link LimitError} when bad); nothing is made yet. */
  constructor(limits: LaunchLimits) {
    validateLaunchLimits(limits);
    this.limits = limits;
  }

  /** Makes the launch's cgroups and returns their directories (for the child to join). */
  async create(): Promise<string[]> {
    const cgroup = await createLaunchCgroup(cgroupLimits(this.limits));
    this.#cgroup = cgroup;
    if (this.limits.cpuTimeMs !== undefined && cgroup.cpuTimeMicros() === undefined) {
      await this.release();
      throw new CgroupError(
        "detect",
        "--cpu-time needs the cgroup's CPU time (cpuacct on v1, cpu.stat on v2): not available",
      );
    }
    return cgroup.set.nodes.map((node) => node.dir);
  }

  /** The command runs: the wall clock starts, the time limits are armed. */
  started(): void {
    this.#startedAt = performance.now();
    const { wallTimeMs, cpuTimeMs } = this.limits;
    if (wallTimeMs !== undefined) {
      this.#timers.push(setTimeout(() => this.#exceed("wall-time"), wallTimeMs));
    }
    if (cpuTimeMs !== undefined) this.#pollCpu(cpuTimeMs * 1000);
  }

  /** Polls the cgroup's CPU time, sooner as it nears the limit (it grows by at most the CPUs). */
  #pollCpu(limitMicros: number): void {
    const used = this.#cgroup?.cpuTimeMicros() ?? 0;
    if (used >= limitMicros) return this.#exceed("cpu-time");
    const cpus = navigator.hardwareConcurrency || 1;
    const next = Math.min(100, Math.max(5, (limitMicros - used) / 1000 / cpus));
    this.#timers.push(setTimeout(() => this.#pollCpu(limitMicros), next));
  }

  #exceed(limit: "cpu-time" | "wall-time"): void {
    if (this.#exceeded || !this.#cgroup) return;
    this.#exceeded = limit;
    this.#killing = this.#cgroup.killAll().catch(() => {});
  }

  #stopTimers(): void {
    for (const timer of this.#timers.splice(0)) clearTimeout(timer);
  }

  /**
   * The command ended with `result`: every process left in its cgroups is
   * killed, and the result gains the usage report.
   */
  async ended(result: LaunchResult): Promise<LaunchResult> {
    const wallMicros = Math.round((performance.now() - this.#startedAt) * 1000);
    this.#stopTimers();
    await this.#killing;
    const cgroup = this.#cgroup;
    if (!cgroup) return result;
    try {
      await cgroup.killAll();
      this.#emptied = true;
    } catch {
      // release() tries again
    }
    const counters = cgroup.usage();
    const oom = (counters.oomKills ?? 0) > 0;
    const killed = result.signal === "SIGKILL" || result.code === 137;
    const reason: EndReason = this.#exceeded ??
      (oom && killed ? "oom" : result.signal ? "signal" : "exit");
    return { ...result, usage: { ...counters, reason, oom, wallMicros, limits: this.limits } };
  }

  /** Stops watching, kills whatever is left in the cgroups and removes them (idempotent). */
  async release(): Promise<void> {
    this.#stopTimers();
    await this.#killing;
    const cgroup = this.#cgroup;
    if (!cgroup) return;
    try {
      // Once emptied nothing can come back: a process enters only by being moved in.
      if (!this.#emptied) await cgroup.killAll();
    } finally {
      await cgroup.remove();
    }
  }
}

/** The launch cgroup's name, known once it is made (`--trace` shows it). */
export const LAUNCH_CGROUP = "<launch cgroup>";

/** What planning predicts of a launch's cgroups, from this host's hierarchies. */
export interface PredictedCgroups {
  /** The cgroups' directories, named {@link LAUNCH_CGROUP} under the caller's own. */
  dirs: string[];
  /** The calls that make them: enable controllers (v2), mkdir, write each limit. */
  calls: Call[];
}

/**
 * The cgroups `run` will make, as planning predicts them from the
 * hierarchies mounted now (the run reads them again): for `--explain`.
 */
function predictedCgroups(run: LimitRun): PredictedCgroups {
  const dirs: string[] = [];
  const calls: Call[] = [];
  let requests;
  try {
    requests = planRequests(cgroupLimits(run.limits), cgroupLayout());
  } catch {
    // the run says what is missing, in one line
    return { dirs: [`<caller's cgroup>/${LAUNCH_CGROUP}`], calls: [] };
  }
  for (const request of requests) {
    const parent = request.hierarchy.callerDir;
    const dir = `${parent}/${LAUNCH_CGROUP}`;
    if (request.hierarchy.version === 2 && request.enable?.length) {
      calls.push(
        call("write", `<fd of ${parent}/cgroup.subtree_control>`, "<+each controller not enabled>"),
      );
    }
    dirs.push(dir);
    calls.push(call("mkdir", dir, "0755"));
    const exists = (file: string) => cgroupFileExists(`${parent}/${file}`);
    const written = new Set<string>();
    for (const write of request.writes ?? []) {
      if (write.ifMissing && (written.has(write.ifMissing) || exists(write.ifMissing))) continue;
      if (write.optional && !exists(write.file)) continue;
      calls.push(writeCall(`${dir}/${write.file}`, write.value));
      written.add(write.file);
    }
  }
  return { dirs, calls };
}

/**
 * The parent step that makes the launch's cgroups before clone: their
 * directories are appended to `cgroups` (which the child joins) and passed
 * on through `request` (which the init stage plans from). Its undo kills
 * and removes them, whatever the exit path.
 */
export function limitsStep<S extends { cgroups?: string[]; limits?: LaunchLimits }>(
  run: LimitRun,
  cgroups: string[],
  request: { spec: S },
): ParentStep {
  let made: string[] = [];
  const predicted = () => launchCgroupsOf(run);
  return {
    name: "cgroup",
    get calls() {
      return predicted().calls;
    },
    why: "the launch's cgroups, under the caller's own, with its limits, before the child exists",
    learnt: (): Record<string, string> =>
      made.length ? { [LAUNCH_CGROUP]: made[0].slice(made[0].lastIndexOf("/") + 1) } : {},
    run: async () => {
      let dirs: string[];
      try {
        dirs = await run.create();
      } catch (error) {
        if (error instanceof LimitError) throw new LaunchError("usage", error.message, "usage");
        if (error instanceof CgroupError) {
          throw new LaunchError("cgroup", error.message, "setup", { cause: error });
        }
        throw error;
      }
      made = dirs;
      cgroups.push(...dirs);
      // The init stage joins them by directory; it makes none of its own.
      const { limits: _, ...spec } = request.spec;
      request.spec = { ...spec, cgroups: [...cgroups] } as S;
    },
    undo: () => run.release(),
    undoing: {
      name: "cgroup",
      get calls() {
        return [
          call("kill", "<each process left in them>", "SIGKILL"),
          ...[...predicted().dirs].reverse().map((dir) => call("rmdir", dir)),
        ];
      },
      why: "the launch's cgroups go once every process in them is gone, on every exit path",
    },
  };
}

/** Each run's prediction, made once (both the parent's and the child's steps read it). */
const predictions = new WeakMap<LimitRun, PredictedCgroups>();

/** The predicted cgroups of `run` (made once per run). */
export function launchCgroupsOf(run: LimitRun): PredictedCgroups {
  return predictions.get(run) ?? predictions.set(run, predictedCgroups(run)).get(run)!;
}
