/**
 * The CLI fuzzer's driver (run by reliability_fuzz_test.ts as a subprocess, as
 * root, inside private IPC, mount and network namespaces): generates argument
 * vectors from a seed and runs each through `main()` of ../main.ts in this one
 * process.
 *
 * ```
 * deno run -A tests/fuzz_driver.ts --seed N --start I --count C --dir DIR [--mqueue DIR]
 * ```
 *
 * Vector `i` depends only on the seed and `i`, so one can be replayed alone
 * (`--start i --count 1`). For each vector the driver writes `@@vector i` to
 * stderr before running it (so the test can attribute stderr lines) and one
 * line `@@fuzz {json}` to stdout after it; at the end one `@@end {json}` line
 * with what was left behind. Only lines with these markers matter: main()
 * writes the tool's own output to the same stdout.
 *
 * SAFETY. Vectors use the run form and the `ns` and `enter` subcommands only.
 * Random junk goes into option values, never into a command that is executed
 * or a path that is written:
 * - the command operand is always one of {@link harmlessCommands} (with junk
 *   arguments, which `true` and `false` ignore); `enter` without a command
 *   runs $SHELL, which is set to /bin/true here;
 * - `-c` values, `--bind` sources, and mount targets are the work directory,
 *   names without "/" (relative to the work directory, the cwd), paths under
 *   it, or paths under a directory that does not exist; mount targets are
 *   always under the work directory (or relative, which the tool refuses);
 * - optional values (`--veth=...`) are only given with `=`, so they are never
 *   taken for the command;
 * - the generator models getopt to know which word is the command; before each
 *   run-form vector the real parser (parseRun) is asked too, and the vector is
 *   skipped and reported (`unsafe`) when the two disagree.
 * @module
 */

import { main } from "../main.ts";
import { parseRun, RUN_OPTIONS } from "../cli/run.ts";
import type { OptionSpec } from "../cli/getopt.ts";

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(bytes: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** A small, fast, seedable PRNG (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of vector `index` under `seed`. */
export function vectorSeed(seed: number, index: number): number {
  return (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
}

/** What a run-form option's value is, for generating it safely. */
type ValueClass =
  | "flag"
  | "text"
  | "ipc"
  | "path"
  | "env"
  | "number"
  | "mq"
  | "bind"
  | "target"
  | "cidr"
  | "ifname";

/** The run-form options this fuzzer knows how to generate safely, by long name. */
const RUN_VALUES: Record<string, ValueClass> = {
  help: "flag",
  verbose: "flag",
  pid: "flag",
  mount: "flag",
  uts: "text",
  net: "flag",
  "ipc-demo": "ipc",
  "chroot-dir": "path",
  ipc: "flag",
  user: "flag",
  cgroup: "flag",
  time: "flag",
  env: "env",
  "keep-env": "flag",
  "map-user": "number",
  "map-group": "number",
  monotonic: "number",
  boottime: "number",
  "mq-name": "mq",
  "stop-timeout": "number",
  bind: "bind",
  "ro-bind": "bind",
  tmpfs: "target",
  dev: "flag",
  chroot: "flag",
  "no-new-privs": "flag",
  json: "flag",
  veth: "cidr",
  "veth-name": "ifname",
  "no-route": "flag",
};

/** `enter`'s options (cli/enter.ts), with what their values are. */
const ENTER_OPTIONS: (OptionSpec & { values: ValueClass })[] = [
  { name: "help", short: "h", value: "none", values: "flag" },
  { name: "pid", short: "p", value: "none", values: "flag" },
  { name: "mount", short: "m", value: "none", values: "flag" },
  { name: "uts", short: "u", value: "none", values: "flag" },
  { name: "net", short: "n", value: "none", values: "flag" },
  { name: "ipc", short: "i", value: "none", values: "flag" },
  { name: "user", short: "U", value: "none", values: "flag" },
  { name: "cgroup", short: "C", value: "none", values: "flag" },
  { name: "time", short: "T", value: "none", values: "flag" },
  { name: "all", short: "a", value: "none", values: "flag" },
  { name: "env", short: "e", value: "required", values: "env" },
  { name: "keep-env", value: "none", values: "flag" },
];

/** `ns`'s options (cli/ns.ts). */
const NS_OPTIONS: (OptionSpec & { values: ValueClass })[] = [
  { name: "help", short: "h", value: "none", values: "flag" },
  { name: "all", short: "a", value: "none", values: "flag" },
  { name: "json", short: "J", value: "none", values: "flag" },
];

/** The run-form options as the real parser knows them, with our value classes. */
const RUN_KNOWN = RUN_OPTIONS.filter((spec) => RUN_VALUES[spec.name] !== undefined)
  .map((spec) => ({ ...spec, values: RUN_VALUES[spec.name] }));

/** Real run-form options this fuzzer does not know: never generated (reported at the end). */
const RUN_UNKNOWN = RUN_OPTIONS.filter((spec) => RUN_VALUES[spec.name] === undefined)
  .map((spec) => spec.name);

const NONEXISTENT = "/invoke_ns_fuzz_nonexistent";

/** One generated vector, with what the generator's getopt model expects of it. */
export interface Vector {
  kind: "run" | "enter" | "ns" | "misc";
  argv: string[];
  /** The operands the model expects (run form): the command and its arguments. */
  operands?: string[];
  /** The model expects a usage error from getopt (unknown option, missing value...). */
  expectUsage: boolean;
}

/** Generates vectors; `dir` is the work directory (also the cwd). */
export class Generator {
  #random: () => number;
  #dir: string;
  /** A tame vector has mostly valid values and options, so that it launches. */
  #tame: boolean;

  constructor(seed: number, dir: string) {
    this.#random = mulberry32(seed);
    this.#dir = dir;
    this.#tame = this.chance(0.4);
  }

  /** `p`, or a twentieth of it in a tame vector. */
  wild(p: number): boolean {
    return this.chance(this.#tame ? p / 20 : p);
  }

  int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Commands that are harmless to run, whatever the namespaces. */
  harmlessCommands(): string[] {
    const dir = this.#dir;
    return [
      "true",
      "false",
      "/bin/true",
      "/bin/false",
      "no-such-cmd-fuzz",
      `${dir}/file`,
      `${dir}/jail`,
      `${dir}/missing`,
    ];
  }

  /** A random character from a mix of ASCII, controls, NUL and unicode. */
  char(): string {
    const roll = this.int(20);
    if (roll < 12) return String.fromCharCode(0x20 + this.int(95));
    if (roll < 13) return "\0";
    if (roll < 14) return String.fromCharCode(this.int(32));
    return this.pick(["é", "日", "本", "🦕", "\u202e", "\ud800", "\u0301", "ß", "\u00a0", "\x7f"]);
  }

  /** A string of `n` random characters. */
  chars(n: number): string {
    let text = "";
    for (let i = 0; i < n; i++) text += this.char();
    return text;
  }

  /** Anything: the values of text options. */
  junk(): string {
    const roll = this.int(100);
    if (roll < 3) return this.huge();
    if (roll < 8) return "";
    if (roll < 20) return this.number();
    if (roll < 25) return this.cidr();
    if (roll < 35) {
      return this.pick([
        "-",
        "--",
        "-p",
        "--pid",
        "--=x",
        "$(touch pwned)",
        "`touch pwned`",
        "a b",
        "x\ny",
        "\x1b[31mred",
        "%s%n%x",
        "../../..",
        "/",
        ".",
        "=",
        "KEY=",
        "=VALUE",
        "no",
        "yes",
      ]);
    }
    return this.chars(1 + this.int(this.chance(0.1) ? 300 : 16));
  }

  /** About 100 KB of text, sometimes with NULs and unicode. */
  huge(): string {
    const unit = this.pick(["A", "é", "🦕", "a\0", "x/"]);
    return unit.repeat(Math.ceil(100_000 / unit.length));
  }

  /** Numbers, in and out of range, and number-like strings. */
  number(): string {
    return this.pick([
      "0",
      "1",
      "-1",
      "10",
      "65534",
      "4294967294",
      "4294967295",
      "4294967296",
      "86400",
      "86401",
      "9007199254740992",
      "9007199254740993",
      "-9007199254740993",
      "99999999999999999999999",
      "1e3",
      "0x10",
      " 5",
      "5 ",
      "+5",
      "-0",
      "NaN",
      "Infinity",
      "１２",
      "",
      String(this.int(100_000)),
      String(-this.int(1_000_000_000)),
    ]);
  }

  /** CIDR-like strings, for `--veth=`. */
  cidr(): string {
    const address = () =>
      this.pick([
        `10.0.${this.int(3)}.${1 + this.int(3)}/24`,
        "10.0.0.1/24",
        "10.0.0.2/24",
        "10.0.0.1/33",
        "10.0.0.1/-1",
        "256.1.1.1/24",
        "10.0.0/24",
        "10.0.0.1",
        "10.0.0.1/",
        "/24",
        "::1/128",
        "fe80::1/64",
        "1.2.3.4/0",
        "0.0.0.0/0",
        "127.0.0.1/8",
        "10.0.0.01/24",
        " 10.0.0.1/24",
        this.chars(1 + this.int(12)),
      ]);
    return this.pick([
      `${address()},${address()}`,
      `${address()},${address()}`,
      address(),
      `${address()},${address()},${address()}`,
      ",",
      "",
    ]);
  }

  /** A name safe as a path component: no "/", no ":", never "." or "..". */
  safeName(): string {
    const roll = this.int(20);
    let name = roll === 0
      ? this.huge().replaceAll("/", "_").slice(0, 300)
      : roll === 1
      ? "jail"
      : roll === 2
      ? "file"
      : this.chars(1 + this.int(12));
    name = name.replaceAll("/", "_").replaceAll(":", "_");
    if (name === "" || name === "." || name === "..") name = `x${name}`;
    return name;
  }

  /** A path for `-c` or a bind source: the work dir, under it, relative, or nonexistent. */
  path(): string {
    const dir = this.#dir;
    return this.pick([
      dir,
      `${dir}/jail`,
      `${dir}/jail`,
      `${dir}/file`,
      `${dir}/${this.safeName()}`,
      this.safeName(),
      `${NONEXISTENT}/${this.safeName()}`,
      "",
      `${dir}/jail/../jail`,
      `${dir}/jail/`,
    ]);
  }

  /** A mount target: always under the work directory, or relative (refused). */
  target(): string {
    const dir = this.#dir;
    return this.pick([
      `${dir}/mnt`,
      `${dir}/${this.safeName()}`,
      `${dir}/jail/${this.safeName()}/${this.safeName()}`,
      `${dir}/a/../b`,
      `${dir}/file`,
      this.safeName(),
      "",
    ]);
  }

  /** A value of `values`'s class. */
  value(values: ValueClass): string {
    switch (values) {
      case "flag":
        return this.junk();
      case "text":
        return this.wild(0.5) ? this.junk() : this.pick(["box", "calculus", "h".repeat(64)]);
      case "ipc":
        return this.wild(0.3) ? this.junk() : this.pick(["no", "yes"]);
      case "path":
        return this.path();
      case "env": {
        // Never PATH or LD_*: they would change which program `true` is.
        const key = this.safeName().replace(/^(PATH$|LD_)/, "X$1");
        return this.chance(0.6)
          ? `${key}=${this.junk()}`
          : this.junk().replace(/^(PATH=|LD_)/, "X$1");
      }
      case "number":
        return this.wild(0.7) ? this.number() : String(this.int(100));
      case "mq":
        return this.wild(0.5) ? this.junk().replaceAll("/", "_") : `/fuzz_${this.int(5)}`;
      case "bind": {
        if (this.chance(0.2)) {
          // SRC alone: the target is SRC itself, so SRC must be under the work dir or relative.
          return this.pick([`${this.#dir}/jail`, `${this.#dir}/file`, this.safeName()]);
        }
        return `${this.path()}:${this.target()}`;
      }
      case "target":
        return this.target();
      case "cidr":
        return this.wild(0.7)
          ? this.cidr()
          : `10.9.${this.int(256)}.1/24,10.9.${this.int(256)}.2/24`;
      case "ifname":
        return this.wild(0.5) ? this.junk() : `fz${this.int(100)}`;
    }
  }

  /**
   * Options for a getopt-style command line: returns the words and whether a
   * usage error is expected. `last` means nothing follows (a value may be missing).
   */
  options(
    specs: (OptionSpec & { values: ValueClass })[],
    count: number,
    allSpecs: OptionSpec[],
  ): { words: string[]; usage: boolean; dangling: boolean } {
    const words: string[] = [];
    let usage = false;
    const flags = specs.filter((spec) => spec.short && spec.value === "none");
    const unknownLetters = [..."xyzqwWXYZ0123456789!@#%^&*é🦕"].filter((letter) =>
      !allSpecs.some((spec) => spec.short === letter)
    );
    for (let n = 0; n < count; n++) {
      const roll = this.wild(0.12) ? this.int(12) : 12 + this.int(88);
      if (roll < 8) {
        // an unknown letter, maybe after a few flags
        const prefix = Array.from({ length: this.int(3) }, () => this.pick(flags).short).join("");
        words.push(
          `-${prefix}${this.pick(unknownLetters)}${this.chance(0.3) ? this.chars(3) : ""}`,
        );
        usage = true;
        continue;
      }
      if (roll < 12) {
        // an unknown or ambiguous long option (resolved with the real rules below)
        const name = this.pick(["no-such-option", "m", "=", "x=1", this.chars(1 + this.int(6))]);
        const resolved = this.resolveLong(name.split("=")[0], allSpecs);
        if (resolved === null) {
          words.push(`--${name}`);
          usage = true;
          continue;
        }
        // a junk name that happens to be a real option's prefix: fall through to a known one
      }
      const spec = this.pick(specs);
      if (spec.short && this.chance(0.5)) {
        let cluster = "-" +
          Array.from({ length: this.int(3) }, () => this.pick(flags).short).join("") + spec.short;
        if (spec.value === "required") {
          if (this.chance(0.4)) {
            cluster += this.value(spec.values) || "x";
            words.push(cluster);
          } else {
            words.push(cluster, this.value(spec.values));
          }
        } else {
          words.push(cluster);
        }
        continue;
      }
      const spelled = this.chance(0.2) ? this.uniquePrefix(spec.name, allSpecs) : spec.name;
      if (spec.value === "none") {
        if (this.wild(0.04)) {
          words.push(`--${spelled}=${this.junk()}`);
          usage = true;
        } else {
          words.push(`--${spelled}`);
        }
      } else if (spec.value === "optional") {
        words.push(this.chance(0.6) ? `--${spelled}=${this.value(spec.values)}` : `--${spelled}`);
      } else if (this.chance(0.5)) {
        words.push(`--${spelled}=${this.value(spec.values)}`);
      } else {
        words.push(`--${spelled}`, this.value(spec.values));
      }
    }
    // Sometimes end with an option whose value is missing (only when nothing follows).
    const valued = specs.filter((spec) => spec.value === "required");
    let dangling = false;
    if (valued.length && this.wild(0.06)) {
      const spec = this.pick(valued);
      words.push(spec.short && this.chance(0.5) ? `-${spec.short}` : `--${spec.name}`);
      dangling = true;
      usage = true;
    }
    return { words, usage, dangling };
  }

  /** The option `name` resolves to under getopt's rules (exact, else unique prefix), or null. */
  resolveLong(name: string, specs: OptionSpec[]): OptionSpec | null {
    const exact = specs.filter((spec) => spec.name === name);
    const candidates = exact.length ? exact : specs.filter((spec) => spec.name.startsWith(name));
    return candidates.length === 1 ? candidates[0] : null;
  }

  /** The shortest prefix of `name` that resolves to it, or the name itself. */
  uniquePrefix(name: string, specs: OptionSpec[]): string {
    for (let length = 1; length < name.length; length++) {
      if (this.resolveLong(name.slice(0, length), specs)?.name === name) {
        return name.slice(0, length + this.int(name.length - length));
      }
    }
    return name;
  }

  /** The command and arguments: harmless, sometimes after `--`, sometimes none. */
  operands(): { words: string[]; operands: string[] } {
    if (this.chance(0.12)) return { words: [], operands: [] };
    const command = [this.pick(this.harmlessCommands())];
    for (let n = this.int(4); n > 0; n--) {
      command.push(this.wild(0.3) ? this.junk() : this.junk().replaceAll("\0", ""));
    }
    return { words: this.chance(0.25) ? ["--", ...command] : command, operands: command };
  }

  /** One vector. */
  vector(): Vector {
    const roll = this.int(100);
    if (roll < 70) return this.runVector();
    if (roll < 85) return this.enterVector();
    if (roll < 95) return this.nsVector();
    return this.miscVector();
  }

  runVector(): Vector {
    const specs = RUN_KNOWN.filter((spec) => spec.name !== "help" || this.chance(0.05));
    const options = this.options(specs, this.int(7), RUN_OPTIONS);
    const operands = options.dangling ? { words: [], operands: [] } : this.operands();
    // Tame vectors mostly ask for mount and PID namespaces too (mounts need -m).
    const namespaces = this.#tame
      ? [...(this.chance(0.7) ? ["-m"] : []), ...(this.chance(0.5) ? ["-p"] : [])]
      : [];
    return {
      kind: "run",
      argv: [...namespaces, ...options.words, ...operands.words],
      operands: operands.operands,
      expectUsage: options.usage,
    };
  }

  /** A PID or a namespace file to enter, or junk. */
  enterTarget(): string {
    const types = ["net", "uts", "ipc", "mnt", "pid", "user", "cgroup", "time", "pid_for_children"];
    return this.pick([
      "1",
      String(Deno.pid),
      String(Deno.ppid),
      "0",
      "00001",
      "4194305",
      "99999999999999999999",
      `/proc/self/ns/${this.pick(types)}`,
      `/proc/1/ns/${this.pick(types)}`,
      `/proc/${Deno.pid}/ns/${this.pick(types)}`,
      `${this.#dir}/file`,
      `${this.#dir}/jail`,
      `${NONEXISTENT}/ns`,
      "/dev/null",
      this.safeName(),
    ]);
  }

  enterVector(): Vector {
    const options = this.options(
      ENTER_OPTIONS.filter((spec) => spec.name !== "help" || this.chance(0.1)),
      this.int(4),
      ENTER_OPTIONS,
    );
    if (options.dangling) {
      return { kind: "enter", argv: ["enter", ...options.words], expectUsage: true };
    }
    const target = this.enterTarget();
    const command = this.chance(0.15) ? [] : this.operands().operands;
    // A target that starts with "-" would be read as an option: it always follows "--".
    const dashes = this.chance(0.2) || target.startsWith("-") ? ["--"] : [];
    return {
      kind: "enter",
      argv: ["enter", ...options.words, ...dashes, target, ...command],
      expectUsage: options.usage,
    };
  }

  nsVector(): Vector {
    const options = this.options(NS_OPTIONS, this.int(3), NS_OPTIONS);
    const pids = Array.from(
      { length: this.int(3) },
      () => this.pick(["1", String(Deno.pid), "999999999", "0", this.junk()]),
    );
    // A junk PID that starts with "-" would be read as an option: keep it after "--".
    return {
      kind: "ns",
      argv: ["ns", ...options.words, ...(pids.length ? ["--", ...pids] : [])],
      expectUsage: options.usage,
    };
  }

  miscVector(): Vector {
    const argv = this.pick([
      ["--version"],
      ["-V"],
      [],
      ["--"],
      ["--", "true"],
      ["-h"],
      ["ns"],
      ["enter"],
      ["enter", "--help"],
      ["-vpmu", "calculus", "true"],
    ]);
    return { kind: "misc", argv, expectUsage: argv.length === 1 && argv[0] === "enter" };
  }
}

/** Why the real parser disagrees with the model about a run-form vector, or null. */
function runFormProblem(vector: Vector, dir: string): string | null {
  let request;
  try {
    request = parseRun(vector.argv);
  } catch (error) {
    return error instanceof Error && error.name === "UsageError"
      ? null
      : `parseRun threw ${String(error)}`;
  }
  if (vector.expectUsage) return "the model expects a usage error, the parser accepted it";
  const command = request.spec.command;
  if (JSON.stringify(command) !== JSON.stringify(vector.operands)) {
    return `the parser's command ${JSON.stringify(command).slice(0, 200)} is not the model's`;
  }
  const inside = (path: string) =>
    path === dir || path.startsWith(`${dir}/`) || !path.startsWith("/") ||
    path.startsWith(`${NONEXISTENT}/`);
  if (request.spec.jail !== undefined && !inside(request.spec.jail)) {
    return `jail outside the work directory: ${request.spec.jail.slice(0, 200)}`;
  }
  for (const mount of request.spec.mounts ?? []) {
    if (mount.kind === "dev") continue;
    if (mount.target.startsWith("/") && !mount.target.startsWith(`${dir}/`)) {
      return `mount target outside the work directory: ${mount.target.slice(0, 200)}`;
    }
  }
  return null;
}

/** A short, printable summary of a vector's words. */
function summary(argv: string[]): string[] {
  return argv.map((word) =>
    word.length > 80 ? `${JSON.stringify(word.slice(0, 40))}...(${word.length} chars)` : word
  );
}

function readArgs(): Record<string, string> {
  const args: Record<string, string> = {};
  for (let i = 0; i < Deno.args.length; i += 2) {
    args[Deno.args[i].replace(/^--/, "")] = Deno.args[i + 1];
  }
  return args;
}

function mountinfo(): string {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").map((line) =>
    line.split(" ").slice(0, 5).join(" ")
  ).sort().join("\n");
}

function children(): number[] {
  try {
    return Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/children`).trim().split(" ")
      .filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function links(): string[] {
  return Deno.readTextFileSync("/proc/self/net/dev").split("\n").slice(2).filter(Boolean)
    .map((line) => line.split(":")[0].trim());
}

async function drive(): Promise<void> {
  const args = readArgs();
  const seed = Number(args.seed);
  const start = Number(args.start ?? 0);
  const count = Number(args.count ?? 1);
  const dir = Deno.realPathSync(args.dir);
  Deno.chdir(dir);
  Deno.mkdirSync(`${dir}/jail`, { recursive: true });
  Deno.writeTextFileSync(`${dir}/file`, "not executable\n");
  Deno.env.set("SHELL", "/bin/true");
  Deno.env.set("PATH", "/usr/bin:/bin");
  const mountsBefore = mountinfo();
  const linksBefore = links();
  let ran = 0;
  for (let index = start; index < start + count; index++) {
    const vector = new Generator(vectorSeed(seed, index), dir).vector();
    const record: Record<string, unknown> = {
      i: index,
      kind: vector.kind,
      argv: summary(vector.argv),
      expectUsage: vector.expectUsage,
    };
    const problem = vector.kind === "run" ? runFormProblem(vector, dir) : null;
    if (problem) {
      record.unsafe = problem;
      writeAll(Deno.stdout, `@@fuzz ${JSON.stringify(record)}\n`);
      continue;
    }
    writeAll(Deno.stderr, `@@vector ${index}\n`);
    const started = performance.now();
    try {
      record.code = await main(vector.argv);
    } catch (error) {
      record.threw = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    record.ms = Math.round(performance.now() - started);
    ran++;
    writeAll(Deno.stdout, `@@fuzz ${JSON.stringify(record)}\n`);
  }
  writeAll(Deno.stderr, "@@vector end\n");
  let queues: string[] = [];
  if (args.mqueue) queues = [...Deno.readDirSync(args.mqueue)].map((entry) => entry.name);
  const end = {
    ran,
    queues,
    mountsChanged: mountinfo() !== mountsBefore,
    children: children(),
    links: links().filter((link) => !linksBefore.includes(link)),
    pwned: [...Deno.readDirSync(dir)].some((entry) => entry.name === "pwned"),
    notFuzzed: RUN_UNKNOWN,
  };
  writeAll(Deno.stdout, `@@end ${JSON.stringify(end)}\n`);
}

if (import.meta.main) await drive();
