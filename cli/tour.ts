/**
 * `invoke_ns tour`: a guided demonstration of every namespace type. For each
 * type, one probe runs on the host and in a new namespace of that type, and
 * the two outputs are shown side by side with a sentence on what changed.
 * Works as root and rootless (then every namespace comes inside a user one).
 *
 * The tour leaves nothing behind, however it ends (SIGINT, SIGTERM, SIGHUP,
 * even SIGKILL), because it makes nothing that could outlive it: no file, no
 * directory, no IPC object on the host. A probe's output is caught in a memfd
 * (an anonymous file that dies with its descriptors) put on the probe's
 * stdout and stderr; the mount probe mounts its tmpfs over /tmp inside its
 * own private mount namespace (the host's /tmp is never touched); the IPC
 * probe makes its System V queue inside the new IPC namespace, which takes
 * the queue with it when the probe ends. Probes die with the tour
 * (PR_SET_PDEATHSIG). So nothing needs cleaning up on a signal, and nothing
 * is ever opened by name in a directory someone else can write (/tmp).
 * @module
 */

import { accessible, close, getuid, readFile, X_OK } from "../ffi/libc.ts";
import { dup, dup2, listDirectory, memfdCreate } from "../ffi/files.ts";
import { DEFAULT_PATH } from "../lib/env.ts";
import { launch, LaunchError, type LaunchResult, type LaunchSpec } from "../lib/launch.ts";
import type { LaunchUsage } from "../lib/usage.ts";
import { bold, dim } from "./colour.ts";
import { UsageError } from "./getopt.ts";
import { writeOut } from "./output.ts";

/** One stop of the tour. */
interface Stop {
  /** Heading, e.g. "UTS namespace". */
  title: string;
  /** The invoke_ns option that asks for it. */
  option: string;
  /** The namespace file compared, in /proc/self/ns. */
  nsFile: string;
  /** What the new namespace gets. */
  spec: Partial<LaunchSpec>;
  /** The shell probe run on both sides. */
  probe: string;
  /** Run on the host instead of `probe`, when it differs (e.g. after the inside run). */
  hostProbe?: string;
  /** One sentence on what changed and why. */
  why: string;
  /** Said instead of `why` when this host cannot show a difference (and it is not a failure). */
  nothingToSee?: string;
  /** What the left side runs with instead of the host as it is (containment stops). */
  hostSpec?: Partial<LaunchSpec>;
}

const COLUMN = 40;

/**
 * The line of /proc/self/cgroup where this process sits deepest (the one a
 * cgroup namespace visibly changes), as a grep pattern, and whether any
 * hierarchy puts it below the root at all.
 */
function deepestCgroup(): { pattern: string; belowRoot: boolean } {
  const lines = readFile("/proc/self/cgroup").trim().split("\n");
  const path = (line: string) => line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
  const deepest = lines.reduce((a, b) => path(b).length > path(a).length ? b : a);
  const prefix = deepest.slice(0, deepest.lastIndexOf(path(deepest)));
  return { pattern: `^${prefix}`, belowRoot: path(deepest) !== "/" };
}

const QUEUES = 'echo "message queues: $(tail -n +2 /proc/sysvipc/msg | wc -l)"; ' +
  'tail -n +2 /proc/sysvipc/msg | while read -r key id rest; do echo "  key $key, id $id"; done';

function stops(): Stop[] {
  const cgroup = deepestCgroup();
  // The probes run with the default PATH (lib/env.ts).
  const ipcmk = DEFAULT_PATH.split(":").some((dir) => accessible(`${dir}/ipcmk`, X_OK));
  const uid = getuid();
  return [
    {
      title: "UTS namespace: the hostname",
      option: "-u tour",
      nsFile: "uts",
      spec: { hostname: "tour" },
      probe: "hostname",
      why: "A UTS namespace has its own hostname: setting it inside left the host's alone.",
    },
    {
      title: "PID namespace: process IDs",
      option: "-p -m",
      nsFile: "pid",
      spec: { pid: true, mount: true },
      probe: 'echo "my PID is $$"; echo "$(ls /proc | grep -c "^[0-9]") processes in /proc"',
      why: "The first process of a new PID namespace is PID 1 and, with a fresh /proc " +
        "(hence -m), sees only its own namespace's processes.",
    },
    {
      title: "mount namespace: the mount table",
      option: "-m",
      nsFile: "mnt",
      spec: { mount: true },
      probe: "mount -t tmpfs invoke-ns-tour /tmp && " +
        'echo "tour mounts: $(grep -c invoke-ns-tour /proc/self/mountinfo)"',
      hostProbe: 'echo "tour mounts: $(grep -c invoke-ns-tour /proc/self/mountinfo)"',
      why: "A tmpfs mounted over /tmp in a new mount namespace (propagation private) is not " +
        "in the host's mount table, and the host's /tmp is untouched: the host side was " +
        "checked after the mount.",
    },
    {
      title: "IPC namespace: System V message queues",
      option: "-I",
      nsFile: "ipc",
      spec: { ipc: true },
      probe: ipcmk ? `ipcmk -Q > /dev/null; ${QUEUES}` : QUEUES,
      hostProbe: QUEUES,
      why: "Inside, the probe made a System V message queue (ipcmk -Q): the new IPC " +
        "namespace sees only that one, the host never sees it, and it went with the " +
        "namespace when the probe ended (the -i yes demo shows the same for POSIX queues).",
      nothingToSee: ipcmk ? undefined : "ipcmk (util-linux) is not installed, so no queue " +
        "was made inside to show; a new IPC namespace starts with none of the host's.",
    },
    {
      title: "network namespace: interfaces",
      option: "-n",
      nsFile: "net",
      spec: { net: true },
      probe: "echo \"links: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')\"",
      why: "A new network namespace has its own stack with only a loopback interface, down.",
    },
    {
      title: "user namespace: user and group IDs",
      option: "-U",
      nsFile: "user",
      spec: { user: true },
      probe: `echo "uid $(id -u), gid $(id -g)"; echo "uid_map: $(tr -s ' ' < /proc/self/uid_map)"`,
      why: `A user namespace maps IDs: inside, only your UID (${uid}) is mapped, to 0, as ` +
        "uid_map shows: root, but only over what the namespace owns.",
    },
    {
      title: "cgroup namespace: the cgroup root",
      option: "-C",
      nsFile: "cgroup",
      spec: { cgroup: true },
      probe: `echo "cgroup: $(grep '${cgroup.pattern}' /proc/self/cgroup)"`,
      why: "A cgroup namespace makes the current cgroup the root of the view: inside, the " +
        "process sits at / whatever its path on the host.",
      nothingToSee: cgroup.belowRoot ? undefined : "This process sits at the root of every " +
        "cgroup hierarchy, so the view cannot look different here; from a process in a " +
        "sub-cgroup (a systemd service, a container) the path inside would become /.",
    },
    {
      title: "time namespace: boot time",
      option: "-T --boottime 31536000",
      nsFile: "time",
      spec: { time: { boottime: 31_536_000 } },
      probe: 'echo "uptime: $(cut -d" " -f1 /proc/uptime) s"',
      why: "A time namespace offsets CLOCK_BOOTTIME (and CLOCK_MONOTONIC): inside, the " +
        "machine seems to have been up a year longer.",
    },
    // containment (issue 16): both sides in a namespace of their own, the right one contained
    {
      title: "capabilities: what root may do",
      option: "-m --cap-drop ALL",
      nsFile: "mnt",
      hostSpec: { mount: true },
      spec: { mount: true, capabilities: { drop: ["ALL"] } },
      probe: `out=$(mount -t tmpfs invoke-ns-tour /tmp 2>&1) && echo "mount: done" || ` +
        'echo "mount: ${out##*: }"; grep CapEff /proc/self/status',
      why: "Left, -m alone: root's capabilities let mount work (in its own mount namespace). " +
        "Right, every capability dropped: the same uid 0, but mount is refused.",
    },
    {
      title: "seccomp: system calls refused by a filter",
      option: "--seccomp default --no-new-privs",
      nsFile: "mnt",
      spec: { seccomp: "default", noNewPrivs: true },
      probe: 'out=$(setarch --read-implies-exec true 2>&1) && echo "personality: set" || ' +
        'echo "personality: ${out##*: }"; grep Seccomp: /proc/self/status',
      why: "A seccomp filter answers chosen system calls before the kernel runs them: " +
        "personality(READ_IMPLIES_EXEC) gets EPERM (Operation not permitted) under the default profile.",
    },
    {
      title: "masked paths: what a fresh /proc shows",
      option: "-pm --mask /proc/timer_list --remount-ro /proc/sys",
      nsFile: "mnt",
      hostSpec: { pid: true, mount: true },
      spec: {
        pid: true,
        mount: true,
        maskedPaths: ["/proc/timer_list"],
        readonlyPaths: ["/proc/sys"],
      },
      probe: "head -c 1 /proc/timer_list > /dev/null 2>&1 && " +
        'echo "timer_list: $(wc -c < /proc/timer_list) bytes" || echo "timer_list: unreadable"; ' +
        "test -w /proc/sys/kernel/core_pattern && echo core_pattern writable || echo core_pattern read-only",
      why:
        "Left, a fresh /proc as -pm gives it: the kernel's timers, and (as root) core_pattern, " +
        "which the host kernel obeys. Right, masked (/dev/null) and read-only, as --contain does.",
    },
  ];
}

/**
 * Runs `script` with `spec`, then prints the identity of namespace `nsFile`;
 * returns what it printed (stdout and stderr, caught in a memfd that is the
 * probe's fds 1 and 2 while it runs: no file anywhere, see the module docs).
 */
async function probe(spec: Partial<LaunchSpec>, script: string, nsFile: string): Promise<string[]> {
  const { lines } = await captured({ ...spec, command: probeCommand(script, nsFile) });
  return lines;
}

/** The command a probe runs: `script`, then the identity of namespace `nsFile`. */
function probeCommand(script: string, nsFile: string): string[] {
  return ["sh", "-c", `${script}; readlink /proc/self/ns/${nsFile}`];
}

/** `lines`, each indented by four spaces. */
function indent(lines: string[]): string {
  return lines.map((line) => `    ${line}`).join("\n");
}

/** Launches `spec` with its fds 1 and 2 on a memfd; returns how it ended and what it printed. */
async function captured(spec: LaunchSpec): Promise<{ result: LaunchResult; lines: string[] }> {
  const capture = memfdCreate("invoke_ns_tour");
  const saved = [dup(1), dup(2)];
  try {
    dup2(capture, 1);
    dup2(capture, 2);
    let result;
    try {
      result = await launch(spec);
    } finally {
      dup2(saved[0], 1);
      dup2(saved[1], 2);
    }
    return { result, lines: readFile(`/proc/self/fd/${capture}`).trimEnd().split("\n") };
  } finally {
    for (const fd of [capture, ...saved]) close(fd);
  }
}

function sideBySide(left: string[], right: string[]): string {
  const lines = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const cell = left[i] ?? "";
    const fitted = cell.length < COLUMN ? cell : `${cell.slice(0, COLUMN - 2)}…`;
    lines.push(`  ${fitted.padEnd(COLUMN)}${right[i] ?? ""}`.trimEnd());
  }
  return lines.join("\n");
}

/** Wraps a sentence at 80 columns, indented by two spaces. */
function wrap(text: string): string {
  const lines = [""];
  for (const word of text.split(" ")) {
    if (lines[lines.length - 1].length + word.length > 76) lines.push("");
    lines[lines.length - 1] += (lines[lines.length - 1] ? " " : "") + word;
  }
  return lines.map((line) => `  ${line}`).join("\n");
}

/** `tour --help`. */
export function tourHelp(program: string): string {
  return `Usage:
 ${program} tour

A guided demonstration of every namespace type: for each of UTS, PID, mount,
IPC, network, user, cgroup and time, one probe (hostname; $$ and the process
count; the mount table; IPC objects; network links; IDs; /proc/self/cgroup;
uptime) runs on the host and in a new namespace of that type, side by side,
with one sentence on what changed and why; then capabilities, seccomp and
masked paths, without and with each; last, resource limits (a fork bomb
held by --pids, a memory hog ended by the OOM killer; root, or a delegated
cgroup v2 subtree). Works as root and rootless.

Options:
 --explain    after each stop, every system call its new namespace's side is made of
 -h, --help   display this help

Example:
 ${program} tour

Exit status: 0 when every namespace type showed a difference, 1 otherwise,
2 for a usage error.
`;
}

/** Runs the tour; returns the exit status (0 when every stop showed a difference). */
export async function runTour(args: string[], program: string): Promise<number> {
  if (args.length === 1 && (args[0] === "-h" || args[0] === "--help")) {
    writeOut(tourHelp(program));
    return 0;
  }
  const explain = args[0] === "--explain";
  if (args.length > (explain ? 1 : 0)) throw new UsageError("tour: takes only --explain");
  // loaded only for --explain
  const explaining = explain ? await import("../lib/explain.ts") : undefined;
  let same = 0;
  writeOut(
    `A tour of Linux namespaces with ${program}: each probe runs on the host and in a new\n` +
      "namespace of one type; the last line of each side is the namespace's identity.\n" +
      (getuid() === 0
        ? ""
        : "You are not root: each new namespace comes inside a new user namespace.\n"),
  );
  for (const stop of stops()) {
    const inside = await probe(stop.spec, stop.probe, stop.nsFile);
    const host = await probe(stop.hostSpec ?? {}, stop.hostProbe ?? stop.probe, stop.nsFile);
    // The last line is the namespace's identity, which differs by construction.
    const identical = host.slice(0, -1).join("\n") === inside.slice(0, -1).join("\n");
    if (identical && !stop.nothingToSee) same++;
    const sentence = !identical ? stop.why : stop.nothingToSee ?? "(no difference seen!)";
    writeOut(
      `\n${bold(`== ${stop.title}`)} ${dim(`(${program} ${stop.option})`)}\n` +
        sideBySide(["on the host", ...host], [`in a new namespace`, ...inside]) +
        `\n${wrap(sentence)}\n`,
    );
    if (explaining) {
      const plan = await launch({ ...stop.spec, command: probeCommand(stop.probe, stop.nsFile) }, {
        explain: true,
      });
      const lines = explaining.explanationLines(plan, false);
      writeOut(`  ${dim("the new namespace's side is made of:")}\n${indent(lines)}\n`);
    }
  }
  same += await limitsStop(program);
  writeOut(
    `\nNext: run a shell in a container of your own, e.g.\n  ${program} -vpmu calculus bash\n`,
  );
  return same === 0 ? 0 : 1;
}

// ------------------------------------------------------------ limits (issue 17)

/** The host's process count and available memory, for the host side of the limits stop. */
function hostFacts(): { processes: number; availableMiB: number } {
  // through ffi/: Deno's own directory API asks for --allow-all under /proc
  const processes = listDirectory("/proc").filter((name) => /^\d+$/.test(name)).length;
  const kib = Number(/MemAvailable:\s+(\d+)/.exec(readFile("/proc/meminfo"))?.[1] ?? 0);
  return { processes, availableMiB: Math.round(kib / 1024) };
}

/**
 * The limits stop: a fork bomb held by --pids and a memory hog ended by the
 * OOM killer, the host's side against the container's. Returns 1 when a
 * limit showed nothing, else 0 (also when limits cannot be had here: said).
 */
async function limitsStop(program: string): Promise<number> {
  const option = "--pids 20, --memory 32M";
  const title = `\n${bold("== limits: a fork bomb and a memory hog")} ${
    dim(`(${program} ${option})`)
  }\n`;
  const runs = [
    {
      spec: { pid: true, mount: true, limits: { pids: 20 } },
      script: "started=0; trap 'echo \"started $started of 100 sleeps\"' EXIT; " +
        "for i in $(seq 100); do sleep 5 & started=$i; done",
      seen: (usage: LaunchUsage) => `at most ${usage.peakPids ?? "?"} processes at once`,
      shown: (usage: LaunchUsage) => (usage.pidsLimitHits ?? usage.peakPids ?? 0) > 0,
    },
    {
      spec: { pid: true, mount: true, limits: { memory: 32 * 2 ** 20 } },
      script: 'head -c 64M /dev/zero | tail -n 1 >/dev/null; echo "the hog: status $?"',
      seen: (usage: LaunchUsage) =>
        `OOM kills: ${usage.oomKills ?? "?"}, peak ${
          Math.round((usage.peakMemoryBytes ?? 0) / 2 ** 20)
        } MiB`,
      shown: (usage: LaunchUsage) => usage.oom,
    },
  ];
  const lines: string[] = [];
  let nothing = 0;
  for (const run of runs) {
    const before = hostFacts();
    let result, inside;
    try {
      ({ result, lines: inside } = await captured({
        ...run.spec,
        command: ["sh", "-c", run.script],
      }));
    } catch (error) {
      if (!(error instanceof LaunchError) || error.step !== "cgroup") throw error;
      writeOut(`${title}${wrap(`Limits need cgroups this run cannot have: ${error.message}`)}\n`);
      return 0;
    }
    const after = hostFacts();
    if (!result.usage || !run.shown(result.usage)) nothing++;
    lines.push(
      sideBySide(
        [
          "on the host",
          `processes: ${before.processes}, then ${after.processes}`,
          `available: ${before.availableMiB} MiB, then ${after.availableMiB}`,
        ],
        ["in the container", ...inside, result.usage ? run.seen(result.usage) : ""],
      ),
    );
  }
  writeOut(
    title + lines.join("\n\n") + "\n" +
      wrap(
        "Cgroups bound what the container may use: past 20 processes its forks fail " +
          "(the shell's own error), past 32 MiB the OOM killer ends the hog, counted by the " +
          "cgroup, while the host's processes and memory are left alone. Every process of " +
          "the container was killed and its cgroups removed when it ended.",
      ) + "\n",
  );
  return nothing > 0 ? 1 : 0;
}
