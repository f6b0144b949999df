/**
 * Kernel constants: namespace clone flags, mount flags and signal numbers
 * (x86-64 Linux values).
 * @module
 */

/** clone(2)/unshare(2)/setns(2) namespace flags. */
export const CLONE = {
  NEWTIME: 0x00000080,
  VM: 0x00000100,
  VFORK: 0x00004000,
  PARENT: 0x00008000,
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
  PARENT_SETTID: 0x00100000,
} as const;

/** mount(2) flags (binds and their attributes use open_tree and mount_setattr, see ffi/libc.ts). */
export const MS = {
  RDONLY: 1n,
  NOSUID: 2n,
  NODEV: 4n,
  NOEXEC: 8n,
  BIND: 4096n,
  REC: 16384n,
  PRIVATE: 1n << 18n,
  SLAVE: 1n << 19n,
} as const;

/** How many symlinks a path walk follows before ELOOP, as the kernel (MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

/** umount2(2) flag: detach lazily. */
export const MNT_DETACH = 2;

/** Signal numbers by name. */
export const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** The name of signal `n` (`"SIGKILL"` for 9), or `SIGn` for real-time ones. */
export function signalName(n: number): string {
  return Object.keys(SIGNALS).find((name) => SIGNALS[name] === n) ?? `SIG${n}`;
}

/** The highest signal number (SIGRTMAX on Linux). */
export const SIGNAL_MAX = 64;

/**
 * x86-64 numbers of the system calls ffi/ makes through syscall(2) (asm/unistd_64.h), in one
 * place; a test checks each against lib/syscalls.ts, which is generated from the headers.
 */
export const SYS = {
  rt_sigaction: 13n,
  ioctl: 16n,
  connect: 42n,
  umask: 95n,
  setsid: 112n,
  setgroups: 116n,
  setresuid: 117n,
  setresgid: 119n,
  capget: 125n,
  capset: 126n,
  personality: 135n,
  pivot_root: 155n,
  setdomainname: 171n,
  keyctl: 250n,
  mknodat: 259n,
  fchownat: 260n,
  prlimit64: 302n,
  seccomp: 317n,
  open_tree: 428n,
  move_mount: 429n,
  fsopen: 430n,
  fsconfig: 431n,
  fsmount: 432n,
  openat2: 437n,
  mount_setattr: 442n,
} as const;

/** Terminal ioctl(2) requests (asm-generic/ioctls.h). */
export const TIOC = {
  SCTTY: 0x540e,
  STI: 0x5412,
  GWINSZ: 0x5413,
  SWINSZ: 0x5414,
  LINUX: 0x541c,
  GPTN: 0x80045430,
  SPTLCK: 0x40045431,
} as const;

/** prctl(2) options and arguments (linux/prctl.h). */
export const PR = {
  SET_KEEPCAPS: 8,
  CAPBSET_READ: 23,
  CAPBSET_DROP: 24,
  SET_NO_NEW_PRIVS: 38,
  GET_NO_NEW_PRIVS: 39,
  CAP_AMBIENT: 47,
  CAP_AMBIENT_IS_SET: 1,
  CAP_AMBIENT_RAISE: 2,
  CAP_AMBIENT_CLEAR_ALL: 4,
} as const;

/** `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets, in two 32-bit halves. */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
