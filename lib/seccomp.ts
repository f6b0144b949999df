/**
 * A seccomp profile compiler: the OCI / docker JSON profile format (what
 * podman ships in `/usr/share/containers/seccomp.json` and runtimes take in
 * `linux.seccomp`) to a classic BPF program for `seccomp(2)`'s
 * SECCOMP_SET_MODE_FILTER. Pure: no I/O (loading is `ffi/contain.ts`'s job).
 *
 * The program, as a tree compiled back to front so that every jump is forward
 * and fits BPF's 8-bit conditional offsets (a far target gets a `ja`
 * trampoline, whose offset is 32 bits):
 *
 * ```
 * ld arch
 * jeq AUDIT_ARCH_X86_64 ─► ld nr; jge 0x40000000 ─► x32 section (without x32: kill, -1 default)
 *                                              └──► x86-64 section
 * jeq AUDIT_ARCH_I386   ─► ld nr; i386 section           (only when SCMP_ARCH_X86 is named)
 * ret KILL_PROCESS                                       (any other architecture)
 * ```
 *
 * A section is a binary search over the syscall numbers (`jge`), whose leaves
 * are a `ret` or a syscall's argument checks. How rules combine, per syscall,
 * once `includes`/`excludes` have chosen the rules that apply:
 * - an unconditional rule whose action is the default action is dropped
 *   (libseccomp refuses it, runc skips it), so that conditional rules apply;
 * - an unconditional rule (no `args`) decides the call and the conditional
 *   ones are ignored (libseccomp's behaviour); among several unconditional
 *   rules with different actions the most restrictive wins (libseccomp keeps
 *   the first one added: podman's profile allows `setns` without
 *   CAP_SYS_ADMIN under runc for that reason, and denies it here);
 * - otherwise the conditional rules are tried most restrictive action first
 *   (the kernel's precedence: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, LOG,
 *   ALLOW); a rule's comparisons are ANDed and, unlike libseccomp, may
 *   compare the same argument more than once (`personality` not in a list).
 *
 * Two rules that a naive compiler gets wrong:
 * - `int`-typed parameters ({@link INT_ARGUMENTS}) are compared on their low
 *   32 bits only: the kernel truncates them, so a 64-bit comparison is
 *   bypassed by setting the high bits (`ioctl(fd, 0x100005412)` is TIOCSTI).
 *   On i386 every argument is 32 bits.
 * - When a rule filters `clone`'s arguments, `clone3` gets ENOSYS (its flags
 *   are in memory BPF cannot read), so that callers fall back to `clone`.
 *
 * Not closed (as with libseccomp): i386's multiplexers `socketcall` and `ipc`
 * carry their arguments in memory, so a rule on `socket`'s arguments does
 * not reach `socketcall(SYS_SOCKET, ...)`; a profile that names SCMP_ARCH_X86
 * should decide `socketcall` and `ipc` as a whole.
 * @module
 */

import { capabilityNumber } from "./capabilities.ts";
import { I386, X32, X86_64 } from "./syscalls.ts";

/** The kernel's limit on a classic BPF program's length (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

/** `AUDIT_ARCH_*` values `seccomp_data.arch` takes on an x86-64 kernel. */
export const AUDIT_ARCH_X86_64 = 0xc000003e, AUDIT_ARCH_I386 = 0x40000003;

/** `__X32_SYSCALL_BIT`: set in `seccomp_data.nr` for x32 system calls. */
export const X32_SYSCALL_BIT = 0x40000000;

/** `SECCOMP_RET_*` action values (`linux/seccomp.h`). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** The profile's action names and what each becomes (ERRNO takes `errnoRet`). */
const ACTIONS: Record<string, number> = {
  SCMP_ACT_ALLOW: SECCOMP_RET.ALLOW,
  SCMP_ACT_ERRNO: SECCOMP_RET.ERRNO,
  SCMP_ACT_KILL: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_THREAD: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: SECCOMP_RET.KILL_PROCESS,
  SCMP_ACT_TRAP: SECCOMP_RET.TRAP,
  SCMP_ACT_LOG: SECCOMP_RET.LOG,
};

/** Actions of the format that exist but are refused, and why. */
const UNSUPPORTED_ACTIONS: Record<string, string> = {
  SCMP_ACT_NOTIFY: "needs a seccomp listener (user notification), which invoke_ns does not run",
  SCMP_ACT_TRACE: "needs a ptrace(2) tracer, which invoke_ns does not run",
};

/** Architecture names of the format; only the x86 ones can occur on this kernel. */
const ARCHITECTURES = [
  "SCMP_ARCH_X86_64",
  "SCMP_ARCH_X32",
  "SCMP_ARCH_X86",
  "SCMP_ARCH_ARM",
  "SCMP_ARCH_AARCH64",
  "SCMP_ARCH_MIPS",
  "SCMP_ARCH_MIPS64",
  "SCMP_ARCH_MIPS64N32",
  "SCMP_ARCH_MIPSEL",
  "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32",
  "SCMP_ARCH_PPC",
  "SCMP_ARCH_PPC64",
  "SCMP_ARCH_PPC64LE",
  "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X",
  "SCMP_ARCH_PARISC",
  "SCMP_ARCH_PARISC64",
  "SCMP_ARCH_RISCV64",
];

/** Names `includes.arches`/`excludes.arches` use for this machine (Go's GOARCH and the kernel's). */
const NATIVE_ARCH_NAMES = ["amd64", "x86_64"];

/** A comparison operator of the format (unsigned, 64 bits but for `int` arguments). */
export type SeccompOperator =
  | "SCMP_CMP_NE"
  | "SCMP_CMP_LT"
  | "SCMP_CMP_LE"
  | "SCMP_CMP_EQ"
  | "SCMP_CMP_GE"
  | "SCMP_CMP_GT"
  | "SCMP_CMP_MASKED_EQ";

/** Every {@link SeccompOperator}. */
const OPERATORS: readonly SeccompOperator[] = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
];

/** One argument comparison of a rule. */
export interface SeccompArg {
  /** The argument's position, 0 to 5. */
  index: number;
  /** The value compared with (for MASKED_EQ, the mask). */
  value: number | bigint;
  /** For MASKED_EQ, the value `arg & value` must equal (masked too, as libseccomp does). */
  valueTwo?: number | bigint;
  /** The comparison. */
  op: SeccompOperator;
}

/** When a rule applies: the process's capabilities, the machine, the kernel. */
export interface SeccompFilter {
  /** Capability names (`CAP_SYS_ADMIN`). */
  caps?: string[];
  /** Architecture names as Go spells them (`amd64`, `arm64`). */
  arches?: string[];
  /** A kernel version, `4.8`. */
  minKernel?: string;
}

/** One rule of a profile. */
export interface SeccompRule {
  /** The syscalls it is about. */
  names?: string[];
  /** The older, single-name form. */
  name?: string;
  /** The action, `SCMP_ACT_ERRNO` and the rest. */
  action: string;
  /** ERRNO's errno (EPERM when omitted, as the OCI spec says). */
  errnoRet?: number;
  /** Comparisons, all of which must hold (none: the rule always applies). */
  args?: SeccompArg[] | null;
  /** The rule applies only when all of these hold. */
  includes?: SeccompFilter;
  /** The rule does not apply when any of these holds. */
  excludes?: SeccompFilter;
  /** Free text. */
  comment?: string;
}

/** A seccomp profile in the OCI / docker JSON format. */
export interface SeccompProfile {
  /** The action for every syscall no rule decides. */
  defaultAction: string;
  /** The default action's errno, when it is ERRNO (EPERM when omitted). */
  defaultErrnoRet?: number;
  /** The architectures the filter lets through (`SCMP_ARCH_X86_64`...); x86-64 always. */
  architectures?: string[];
  /** podman's form: an architecture and its sub-architectures, used when `architectures` is absent. */
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  /** The rules. */
  syscalls?: SeccompRule[];
}

/** What the rules depend on: the capabilities the command will have, the kernel. */
export interface CompileOptions {
  /** The command's bounding set as a mask, for `includes`/`excludes.caps` (docker's choice). */
  capabilities: bigint;
  /**
   * The kernel release (`6.1.0-13-amd64`), for `minKernel`; when omitted, the
   * newest kernel is assumed (an `includes.minKernel` holds, an `excludes.minKernel` excludes).
   */
  kernelRelease?: string;
}

/** A compiled filter. */
export interface CompiledFilter {
  /** `struct sock_filter[]`, 8 bytes an instruction, little-endian. */
  program: Uint8Array<ArrayBuffer>;
  /** The number of instructions. */
  length: number;
  /** Syscall names no table knows (skipped, as libseccomp does) and rules overridden. */
  warnings: string[];
}

/** A profile that cannot be compiled; `path` is where in the JSON (`syscalls[3].action`). */
export class SeccompProfileError extends Error {
  /** The JSON path of the offending value, or `""` for the whole program. */
  readonly path: string;

  /** Builds the error; the message is `path: why`. */
  constructor(path: string, why: string) {
    super(path ? `${path}: ${why}` : why);
    this.name = "SeccompProfileError";
    this.path = path;
  }
}

/**
 * `(syscall, argument index)` pairs whose C parameter is `int` or `unsigned
 * int`, compared on their low 32 bits (the kernel truncates them; see the
 * module doc). Others are `long`-sized and compared on 64 bits.
 */
export const INT_ARGUMENTS: Readonly<Record<string, readonly number[]>> = {
  ioctl: [0, 1], // unsigned int fd, unsigned int cmd
  personality: [0], // unsigned int personality
  socket: [0, 1, 2], // int family, int type, int protocol
  socketpair: [0, 1, 2], // int family, int type, int protocol
  fcntl: [0, 1], // unsigned int fd, unsigned int cmd
  prctl: [0], // int option
  setns: [0, 1], // int fd, int nstype
  kill: [1], // pid_t pid, int sig
  tkill: [1], // pid_t pid, int sig
  tgkill: [2], // pid_t tgid, pid_t pid, int sig
  open: [1], // const char *filename, int flags
  openat: [0, 2], // int dfd, const char *filename, int flags
  keyctl: [0], // int option
  bpf: [0], // int cmd
};

/** The syscall tables of the three x86 ABIs, and where their numbers live. */
const TABLES = { x86_64: X86_64, x32: X32, i386: I386 } as const;
type Abi = keyof typeof TABLES;

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS = 0x20, BPF_ALU_AND_K = 0x54, BPF_JMP_JA = 0x05;
const BPF_JEQ_K = 0x15, BPF_JGT_K = 0x25, BPF_JGE_K = 0x35, BPF_RET_K = 0x06;
/** Offsets in `struct seccomp_data`. */
const DATA_NR = 0, DATA_ARCH = 4, DATA_ARGS = 16;

type Node =
  | { kind: "ret"; k: number }
  | { kind: "ld"; k: number; next: Node }
  | { kind: "and"; k: number; next: Node }
  | { kind: "jmp"; code: number; k: number; t: Node; f: Node };

/** The `int` arguments of one ABI's syscalls, by number (see {@link INT_ARGUMENTS}). */
function intArgumentsByNumber(abi: Abi): Map<number, readonly number[]> {
  return new Map(
    Object.entries(INT_ARGUMENTS)
      .filter(([name]) => Object.hasOwn(TABLES[abi], name))
      .map(([name, indexes]) => [TABLES[abi][name], indexes]),
  );
}

/** Precedence of an action (lower is more restrictive), as the kernel orders them. */
function precedence(action: number): number {
  const base = (action & 0xffff0000) >>> 0;
  const order = [
    SECCOMP_RET.KILL_PROCESS,
    SECCOMP_RET.KILL_THREAD,
    SECCOMP_RET.TRAP,
    SECCOMP_RET.ERRNO,
    SECCOMP_RET.LOG,
    SECCOMP_RET.ALLOW,
  ];
  return order.indexOf(base as (typeof order)[number]);
}

interface Comparison {
  index: number;
  op: SeccompOperator;
  value: bigint;
  valueTwo: bigint;
}

interface Rule {
  action: number;
  comparisons: Comparison[];
}

const U64 = (1n << 64n) - 1n;

function integer(value: unknown, path: string): bigint {
  if (typeof value === "bigint") {
    if (value < -(1n << 63n) || value > U64) {
      throw new SeccompProfileError(path, "out of 64-bit range");
    }
    return value & U64;
  }
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new SeccompProfileError(path, `${JSON.stringify(value)} is not an exact integer`);
  }
  return BigInt(value) & U64;
}

function errnoValue(value: unknown, path: string): number {
  if (value === undefined || value === null) return 1; // EPERM, the OCI default
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 4095) {
    throw new SeccompProfileError(path, `${JSON.stringify(value)} is not an errno (0 to 4095)`);
  }
  return value;
}

function actionValue(name: unknown, errnoRet: unknown, path: string, errnoPath: string): number {
  if (typeof name !== "string") throw new SeccompProfileError(path, "an action name is required");
  if (Object.hasOwn(UNSUPPORTED_ACTIONS, name)) {
    throw new SeccompProfileError(path, `'${name}' is not supported: ${UNSUPPORTED_ACTIONS[name]}`);
  }
  if (!Object.hasOwn(ACTIONS, name)) {
    throw new SeccompProfileError(path, `unknown action '${name}'`);
  }
  const base = ACTIONS[name];
  return base === SECCOMP_RET.ERRNO ? (base | errnoValue(errnoRet, errnoPath)) >>> 0 : base;
}

function stringList(value: unknown, path: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new SeccompProfileError(path, "expected a list of names");
  value.forEach((item, i) => {
    if (typeof item !== "string") throw new SeccompProfileError(`${path}[${i}]`, "expected a name");
  });
  return value;
}

/** `a.b.c` release strings compared numerically, as docker's kernelGreaterEqualThan. */
function kernelAtLeast(release: string, wanted: string, path: string): boolean {
  const parse = (text: string) => text.split(/[^0-9]+/).filter((part) => part !== "").map(Number);
  const want = parse(wanted);
  if (!/^\d+(\.\d+)*$/.test(wanted)) {
    throw new SeccompProfileError(path, `'${wanted}' is not a kernel version`);
  }
  const have = parse(release);
  for (let i = 0; i < want.length; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i];
  }
  return true;
}

/** Whether a rule's includes/excludes let it apply (docker's rules: all includes, no exclude). */
function applies(rule: SeccompRule, path: string, options: CompileOptions): boolean {
  const has = (caps: string[], where: string) =>
    caps.map((cap, i) => {
      try {
        return (options.capabilities & (1n << BigInt(capabilityNumber(cap)))) !== 0n;
      } catch {
        throw new SeccompProfileError(`${where}[${i}]`, `unknown capability '${cap}'`);
      }
    });
  const newer = (filter: SeccompFilter, where: string) =>
    options.kernelRelease === undefined ||
    kernelAtLeast(options.kernelRelease, String(filter.minKernel), where);
  // Both filters are validated before either decides.
  const [includes, excludes] = (["includes", "excludes"] as const).map((key) => {
    const filter = rule[key];
    if (filter === undefined || filter === null) return null;
    if (typeof filter !== "object") {
      throw new SeccompProfileError(`${path}.${key}`, "expected an object");
    }
    const arches = stringList(filter.arches, `${path}.${key}.arches`);
    return {
      caps: has(stringList(filter.caps, `${path}.${key}.caps`), `${path}.${key}.caps`),
      arches: arches.length,
      native: arches.some((arch) => NATIVE_ARCH_NAMES.includes(arch)),
      kernel: filter.minKernel === undefined || filter.minKernel === null
        ? undefined
        : newer(filter, `${path}.${key}.minKernel`),
    };
  });
  if (
    includes &&
    (includes.caps.includes(false) || (includes.arches > 0 && !includes.native) ||
      includes.kernel === false)
  ) {
    return false;
  }
  return !(excludes &&
    (excludes.caps.includes(true) || excludes.native || excludes.kernel === true));
}

function comparisons(args: unknown, path: string): Comparison[] {
  if (args === undefined || args === null) return [];
  if (!Array.isArray(args)) throw new SeccompProfileError(path, "expected a list of comparisons");
  return args.map((arg, i) => {
    const where = `${path}[${i}]`;
    if (typeof arg !== "object" || arg === null) {
      throw new SeccompProfileError(where, "expected an object");
    }
    const { index, op } = arg as Record<string, unknown>;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > 5) {
      throw new SeccompProfileError(`${where}.index`, `${JSON.stringify(index)} is not 0 to 5`);
    }
    if (typeof op !== "string" || !(OPERATORS as readonly string[]).includes(op)) {
      throw new SeccompProfileError(`${where}.op`, `unknown operator ${JSON.stringify(op)}`);
    }
    return {
      index,
      op: op as SeccompOperator,
      value: integer((arg as SeccompArg).value, `${where}.value`),
      valueTwo: (arg as SeccompArg).valueTwo === undefined
        ? 0n
        : integer((arg as SeccompArg).valueTwo, `${where}.valueTwo`),
    };
  });
}

/** The x86 ABIs a profile lets through (x86-64 always), and warnings for the others. */
function architectures(profile: SeccompProfile, warnings: string[]): Set<Abi> {
  let names: string[];
  let path = "architectures";
  if (profile.architectures !== undefined && profile.architectures !== null) {
    names = stringList(profile.architectures, path);
  } else if (profile.archMap !== undefined && profile.archMap !== null) {
    path = "archMap";
    if (!Array.isArray(profile.archMap)) throw new SeccompProfileError(path, "expected a list");
    const index = profile.archMap.findIndex((item) => item?.architecture === "SCMP_ARCH_X86_64");
    path = `archMap[${index}].subArchitectures`;
    names = index === -1 ? [] : stringList(profile.archMap[index].subArchitectures, path);
  } else {
    names = [];
  }
  const abis = new Set<Abi>(["x86_64"]);
  names.forEach((name, i) => {
    if (!ARCHITECTURES.includes(name)) {
      throw new SeccompProfileError(`${path}[${i}]`, `unknown architecture '${name}'`);
    }
    if (name === "SCMP_ARCH_X32") abis.add("x32");
    else if (name === "SCMP_ARCH_X86") abis.add("i386");
    else if (name !== "SCMP_ARCH_X86_64" && path === "architectures") {
      warnings.push(`${name} ignored: an x86-64 kernel never runs its system calls`);
    }
  });
  return abis;
}

/** The rules that apply, per ABI and syscall number, and the names no table knows. */
function collectRules(
  profile: SeccompProfile,
  abis: Set<Abi>,
  defaultAction: number,
  options: CompileOptions,
  warnings: string[],
): Record<Abi, Map<number, Rule[]>> {
  const byAbi = { x86_64: new Map(), x32: new Map(), i386: new Map() } as Record<
    Abi,
    Map<number, Rule[]>
  >;
  const rules = profile.syscalls ?? [];
  if (!Array.isArray(rules)) throw new SeccompProfileError("syscalls", "expected a list of rules");
  const unknown = new Set<string>();
  rules.forEach((rule, i) => {
    const path = `syscalls[${i}]`;
    if (typeof rule !== "object" || rule === null) {
      throw new SeccompProfileError(path, "expected an object");
    }
    const names = rule.names !== undefined && rule.names !== null
      ? stringList(rule.names, `${path}.names`)
      : typeof rule.name === "string"
      ? [rule.name]
      : [];
    if (names.length === 0) throw new SeccompProfileError(`${path}.names`, "no syscall names");
    const action = actionValue(rule.action, rule.errnoRet, `${path}.action`, `${path}.errnoRet`);
    const compared = comparisons(rule.args, `${path}.args`);
    if (!applies(rule, path, options)) return;
    if (compared.length === 0 && action === defaultAction) return;
    for (const name of names) {
      let known = false;
      for (const abi of abis) {
        const number = TABLES[abi][name];
        if (number === undefined || !Object.hasOwn(TABLES[abi], name)) continue;
        known = true;
        const list = byAbi[abi].get(number) ?? [];
        list.push({ action, comparisons: compared });
        byAbi[abi].set(number, list);
      }
      if (!known && !Object.values(TABLES).some((table) => Object.hasOwn(table, name))) {
        unknown.add(name);
      }
    }
  });
  if (unknown.size > 0) {
    warnings.push(`unknown system calls skipped: ${[...unknown].sort().join(", ")}`);
  }
  return byAbi;
}

const HIGH = (value: bigint) => Number((value >> 32n) & 0xffffffffn);
const LOW = (value: bigint) => Number(value & 0xffffffffn);

/** Builds nodes, sharing one `ret` node per action. */
class Builder {
  #returns = new Map<number, Node>();

  ret(k: number): Node {
    let node = this.#returns.get(k);
    if (!node) this.#returns.set(k, node = { kind: "ret", k });
    return node;
  }

  jump(code: number, k: number, t: Node, f: Node): Node {
    return t === f ? t : { kind: "jmp", code, k: k >>> 0, t, f };
  }

  /** `arg[index] OP value` on one 32-bit half (`high` or not), continuing at t or f. */
  half(
    index: number,
    high: boolean,
    op: SeccompOperator,
    value: number,
    mask: number,
    t: Node,
    f: Node,
  ): Node {
    const test = (() => {
      switch (op) {
        case "SCMP_CMP_EQ":
        case "SCMP_CMP_MASKED_EQ":
          return this.jump(BPF_JEQ_K, value, t, f);
        case "SCMP_CMP_NE":
          return this.jump(BPF_JEQ_K, value, f, t);
        case "SCMP_CMP_GT":
          return this.jump(BPF_JGT_K, value, t, f);
        case "SCMP_CMP_GE":
          return this.jump(BPF_JGE_K, value, t, f);
        case "SCMP_CMP_LT":
          return this.jump(BPF_JGE_K, value, f, t);
        case "SCMP_CMP_LE":
          return this.jump(BPF_JGT_K, value, f, t);
      }
    })();
    const masked: Node = op === "SCMP_CMP_MASKED_EQ"
      ? { kind: "and", k: mask >>> 0, next: test }
      : test;
    return { kind: "ld", k: DATA_ARGS + 8 * index + (high ? 4 : 0), next: masked };
  }

  /** One comparison, 32 or 64 bits wide, continuing at t when it holds and f otherwise. */
  compare(c: Comparison, wide: boolean, t: Node, f: Node): Node {
    const masked = c.op === "SCMP_CMP_MASKED_EQ";
    // MASKED_EQ compares the masked argument with the masked datum, as libseccomp does.
    const [mask, value] = masked ? [c.value, c.valueTwo & c.value] : [U64, c.value];
    if (!wide) return this.half(c.index, false, c.op, LOW(value), LOW(mask), t, f);
    const low = (tt: Node, ff: Node, op = c.op) =>
      this.half(c.index, false, op, LOW(value), LOW(mask), tt, ff);
    switch (c.op) {
      case "SCMP_CMP_MASKED_EQ":
        // A mask with no high bits leaves nothing to compare there (clone's CLONE_NEW* mask).
        if (HIGH(mask) === 0) return HIGH(value) === 0 ? low(t, f) : f;
        return this.half(c.index, true, c.op, HIGH(value), HIGH(mask), low(t, f), f);
      case "SCMP_CMP_EQ":
        return this.half(c.index, true, c.op, HIGH(value), HIGH(mask), low(t, f), f);
      case "SCMP_CMP_NE":
        return this.half(c.index, true, "SCMP_CMP_EQ", HIGH(value), 0, low(f, t, "SCMP_CMP_EQ"), t);
      default: {
        // Unsigned order: the high words decide unless they are equal; then the low words do.
        const [above, below] = c.op === "SCMP_CMP_GT" || c.op === "SCMP_CMP_GE" ? [t, f] : [f, t];
        const equalHigh = this.jump(BPF_JEQ_K, HIGH(value), low(t, f), below);
        const test = this.jump(BPF_JGT_K, HIGH(value), above, equalHigh);
        return { kind: "ld", k: DATA_ARGS + 8 * c.index + 4, next: test };
      }
    }
  }
}

/** The decision for one syscall's rules, falling back to `fallback`. */
function decide(rules: Rule[], wide: (index: number) => boolean, b: Builder, fallback: Node): Node {
  const unconditional = rules.filter((rule) => rule.comparisons.length === 0);
  const byPrecedence = (x: Rule, y: Rule) => precedence(x.action) - precedence(y.action);
  if (unconditional.length > 0) return b.ret(unconditional.sort(byPrecedence)[0].action);
  let next = fallback;
  for (const rule of [...rules].sort(byPrecedence).reverse()) {
    let node = b.ret(rule.action);
    for (const c of [...rule.comparisons].reverse()) {
      node = b.compare(c, wide(c.index), node, next);
    }
    next = node;
  }
  return next;
}

/** A binary search over `[from, to)` of syscall numbers, the leaves being each number's decision. */
function dispatch(
  decisions: Map<number, Node>,
  from: number,
  to: number,
  fallback: Node,
  b: Builder,
): Node {
  // Intervals of equal decisions (the same node), gaps taking the fallback.
  const starts: number[] = [];
  const nodes: Node[] = [];
  const push = (start: number, node: Node) => {
    if (nodes.length > 0 && nodes[nodes.length - 1] === node) return;
    starts.push(start);
    nodes.push(node);
  };
  let end = from; // the first number not yet covered
  for (const nr of [...decisions.keys()].sort((x, y) => x - y)) {
    if (nr < from || nr >= to) continue;
    if (nr > end) push(end, fallback);
    push(nr, decisions.get(nr)!);
    end = nr + 1;
  }
  if (end < to) push(end, fallback);
  const tree = (lo: number, hi: number): Node => {
    if (lo === hi) return nodes[lo];
    const mid = (lo + hi + 1) >> 1;
    return b.jump(BPF_JGE_K, starts[mid], tree(mid, hi), tree(lo, mid - 1));
  };
  return tree(0, nodes.length - 1);
}

/**
 * Lays the tree out back to front, each node after its successors (post-order,
 * with a stack of its own: a long chain of rules is deeper than JS's call
 * stack); far conditional targets get a `ja` trampoline.
 */
function assemble(root: Node): number[][] {
  const reversed: number[][] = []; // [code, jt, jf, k], last instruction first
  const placed = new Map<Node, number>(); // node -> its index from the end
  const trampolines = new Map<number, number>(); // target -> its latest `ja`
  const offset = (target: number) => reversed.length - target - 1;
  // A far target is reached through a `ja`, shared by the jumps that can reach it.
  const near = (target: number, reach: number) => {
    if (offset(target) <= reach) return target;
    const trampoline = trampolines.get(target);
    if (trampoline !== undefined && offset(trampoline) <= reach) return trampoline;
    reversed.push([BPF_JMP_JA, 0, 0, offset(target)]);
    trampolines.set(target, reversed.length - 1);
    return reversed.length - 1;
  };
  const place = (node: Node) => {
    if (node.kind === "ret") {
      reversed.push([BPF_RET_K, 0, 0, node.k]);
    } else if (node.kind === "ld" || node.kind === "and") {
      const next = placed.get(node.next)!;
      if (next !== reversed.length - 1) reversed.push([BPF_JMP_JA, 0, 0, offset(next)]);
      reversed.push([node.kind === "ld" ? BPF_LD_W_ABS : BPF_ALU_AND_K, 0, 0, node.k]);
    } else {
      const f = near(placed.get(node.f)!, 254); // 254: a trampoline for t may come between
      const t = near(placed.get(node.t)!, 255);
      reversed.push([node.code, offset(t), offset(f), node.k]);
    }
    placed.set(node, reversed.length - 1);
  };
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const node = stack[stack.length - 1];
    if (placed.has(node)) {
      stack.pop();
      continue;
    }
    // t's subtree is laid out first, then f's, so that f (the fall-through) comes right after.
    const successors = node.kind === "ret"
      ? []
      : node.kind === "jmp"
      ? [node.f, node.t]
      : [node.next];
    const pending = successors.filter((successor) => !placed.has(successor));
    if (pending.length > 0) {
      stack.push(...pending);
      continue;
    }
    stack.pop();
    place(node);
  }
  return reversed.reverse();
}

/** The bytes of `struct sock_filter[]` for `[code, jt, jf, k]` instructions. */
export function encodeProgram(instructions: number[][]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(8 * instructions.length));
  const view = new DataView(bytes.buffer);
  instructions.forEach(([code, jt, jf, k], i) => {
    if (jt > 255 || jf > 255) throw new RangeError(`instruction ${i}: a jump offset above 255`);
    view.setUint16(8 * i, code, true);
    view.setUint8(8 * i + 2, jt);
    view.setUint8(8 * i + 3, jf);
    view.setUint32(8 * i + 4, k >>> 0, true);
  });
  return bytes;
}

/** `[code, jt, jf, k]` instructions of a `struct sock_filter[]`. */
export function decodeProgram(program: Uint8Array): number[][] {
  if (program.length % 8 !== 0) {
    throw new SeccompProfileError("", "a BPF program is a multiple of 8 bytes");
  }
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  return Array.from({ length: program.length / 8 }, (_, i) => [
    view.getUint16(8 * i, true),
    view.getUint8(8 * i + 2),
    view.getUint8(8 * i + 3),
    view.getUint32(8 * i + 4, true),
  ]);
}

/** A profile's default action as a `SECCOMP_RET_*` value (validating it). */
function defaultActionOf(profile: SeccompProfile): number {
  return actionValue(
    profile.defaultAction,
    profile.defaultErrnoRet,
    "defaultAction",
    "defaultErrnoRet",
  );
}

/**
 * Compiles a profile (parsed JSON, validated here) for a command whose
 * bounding set is `options.capabilities`. Throws a {@link SeccompProfileError}
 * naming the JSON path of the first bad value.
 */
export function compileProfile(profile: SeccompProfile, options: CompileOptions): CompiledFilter {
  if (typeof profile !== "object" || profile === null || Array.isArray(profile)) {
    throw new SeccompProfileError("", "a seccomp profile is a JSON object");
  }
  const warnings: string[] = [];
  const defaultAction = defaultActionOf(profile);
  const abis = architectures(profile, warnings);
  const rules = collectRules(profile, abis, defaultAction, options, warnings);
  const b = new Builder();
  const fallback = b.ret(defaultAction);
  const kill = b.ret(SECCOMP_RET.KILL_PROCESS);
  const section = (abi: Abi, from: number, to: number): Node => {
    const ints = intArgumentsByNumber(abi);
    const decisions = new Map<number, Node>();
    for (const [nr, list] of rules[abi]) {
      const intArgs = ints.get(nr) ?? [];
      const wide = (index: number) => abi !== "i386" && !intArgs.includes(index);
      decisions.set(nr, decide(list, wide, b, fallback));
    }
    const clone = rules[abi].get(TABLES[abi].clone);
    if (
      clone?.some((rule) => rule.comparisons.length > 0) &&
      !clone.some((r) => r.comparisons.length === 0)
    ) {
      const clone3 = TABLES[abi].clone3;
      const enosys = b.ret((SECCOMP_RET.ERRNO | 38) >>> 0);
      if (rules[abi].has(clone3) && decisions.get(clone3) !== enosys) {
        warnings.push(
          `${abi}: clone3 answers ENOSYS, whatever the profile says, as clone's flags are filtered`,
        );
      }
      decisions.set(clone3, enosys);
    }
    return dispatch(decisions, from, to, fallback, b);
  };
  // Without x32, its numbers are another architecture's: killed, but for -1 (no system call,
  // what a tracer sets to skip one), which takes the default action as libseccomp does.
  const x86_64 = b.jump(
    BPF_JGE_K,
    X32_SYSCALL_BIT,
    abis.has("x32")
      ? section("x32", X32_SYSCALL_BIT, 2 ** 32)
      : b.jump(BPF_JEQ_K, 0xffffffff, fallback, kill),
    section("x86_64", 0, X32_SYSCALL_BIT),
  );
  const i386 = abis.has("i386")
    ? { kind: "ld", k: DATA_NR, next: section("i386", 0, 2 ** 32) } as Node
    : kill;
  const root: Node = {
    kind: "ld",
    k: DATA_ARCH,
    next: b.jump(
      BPF_JEQ_K,
      AUDIT_ARCH_X86_64,
      { kind: "ld", k: DATA_NR, next: x86_64 },
      b.jump(BPF_JEQ_K, AUDIT_ARCH_I386, i386, kill),
    ),
  };
  const instructions = assemble(root);
  if (instructions.length > BPF_MAXINSNS) {
    throw new SeccompProfileError(
      "",
      `the filter needs ${instructions.length} instructions, more than the kernel's ${BPF_MAXINSNS}`,
    );
  }
  return { program: encodeProgram(instructions), length: instructions.length, warnings };
}

/** JSON.parse's reviver with the source text (ES2025): integers past 2^53 kept exact, as bigints. */
function exactIntegers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
  const source = context?.source;
  return source !== undefined && /^-?\d+$/.test(source) ? BigInt(source) : value;
}

/**
 * Parses a profile's JSON text, integers past 2^53 kept exact (as bigints);
 * a JSON syntax error is a {@link SeccompProfileError}. Not validated: that
 * is {@link compileProfile}'s job.
 */
export function parseProfileText(text: string): SeccompProfile {
  try {
    return JSON.parse(text, exactIntegers as Parameters<typeof JSON.parse>[1]);
  } catch {
    throw new SeccompProfileError("", "not a JSON profile (the OCI or docker format)");
  }
}

/**
 * Parses and compiles a profile's JSON text, integers past 2^53 kept exact;
 * a JSON syntax error is a {@link SeccompProfileError} too.
 */
export function compileProfileText(text: string, options: CompileOptions): CompiledFilter {
  return compileProfile(parseProfileText(text), options);
}
