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
import { Errno, SyscallError } from "../ffi/errors.ts";
import { AT_FDCWD, close, mount, O_CLOEXEC, O_DIRECTORY, O_PATH, open } from "../ffi/libc.ts";
import {
  attachMount,
  MOUNT_ATTR,
  OPEN_TREE_CLONE,
  openTree,
  setMountAttributes,
} from "../ffi/mountapi.ts";
import { type Call, call, type ChildStep } from "./step.ts";

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

/** What a probe found at a path: a directory, something else, or nothing. */
type Kind = "directory" | "file" | "missing";

/** Whether `path` is a directory, something else, or missing (open O_PATH|O_DIRECTORY). */
function kindOf(path: string): Kind {
  try {
    close(open(path, O_PATH | O_DIRECTORY | O_CLOEXEC));
    return "directory";
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    if (error.errno === Errno.ENOTDIR) return "file";
    if (error.errno === Errno.ENOENT) return "missing";
    throw error;
  }
}

/** The probe of each path, as a step lists it when it fails (it is a helper otherwise). */
function probeCall(path: string): Call {
  return call("open", path, "O_PATH|O_DIRECTORY|O_CLOEXEC");
}

const TMPFS_FLAGS = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;
const TMPFS_OPTIONS = "size=4k,nr_inodes=1,mode=0555";

/** One thing the mask step does to one path, with the calls it makes. */
type Action =
  | { kind: "tmpfs" | "devnull"; path: string }
  | { kind: "bind"; from: string; path: string }
  | { kind: "attach"; path: string }
  | { kind: "readonly"; path: string }
  | { kind: "skip" | "missing"; path: string };

/**
 * What the mask step does, in order, as the kind of each path is found
 * (`kind` is asked just before its path is acted on, so at run time it sees
 * the earlier mounts): masked paths first, a directory becoming one
 * read-only tmpfs bound onto the later ones (a bind costs less than a
 * superblock), a file the detached /dev/null (`detached`) or the host's,
 * bound onto the later ones; then the read-only paths. A path that is
 * missing is skipped when optional, else it stops the step.
 */
function* actions(
  request: MaskRequest,
  kind: (path: string) => Kind,
  detached: boolean,
): Generator<Action> {
  let firstDirectory: string | undefined, firstFile: string | undefined;
  for (const path of request.masked) {
    const found = kind(path);
    if (found === "missing") {
      yield { kind: request.optional.has(path) ? "skip" : "missing", path };
    } else if (found === "directory") {
      yield firstDirectory === undefined
        ? { kind: "tmpfs", path }
        : { kind: "bind", from: firstDirectory, path };
      firstDirectory ??= path;
    } else {
      yield firstFile !== undefined
        ? { kind: "bind", from: firstFile, path }
        : { kind: detached ? "attach" : "devnull", path };
      firstFile ??= path;
    }
  }
  for (const path of request.readonly) {
    yield kind(path) === "missing"
      ? { kind: request.optional.has(path) ? "skip" : "missing", path }
      : { kind: "readonly", path };
  }
}

/** The descriptor placeholders of the mask calls. */
const NULL_CLONE = "<clone of /dev/null>";

/** The calls of `action`; `fd`: the descriptor of its path, once opened (read-only paths). */
function callsOf(action: Action, fd?: number): Call[] {
  const { path } = action;
  switch (action.kind) {
    case "tmpfs":
      return [
        call(
          "mount",
          "tmpfs",
          path,
          "tmpfs",
          "MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC",
          TMPFS_OPTIONS,
        ),
      ];
    case "devnull":
      return [call("mount", "/dev/null", path, null, "MS_BIND", null)];
    case "bind":
      return [call("mount", action.from, path, null, "MS_BIND", null)];
    case "attach":
      return [call("move_mount", NULL_CLONE, "", "AT_FDCWD", path, "MOVE_MOUNT_F_EMPTY_PATH")];
    case "readonly":
      return [
        call("mount", path, path, null, "MS_BIND|MS_REC", null),
        call(
          "mount_setattr",
          fd ?? `<fd of ${path}>`,
          "",
          "AT_EMPTY_PATH|AT_RECURSIVE",
          "{attr_set=MOUNT_ATTR_RDONLY, attr_clr=0, propagation=0, userns_fd=0}",
          32,
        ),
      ];
    case "missing":
      return [probeCall(path)];
    case "skip":
      return [];
  }
}

/** The calls made so far by a run of the mask step; `failed`: the last one failed. */
interface Made {
  calls: Call[];
  failed: boolean;
}

/** Does `action` (`nullMount`: the detached /dev/null, consumed by an attach), recording its calls. */
function perform(action: Action, nullMount: number | undefined, made: Made): void {
  const { path } = action;
  const record = (calls: Call[], fn: () => void) => {
    made.calls.push(...calls);
    made.failed = true;
    fn();
    made.failed = false;
  };
  switch (action.kind) {
    case "tmpfs":
      return record(
        callsOf(action),
        () => mount("tmpfs", path, "tmpfs", TMPFS_FLAGS, TMPFS_OPTIONS),
      );
    case "devnull":
      return record(callsOf(action), () => mount("/dev/null", path, null, MS.BIND));
    case "bind":
      return record(callsOf(action), () => mount(action.from, path, null, MS.BIND));
    case "attach": {
      const [moved] = callsOf(action);
      return record(
        [{ ...moved, args: [nullMount!, ...moved.args.slice(1)] }],
        () => attachMount(nullMount!, path),
      );
    }
    case "readonly": {
      const [bind] = callsOf(action);
      record([bind], () => mount(path, path, null, MS.BIND | MS.REC));
      // read-only on every submount, the atime mode and the locked flags left as they are
      const fd = open(path, O_PATH | O_CLOEXEC);
      try {
        record(
          [callsOf(action, fd)[1]],
          () => setMountAttributes(fd, MOUNT_ATTR.RDONLY, true, path),
        );
      } finally {
        close(fd);
      }
      return;
    }
    case "missing":
      made.calls.push(probeCall(path));
      made.failed = true;
      throw new SyscallError("mount", Errno.ENOENT, "No such file or directory", path);
    case "skip":
      return;
  }
}

/**
 * Where planning probes `path` for `--explain`: a path under /proc on the
 * host's /proc (the fresh /proc inside is the same kernel's, and shows the
 * same files), any other in the jail (`jail`) or on the host.
 */
function plannedKind(path: string, jail: string | undefined): Kind {
  const onHost = jail === undefined || path === "/proc" || path.startsWith("/proc/");
  return kindOf(onHost ? path : `${jail}${path}`);
}

/**
 * The mask steps: with `jail` (its directory on the host), a step to run
 * before the jail is entered (it takes the host's /dev/null as a detached
 * mount), and the step that masks and remounts, to run once /proc is
 * mounted (inside the jail).
 *
 * What the mask step does to a path depends on its kind, found by a probe
 * as it runs: its `calls` are what planning predicts from the same probe
 * made on the host (see {@link plannedKind}; made only when they are read,
 * by `--explain` or `--trace`), and `made` what the run did.
 */
export function maskSteps(
  request: MaskRequest,
  jail: string | undefined,
): { beforePivot: ChildStep[]; masks: ChildStep[] } {
  let nullMount: number | undefined;
  const detached = jail !== undefined && request.masked.length > 0;
  const beforePivot: ChildStep[] = detached
    ? [{
      name: "devnull",
      calls: [{
        ...call("open_tree", "AT_FDCWD", "/dev/null", "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC"),
        returns: NULL_CLONE,
      }],
      why: "a /dev/null to mask files with, taken while the host's is in reach",
      run: () => {
        nullMount = openTree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE);
      },
      learnt: (): Record<string, string> =>
        nullMount === undefined ? {} : { [NULL_CLONE]: String(nullMount) },
    }]
    : [];
  let predicted: Call[] | undefined;
  const made: Made = { calls: [], failed: false };
  const masks: ChildStep[] = [{
    name: "masks",
    get calls() {
      return predicted ??= [...actions(request, (path) => plannedKind(path, jail), detached)]
        .flatMap((action) => callsOf(action));
    },
    why: "hide the kernel's knobs and secrets in /proc and /sys (core_pattern, kcore, keys): " +
      "a directory gets a tmpfs, a file /dev/null, by what each is on this host; one of runc's missing is skipped",
    run: () => {
      try {
        for (const action of actions(request, kindOf, detached)) {
          perform(action, nullMount, made);
          if (action.kind === "attach") {
            close(nullMount!);
            nullMount = undefined;
          }
        }
      } finally {
        if (nullMount !== undefined) close(nullMount);
        nullMount = undefined;
      }
    },
    made: () => made,
  }];
  return { beforePivot, masks };
}
