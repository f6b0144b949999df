/**
 * `invoke_ns enter [-p -m -u -n -i -U -C -T | --all] TARGET [--] [cmd [arg...]]`
 * @module
 */

import { enter, explainEnter } from "../lib/enter.ts";
import { NAMESPACE_TYPES, type NamespaceType } from "../lib/inspect.ts";
import { getopt, type OptionSpec, parseAssignment, UsageError } from "./getopt.ts";
import { writeOut } from "./output.ts";

const TYPE_OF_OPTION: Record<string, NamespaceType> = {
  pid: "pid",
  mount: "mnt",
  uts: "uts",
  net: "net",
  ipc: "ipc",
  user: "user",
  cgroup: "cgroup",
  time: "time",
};

/** `enter`'s options, for its parser and the shell completions (their one home). */
export const ENTER_OPTIONS: OptionSpec[] = [
  { name: "help", short: "h", value: "none" },
  { name: "pid", short: "p", value: "none" },
  { name: "mount", short: "m", value: "none" },
  { name: "uts", short: "u", value: "none" },
  { name: "net", short: "n", value: "none" },
  { name: "ipc", short: "i", value: "none" },
  { name: "user", short: "U", value: "none" },
  { name: "cgroup", short: "C", value: "none" },
  { name: "time", short: "T", value: "none" },
  { name: "all", short: "a", value: "none" },
  { name: "env", short: "e", value: "required" },
  { name: "keep-env", value: "none" },
  { name: "explain", value: "none" },
  { name: "trace", value: "none" },
  { name: "json", value: "none" },
];

/** `enter --help`. */
export function enterHelp(program: string): string {
  return `Usage:
 ${program} enter [options] TARGET [--] [cmd [arg...]]

Run a command in the namespaces of a running process (TARGET a PID), or in the
namespace a namespace file names (TARGET a path such as /proc/PID/ns/uts or a
bind mount of one). Like nsenter, joining a PID namespace makes the command a
member of it; joining a mount namespace also takes the target's root and
working directory; joining a user namespace makes the command its root.

Options:
 -p, --pid      join the PID namespace
 -m, --mount    join the mount namespace
 -u, --uts      join the UTS namespace
 -n, --net      join the network namespace
 -i, --ipc      join the IPC namespace
 -U, --user     join the user namespace
 -C, --cgroup   join the cgroup namespace
 -T, --time     join the time namespace
 -a, --all      join every namespace of TARGET
 -e KEY=VAL     add a variable to the command's environment
 --keep-env     pass the whole environment
 --explain      print every system call it would make, in order, and exit 0
                (joining nothing)
 --json         with --explain: the plan as one JSON document
 --trace        print each call on stderr as it is made, with its result
 -h, --help     display this help

Without namespace options, the namespaces of TARGET that differ from ours are
joined. Not root, the user namespace that owns them is joined too (as the run
form implies -U), so you can enter the containers you started yourself. The
default command is $SHELL if the target's root has it, else /bin/sh.

Examples:
 ${program} enter 4242 hostname
 ${program} enter -n /proc/4242/ns/net cat /proc/net/dev

Exit status: the command's own; 128+N if it was killed by signal N; 125 if a
namespace could not be joined; 126/127 if the command cannot be run; 2 for a
usage error.
`;
}

/** Runs `enter`; returns the exit status. */
export async function runEnter(args: string[], program: string): Promise<number> {
  const { options, operands } = getopt(args, ENTER_OPTIONS);
  if (options.some((option) => option.name === "help")) {
    writeOut(enterHelp(program));
    return 0;
  }
  const has = (name: string) => options.some((option) => option.name === name);
  if (has("json") && !has("explain")) {
    throw new UsageError("enter: --json prints the plan as data: it goes with --explain");
  }
  const [target, ...rest] = operands;
  const command = rest[0] === "--" ? rest.slice(1) : rest;
  if (target === undefined) {
    throw new UsageError("enter: a TARGET (PID or namespace file) is required");
  }
  if (!/^\d+$/.test(target) && !target.startsWith("/")) {
    throw new UsageError(`enter: '${target}': TARGET is a PID or an absolute path`);
  }
  let namespaces: NamespaceType[] | undefined;
  let env: Record<string, string> | undefined;
  let keepEnv = false;
  for (const option of options) {
    if (option.name === "all") namespaces = [...NAMESPACE_TYPES];
    else if (option.name === "keep-env") keepEnv = true;
    else if (option.name === "env") {
      env = { ...env, ...parseAssignment(option.value ?? "", option.spelled) };
    } else if (TYPE_OF_OPTION[option.name]) {
      namespaces = [...new Set([...(namespaces ?? []), TYPE_OF_OPTION[option.name]])];
    }
  }
  if (namespaces && !/^\d+$/.test(target)) {
    throw new UsageError(
      "enter: namespace options choose among a PID's namespaces; a namespace file names its own",
    );
  }
  if (namespaces?.length === NAMESPACE_TYPES.length) {
    namespaces = undefined; // --all: every one that differs
  }
  const spec = { command, namespaces, env, keepEnv, forwardSignals: true, trace: has("trace") };
  if (has("explain")) {
    // loaded only for --explain
    const { explanationText } = await import("./explain.ts");
    writeOut(explanationText(await explainEnter(target, spec), has("json")));
    return 0;
  }
  return (await enter(target, spec)).code;
}
