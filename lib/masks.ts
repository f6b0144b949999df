/**
 * Masked and read-only paths (`--mask PATH`, `--remount-ro PATH`, and
 * runc's lists under `--contain`): a masked file becomes `/dev/null`, a
 * masked directory an empty read-only tmpfs, and a read-only path is bound
 * onto itself and remounted read-only. They hide what a fresh /proc and
 * /sys would otherwise hand a root inside: `/proc/sys/kernel/core_pattern`
 * (the host kernel runs what it names, as root, on a crash), the kernel's
 * memory (`/proc/kcore`), timers and keys of every process, firmware tables.
 *
 * The steps run after /proc is mounted, inside the jail once pivot_root has
 * made it `/` (so a symlink planted in the jail resolves inside it). The
 * `/dev/null` they bind is taken before the pivot, as a detached mount
 * (open_tree), because a jail need not have one.
 * @module
 */

import { MS } from "../ffi/constants.ts";
import { attachMount, detachedBind } from "../ffi/contain.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { close, mount, O_CLOEXEC, O_DIRECTORY, O_PATH, open } from "../ffi/libc.ts";
import { MOUNT_ATTR, setMountAttributes } from "../ffi/mountapi.ts";
import { call, type ChildStep } from "./step.ts";

/** runc's (and docker's) masked paths: what `--contain` hides. */
export const CONTAIN_MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** runc's (and docker's) read-only paths: what `--contain` makes read-only. */
export const CONTAIN_READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/** Why `path` cannot be masked or made read-only, or null (absolute, no NUL, not `/`). */
export function maskPathProblem(path: string, option: string): string | null {
  if (!path.startsWith("/")) return `${option} ${path}: must be an absolute path`;
  if (path.includes("\0")) return `${option}: the path contains a NUL byte`;
  if (path.replace(/\/+$/, "") === "") {
    return `${option} /: the root itself cannot be ${
      option === "--mask" ? "masked" : "made read-only"
    }`;
  }
  return null;
}

/** The paths to hide and to make read-only, and which of them may be missing. */
export interface MaskRequest {
  /** Paths that become /dev/null (files) or an empty read-only tmpfs (directories). */
  masked: string[];
  /** Paths bound onto themselves and remounted read-only. */
  readonly: string[];
  /** Paths that are skipped when missing (runc's lists, not what the caller named). */
  optional: ReadonlySet<string>;
}

/** What the mask steps share: the detached /dev/null, the first file and directory masked. */
interface MaskState {
  nullMount?: number;
  firstFile?: string;
  firstDirectory?: string;
}

/** Whether `path` is a directory (true), something else (false), or missing (null). */
function kindOf(path: string): boolean | null {
  try {
    close(open(path, O_PATH | O_DIRECTORY | O_CLOEXEC));
    return true;
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    if (error.errno === Errno.ENOTDIR) return false;
    if (error.errno === Errno.ENOENT) return null;
    throw error;
  }
}

const TMPFS_FLAGS = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;

function applyMasks(request: MaskRequest, state: MaskState): void {
  for (const path of request.masked) {
    const directory = kindOf(path);
    if (directory === null) {
      if (request.optional.has(path)) continue;
      throw new SyscallError("mount", Errno.ENOENT, "No such file or directory", path);
    }
    if (directory) {
      // one read-only tmpfs, bound onto the other directories (a bind costs less than a superblock)
      if (state.firstDirectory !== undefined) {
        mount(state.firstDirectory, path, null, MS.BIND);
      } else {
        mount("tmpfs", path, "tmpfs", TMPFS_FLAGS, "size=4k,nr_inodes=1,mode=0555");
        state.firstDirectory = path;
      }
    } else if (state.firstFile !== undefined) {
      mount(state.firstFile, path, null, MS.BIND);
    } else if (state.nullMount !== undefined) {
      attachMount(state.nullMount, path);
      close(state.nullMount);
      state.nullMount = undefined;
      state.firstFile = path;
    } else {
      mount("/dev/null", path, null, MS.BIND);
      state.firstFile = path;
    }
  }
  if (state.nullMount !== undefined) close(state.nullMount);
  for (const path of request.readonly) {
    if (kindOf(path) === null) {
      if (request.optional.has(path)) continue;
      throw new SyscallError("mount", Errno.ENOENT, "No such file or directory", path);
    }
    mount(path, path, null, MS.BIND | MS.REC);
    // read-only on every submount, the atime mode and the locked flags left as they are
    const fd = open(path, O_PATH | O_CLOEXEC);
    try {
      setMountAttributes(fd, MOUNT_ATTR.RDONLY, true, path);
    } finally {
      close(fd);
    }
  }
}

/**
 * The mask steps: with `jail`, a step to run before the jail is entered (it
 * takes the host's /dev/null as a detached mount), and the step that masks
 * and remounts, to run once /proc is mounted (inside the jail).
 */
export function maskSteps(
  request: MaskRequest,
  jail: boolean,
): { beforePivot: ChildStep[]; masks: ChildStep[] } {
  const state: MaskState = {};
  const beforePivot: ChildStep[] = jail && request.masked.length > 0
    ? [{
      name: "devnull",
      calls: [call("open_tree", "AT_FDCWD", "/dev/null", "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC")],
      why: "a /dev/null to mask files with, taken while the host's is in reach",
      run: () => {
        state.nullMount = detachedBind("/dev/null");
      },
    }]
    : [];
  const masks: ChildStep[] = [{
    name: "masks",
    calls: [
      ...request.masked.map((path) =>
        call("mount", "/dev/null|tmpfs", path, null, "MS_BIND|MS_RDONLY", null)
      ),
      ...request.readonly.flatMap((path) => [
        call("mount", path, path, null, "MS_BIND|MS_REC", null),
        call("mount", null, path, null, "MS_BIND|MS_REMOUNT|MS_RDONLY", null),
      ]),
    ],
    why: "hide the kernel's knobs and secrets in /proc and /sys (core_pattern, kcore, keys)",
    run: () => applyMasks(request, state),
  }];
  return { beforePivot, masks };
}
