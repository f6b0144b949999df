/**
 * The values of resource limits, without cgroups: sizes (`64M`), CPU
 * fractions, cpusets, process counts and seconds, parsed and checked with
 * one clear message each, and formatted for people. The command line needs
 * only these, so it loads this small module and not the cgroup code.
 * @module
 */

/**
 * The limits of one launch; every field is optional.
 *
 * @example
 * ```ts
 * const limits: Limits = { memory: parseSize("64M"), pids: 50, cpus: 0.5 };
 * ```
 */
export interface Limits {
  /** Memory limit in bytes. */
  memory?: number;
  /** Memory plus swap in bytes (docker's `--memory-swap`); default: equal to `memory` (no swap). */
  memorySwap?: number;
  /** The most processes (and threads) at once. */
  pids?: number;
  /** CPU bandwidth as a fraction of CPUs, e.g. 0.5 (quota over a 100 ms period). */
  cpus?: number;
  /** The CPUs it may run on, as the kernel's list syntax, e.g. `"0-1,3"`. */
  cpuset?: string;
  /** hugetlb limits in bytes by page size as the kernel names it, e.g. `{ "2MB": 4194304 }`. */
  hugetlb?: Record<string, number>;
  /** Make memory, CPU and pids accounting cgroups even without limits (for a usage report). */
  accounting?: boolean;
}

/** A limit given badly: the message is one line naming the option and the input. */
export class LimitError extends Error {
  /** The option, e.g. `"--memory"`. */
  readonly option: string;

  /** Builds the error; `detail` says what is wrong. */
  constructor(option: string, detail: string) {
    super(`${option}: ${detail}`);
    this.name = "LimitError";
    this.option = option;
  }
}

// ------------------------------------------------------------------ parsing

const UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * Parses a size: bytes, or a number with a binary unit `k`, `M`, `G`, `T`
 * (any case, optionally followed by `B` or `iB`): `"64M"` is 67108864,
 * `"512k"` 524288, `"1.5G"` 1610612736; rounded to whole bytes.
 */
export function parseSize(text: string, option = "--memory"): number {
  const match = /^(\d+(?:\.\d+)?)([kmgt]?)(b|ib)?$/i.exec(text.trim());
  const unit = match?.[2].toLowerCase() ?? "";
  if (!match || (match[3] && match[3].toLowerCase() === "ib" && unit === "")) {
    throw new LimitError(
      option,
      `invalid size "${text}" (a number of bytes, or with a unit k, M, G or T, e.g. 64M)`,
    );
  }
  const bytes = Math.round(Number(match[1]) * UNITS[unit]);
  if (bytes < 1) throw new LimitError(option, `size "${text}" is 0; give at least one byte`);
  if (!Number.isSafeInteger(bytes)) throw new LimitError(option, `size "${text}" is too large`);
  return bytes;
}

/**
 * A size for people, in the largest binary unit that keeps it short:
 * `formatSize(67108864) === "64 MiB"`, `"1.5 GiB"`, `"512 KiB"`, `"100 bytes"`.
 */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], [
    "KiB",
    2 ** 10,
  ]];
  for (const [unit, size] of units) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))} ${unit}`;
  }
  return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
}

/**
 * Parses a time limit in seconds (`--cpu-time 2`, `--wall-time 0.5`): a
 * positive decimal number, at most a year; returns milliseconds.
 */
export function parseSeconds(text: string, option: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text.trim())) {
    throw new LimitError(option, `invalid number of seconds "${text}" (e.g. 2 or 0.5)`);
  }
  const ms = Math.round(Number(text) * 1000);
  if (ms < 1) throw new LimitError(option, `${text} s is below the minimum of 0.001 s`);
  if (ms > 365 * 86400 * 1000) throw new LimitError(option, `${text} s is more than a year`);
  return ms;
}

/** The CFS period the tool uses, in microseconds (100 ms, as docker and systemd). */
export const CPU_PERIOD_US = 100_000;

/** Parses `--cpus FRACTION` (`0.5`, `2`): at least 0.01 (the kernel's 1 ms minimum quota). */
export function parseCpus(text: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text.trim())) {
    throw new LimitError("--cpus", `invalid number of CPUs "${text}" (e.g. 0.5 or 2)`);
  }
  return checkCpus(Number(text));
}

function checkCpus(cpus: number): number {
  if (!Number.isFinite(cpus) || cpus < 0.01) {
    throw new LimitError("--cpus", `${cpus} is below the minimum of 0.01 CPUs`);
  }
  return cpus;
}

/** The CFS quota and period (µs) for a fraction of CPUs: 0.2 is 20000 of 100000. */
export function cpuQuota(cpus: number): { quotaUs: number; periodUs: number } {
  return { quotaUs: Math.round(checkCpus(cpus) * CPU_PERIOD_US), periodUs: CPU_PERIOD_US };
}

/** The highest CPU number a list may name (the kernel's NR_CPUS ceiling). */
const MAX_CPU = 8191;

/** Validates a CPU list (`0-1,3`): ascending ranges of CPU numbers; returns it without spaces. */
export function parseCpuset(text: string): string {
  const list = text.replace(/\s+/g, "");
  const bad = (detail: string) =>
    new LimitError("--cpuset", `invalid CPU list "${text}": ${detail}`);
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) {
    throw bad("expected CPU numbers and ranges separated by commas, e.g. 0-1,3");
  }
  for (const item of list.split(",")) {
    const [first, last = first] = item.split("-").map(Number);
    if (last < first) throw bad(`range ${item} runs backwards`);
    if (last > MAX_CPU) throw bad(`CPU ${last} is above ${MAX_CPU}`);
  }
  return list;
}

/** Parses `--pids N`: a whole number, at least 1. */
export function parsePids(text: string): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new LimitError(
      "--pids",
      `invalid number of processes "${text}" (a whole number, e.g. 50)`,
    );
  }
  return checkPids(Number(text));
}

function checkPids(pids: number): number {
  if (!Number.isSafeInteger(pids) || pids < 1) {
    throw new LimitError("--pids", `${pids} is not a whole number of at least 1`);
  }
  return pids;
}

function checkBytes(value: number, option: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new LimitError(option, `${value} is not a whole number of bytes of at least 1`);
  }
  return value;
}

/** Checks limits given as values (e.g. through `launch()`); throws a {@link LimitError}. */
export function validateLimits(limits: Limits): void {
  if (limits.memory !== undefined) checkBytes(limits.memory, "--memory");
  if (limits.memorySwap !== undefined) {
    checkBytes(limits.memorySwap, "--memory-swap");
    if (limits.memory === undefined) {
      throw new LimitError("--memory-swap", "needs --memory (it is the total of memory and swap)");
    }
    if (limits.memorySwap < limits.memory) {
      throw new LimitError(
        "--memory-swap",
        "is the total of memory and swap, so it cannot be below --memory",
      );
    }
  }
  if (limits.pids !== undefined) checkPids(limits.pids);
  if (limits.cpus !== undefined) checkCpus(limits.cpus);
  if (limits.cpuset !== undefined) parseCpuset(limits.cpuset);
  for (const [size, bytes] of Object.entries(limits.hugetlb ?? {})) {
    if (!/^\d+[KMG]B$/.test(size)) {
      throw new LimitError(
        "hugetlb",
        `invalid page size "${size}" (as the kernel names it, e.g. 2MB)`,
      );
    }
    checkBytes(bytes, `hugetlb ${size}`);
  }
}
