/**
 * `--seccomp default`: invoke_ns's own seccomp profile, as data in the OCI /
 * docker JSON format (compiled by `seccomp.ts`), and the rule that stops a
 * contained process from typing into its caller's terminal, which
 * `--contain` adds to every profile.
 *
 * The profile allows every system call except those below, which fail with
 * EPERM. Each group says what escape or host damage it prevents. Many of
 * them also need a capability the command may not have; the filter still
 * matters then, for a command that keeps the capability (`--cap-add`,
 * plain root) and for what a new user namespace would hand it (unshare is
 * denied without CAP_SYS_ADMIN for that reason). i386 (`int 0x80`) and x32
 * system calls go through the same rules with their own numbers.
 * @module
 */

import { TIOC } from "../ffi/constants.ts";
import type { SeccompProfile, SeccompRule } from "./seccomp.ts";

/** ioctl requests that push input into a terminal or drive the console (`asm-generic/ioctls.h`). */
export const TIOCSTI: number = TIOC.STI, TIOCLINUX: number = TIOC.LINUX;

/** personality(2) values a program may set: Linux, with UNAME26, with ADDR_NO_RANDOMIZE, both; query. */
export const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** CLONE_NEW* flags clone(2) can take (CLONE_NEWTIME only works with clone3 and unshare). */
const CLONE_NEW_FLAGS = {
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
};

const EPERM = 1;

/** A rule denying `names` with EPERM. */
function deny(names: string[], comment: string, more: Partial<SeccompRule> = {}): SeccompRule {
  return { names, action: "SCMP_ACT_ERRNO", errnoRet: EPERM, comment, ...more };
}

/** Whatever the profile says about ioctl, TIOCSTI and TIOCLINUX fail with EPERM. */
const TERMINAL_RULES: SeccompRule[] = [
  deny(["ioctl"], "TIOCSTI: pushing keystrokes into a terminal shared with the caller's shell", {
    args: [{ index: 1, value: TIOCSTI, op: "SCMP_CMP_EQ" }],
  }),
  deny(["ioctl"], "TIOCLINUX: console control, including pasting into a virtual console", {
    args: [{ index: 1, value: TIOCLINUX, op: "SCMP_CMP_EQ" }],
  }),
];

/** The built-in profile, group by group. */
export const DEFAULT_PROFILE: SeccompProfile = {
  defaultAction: "SCMP_ACT_ALLOW",
  architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  syscalls: [
    deny(
      ["init_module", "finit_module", "delete_module", "create_module", "query_module"],
      "kernel modules: code loaded into, or removed from, the host's kernel",
    ),
    deny(
      ["kexec_load", "kexec_file_load"],
      "kexec: replacing the host's running kernel",
    ),
    deny(["reboot"], "reboot: rebooting or halting the host (outside a PID namespace)"),
    deny(
      [
        "settimeofday",
        "clock_settime",
        "clock_settime64",
        "clock_adjtime",
        "clock_adjtime64",
        "adjtimex",
        "stime",
      ],
      "clock and time setting: the clocks are the host's (a time namespace only offsets two of them)",
    ),
    deny(["swapon", "swapoff"], "swap: the host's swap devices and files"),
    deny(
      ["add_key", "request_key", "keyctl"],
      "keyrings: not namespaced, they hold the host users' keys and credentials",
    ),
    deny(["bpf"], "bpf: programs loaded into the host's kernel, reading kernel memory"),
    deny(
      ["perf_event_open"],
      "perf_event_open: profiling the host's kernel and other processes, side channels",
    ),
    deny(
      ["userfaultfd"],
      "userfaultfd: stalls the kernel at a chosen page fault, widening race windows for exploits",
    ),
    deny(
      ["io_uring_setup", "io_uring_enter", "io_uring_register"],
      "io_uring: its operations are not system calls, so they escape this filter",
    ),
    deny(
      ["open_by_handle_at", "name_to_handle_at"],
      "file handles: open_by_handle_at opens any file of a mounted filesystem by handle, " +
        "past chroot and mount namespaces (the 'shocker' escape)",
    ),
    deny(["acct"], "acct: process accounting written to a file of the host's choosing"),
    deny(
      ["iopl", "ioperm"],
      "I/O ports: direct hardware access (disk and interrupt controllers, the PCI configuration space)",
    ),
    deny(["lookup_dcookie"], "lookup_dcookie: kernel profiling internals, paths of the host"),
    deny(["quotactl", "quotactl_fd"], "quotactl: the host's disk quotas"),
    deny(["nfsservctl"], "nfsservctl: the kernel NFS server (removed in Linux 3.1)"),
    deny(["vm86", "vm86old"], "vm86: virtual 8086 mode, a long history of kernel bugs"),
    deny(
      ["uselib", "_sysctl", "ustat", "sysfs", "bdflush", "get_kernel_syms"],
      "obsolete calls no program needs, kept out of reach",
    ),
    deny(["syslog"], "syslog: reading and clearing the host's kernel log", {
      excludes: { caps: ["CAP_SYSLOG"] },
    }),
    deny(
      ["process_vm_readv", "process_vm_writev", "kcmp"],
      "another process's memory and files, as docker: only with CAP_SYS_PTRACE",
      { excludes: { caps: ["CAP_SYS_PTRACE"] } },
    ),
    deny(
      ["move_pages", "migrate_pages", "mbind", "set_mempolicy"],
      "NUMA placement of other processes' memory, as docker: only with CAP_SYS_NICE",
      { excludes: { caps: ["CAP_SYS_NICE"] } },
    ),
    deny(
      [
        "unshare",
        "setns",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "fanotify_init",
        "setdomainname",
      ],
      "new namespaces and mounts without CAP_SYS_ADMIN: an unprivileged user namespace hands " +
        "its creator every capability over new mounts and namespaces, the kernel's largest " +
        "attack surface; entering another namespace leaves this one",
      { excludes: { caps: ["CAP_SYS_ADMIN"] } },
    ),
    ...Object.entries(CLONE_NEW_FLAGS).map(([name, flag]) =>
      deny(
        ["clone"],
        `clone with ${name}, without CAP_SYS_ADMIN (as unshare); clone3 gets ENOSYS`,
        {
          args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
          excludes: { caps: ["CAP_SYS_ADMIN"] },
        },
      )
    ),
    deny(["chroot"], "chroot without CAP_SYS_CHROOT, as docker", {
      excludes: { caps: ["CAP_SYS_CHROOT"] },
    }),
    ...TERMINAL_RULES,
    deny(
      ["personality"],
      "personality other than the usual values (0, 8, 0x20000, 0x20008, 0xffffffff): " +
        "execution domains and READ_IMPLIES_EXEC make old kernel bugs reachable",
      {
        args: ALLOWED_PERSONALITIES.map((value) => ({ index: 0, value, op: "SCMP_CMP_NE" })),
      },
    ),
  ],
};

/**
 * `profile` with TIOCSTI and TIOCLINUX denied with EPERM whatever its own
 * ioctl rules say (its default action, when that is EPERM). An unconditional
 * ioctl rule would otherwise win over a conditional one, so each becomes
 * conditional on the request being neither of the two.
 */
export function denyTerminalInjection(profile: SeccompProfile): SeccompProfile {
  const rules: SeccompRule[] = [];
  for (const rule of profile.syscalls ?? []) {
    const names = rule.names ?? (rule.name !== undefined ? [rule.name] : []);
    const unconditional = !rule.args || rule.args.length === 0;
    if (!unconditional || !names.includes("ioctl")) {
      rules.push(rule);
      continue;
    }
    const others = names.filter((name) => name !== "ioctl");
    if (others.length > 0) rules.push({ ...rule, name: undefined, names: others });
    rules.push({
      ...rule,
      name: undefined,
      names: ["ioctl"],
      args: [TIOCSTI, TIOCLINUX].map((value) => ({ index: 1, value, op: "SCMP_CMP_NE" })),
    });
  }
  return { ...profile, syscalls: [...rules, ...TERMINAL_RULES] };
}
