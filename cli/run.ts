/**
 * The run form: `invoke_ns [options] [--] [cmd [arg...]]`, with exactly the
 * seed's option letters plus the newer namespace types.
 * @module
 */

import { launch, LaunchError, type LaunchSpec } from "../lib/launch.ts";
import { DEMO_QUEUE } from "../lib/ipc.ts";
import { parseBindSpec } from "../lib/mount.ts";
import { parseIdRange } from "../lib/user.ts";
import { formatLimit, parseRlimit } from "../lib/rlimits.ts";
import { getopt, type OptionSpec, UsageError } from "./getopt.ts";
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
  { name: "veth", value: "optional" },
  { name: "veth-name", value: "required" },
  { name: "no-route", value: "none" },
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

/** The `-h` text: the seed's layout, then the options this tool adds. */
export function runHelp(program: string): string {
  return `Usage: ${program} [options] [cmd [arg...]]
Options can be:
    -h           display this help message
    -v           display verbose messages
    -p           new PID namespace
    -m           new MNT namespace
    -u hostname  new UTS namespace with associated hostname
    -n           new NET namespace
    -i no|yes    create message queue in new IPC namespace (yes), or default namespace (no):
    -c dir       jail process in specified directory
More options:
    -I           new IPC namespace, without the message queue
    -U           new USER namespace, mapping you to root (implied when not root)
    -C           new CGROUP namespace
    -T           new TIME namespace (see --monotonic, --boottime)
    -e KEY=VAL   add a variable to the command's environment
    --keep-env   pass the whole environment (default: PATH, TERM, HOME and a few more)
    --map-user UID, --map-group GID   IDs you become inside the user namespace (default 0)
    --map-users INNER:OUTER:COUNT, --map-groups INNER:OUTER:COUNT  whole ID maps
                 (repeatable; rootless through newuidmap, from your /etc/subuid ranges)
    --map-auto   you are 0 inside, your /etc/subuid and /etc/subgid range 1 and up
    --monotonic SECS, --boottime SECS  clock offsets of the time namespace
    --mq-name NAME    queue name for -i (default ${DEMO_QUEUE})
    --stop-timeout SECS  after forwarding SIGTERM/SIGHUP, SIGKILL after this long (default 10)
With -m:
    --bind SRC[:DST]     bind-mount SRC at DST (inside the jail with -c)
    --ro-bind SRC[:DST]  the same, read-only
    --tmpfs DST          mount an empty tmpfs at DST
    --dev                a minimal /dev (null, zero, full, random, urandom, tty)
    --chroot             jail with chroot(2) as the seed did, not pivot_root(2)
    --no-new-privs       set PR_SET_NO_NEW_PRIVS (setuid binaries grant nothing)
Networking:
    --veth[=HOST_CIDR,GUEST_CIDR]  a veth link to the host (implies -n; needs root):
                 eth0 inside, both ends addressed and up, a default route inside
                 (default 10.0.0.1/24,10.0.0.2/24, or the next free 10.0.N.0/24)
    --veth-name NAME   the host end's name (default ns<pid>)
    --no-route   no default route inside
Containment:
    --contain    docker's defaults: its capabilities less MKNOD, --seccomp default,
                 runc's masked and read-only /proc and /sys paths, --no-new-privs, a
                 session keyring of its own, --pty on a terminal (else --new-session);
                 implies -p -m; jails by pivot_root only. Without -c the host's files
                 are still there for a root inside: add -c DIR, or -U without sudo
    --cap-drop CAP|ALL, --cap-add CAP   capabilities (CAP_NET_ADMIN or net_admin; repeatable)
    --uid UID, --gid GID, --groups GID,...   the user the command runs as (after setup)
    --seccomp FILE|default   a seccomp filter: an OCI/docker JSON profile, or our own
    --mask PATH         PATH becomes /dev/null (a file) or an empty read-only tmpfs (a directory)
    --remount-ro PATH   PATH is made read-only
    --rlimit NAME=SOFT[:HARD]   a resource limit (prlimit's names: nofile, nproc, as, cpu, core...)
    --chdir DIR  the command's working directory
    --new-session  setsid: no controlling terminal (without CAP_SYS_ADMIN, no TIOCSTI into yours)
    --pty        a pseudo-terminal of the command's own, relayed to yours
For scripts:
    --json       print JSON lines: {"event":"start",...} with the child's PIDs and
                 namespaces once the command runs, {"event":"exit",...} at its end
Subcommands (${program} COMMAND --help for each):
    tour         a guided demonstration of every namespace type: start here
    enter        run a command in the namespaces of a running process, like nsenter
    ns           which namespaces processes are in, like lsns
    jail         build a root filesystem for -c (env, bash, ps, ls, top by default)
    binlibdepcp  copy a binary and the libraries it needs (the seed's script)
    completions  print a bash completion script
Exit status: the command's own; 128+N if it was killed by signal N; 125 if setup
failed; 126 if the command cannot be executed; 127 if it was not found; 2 for a
usage error.
`;
}

function integer(text: string, spelled: string, min = -(2 ** 53), max = 2 ** 53): number {
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
}

/** Parses the run form's arguments into a request; throws {@link UsageError}. */
export function parseRun(args: string[]): RunRequest {
  const { options, operands } = getopt(args, RUN_OPTIONS);
  const spec: LaunchSpec = { command: operands };
  const request: RunRequest = { spec, verbose: false, help: false, json: false };
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
      case "env": {
        const at = value.indexOf("=");
        if (at <= 0) {
          throw new UsageError(`${option.spelled}: expected KEY=VALUE, got '${value}'`);
        }
        spec.env = { ...spec.env, [value.slice(0, at)]: value.slice(at + 1) };
        break;
      }
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
      case "stop-timeout":
        request.stopTimeoutMs = integer(value, option.spelled, 0, 86400) * 1000;
        break;
      default:
        containmentOption(spec, option.name, value, option.spelled);
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
}

/** The containment options (issue 16) into `spec`. */
function containmentOption(spec: LaunchSpec, name: string, value: string, spelled: string): void {
  const list = (text: string) => text.split(",").map((word) => word.trim()).filter(Boolean);
  switch (name) {
    case "cap-drop":
    case "cap-add": {
      const caps = spec.capabilities ?? {};
      const key = name === "cap-drop" ? "drop" : "add";
      caps[key] = [...caps[key] ?? [], ...list(value)];
      spec.capabilities = caps;
      break;
    }
    case "uid":
      spec.uid = integer(value, spelled, 0, 0xfffffffe);
      break;
    case "gid":
      spec.gid = integer(value, spelled, 0, 0xfffffffe);
      break;
    case "groups":
      spec.groups = list(value).map((g) => integer(g, spelled, 0, 0xfffffffe));
      break;
    case "seccomp":
      if (value === "default") {
        spec.seccomp = "default";
      } else {
        try {
          spec.seccomp = Deno.readTextFileSync(value);
        } catch (error) {
          throw new LaunchError(
            "seccomp",
            `${value}: ${
              error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message
            }`,
            125,
          );
        }
      }
      break;
    case "mask":
      spec.maskedPaths = [...spec.maskedPaths ?? [], value];
      break;
    case "remount-ro":
      spec.readonlyPaths = [...spec.readonlyPaths ?? [], value];
      break;
    case "rlimit": {
      let limit;
      try {
        limit = parseRlimit(value);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      spec.rlimits = {
        ...spec.rlimits,
        [limit.name]: [formatLimit(limit.soft), formatLimit(limit.hard)],
      };
      break;
    }
    case "chdir":
      spec.chdir = value;
      break;
    case "new-session":
      spec.newSession = true;
      break;
    case "pty":
      spec.pty = true;
      break;
    case "contain":
      spec.contain = true;
      break;
  }
}

/** Runs the run form; returns the exit status. */
export async function run(args: string[], program: string): Promise<number> {
  const request = parseRun(args);
  if (request.help) {
    writeOut(runHelp(program));
    return 0;
  }
  let result;
  try {
    result = await launch(request.spec, {
      verbose: request.verbose,
      queueDemo: request.queueDemo,
      forwardSignals: true,
      stopTimeoutMs: request.stopTimeoutMs,
      announceStart: request.json,
      onWarning: (message) => writeErrorLine(`invoke_ns: warning: ${message}`),
    });
  } catch (error) {
    if (request.json && error instanceof LaunchError) {
      const { step, message, exitCode: code } = error;
      writeOutBestEffort(`${JSON.stringify({ event: "error", step, message, code })}\n`);
    }
    throw error;
  }
  if (request.json) {
    writeOutBestEffort(
      `${JSON.stringify({ event: "exit", code: result.code, signal: result.signal ?? null })}\n`,
    );
  }
  if (request.verbose) {
    writeOutBestEffort(`Parent: ${program} - Finishing up\n`);
  }
  return result.code;
}
