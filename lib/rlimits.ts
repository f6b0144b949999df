/**
 * Resource limits as data: the names prlimit(1) uses with their `RLIMIT_*`
 * numbers (`asm-generic/resource.h`, x86-64), and parsing `--rlimit
 * NAME=SOFT[:HARD]`. Pure: setting them is `ffi/contain.ts`'s job.
 * @module
 */

/** `RLIMIT_*` numbers by prlimit(1)'s lower-case names. */
export const RLIMITS: Readonly<Record<string, number>> = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
};

/** `RLIM_INFINITY`: no limit (what `unlimited` stands for). */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** One limit to set: soft and hard values, {@link RLIM_INFINITY} for `unlimited`. */
export interface Rlimit {
  /** prlimit(1)'s name, e.g. `nofile`. */
  name: string;
  /** The `RLIMIT_*` number. */
  resource: number;
  /** The soft limit. */
  soft: bigint;
  /** The hard limit. */
  hard: bigint;
}

/** A malformed `--rlimit` value. */
export class RlimitError extends Error {
  /** Builds the error from what was given and why it is refused. */
  constructor(given: string, why: string) {
    super(`--rlimit '${given}': ${why}`);
    this.name = "RlimitError";
  }
}

function limitValue(given: string, text: string): bigint {
  if (/^(unlimited|infinity)$/i.test(text)) return RLIM_INFINITY;
  if (!/^\d+$/.test(text)) {
    throw new RlimitError(given, `'${text}' is not a number or 'unlimited'`);
  }
  const value = BigInt(text);
  if (value >= RLIM_INFINITY) throw new RlimitError(given, `${text} is too large`);
  return value;
}

/**
 * Parses `NAME=SOFT[:HARD]` (`nofile=64`, `core=0:unlimited`, `NOFILE=1024:4096`);
 * without HARD both limits are SOFT, as prlimit(1) does.
 */
export function parseRlimit(text: string): Rlimit {
  const match = /^([A-Za-z]+)=([^:]+)(?::([^:]+))?$/.exec(text.trim());
  if (!match) throw new RlimitError(text, "expected NAME=SOFT[:HARD]");
  const name = match[1].toLowerCase();
  if (!Object.hasOwn(RLIMITS, name)) {
    throw new RlimitError(
      text,
      `unknown limit '${match[1]}' (valid: ${Object.keys(RLIMITS).join(", ")})`,
    );
  }
  const soft = limitValue(text, match[2]);
  const hard = match[3] === undefined ? soft : limitValue(text, match[3]);
  if (soft > hard) throw new RlimitError(text, "the soft limit is above the hard limit");
  return { name, resource: RLIMITS[name], soft, hard };
}

/** A limit value as prlimit(1) prints it (`unlimited` or the number). */
export function formatLimit(value: bigint): string {
  return value === RLIM_INFINITY ? "unlimited" : String(value);
}
