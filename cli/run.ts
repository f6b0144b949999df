/**
 * The run form: `invoke_ns [options] [--] [cmd [arg...]]`, with exactly the
 * seed's option letters plus the newer namespace types.
 * @module
 */

import { launch, LaunchError, type LaunchSpec } from "../lib/launch.ts";
import { DEMO_QUEUE } from "../lib/ipcns.ts";
import { parseBindSpec } from "../lib/mountns.ts";
import { parseIdRange } from "../lib/user.ts";
import { getopt, type OptionSpec, parseAssignment, UsageError } from "./getopt.ts";
import { writeErrorLine, writeOut, writeOutBestEffort } from "./output.ts";

/** The run form's options. */
export const RUN_OPTIONS: OptionSpec[] = [
  { name: "help", short: "h", value: "none" },
  { name: "verbose", short: "v", value: "none" },
  { name: "pid", short: "p", value: "none" },
  { name: "mount", short: "m", value: "none" },
  { name: "uts", short: "u", value: "required" },
  { name: "net", short: "n", value: "none" },
  { name: "ipc-demo", short: "i", value: "required" },
  { name: "chroot-dir", short: "c", value: "required" },
  { name: "ipc", short: "I", value: "none" },
  { name: "user", short: "U", value: "none" },
  { name: "cgroup", short: "C", value: "none" },
  { name: "time", short: "T", value: "none" },
  { name: "env", short: "e", value: "required" },
  { name: "keep-env", value: "none" },
  { name: "map-user", value: "required" },
  { name: "map-group", value: "required" },
  { name: "map-users", value: "required" },
  { name: "map-groups", value: "required" },
  { name: "map-auto", value: "none" },
  { name: "monotonic", value: "required" },
  { name: "boottime", value: "required" },
  { name: "mq-name", value: "required" },
  { name: "stop-timeout", value: "required" },
  { name: "bind", value: "required" },
  { name: "ro-bind", value: "required" },
  { name: "tmpfs", value: "required" },
  { name: "dev", value: "none" },
  { name: "chroot", value: "none" },
  { name: "no-new-privs", value: "none" },
  { name: "json", value: "none" },
  { name: "explain", value: "none" },
  { name: "trace", value: "none" },
  { name: "veth", value: "optional" },
  { name: "veth-name", value: "required" },
  { name: "no-route", value: "none" },
  // Resource limits (issue 17).
  { name: "memory", value: "required" },
  { name: "memory-swap", value: "required" },
  { name: "pids", value: "required" },
  { name: "cpus", value: "required" },
  { name: "cpuset", value: "required" },
  { name: "cpu-time", value: "required" },
  { name: "wall-time", value: "required" },
  { name: "stats", value: "none" },
  // containment (issue 16)
  { name: "cap-drop", value: "required" },
  { name: "cap-add", value: "required" },
  { name: "uid", value: "required" },
  { name: "gid", value: "required" },
  { name: "groups", value: "required" },
  { name: "seccomp", value: "required" },
  { name: "mask", value: "required" },
  { name: "remount-ro", value: "required" },
  { name: "rlimit", value: "required" },
  { name: "chdir", value: "required" },
  { name: "new-session", value: "none" },
  { name: "pty", value: "none" },
  { name: "contain", value: "none" },
];

/** Parses an integer option value in [min, max]; a {@link UsageError} otherwise. */
export function integer(text: string, spelled: string, min = -(2 ** 53), max = 2 ** 53): number {
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${spelled}: not a valid number: '${text}'`);
  }
  return Number(text);
}

/** What the run form's command line asks for. */
export interface RunRequest {
  /** The launch itself. */
  spec: LaunchSpec;
  /** `-v`. */
  verbose: boolean;
  /** `-i`: the queue demo's queue name. */
  queueDemo?: string;
  /** `--stop-timeout`, in milliseconds. */
  stopTimeoutMs?: number;
  /** `-h`. */
  help: boolean;
  /** `--json`. */
  json: boolean;
  /** `--explain`. */
  explain?: boolean;
  /** `--trace`. */
  trace?: boolean;
  /** `--stats`. */
  stats?: boolean;
  /** Limit and containment options, parsed in {@link run} by their own modules. */
  deferred: { name: string; value: string; spelled: string }[];
}

/** Parses the run form's arguments into a request; throws {@link UsageError}. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const parseRun = (function parseRun(args: string[]): RunRequest {
  const { options, operands } = getopt(args, RUN_OPTIONS);
  const spec: LaunchSpec = { command: operands };
  const request: RunRequest = { spec, verbose: false, help: false, json: false, deferred: [] };
  let mqName = DEMO_QUEUE;
  let vethName: string | undefined;
  let noRoute = false;
  let demo = false;
  const time: { monotonic?: number; boottime?: number } = {};
  const user: { uid?: number; gid?: number } = {};
  for (const option of options) {
    const value = option.value ?? "";
    switch (option.name) {
      case "help":
        request.help = true;
        break;
      case "verbose":
        request.verbose = true;
        break;
      case "pid":
        spec.pid = true;
        break;
      case "mount":
        spec.mount = true;
        break;
      case "uts":
        spec.hostname = value;
        break;
      case "net":
        spec.net = true;
        break;
      case "ipc-demo":
        if (value !== "no" && value !== "yes") {
          throw new UsageError(
            `option requires valid argument -- 'i' (no or yes, not '${value}')`,
          );
        }
        demo = true;
        if (value === "yes") spec.ipc = true;
        break;
      case "chroot-dir":
        spec.jail = value;
        break;
      case "ipc":
        spec.ipc = true;
        break;
      case "user":
        spec.user = true;
        break;
      case "cgroup":
        spec.cgroup = true;
        break;
      case "time":
        spec.time = time;
        break;
      case "env":
        spec.env = { ...spec.env, ...parseAssignment(value, option.spelled) };
        break;
      case "keep-env":
        spec.keepEnv = true;
        break;
      case "map-user":
        user.uid = integer(value, option.spelled, 0, 0xfffffffe);
        spec.user = user;
        break;
      case "map-group":
        user.gid = integer(value, option.spelled, 0, 0xfffffffe);
        spec.user = user;
        break;
      case "map-users":
      case "map-groups": {
        let range;
        try {
          range = parseIdRange(value, option.spelled);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        const ranges = spec.idRanges ?? { users: [], groups: [] };
        ranges[option.name === "map-users" ? "users" : "groups"].push(range);
        spec.idRanges = ranges;
        break;
      }
      case "map-auto":
        spec.mapAuto = true;
        break;
      case "monotonic":
      case "boottime":
        time[option.name] = integer(value, option.spelled);
        spec.time = time;
        break;
      case "mq-name":
        mqName = value;
        break;
      case "bind":
      case "ro-bind":
        spec.mounts = [...spec.mounts ?? [], { kind: option.name, ...parseBindSpec(value) }];
        break;
      case "tmpfs":
        spec.mounts = [...spec.mounts ?? [], { kind: "tmpfs", target: value }];
        break;
      case "dev":
        spec.mounts = [...spec.mounts ?? [], { kind: "dev", target: "/dev" }];
        break;
      case "chroot":
        spec.chrootOnly = true;
        break;
      case "no-new-privs":
        spec.noNewPrivs = true;
        break;
      case "veth": {
        spec.net = true;
        spec.veth = { ...spec.veth };
        if (option.value !== undefined) {
          const parts = option.value.split(",");
          if (parts.length !== 2) {
            throw new UsageError(
              `--veth: expected HOST_CIDR,GUEST_CIDR, got '${option.value}'`,
            );
          }
          [spec.veth.host, spec.veth.guest] = parts;
        }
        break;
      }
      case "veth-name":
        vethName = value;
        break;
      case "no-route":
        noRoute = true;
        break;
      case "json":
        request.json = true;
        break;
      case "explain":
        request.explain = true;
        break;
      case "trace":
        request.trace = true;
        break;
      case "stop-timeout":
        request.stopTimeoutMs = integer(value, option.spelled, 0, 86400) * 1000;
        break;
      default:
        // limits and containment: parsed by their own modules, loaded only then (run())
        request.deferred.push({ name: option.name, value, spelled: option.spelled });
    }
  }
  if (demo) request.queueDemo = mqName;
  if (spec.veth && spec.veth.host === undefined && /^[\d.]+\/\d+,/.test(operands[0] ?? "")) {
    throw new UsageError(
      `--veth takes its addresses after '=': --veth=${operands[0]} (not a command)`,
    );
  }
  if (vethName !== undefined || noRoute) {
    if (!spec.veth) throw new UsageError("--veth-name and --no-route need --veth");
    if (vethName !== undefined) spec.veth.name = vethName;
    if (noRoute) spec.veth.route = false;
  }
  return request;
}).bind(null);

/**
 * The not-found line in the words a student needs: where the command was
 * looked for (the jail) and how to fill the jail, or the subcommand a
 * not-found name is a typo of.
 */
async function explainNotFound(
  error: LaunchError,
  spec: LaunchSpec,
  program: string,
  subcommands: string[],
): Promise<LaunchError> {
  if (error.kind !== "not-found" || error.step !== "exec") return error;
  const name = spec.command[0];
  if (spec.jail !== undefined) {
    return new LaunchError(
      error.step,
      `${name}: not found in the jail ${spec.jail} (build it with: ${program} jail ${spec.jail})`,
      "not-found",
      { cause: error },
    );
  }
  const meant = name.includes("/")
    ? undefined
    : (await import("./suggest.ts")).typoOf(name, subcommands);
  if (!meant) return error;
  return new LaunchError(
    error.step,
    `${error.message}; did you mean the subcommand '${meant}'?`,
    "not-found",
    { cause: error },
  );
}

/**
 * With `-c DIR` on a terminal, one note when the jail has no terminfo entry
 * for the command's `$TERM`: `top` and friends exit at once without it.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const noteMissingTerminfo =
  (async function noteMissingTerminfo(spec: LaunchSpec, program: string): Promise<void> {
    // only a command on a terminal uses $TERM's entry (without one, top asks for "dumb")
    if (spec.jail === undefined || !(Deno.stdin.isTerminal() || Deno.stdout.isTerminal())) return;
    // loaded only for -c: the jail modules would slow every other run's start
    const { jailHasTerminfo } = await import("../jail/rootfs.ts");
    const term = spec.env?.TERM ?? Deno.env.get("TERM") ?? "";
    try {
      if (!term || !Deno.statSync(spec.jail).isDirectory || jailHasTerminfo(spec.jail, term)) {
        return;
      }
    } catch {
      return; // no jail there: the launch says so
    }
    writeErrorLine(
      `${program}: note: the jail ${spec.jail} has no terminfo entry for TERM=${term}, which ` +
        `programs like top need (${program} jail ${spec.jail} copies it)`,
    );
  }).bind(null);

/**
 * Runs the run form; returns the exit status. `subcommands` are the names a
 * not-found command may be a typo of.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const run = (async function run(
  args: string[],
  program: string,
  subcommands: string[] = [],
): Promise<number> {
  const request = parseRun(args);
  if (request.help) {
    writeOut((await import("./run_help.ts")).runHelp(program));
    return 0;
  }
  const limits = await applyDeferredOptions(request);
  if (request.explain) return await explain(request);
  await noteMissingTerminfo(request.spec, program);
  // Cgroups left by a SIGKILLed run are removed once per CLI run.
  if (request.spec.limits) (await import("../lib/cgroupfs.ts")).sweepOrphans();
  let result;
  try {
    result = await launch(request.spec, {
      verbose: request.verbose,
      queueDemo: request.queueDemo,
      forwardSignals: true,
      stopTimeoutMs: request.stopTimeoutMs,
      announceStart: request.json,
      onWarning: (message) => writeErrorLine(`invoke_ns: warning: ${message}`),
      trace: request.trace,
    });
  } catch (caught) {
    const error = caught instanceof LaunchError
      ? await explainNotFound(caught, request.spec, program, subcommands)
      : caught;
    if (request.json && error instanceof LaunchError) {
      const { step, message, exitCode: code } = error;
      writeOutBestEffort(`${JSON.stringify({ event: "error", step, message, code })}\n`);
    }
    throw error;
  }
  if (request.json) {
    const end = { event: "exit", code: result.code, signal: result.signal ?? null };
    writeOutBestEffort(`${JSON.stringify({ ...end, ...limits?.usageJson(result.usage) })}\n`);
  }
  if (request.verbose) {
    writeOutBestEffort(`Parent: ${program} - Finishing up\n`);
  }
  if (request.spec.command.length === 0 && Deno.stdin.isTerminal()) {
    writeErrorLine(
      `${program}: no command given: the namespaces were set up and are gone again ` +
        `(start with '${program} tour', or see '${program} -h')`,
    );
  }
  if (result.usage && limits) {
    const line = limits.limitLine(result.usage);
    try {
      if (line) writeErrorLine(`${program}: ${line}`);
      if (request.stats) limits.statsLines(result, program).forEach((row) => writeErrorLine(row));
    } catch {
      // stderr is gone: the exit status still tells
    }
    return limits.limitExitCode(result);
  }
  return result.code;
}).bind(null);

/**
 * `--explain`: prints the launch's plan (as data with `--json`, which then
 * asks for no start line of its own) and creates nothing.
 */
async function explain(request: RunRequest): Promise<number> {
  const explanation = await launch(request.spec, {
    verbose: request.verbose,
    queueDemo: request.queueDemo,
    onWarning: (message) => writeErrorLine(`invoke_ns: warning: ${message}`),
    explain: true,
  });
  // loaded only for --explain
  const { explanationText } = await import("./explain.ts");
  writeOut(explanationText(explanation, request.json));
  return 0;
}

/** The limit options' names (issue 17); the rest of the deferred ones are containment's. */
const LIMIT_OPTIONS = new Set([
  "memory",
  "memory-swap",
  "pids",
  "cpus",
  "cpuset",
  "cpu-time",
  "wall-time",
  "stats",
]);

/**
 * Parses the limit and containment options into the spec, loading their
 * modules only when there are some; returns the limits module when used.
 */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
const applyDeferredOptions = (async function applyDeferredOptions(
  request: RunRequest,
): Promise<typeof import("./run_limits.ts") | undefined> {
  const limitOptions = request.deferred.filter((option) => LIMIT_OPTIONS.has(option.name));
  const containOptions = request.deferred.filter((option) => !LIMIT_OPTIONS.has(option.name));
  if (containOptions.length) {
    const { containmentOption } = await import("./run_contain.ts");
    for (const { name, value, spelled } of containOptions) {
      containmentOption(request.spec, name, value, spelled);
    }
  }
  if (!limitOptions.length) return undefined;
  const limits = await import("./run_limits.ts");
  for (const { name, value } of limitOptions) limits.parseLimitOption(name, value, request);
  return limits;
}).bind(null);
