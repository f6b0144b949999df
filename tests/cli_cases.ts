/**
 * The CLI's contract as a table: each case is run against `deno run main.ts`
 * and, where it can be built, against the compiled executable (cli_test.ts).
 */

/** One command line and what it must produce. */
export interface CliCase {
  /** What the case shows. */
  name: string;
  /** The arguments after the program name. */
  args: string[];
  /** Standard input. */
  stdin?: string;
  /** Extra environment for the CLI. */
  env?: Record<string, string>;
  /** The expected exit status. */
  code: number;
  /** Patterns stdout must match. */
  stdout?: RegExp[];
  /** Patterns stdout must not match. */
  notStdout?: RegExp[];
  /** When set, stderr must be exactly one `invoke_ns: ` line matching this. */
  stderrLine?: RegExp;
  /**
   * Run under a terminal (script(1), stdin and stdout on it); stdout and
   * stderr then arrive together and are checked as stderr.
   */
  terminal?: boolean;
  /** When set, stderr must be exactly this. */
  stderrExact?: string;
}

const SEED_HELP = [
  "Usage: invoke_ns \\[options\\] \\[cmd \\[arg\\.\\.\\.\\]\\]",
  "Options can be:",
  "    -h           display this help message",
  "    -v           display verbose messages",
  "    -p           new PID namespace",
  "    -m           new MNT namespace",
  "    -u hostname  new UTS namespace with associated hostname",
  "    -n           new NET namespace",
  "    -i no\\|yes    create message queue in new IPC namespace \\(yes\\), or default namespace \\(no\\):",
  "    -c dir       jail process in specified directory",
].join("\n");

const ENV = { PATH: "/usr/bin:/bin", SECRET_TOKEN: "xyz", TERM: "vt100" };

/** Every CLI case. */
export const CLI_CASES: CliCase[] = [
  {
    name: "-h prints the seed's usage layout",
    args: ["-h"],
    code: 0,
    stdout: [new RegExp(`^${SEED_HELP}\n`)],
  },
  {
    name: "-h lists the subcommands",
    args: ["-h"],
    code: 0,
    stdout: ["tour", "enter", "ns", "jail", "binlibdepcp", "completions"].map((name) =>
      new RegExp(`^    ${name} +\\S`, "m")
    ),
  },
  {
    name: "--version names the tool, Deno and V8",
    args: ["--version"],
    code: 0,
    stdout: [/^invoke_ns \d+\.\d+\.\d+\ndeno \d+\.\d+\.\d+\nv8 \S+\n$/],
  },
  { name: "an unknown letter", args: ["-x"], code: 2, stderrLine: /invalid option -- 'x'/ },
  {
    name: "--chroot without a jail",
    args: ["-m", "--chroot", "true"],
    code: 2,
    stderrLine: /--chroot needs a jail \(-c DIR\)/,
  },
  { name: "a missing value", args: ["-u"], code: 2, stderrLine: /requires an argument -- 'u'/ },
  { name: "-i takes no|yes", args: ["-i", "maybe"], code: 2, stderrLine: /valid argument -- 'i'/ },
  { name: "an empty hostname", args: ["-u", "", "true"], code: 2, stderrLine: /hostname is empty/ },
  {
    name: "a hostname over 64 bytes",
    args: ["-u", "h".repeat(65), "true"],
    code: 2,
    stderrLine: /65 bytes long \(at most 64\)/,
  },
  {
    name: "an unknown long option",
    args: ["--no-such-option"],
    code: 2,
    stderrLine: /unrecognized option/,
  },
  {
    name: "-e needs KEY=VALUE",
    args: ["-e", "NOEQUALS", "true"],
    code: 2,
    stderrLine: /KEY=VALUE/,
  },
  {
    name: "--map-user needs a number",
    args: ["--map-user", "x"],
    code: 2,
    stderrLine: /not a valid number/,
  },
  {
    name: "a bad queue name",
    args: ["--mq-name", "bad/name", "-i", "no"],
    code: 2,
    stderrLine: /queue name/,
  },
  { name: "the command's status passes through", args: ["sh", "-c", "exit 7"], code: 7 },
  { name: "a command killed by SIGTERM gives 143", args: ["sh", "-c", "kill -TERM $$"], code: 143 },
  { name: "a command killed by SIGKILL gives 137", args: ["sh", "-c", "kill -KILL $$"], code: 137 },
  {
    name: "not found is 127",
    args: ["no-such-command-xyz"],
    code: 127,
    stderrLine: /exec: no-such-command-xyz: command not found/,
  },
  {
    name: "a directory is not executable: 126",
    args: ["/etc"],
    code: 126,
    stderrLine: /exec: \/etc/,
  },
  {
    name: "a missing jail is 125",
    args: ["-c", "/no/such/jail", "true"],
    code: 125,
    stderrLine: /jail: \/no\/such\/jail: no such directory/,
  },
  {
    name: "a file as jail is 125",
    args: ["-c", "/etc/passwd", "true"],
    code: 125,
    stderrLine: /not a directory/,
  },
  {
    name: "the environment is clean by default",
    args: ["env"],
    env: ENV,
    code: 0,
    stdout: [/^TERM=vt100$/m, /^PATH=\/usr\/local\/sbin:/m],
    notStdout: [/SECRET_TOKEN/],
  },
  {
    name: "-e adds to the environment",
    args: ["-e", "GREETING=hi there", "env"],
    env: ENV,
    code: 0,
    stdout: [/^GREETING=hi there$/m],
  },
  {
    name: "--keep-env keeps everything",
    args: ["--keep-env", "env"],
    env: ENV,
    code: 0,
    stdout: [/^SECRET_TOKEN=xyz$/m],
  },
  {
    name: "no command: set up and exit 0",
    args: ["-v"],
    code: 0,
    stdout: [/^Parent: PID of parent is \d+$/m, /^Parent: invoke_ns - Finishing up$/m],
  },
  {
    name: "the queue demo, -i no",
    args: ["-i", "no"],
    stdin: "hello\n",
    code: 0,
    stdout: [/>> hello\n/],
  },
  { name: "ns of ourselves", args: ["ns"], code: 0, stdout: [/^uts\s+\d+/m] },
  { name: "enter needs a target", args: ["enter"], code: 2, stderrLine: /TARGET/ },
  {
    name: "enter --json without --explain is refused",
    args: ["enter", "--json", "1", "true"],
    code: 2,
    stderrLine: /^invoke_ns: enter: --json prints the plan as data: it goes with --explain /,
  },
  { name: "binlibdepcp usage", args: ["binlibdepcp"], code: 2 },
  ...["enter", "ns", "jail", "tour", "completions"].map((sub): CliCase => ({
    name: `${sub} --help follows util-linux's layout`,
    args: [sub, "--help"],
    code: 0,
    stdout: [
      new RegExp(`^Usage:\n invoke_ns ${sub}`),
      /^Examples?:\n .*invoke_ns /m,
      /^Exit status: /m,
    ],
  })),
  {
    name: "completions bash prints a completion function",
    args: ["completions", "bash"],
    code: 0,
    stdout: [/^_invoke_ns\(\) \{$/m, /^complete -F _invoke_ns invoke_ns$/m],
  },
  {
    name: "completions for another shell",
    args: ["completions", "fish"],
    code: 2,
    stderrLine: /only shell supported is bash/,
  },
  {
    name: "--json: start and exit events around the command's output",
    args: ["--json", "sh", "-c", "echo between; exit 4"],
    code: 4,
    stdout: [
      /^\{"event":"start","pid":(\d+),"pidInside":\1,"namespaces":\{"cgroup":\d+,"ipc":\d+,"mnt":\d+,"net":\d+,"pid":\d+,"time":\d+,"user":\d+,"uts":\d+\}\}\nbetween\n\{"event":"exit","code":4,"signal":null\}\n$/,
    ],
  },
  ...[["tuor", "tour"], ["turo", "tour"], ["enterr", "enter"], ["jial", "jail"]].map((
    [typed, meant],
  ): CliCase => ({
    name: `a not-found '${typed}' names the subcommand '${meant}'`,
    args: [typed],
    code: 127,
    stderrLine: new RegExp(
      `^invoke_ns: exec: ${typed}: command not found; did you mean the subcommand '${meant}'\\?$`,
    ),
  })),
  {
    name: "an ambiguous long option lists its candidates",
    args: ["--vet"],
    code: 2,
    stderrLine:
      /^invoke_ns: option '--vet' is ambiguous; possibilities: '--veth' '--veth-name' \(see 'invoke_ns -h'\)$/,
  },
  {
    name: "not found in a jail says where it looked and how to build it",
    args: ["-c", "/etc", "env"],
    env: { TERM: "" },
    code: 127,
    stderrLine:
      /^invoke_ns: exec: env: not found in the jail \/etc \(build it with: invoke_ns jail \/etc\)$/,
  },
  {
    name: "-c on a terminal: a jail without terminfo for $TERM gets one note",
    args: ["-c", "/", "true"],
    env: { TERM: "no-such-terminal-xyz" },
    terminal: true,
    code: 0,
    stderrLine:
      /^invoke_ns: note: the jail \/ has no terminfo entry for TERM=no-such-terminal-xyz, which programs like top need \(invoke_ns jail \/ copies it\)$/,
  },
  {
    name: "-c without a terminal: no terminfo note",
    args: ["-c", "/", "true"],
    env: { TERM: "no-such-terminal-xyz" },
    code: 0,
    stderrExact: "",
  },
  {
    name: "no command under a terminal: set up, exit 0, one line saying where to start",
    args: [],
    terminal: true,
    code: 0,
    stderrLine:
      /^invoke_ns: no command given: the namespaces were set up and are gone again \(start with 'invoke_ns tour', or see 'invoke_ns -h'\)$/,
  },
  {
    name: "--json: a failure before the command is an error event",
    args: ["--json", "no-such-command-xyz"],
    code: 127,
    stdout: [
      /^\{"event":"error","step":"exec","message":"no-such-command-xyz: command not found","code":127\}\n$/,
    ],
    stderrLine: /command not found/,
  },
];
