/**
 * `invoke_ns oci VERB …` and `invoke_ns-oci VERB …`: an OCI runtime with
 * runc's command line, so that podman (`--runtime`), conmon and containerd's
 * shim drive it unchanged. Global options: `--root DIR`, `--log FILE`,
 * `--log-format text|json`, `--debug`, `--systemd-cgroup` (refused). Verbs:
 * spec, create, start, run, state, kill, delete, list, ps, exec, pause,
 * resume, features.
 * Exit status 0 or 1, as runc's; a failure is one line on stderr and one
 * record in the log (`--debug` also logs each verb called, as a debug record).
 * @module
 */

import { SIGNALS } from "../ffi/constants.ts";
import {
  accessible,
  close,
  F_OK,
  getgid,
  getuid,
  kill,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDONLY,
  open,
  read,
  readFile,
  waitForExit,
} from "../ffi/libc.ts";
import { pollReadable } from "../ffi/socket.ts";
import type { LaunchSpec } from "../lib/launch.ts";
import {
  applyResources,
  cgroupPids,
  createCgroups,
  freeze,
  removeCgroups,
} from "../lib/oci/cgroups.ts";
import type { ContainerConfig, HostFacts } from "../lib/oci/config.ts";
import { ConfigError, OCI_VERSION, UnsupportedError } from "../lib/oci/spec.ts";
import {
  containerIds,
  DEFAULT_ROOT,
  type ExecDefaults,
  FIFO_NAME,
  idProblem,
  processStartTime,
  type Record as ContainerRecord,
  specState,
  StateDir,
  statusOf,
  writeFileAtomically,
} from "../lib/oci/state.ts";
import type { SeccompProfile } from "../lib/seccomp.ts";
import { LaunchError } from "../lib/supervise.ts";
import { writeErrorLine, writeOut } from "./output.ts";

/** A verb's failure: one line, exit 1. */
class OciError extends Error {}

/** The options every verb may follow. */
interface Globals {
  root: string;
  log?: string;
  logFormat: "text" | "json";
  debug: boolean;
}

/** Options as runc's (urfave/cli): `-x`/`--x`, `--x=V` or `--x V`; booleans take no value. */
function parseOptions(
  args: string[],
  valued: string[],
  booleans: string[],
  repeatable: string[] = [],
): { options: Map<string, string[]>; rest: string[] } {
  const options = new Map<string, string[]>();
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const [name, inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2);
    if (booleans.includes(name)) {
      if (inline !== undefined && inline !== "true" && inline !== "false") {
        throw new OciError(`option --${name} takes no value`);
      }
      options.set(name, [inline ?? "true"]);
    } else if (valued.includes(name) || repeatable.includes(name)) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new OciError(`option --${name} needs a value`);
      options.set(name, [...(repeatable.includes(name) ? options.get(name) ?? [] : []), value]);
    } else throw new OciError(`flag provided but not defined: -${name}`);
  }
  return { options, rest: args.slice(i) };
}

const flag = (options: Map<string, string[]>, name: string) => options.get(name)?.[0] === "true";
const value = (options: Map<string, string[]>, name: string) => options.get(name)?.at(-1);

/** The one ID a verb takes. */
function theId(rest: string[], verb: string, more = 0): string {
  if (rest.length < 1 || rest.length > 1 + more) {
    throw new OciError(
      `${verb}: ${rest.length < 1 ? "a container ID is needed" : "too many arguments"}`,
    );
  }
  const problem = idProblem(rest[0]);
  if (problem) throw new OciError(problem);
  return rest[0];
}

/** What the host offers (read here, for the pure codec). */
function hostFacts(): HostFacts {
  // through libc: Deno refuses /sys to the CLI's permissions (not --allow-all)
  const exists = (path: string) => accessible(path, F_OK);
  return {
    apparmor: exists("/sys/kernel/security/apparmor"),
    selinux: exists("/sys/fs/selinux/enforce"),
  };
}

/** A signal by name (`KILL`, `SIGKILL`) or number. */
function parseSignal(text: string): number {
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 64) return Number(text);
  const name = text.toUpperCase().startsWith("SIG")
    ? text.toUpperCase()
    : `SIG${text.toUpperCase()}`;
  const number = SIGNALS[name];
  if (number === undefined) throw new OciError(`unknown signal "${text}"`);
  return number;
}

/** Waits until `pid` (with `startTime`) is gone or a zombie, up to `ms`. */
async function waitGone(pid: number, startTime: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    const live = processStartTime(pid);
    if (!live || live.startTime !== startTime || live.zombie) return true;
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The OCI state hooks get on stdin. */
function hookState(record: ContainerRecord) {
  return specState(record);
}

/** The bundle's config.json, checked and mapped onto the engine (the codec is loaded here). */
async function loadConfig(bundle: string): Promise<ContainerConfig> {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${bundle}/config.json`);
  } catch {
    throw new OciError(`${bundle}/config.json: cannot read it`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new OciError(`config.json: not JSON (${(error as Error).message})`);
  }
  const { parseConfig } = await import("../lib/oci/config.ts");
  return parseConfig(json, bundle, hostFacts());
}

/**
 * `create`: sets the container up and leaves it waiting at its FIFO
 * (`--explain`: prints its plan instead; `--trace`: prints each step as it runs).
 */
async function create(globals: Globals, args: string[], wait = false): Promise<number> {
  const { options, rest } = parseOptions(
    args,
    ["bundle", "b", "pid-file", "console-socket", "preserve-fds"],
    ["no-pivot", "no-new-keyring", "detach", "d", "keep", "no-subreaper", "explain", "trace"],
  );
  const id = theId(rest, "create");
  const bundle = Deno.realPathSync(value(options, "bundle") ?? value(options, "b") ?? ".");
  const preserve = Number(value(options, "preserve-fds") ?? "0");
  if (!Number.isInteger(preserve) || preserve < 0) {
    throw new OciError("--preserve-fds: must be a number");
  }
  if (preserve > 0) throw new UnsupportedError("--preserve-fds", "not yet honoured");
  const config = await loadConfig(bundle);
  const spec = config.spec;
  if (flag(options, "no-pivot")) spec.chrootOnly = true;
  const consoleSocket = value(options, "console-socket");
  if (spec.container!.terminal && consoleSocket === undefined) {
    throw new OciError("process.terminal needs --console-socket");
  }
  if (!spec.container!.terminal && consoleSocket !== undefined) {
    throw new OciError("--console-socket is for a container with process.terminal");
  }
  if (consoleSocket !== undefined) spec.container!.consoleSocket = Deno.realPathSync(consoleSocket);
  if (flag(options, "explain")) return await explainCreate(globals, id, spec);
  const dir = StateDir.create(globals.root, id);
  const record: ContainerRecord = {
    ociVersion: config.ociVersion,
    id,
    bundle,
    rootfs: spec.jail!,
    pid: 0,
    startTime: 0,
    created: new Date().toISOString(),
    cgroups: [],
    cgroupsMade: [],
    annotations: config.annotations,
    exec: config.exec,
    poststart: config.poststart,
    poststop: config.poststop,
    owner: getuid(),
    started: false,
  };
  let done = false;
  let launched = 0;
  try {
    dir.makeFifo();
    if (config.cgroupsPath) {
      const { join, made } = createCgroups(config.cgroupsPath);
      record.cgroups = join;
      record.cgroupsMade = made;
      spec.cgroups = join;
      if (config.resources) applyResources(config.cgroupsPath, config.resources);
    }
    dir.write(record);
    spec.startFifo = dir.fifo;
    spec.hookState = specState(record); // "creating"; the hooks get the PID with it
    // The engine is loaded by the verbs that start a process (create, exec) only.
    const { launchDetached } = await import("../lib/launch.ts");
    // --trace: each step on stderr as it runs, the tool's here, the init stage's in it (and
    // after create has returned: its stderr is the container's)
    const started = await launchDetached(spec, { trace: flag(options, "trace") });
    launched = started.pid;
    const live = processStartTime(started.pid);
    if (!live) throw new OciError("the container's process ended during create");
    record.pid = started.pid;
    record.startTime = live.startTime;
    dir.write(record);
    const pidFile = value(options, "pid-file");
    if (pidFile !== undefined) writeFileAtomically(pidFile, String(started.pid));
    done = true;
  } finally {
    if (!done) {
      // a process that waits for a start that will never come
      if (launched) kill(launched, SIGNALS.SIGKILL);
      removeCgroups(record.cgroupsMade);
      dir.remove();
    } else dir.release();
  }
  if (wait) {
    return await runToEnd(globals, id, record.pid, flag(options, "detach") || flag(options, "d"));
  }
  return 0;
}

/**
 * `create --explain` (and `run --explain`): the container's plan, printed,
 * with nothing created (no state directory, FIFO or cgroup): the FIFO is
 * the one create would make; the cgroups of `linux.cgroupsPath` are not
 * made, so their join is not shown.
 */
async function explainCreate(globals: Globals, id: string, spec: LaunchSpec): Promise<number> {
  spec.startFifo = `${globals.root}/${id}/${FIFO_NAME}`;
  const { launch } = await import("../lib/launch.ts");
  const explanation = await launch(spec, { dieWithParent: false, explain: true });
  // loaded only for --explain
  const { explanationText } = await import("./explain.ts");
  writeOut(explanationText(explanation, false));
  return 0;
}

/** `run` after create: start, then (without -d) wait for the process and delete. */
async function runToEnd(
  globals: Globals,
  id: string,
  pid: number,
  detach: boolean,
): Promise<number> {
  await start(globals, [id]);
  if (detach) return 0;
  const status = await waitForExit(pid);
  await remove(globals, ["--force", id]);
  return status.exited ? status.code : 128 + status.signal;
}

/** `start`: opens the FIFO, so the waiting process runs the program; then the poststart hooks. */
async function start(globals: Globals, args: string[]): Promise<number> {
  const { rest } = parseOptions(args, [], []);
  const id = theId(rest, "start");
  const dir = StateDir.open(globals.root, id);
  try {
    const record = dir.read();
    const status = statusOf(record);
    if (status !== "created") throw new OciError(`cannot start a container that is ${status}`);
    const fifo = open(dir.fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    try {
      // the waiting process's open completes now, and it writes one byte
      const byte = new Uint8Array(1);
      for (;;) {
        pollReadable([fifo], 100);
        let got = 0;
        try {
          got = read(fifo, byte);
        } catch {
          got = 0; // EAGAIN: not written yet
        }
        if (got === 1) break;
        if (statusOf(record) === "stopped") {
          throw new OciError("the container's process ended before it started");
        }
      }
    } finally {
      close(fifo);
    }
    Deno.removeSync(dir.fifo);
    record.started = true;
    dir.write(record);
    if (record.poststart.length) {
      try {
        const { runHooks } = await import("../lib/hooks.ts");
        await runHooks("poststart", record.poststart, hookState(record));
      } catch (error) {
        // runtime-spec: a poststart failure is a warning; the container goes on
        log(globals, "warning", (error as Error).message);
      }
    }
  } finally {
    dir.release();
  }
  return 0;
}

/** `pause ID` and `resume ID`: freeze and thaw every process of the container (its cgroup). */
async function pauseVerb(globals: Globals, args: string[], paused: boolean): Promise<number> {
  const { rest } = parseOptions(args, [], []);
  const id = theId(rest, paused ? "pause" : "resume");
  const dir = StateDir.open(globals.root, id);
  try {
    const record = dir.read();
    const status = statusOf(record);
    const from = paused ? ["running", "created"] : ["paused"];
    if (!from.includes(status)) {
      throw new OciError(`cannot ${paused ? "pause" : "resume"} a container that is ${status}`);
    }
    await freeze(record.cgroups, paused);
    record.paused = paused;
    dir.write(record);
  } finally {
    dir.release();
  }
  return 0;
}

/** `state ID`: the spec's state, as JSON. */
function state(globals: Globals, args: string[]): number {
  const { rest } = parseOptions(args, [], []);
  const id = theId(rest, "state");
  const dir = StateDir.open(globals.root, id);
  try {
    writeOut(`${JSON.stringify(specState(dir.read()), null, 2)}\n`);
  } finally {
    dir.release();
  }
  return 0;
}

/** `kill [--all] ID [SIGNAL]`. */
function killVerb(globals: Globals, args: string[]): number {
  const { options, rest } = parseOptions(args, [], ["all", "a"]);
  const id = theId(rest, "kill", 1);
  const signal = parseSignal(rest[1] ?? "SIGTERM");
  const dir = StateDir.open(globals.root, id);
  try {
    const record = dir.read();
    const status = statusOf(record);
    if (status === "stopped" || status === "creating") {
      throw new OciError(`cannot kill a container that is ${status}`);
    }
    const all = flag(options, "all") || flag(options, "a");
    const pids = all && record.cgroups.length ? cgroupPids(record.cgroups) : [record.pid];
    for (const pid of pids) kill(pid, signal);
  } finally {
    dir.release();
  }
  return 0;
}

/** `delete [--force] ID`: removes the state, the cgroups; runs poststop. */
async function remove(globals: Globals, args: string[]): Promise<number> {
  const { options, rest } = parseOptions(args, [], ["force", "f"]);
  const id = theId(rest, "delete");
  const force = flag(options, "force") || flag(options, "f");
  let dir: StateDir;
  try {
    dir = StateDir.open(globals.root, id);
  } catch (error) {
    if (force) return 0; // runc: --force on a missing container is no error
    throw error;
  }
  try {
    const record = dir.read();
    const status = statusOf(record);
    if (status !== "stopped" && record.pid !== 0) {
      // as runc: a created container (waiting for start) goes without --force, a running one not
      if (!force && status !== "created") {
        throw new OciError(`cannot delete a container that is ${status} (use --force)`);
      }
      for (const pid of record.cgroups.length ? cgroupPids(record.cgroups) : []) {
        kill(pid, SIGNALS.SIGKILL);
      }
      // a frozen process dies only once thawed
      if (record.paused) await freeze(record.cgroups, false);
      kill(record.pid, SIGNALS.SIGKILL);
      if (!await waitGone(record.pid, record.startTime, 10_000)) {
        throw new OciError(`process ${record.pid} did not end after SIGKILL`);
      }
    }
    // the other processes of its cgroup (a PID namespace's end kills them; without one, SIGKILL)
    for (let round = 0; round < 200; round++) {
      const left = cgroupPids(record.cgroups);
      if (left.length === 0) break;
      for (const pid of left) kill(pid, SIGNALS.SIGKILL);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const left = removeCgroups(record.cgroupsMade);
    if (record.poststop.length) {
      try {
        const { runHooks } = await import("../lib/hooks.ts");
        await runHooks("poststop", record.poststop, { ...hookState(record), status: "stopped" });
      } catch (error) {
        log(globals, "warning", (error as Error).message);
      }
    }
    dir.remove();
    if (left.length) throw new OciError(`cgroup ${left[0]}: could not be removed`);
  } finally {
    dir.release();
  }
  return 0;
}

/** `list [--format table|json] [-q]`. */
function list(globals: Globals, args: string[]): number {
  const { options } = parseOptions(args, ["format", "f"], ["quiet", "q"]);
  const format = value(options, "format") ?? value(options, "f") ?? "table";
  const records = containerIds(globals.root).flatMap((id) => {
    try {
      return [JSON.parse(Deno.readTextFileSync(`${globals.root}/${id}/state.json`))];
    } catch {
      return [];
    }
  }) as ContainerRecord[];
  if (flag(options, "quiet") || flag(options, "q")) {
    writeOut(records.map((r) => `${r.id}\n`).join(""));
  } else if (format === "json") {
    writeOut(`${JSON.stringify(records.map(specState))}\n`);
  } else if (format === "table") {
    const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]];
    for (const r of records) {
      const s = specState(r);
      rows.push([r.id, String(s.pid), String(s.status), r.bundle, r.created, String(r.owner)]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    writeOut(
      rows.map((row) => `${row.map((c, i) => c.padEnd(widths[i])).join("   ").trimEnd()}\n`).join(
        "",
      ),
    );
  } else throw new OciError(`invalid format option "${format}"`);
  return 0;
}

/** `ps [--format table|json] ID`: the container's processes. */
function ps(globals: Globals, args: string[]): number {
  const { options, rest } = parseOptions(args, ["format", "f"], []);
  const id = theId(rest, "ps");
  const dir = StateDir.open(globals.root, id);
  try {
    const record = dir.read();
    if (statusOf(record) === "stopped") throw new OciError("the container is stopped");
    const pids = record.cgroups.length ? cgroupPids(record.cgroups) : [record.pid];
    if ((value(options, "format") ?? value(options, "f")) === "json") {
      writeOut(`${JSON.stringify(pids)}\n`);
    } else {
      const command = (pid: number) => {
        try {
          return readFile(`/proc/${pid}/cmdline`).split("\0").join(" ").trim(); // libc: as above
        } catch {
          return "";
        }
      };
      writeOut(
        ["PID   CMD", ...pids.map((pid) => `${String(pid).padEnd(5)} ${command(pid)}`)].join("\n") +
          "\n",
      );
    }
  } finally {
    dir.release();
  }
  return 0;
}

/** `exec [--process FILE | ARGS…] ID`: a program in the container's namespaces. */
async function exec(globals: Globals, args: string[]): Promise<number> {
  const { options, rest } = parseOptions(
    args,
    [
      "process",
      "p",
      "console-socket",
      "pid-file",
      "cwd",
      "user",
      "u",
      "process-label",
      "apparmor",
      "cgroup",
    ],
    ["tty", "t", "detach", "d", "no-new-privs", "ignore-paused", "preserve-fds"],
    ["env", "e", "cap", "c", "additional-gids", "g"],
  );
  const id = rest[0];
  if (id === undefined) throw new OciError("exec: a container ID is needed");
  const problem = idProblem(id);
  if (problem) throw new OciError(problem);
  let command = rest.slice(1);
  let env: string[] = [...options.get("env") ?? [], ...options.get("e") ?? []];
  let cwd = value(options, "cwd");
  let terminal = flag(options, "tty") || flag(options, "t");
  let user: { uid: number; gid: number; additionalGids?: number[] } | undefined;
  let processCapabilities: unknown;
  let processNoNewPrivs: unknown;
  const processFile = value(options, "process") ?? value(options, "p");
  if (processFile !== undefined) {
    const process = JSON.parse(Deno.readTextFileSync(processFile));
    command = process.args ?? [];
    env = process.env ?? [];
    cwd = process.cwd;
    terminal = Boolean(process.terminal);
    user = process.user;
    processCapabilities = process.capabilities;
    processNoNewPrivs = process.noNewPrivileges;
  }
  if (command.length === 0) throw new OciError("exec: a command is needed");
  if (terminal) throw new UnsupportedError("exec --tty", "not yet honoured");
  if (cwd !== undefined && !cwd.startsWith("/")) throw new OciError("exec --cwd: must be absolute");
  const userOption = value(options, "user") ?? value(options, "u");
  if (userOption !== undefined) {
    const match = userOption.match(/^(\d+)(?::(\d+))?$/);
    if (!match) throw new OciError(`exec --user: "${userOption}" is not UID[:GID]`);
    user = { uid: Number(match[1]), gid: Number(match[2] ?? 0) };
  }
  const groups = [...options.get("additional-gids") ?? [], ...options.get("g") ?? []];
  for (const group of groups) {
    if (!/^\d+$/.test(group)) throw new OciError(`exec --additional-gids: "${group}" is not a GID`);
  }
  if (groups.length) {
    user = { uid: user?.uid ?? 0, gid: user?.gid ?? 0, additionalGids: groups.map(Number) };
  }
  if (options.get("cap")?.length || options.get("c")?.length) {
    throw new UnsupportedError(
      "exec --cap",
      "not implemented (give a --process file's capabilities)",
    );
  }
  const detach = flag(options, "detach") || flag(options, "d");
  const dir = StateDir.open(globals.root, id);
  let pid: number;
  let defaults: ExecDefaults;
  let cgroups: string[];
  try {
    const record = dir.read();
    const status = statusOf(record);
    if (status !== "running" && status !== "created") {
      throw new OciError(`cannot exec in a container that is ${status}`);
    }
    pid = record.pid;
    defaults = record.exec ?? { noNewPrivs: false };
    cgroups = record.cgroups;
  } finally {
    dir.release();
  }
  // as runc: the process's capabilities (else the container's), granted for the exec's own
  // user; the container's filter; all from config.json as it was at create
  const given = processCapabilities ?? defaults.capabilities;
  let capabilities: string[] | undefined;
  try {
    const { grantedCapabilities } = await import("../lib/oci/config.ts");
    capabilities = given == null ? undefined : grantedCapabilities(given, user?.uid ?? 0);
  } catch (error) {
    if (error instanceof ConfigError) throw new OciError(`exec: ${error.message}`);
    throw error;
  }
  const noNewPrivs = flag(options, "no-new-privs") ||
    (processNoNewPrivs === undefined ? defaults.noNewPrivs : processNoNewPrivs === true);
  let seccompFilter;
  const seccomp = defaults.seccomp as SeccompProfile | undefined;
  if (seccomp !== undefined) {
    const { profileSeccompFilter } = await import("../lib/contain.ts");
    const { capabilityMask } = await import("../lib/capabilities.ts");
    const { boundingCapabilities } = await import("../ffi/contain.ts");
    seccompFilter = profileSeccompFilter(
      seccomp,
      capabilities ? capabilityMask(capabilities) : boundingCapabilities(),
    );
  }
  for (const entry of env) {
    if (entry.indexOf("=") < 1) {
      throw new OciError(`exec: ${JSON.stringify(entry)} is not KEY=VALUE`);
    }
  }
  const pidFile = value(options, "pid-file");
  // ARGS: the container's own environment (its process's), with --env added, as runc's
  const exactEnv = processFile !== undefined ? env : [...containerEnvironment(pid), ...env];
  const [{ planEnter }, { runPlan }] = await Promise.all([
    import("../lib/enter.ts"),
    import("../lib/runner.ts"),
  ]);
  const plan = planEnter(pid, {
    command,
    exactEnv,
    cwd,
    user,
    capabilities,
    noNewPrivs,
    seccompFilter,
    cgroups,
  });
  // -d (conmon's way): the process goes on alone, reparented to the caller's subreaper
  if (detach) plan.dieWithParent = false;
  const result = await runPlan(plan, {
    forwardSignals: !detach,
    onStart: (started) => {
      if (pidFile !== undefined) writeFileAtomically(pidFile, String(started));
      if (detach) Deno.exit(0);
    },
  });
  return result.code;
}

/** The environment of the container's process (what `exec ARGS` starts from). */
function containerEnvironment(pid: number): string[] {
  try {
    return readFile(`/proc/${pid}/environ`).split("\0").filter((entry) => entry.includes("="));
  } catch {
    return [];
  }
}

/** `spec [--rootless] [--bundle DIR]`: writes a default config.json. */
function specVerb(args: string[]): number {
  const { options } = parseOptions(args, ["bundle", "b"], ["rootless"]);
  const bundle = value(options, "bundle") ?? value(options, "b") ?? ".";
  const path = `${bundle}/config.json`;
  try {
    Deno.statSync(path);
    throw new OciError(`File ${path} exists. Remove it first`);
  } catch (error) {
    if (error instanceof OciError) throw error;
  }
  const rootless = flag(options, "rootless");
  Deno.writeTextFileSync(path, `${JSON.stringify(defaultConfig(rootless), null, "\t")}\n`);
  return 0;
}

/** The config `spec` writes: runc's defaults (a `sh` in a busybox-style root), trimmed of what is refused. */
export function defaultConfig(rootless: boolean): Record<string, unknown> {
  const namespaces = ["pid", "network", "ipc", "uts", "mount", ...(rootless ? ["user"] : [])];
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
    },
    root: { path: "rootfs", readonly: true },
    hostname: "invoke_ns",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: [
          "nosuid",
          "noexec",
          "newinstance",
          "ptmxmode=0666",
          "mode=0620",
          ...(rootless ? [] : ["gid=5"]),
        ],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      rootless
        ? {
          destination: "/sys",
          type: "none",
          source: "/sys",
          options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
        : {
          destination: "/sys",
          type: "sysfs",
          source: "sysfs",
          options: ["nosuid", "noexec", "nodev", "ro"],
        },
    ],
    linux: {
      ...(rootless
        ? {
          uidMappings: [{ containerID: 0, hostID: getuid(), size: 1 }],
          gidMappings: [{ containerID: 0, hostID: getgid(), size: 1 }],
        }
        : {}),
      namespaces: namespaces.map((type) => ({ type })),
    },
  };
}

/** `features`: what this runtime honours (runtime-spec features.json). */
function features(): number {
  writeOut(`${
    JSON.stringify(
      {
        ociVersionMin: "1.0.0",
        ociVersionMax: OCI_VERSION,
        hooks: [
          "prestart",
          "createRuntime",
          "createContainer",
          "startContainer",
          "poststart",
          "poststop",
        ],
        mountOptions: [
          "bind",
          "rbind",
          "ro",
          "rw",
          "nosuid",
          "suid",
          "nodev",
          "dev",
          "noexec",
          "exec",
          "sync",
          "async",
          "dirsync",
          "noatime",
          "atime",
          "nodiratime",
          "diratime",
          "relatime",
          "norelatime",
          "strictatime",
          "nostrictatime",
          "lazytime",
          "nolazytime",
          "mand",
          "nomand",
          "silent",
          "loud",
          "private",
          "rprivate",
          "slave",
          "rslave",
          "shared",
          "rshared",
          "unbindable",
          "runbindable",
        ],
        linux: {
          namespaces: ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"],
          capabilities: [],
          cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
          seccomp: { enabled: false },
          apparmor: { enabled: false },
          selinux: { enabled: false },
        },
        annotations: { "io.github.invoke_ns.version": OCI_VERSION },
      },
      null,
      2,
    )
  }\n`);
  return 0;
}

/** Writes one log record (`--log`), in the chosen format. */
function log(globals: Globals, level: string, message: string): void {
  if (globals.log === undefined) return;
  const time = new Date().toISOString();
  const line = globals.logFormat === "json"
    ? JSON.stringify({ level, msg: message, time })
    : `time="${time}" level=${level} msg=${JSON.stringify(message)}`;
  try {
    Deno.writeTextFileSync(globals.log, `${line}\n`, { append: true, create: true });
  } catch {
    // the log is gone: stderr still tells
  }
}

/** The verbs runc has that this runtime does not (yet): refused by name. */
const REFUSED_VERBS = ["update", "checkpoint", "restore", "events"];

/** Runs `invoke_ns oci ARGS`; returns the exit status. Never throws. */
export async function runOci(args: string[], program: string): Promise<number> {
  const globals: Globals = { root: DEFAULT_ROOT, logFormat: "text", debug: false };
  try {
    const { options, rest } = parseOptions(
      args,
      ["root", "log", "log-format", "criu", "rootless"],
      ["debug", "systemd-cgroup", "help", "h", "version", "v"],
    );
    globals.root = value(options, "root") ?? DEFAULT_ROOT;
    globals.log = value(options, "log");
    const format = value(options, "log-format") ?? "text";
    if (format !== "text" && format !== "json") {
      throw new OciError(`--log-format: "${format}" is neither text nor json`);
    }
    globals.logFormat = format;
    globals.debug = flag(options, "debug");
    if (flag(options, "systemd-cgroup")) {
      throw new UnsupportedError(
        "--systemd-cgroup",
        "cgroups are made with cgroupfs: use podman --cgroup-manager=cgroupfs",
      );
    }
    if (flag(options, "version") || flag(options, "v")) {
      writeOut(`${program} oci version 0.1.0\nspec: ${OCI_VERSION}\n`);
      return 0;
    }
    const [verb, ...verbArgs] = rest;
    if (globals.debug) log(globals, "debug", `${verb ?? ""} ${verbArgs.join(" ")}`.trim());
    if (flag(options, "help") || flag(options, "h") || verb === undefined || verb === "help") {
      writeOut(
        `usage: ${program} oci [--root DIR] [--log FILE] [--log-format text|json] VERB …\n` +
          "verbs: spec, create, start, run, state, kill, delete, list, ps, exec, pause, resume,\n" +
          "       features\n",
      );
      return verb === undefined && !flag(options, "help") && !flag(options, "h") ? 1 : 0;
    }
    switch (verb) {
      case "spec":
        return specVerb(verbArgs);
      case "create":
        return await create(globals, verbArgs);
      case "run":
        return await create(globals, verbArgs, true);
      case "start":
        return await start(globals, verbArgs);
      case "state":
        return state(globals, verbArgs);
      case "kill":
        return killVerb(globals, verbArgs);
      case "delete":
        return await remove(globals, verbArgs);
      case "list":
        return list(globals, verbArgs);
      case "ps":
        return ps(globals, verbArgs);
      case "exec":
        return await exec(globals, verbArgs);
      case "features":
        return features();
      case "pause":
        return await pauseVerb(globals, verbArgs, true);
      case "resume":
        return await pauseVerb(globals, verbArgs, false);
    }
    if (REFUSED_VERBS.includes(verb)) throw new UnsupportedError(verb, "not yet honoured");
    throw new OciError(`no such verb "${verb}"`);
  } catch (error) {
    let message: string;
    if (
      error instanceof OciError || error instanceof ConfigError || error instanceof UnsupportedError
    ) {
      message = error.message;
    } else if (error instanceof LaunchError) {
      const named = error.kind === "usage" || error.message.startsWith(`${error.step}: `);
      message = named ? error.message : `${error.step}: ${error.message}`;
    } else if (error instanceof Error) {
      message = error.message;
    } else message = String(error);
    log(globals, "error", message);
    try {
      writeErrorLine(`${program}: ${message}`);
    } catch {
      // stderr is gone: the status still tells
    }
    return 1;
  }
}
