/**
 * The run form's resource-limit options (issue 17): parsing them into the
 * launch's limits, and the lines that say why a limited command ended and
 * what it used. Loaded only when one of them is on the command line.
 * @module
 */

import { UsageError } from "./getopt.ts";
import {
  formatSize,
  LimitError,
  parseCpus,
  parseCpuset,
  parsePids,
  parseSeconds,
  parseSize,
} from "../lib/limit_values.ts";
import type { LaunchLimits, LaunchUsage } from "../lib/usage.ts";
import type { LaunchResult } from "../lib/supervise.ts";
import type { RunRequest } from "./run.ts";

/** Parses one limit option into `request.spec.limits` (a {@link UsageError} when bad). */
export function parseLimitOption(name: string, value: string, request: RunRequest): void {
  const limits: LaunchLimits = request.spec.limits ?? {};
  try {
    switch (name) {
      case "memory":
        limits.memory = parseSize(value, "--memory");
        break;
      case "memory-swap":
        limits.memorySwap = parseSize(value, "--memory-swap");
        break;
      case "pids":
        limits.pids = parsePids(value);
        break;
      case "cpus":
        limits.cpus = parseCpus(value);
        break;
      case "cpuset":
        limits.cpuset = parseCpuset(value);
        break;
      case "cpu-time":
        limits.cpuTimeMs = parseSeconds(value, "--cpu-time");
        break;
      case "wall-time":
        limits.wallTimeMs = parseSeconds(value, "--wall-time");
        break;
      case "stats":
        limits.accounting = true;
        request.stats = true;
        break;
      default:
        return;
    }
  } catch (error) {
    if (error instanceof LimitError) throw new UsageError(error.message);
    throw error;
  }
  request.spec.limits = limits;
}

/** Seconds for people: `1.5 s`. */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** The one line that says why a limited command ended, or undefined when it ended by itself. */
export function limitLine(usage: LaunchUsage): string | undefined {
  const { limits } = usage;
  switch (usage.reason) {
    case "oom":
      return limits.memory === undefined
        ? "killed by the OOM killer: a memory limit it was under was reached"
        : `killed by the OOM killer: the memory limit (${formatSize(limits.memory)}) was reached`;
    case "cpu-time":
      return `CPU time limit (${seconds(limits.cpuTimeMs!)}) exceeded`;
    case "wall-time":
      return `wall time limit (${seconds(limits.wallTimeMs!)}) exceeded`;
    default: {
      // the command lived on after the OOM killer took one of its processes
      const kills = usage.oomKills ?? 0;
      if (kills === 0) return undefined;
      const limit = limits.memory === undefined
        ? "a memory limit it was under was reached"
        : `the memory limit (${formatSize(limits.memory)}) was reached`;
      return `the OOM killer killed ${kills} process${
        kills === 1 ? "" : "es"
      } of the command: ${limit}`;
    }
  }
}

/** The exit status for a result: 124 for a time limit (as timeout(1)), else the command's. */
export function limitExitCode(result: LaunchResult): number {
  const reason = result.usage?.reason;
  return reason === "cpu-time" || reason === "wall-time" ? 124 : result.code;
}

/** `--stats`: the usage block's lines, printed on stderr after the command. */
export function statsLines(result: LaunchResult, program: string): string[] {
  const usage = result.usage!;
  const clock = (micros: number) => `${(micros / 1e6).toFixed(3)} s`;
  const cpu = (micros: number | undefined) => micros === undefined ? "not kept" : clock(micros);
  const ended = {
    exit: `exit ${result.code}`,
    signal: `signal ${result.signal}`,
    oom: "OOM kill",
    "cpu-time": "CPU time limit",
    "wall-time": "wall time limit",
  }[usage.reason];
  const rows: [string, string][] = [
    ["wall time", clock(usage.wallMicros)],
    ["user CPU", cpu(usage.userCpuMicros)],
    ["system CPU", cpu(usage.systemCpuMicros)],
    [
      "peak memory",
      usage.peakMemoryBytes === undefined ? "not kept" : formatSize(usage.peakMemoryBytes),
    ],
    ["OOM kills", usage.oomKills === undefined ? "not kept" : String(usage.oomKills)],
    ...(usage.peakPids === undefined ? [] : [["peak pids", String(usage.peakPids)]] as [
      string,
      string,
    ][]),
    ["ended by", ended],
  ];
  return [`${program}: usage`, ...rows.map(([key, value]) => `  ${key.padEnd(12)} ${value}`)];
}

/** The `--json` end event's usage fields (the limits are the caller's own). */
export function usageJson(usage: LaunchUsage | undefined): Record<string, unknown> {
  if (!usage) return {};
  const { limits: _, ...fields } = usage;
  return { usage: fields };
}
