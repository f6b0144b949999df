/**
 * The run form's `-h` text, loaded only when it is asked for.
 * @module
 */

import { DEMO_QUEUE } from "../lib/ipcns.ts";
import { SUBCOMMANDS } from "./subcommands.ts";

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
Resource limits (a cgroup of its own under yours, v1 or v2; root, or a delegated v2 subtree):
    --memory SIZE       memory limit (64M, 1G); past it the OOM killer ends the command
    --memory-swap SIZE  memory plus swap (default: equal to --memory, no swap)
    --pids N            at most N processes and threads (a fork past it fails: EAGAIN)
    --cpus FRACTION     CPU bandwidth, e.g. 0.5 (quota per 100 ms period)
    --cpuset LIST       the CPUs it may run on, e.g. 0-1,3
    --cpu-time SECS     kill it once all its processes used SECS of CPU time (exit 124)
    --wall-time SECS    kill it after SECS of wall time (exit 124)
    --stats             after the command, print on stderr what it used and why it ended
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
To see what a container is made of:
    --explain    print every system call of the launch, in order, who makes it and
                 why, and exit 0 creating nothing (with --json: as data)
    --trace      run it, printing each call on stderr as it is made, with its result
Subcommands (${program} COMMAND --help for each):
${
    SUBCOMMANDS.map(({ name, summary }) => `    ${name.padEnd(12)} ${summary}\n`).join("")
  }Exit status: the command's own; 128+N if it was killed by signal N; 125 if setup
failed; 126 if the command cannot be executed; 127 if it was not found; 2 for a
usage error; 124 if a --cpu-time or --wall-time limit was exceeded.
`;
}
