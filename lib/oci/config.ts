/**
 * The OCI runtime-spec 1.2 `config.json`, Linux parts: a pure codec that
 * checks a parsed config and turns it into what the engine runs — a
 * {@link LaunchSpec} whose `container` block carries what only containers
 * need — and the hooks the runtime itself runs (`poststart`, `poststop`).
 *
 * Every field is either mapped, or refused by name (`unsupported:
 * linux.intelRdt`): nothing is silently skipped. Unknown properties are
 * ignored, as the spec requires. A bad value is one line naming its JSON
 * path (`process.args: must be a non-empty array of strings`). Host facts
 * (AppArmor, SELinux) come in as {@link HostFacts}, so this module reads
 * nothing.
 * @module
 */

import type { Hook } from "../hooks.ts";
import { RLIMITS } from "../rlimits.ts";
import type { SeccompProfile } from "../seccomp.ts";
import type { ContainerResources, DeviceRule } from "./cgroups.ts";
import type { ExecDefaults } from "./state.ts";
import type { LaunchSpec } from "../plan.ts";
import type { IdRange } from "../user.ts";
import type {
  ContainerDevice,
  ContainerMount,
  ContainerSetup,
  JoinableNamespace,
} from "./setup.ts";
import { ConfigError, UnsupportedError } from "./spec.ts";

/** What the host offers that some fields need. */
export interface HostFacts {
  /** AppArmor is enabled (`/sys/kernel/security/apparmor` exists). */
  apparmor: boolean;
  /** SELinux is enabled (`/sys/fs/selinux/enforce` exists). */
  selinux: boolean;
}

/** What `create` needs from a bundle's config.json. */
export interface ContainerConfig {
  /** `ociVersion`. */
  ociVersion: string;
  /** The launch, without `startFifo` and `cgroups` (the runtime adds those). */
  spec: LaunchSpec;
  /** `linux.cgroupsPath`, when given. */
  cgroupsPath?: string;
  /** `linux.resources`, written to the cgroup of `cgroupsPath` (which it then needs). */
  resources?: ContainerResources;
  /** What `exec` falls back on (saved in the state at `create`). */
  exec: ExecDefaults;
  /** `hooks.poststart`, run by `start` once the program runs. */
  poststart: Hook[];
  /** `hooks.poststop`, run by `delete`. */
  poststop: Hook[];
  /** `annotations`. */
  annotations: Record<string, string>;
}

type Json = unknown;
type JsonObject = Record<string, Json>;

const isObject = (value: Json): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function object(value: Json, path: string): JsonObject {
  if (!isObject(value)) throw new ConfigError(path, "must be an object");
  return value;
}

function optionalObject(value: Json, path: string): JsonObject {
  return value === undefined ? {} : object(value, path);
}

function string(value: Json, path: string): string {
  if (typeof value !== "string") throw new ConfigError(path, "must be a string");
  if (value.includes("\0")) throw new ConfigError(path, "contains a NUL byte");
  return value;
}

function strings(value: Json, path: string, nonEmpty = false): string[] {
  const what = nonEmpty ? "must be a non-empty array of strings" : "must be an array of strings";
  if (!Array.isArray(value) || (nonEmpty && value.length === 0)) throw new ConfigError(path, what);
  return value.map((item, i) => {
    if (typeof item !== "string") throw new ConfigError(path, what);
    return string(item, `${path}[${i}]`);
  });
}

function array(value: Json, path: string): Json[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(path, "must be an array");
  return value;
}

function integer(value: Json, path: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(path, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

const UINT32 = 0xffffffff;
const uint32 = (value: Json, path: string) => integer(value, path, 0, UINT32);

function boolean(value: Json, path: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw new ConfigError(path, "must be true or false");
  return value;
}

function absolute(value: Json, path: string): string {
  const text = string(value, path);
  if (!text.startsWith("/")) throw new ConfigError(path, "must be an absolute path");
  return text;
}

/** Joins `path` onto `base` unless it is absolute (root.path, relative to the bundle). */
function resolvePath(base: string, path: string): string {
  return path.startsWith("/") ? path : `${base.replace(/\/+$/, "")}/${path}`;
}

/** The namespace types of `linux.namespaces`, as the spec names them. */
const NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];

/** The types that can be joined by path (the tool's thread joins them before clone). */
const JOINABLE: Record<string, JoinableNamespace> = {
  network: "net",
  ipc: "ipc",
  uts: "uts",
  cgroup: "cgroup",
};

/** mount(2) flags set by a mount option. */
export const MOUNT_FLAGS: Record<string, number> = {
  ro: 0x1,
  nosuid: 0x2,
  nodev: 0x4,
  noexec: 0x8,
  sync: 0x10,
  mand: 0x40,
  dirsync: 0x80,
  noatime: 0x400,
  nodiratime: 0x800,
  silent: 0x8000,
  relatime: 0x200000,
  strictatime: 0x1000000,
  lazytime: 0x2000000,
};

/** Options that clear a flag (the default, given for clarity). */
const CLEARING_OPTIONS: Record<string, number> = {
  rw: 0x1,
  suid: 0x2,
  dev: 0x4,
  exec: 0x8,
  async: 0x10,
  nomand: 0x40,
  atime: 0x400,
  diratime: 0x800,
  loud: 0x8000,
  norelatime: 0x200000,
  nostrictatime: 0x1000000,
  nolazytime: 0x2000000,
  defaults: 0,
};

/** MS_REC and the propagation flags. */
export const MS_REC = 0x4000;
/** Propagation options (of a mount or `linux.rootfsPropagation`), as mount(2) flags. */
export const PROPAGATION: Record<string, number> = {
  private: 0x40000,
  rprivate: 0x40000 | MS_REC,
  slave: 0x80000,
  rslave: 0x80000 | MS_REC,
  shared: 0x100000,
  rshared: 0x100000 | MS_REC,
  unbindable: 0x20000,
  runbindable: 0x20000 | MS_REC,
};

/** Mount options this runtime does not implement (runc and crun extensions, ID-mapped mounts). */
const REFUSED_OPTIONS = [
  "idmap",
  "ridmap",
  "rro",
  "rrw",
  "rnosuid",
  "rsuid",
  "rnodev",
  "rdev",
  "rnoexec",
  "rexec",
  "rnoatime",
  "ratime",
  "rrelatime",
  "rnorelatime",
  "rstrictatime",
  "rnostrictatime",
  "rnosymfollow",
  "rsymfollow",
  "nosymfollow",
  "symfollow",
  "copy-symlink",
  "src-nofollow",
];

/** The filesystem types a mount may have (a bind has "bind", "none" or none). */
const MOUNT_TYPES = ["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "bind"];

function parseMount(value: Json, path: string): ContainerMount {
  const entry = object(value, path);
  let destination = string(entry.destination, `${path}.destination`);
  if (destination === "") throw new ConfigError(`${path}.destination`, "must not be empty");
  if (!destination.startsWith("/")) destination = `/${destination}`;
  if (destination.split("/").includes("..")) {
    throw new ConfigError(`${path}.destination`, 'may not contain ".."');
  }
  const options = entry.options === undefined ? [] : strings(entry.options, `${path}.options`);
  if (entry.uidMappings !== undefined || entry.gidMappings !== undefined) {
    throw new UnsupportedError(`${path}.uidMappings`, "ID-mapped mounts are not implemented");
  }
  let flags = 0;
  let bind = false;
  let recursive = false;
  const propagation: number[] = [];
  const data: string[] = [];
  let copyUp = false;
  for (const [i, option] of options.entries()) {
    if (option === "tmpcopyup") copyUp = true;
    else if (option === "bind" || option === "rbind") {
      bind = true;
      recursive ||= option === "rbind";
    } else if (option in MOUNT_FLAGS) flags |= MOUNT_FLAGS[option];
    else if (option in CLEARING_OPTIONS) flags &= ~CLEARING_OPTIONS[option];
    else if (option in PROPAGATION) propagation.push(PROPAGATION[option]);
    else if (REFUSED_OPTIONS.includes(option)) {
      throw new UnsupportedError(`${path}.options[${i}]`, `"${option}" is not implemented`);
    } else if (option.includes(",")) {
      throw new ConfigError(`${path}.options[${i}]`, "one option per entry");
    } else data.push(option);
  }
  let type = entry.type === undefined ? "" : string(entry.type, `${path}.type`);
  if (type === "none") type = "";
  if (type === "bind") bind = true;
  if (!bind && type === "") throw new ConfigError(`${path}.type`, "needed unless it is a bind");
  if (!bind && !MOUNT_TYPES.includes(type)) {
    throw new UnsupportedError(
      `${path}.type`,
      `"${type}" is not one of ${MOUNT_TYPES.filter((t) => t !== "bind").join(", ")}`,
    );
  }
  const source = entry.source === undefined ? "" : string(entry.source, `${path}.source`);
  if (bind && !source.startsWith("/")) {
    throw new ConfigError(`${path}.source`, "a bind needs an absolute source path");
  }
  if (bind && data.length > 0) {
    throw new UnsupportedError(
      `${path}.options`,
      `"${data[0]}" is not a mount flag (a bind takes none)`,
    );
  }
  if (copyUp && type !== "tmpfs") {
    throw new ConfigError(`${path}.options`, '"tmpcopyup" is for a tmpfs');
  }
  return bind ? { destination, kind: "bind", source, recursive, flags, propagation } : {
    destination,
    kind: "fs",
    type,
    source: source || type,
    flags,
    propagation,
    data,
    ...copyUp ? { copyUp } : {},
  };
}

const DEVICE_TYPES: Record<string, ContainerDevice["type"]> = {
  c: "c",
  u: "c",
  b: "b",
  p: "p",
};

function parseDevice(value: Json, path: string): ContainerDevice {
  const entry = object(value, path);
  const typeName = string(entry.type, `${path}.type`);
  const type = DEVICE_TYPES[typeName];
  if (!type) throw new ConfigError(`${path}.type`, 'must be "c", "b", "u" or "p"');
  const devicePath = absolute(entry.path, `${path}.path`);
  if (devicePath.split("/").includes("..")) {
    throw new ConfigError(`${path}.path`, 'may not contain ".."');
  }
  const needsNumbers = type !== "p";
  return {
    path: devicePath,
    type,
    major: needsNumbers ? integer(entry.major, `${path}.major`, 0, 0xfff) : 0,
    minor: needsNumbers ? integer(entry.minor, `${path}.minor`, 0, 0xfffff) : 0,
    fileMode: entry.fileMode === undefined
      ? 0o666
      : integer(entry.fileMode, `${path}.fileMode`, 0, 0o7777),
    uid: entry.uid === undefined ? 0 : uint32(entry.uid, `${path}.uid`),
    gid: entry.gid === undefined ? 0 : uint32(entry.gid, `${path}.gid`),
  };
}

function parseIdMappings(value: Json, path: string): IdRange[] {
  return array(value, path).map((item, i) => {
    const entry = object(item, `${path}[${i}]`);
    return {
      inside: uint32(entry.containerID, `${path}[${i}].containerID`),
      outside: uint32(entry.hostID, `${path}[${i}].hostID`),
      count: integer(entry.size, `${path}[${i}].size`, 1, UINT32),
    };
  });
}

function parseHook(value: Json, path: string): Hook {
  const entry = object(value, path);
  const hook: Hook = { path: absolute(entry.path, `${path}.path`) };
  if (entry.args !== undefined) hook.args = strings(entry.args, `${path}.args`);
  if (entry.env !== undefined) hook.env = strings(entry.env, `${path}.env`);
  if (entry.timeout !== undefined) {
    hook.timeout = integer(entry.timeout, `${path}.timeout`, 1, 86400);
  }
  return hook;
}

/** The default devices every container gets, as runc's (`/dev/null` … `/dev/tty`). */
export const DEFAULT_DEVICES: ContainerDevice[] = [
  ["/dev/null", 1, 3],
  ["/dev/zero", 1, 5],
  ["/dev/full", 1, 7],
  ["/dev/random", 1, 8],
  ["/dev/urandom", 1, 9],
  ["/dev/tty", 5, 0],
].map(([path, major, minor]) => ({
  path: path as string,
  type: "c" as const,
  major: major as number,
  minor: minor as number,
  fileMode: 0o666,
  uid: 0,
  gid: 0,
}));

/** The capability sets of config.json, as names (`CAP_CHOWN`). */
const CAPABILITY_SETS = ["bounding", "effective", "permitted", "inheritable", "ambient"] as const;

/** `RLIMIT_NOFILE`'s value: a JSON number, where 2^64-1 (RLIM_INFINITY) reads as a float. */
function rlimitValue(value: Json, path: string): number | "unlimited" {
  if (typeof value === "number" && value >= 2 ** 63) return "unlimited";
  return integer(value, path, 0, Number.MAX_SAFE_INTEGER);
}

/** A size or count of `linux.resources`: -1 (or, for pids, 0) is no limit, left out. */
function resourceNumber(value: Json, path: string, zeroIsNone = false): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = integer(value, path, -1, Number.MAX_SAFE_INTEGER);
  return number === -1 || (zeroIsNone && number === 0) ? undefined : number;
}

/** The device rules of `linux.resources.devices`. */
function deviceRules(value: Json): DeviceRule[] {
  return array(value, "linux.resources.devices").map((item, i) => {
    const path = `linux.resources.devices[${i}]`;
    const rule = object(item, path);
    const type = rule.type === undefined ? "a" : string(rule.type, `${path}.type`);
    if (type !== "a" && type !== "c" && type !== "b") {
      throw new ConfigError(`${path}.type`, "must be a, c or b");
    }
    const number = (key: string) =>
      rule[key] === undefined || rule[key] === null || rule[key] === -1
        ? "*" as const
        : integer(rule[key], `${path}.${key}`, 0, 0xfffff);
    const access = rule.access === undefined ? "rwm" : string(rule.access, `${path}.access`);
    if (!/^[rwm]{1,3}$/.test(access)) throw new ConfigError(`${path}.access`, "must be of r, w, m");
    return {
      allow: boolean(rule.allow, `${path}.allow`),
      type,
      major: number("major"),
      minor: number("minor"),
      access,
    };
  });
}

/**
 * `linux.resources`: memory, pids, cpu and devices are honoured (written to
 * the container's cgroup by `create`); any other field given is refused by
 * name.
 */
function parseResources(linux: JsonObject): ContainerResources | undefined {
  if (linux.resources === undefined || linux.resources === null) return undefined;
  const resources = object(linux.resources, "linux.resources");
  for (const field of Object.keys(resources)) {
    if (!["memory", "pids", "cpu", "devices"].includes(field)) {
      refuseIfGiven(resources, field, `linux.resources.${field}`, "not implemented");
    }
  }
  const memory = optionalObject(resources.memory, "linux.resources.memory");
  for (const field of Object.keys(memory)) {
    if (!["limit", "swap", "reservation"].includes(field)) {
      refuseIfGiven(memory, field, `linux.resources.memory.${field}`, "not implemented");
    }
  }
  const cpu = optionalObject(resources.cpu, "linux.resources.cpu");
  for (const field of Object.keys(cpu)) {
    if (!["quota", "period", "shares", "cpus", "mems"].includes(field)) {
      refuseIfGiven(cpu, field, `linux.resources.cpu.${field}`, "not implemented");
    }
  }
  const pids = optionalObject(resources.pids, "linux.resources.pids");
  const text = (value: Json, path: string) =>
    value === undefined || value === "" ? undefined : string(value, path);
  const parsed: ContainerResources = {
    memoryLimit: resourceNumber(memory.limit, "linux.resources.memory.limit", true),
    memorySwap: resourceNumber(memory.swap, "linux.resources.memory.swap", true),
    memoryReservation: resourceNumber(memory.reservation, "linux.resources.memory.reservation"),
    pids: resourceNumber(pids.limit, "linux.resources.pids.limit", true),
    cpuQuota: cpu.quota === undefined || cpu.quota === null || cpu.quota === 0
      ? undefined
      : integer(cpu.quota, "linux.resources.cpu.quota", -1, Number.MAX_SAFE_INTEGER),
    cpuPeriod: resourceNumber(cpu.period, "linux.resources.cpu.period", true),
    cpuShares: resourceNumber(cpu.shares, "linux.resources.cpu.shares", true),
    cpus: text(cpu.cpus, "linux.resources.cpu.cpus"),
    mems: text(cpu.mems, "linux.resources.cpu.mems"),
    devices: deviceRules(resources.devices),
  };
  if (parsed.memorySwap !== undefined && parsed.memorySwap < (parsed.memoryLimit ?? Infinity)) {
    throw new ConfigError(
      "linux.resources.memory.swap",
      parsed.memoryLimit === undefined
        ? "needs a memory.limit (it counts memory plus swap)"
        : "must be at least memory.limit (it counts memory plus swap)",
    );
  }
  for (const key of Object.keys(parsed) as (keyof ContainerResources)[]) {
    if (parsed[key] === undefined) delete parsed[key];
  }
  return Object.keys(parsed).length === 1 && parsed.devices.length === 0 ? undefined : parsed;
}

/**
 * The capabilities a process run as `uid` gets from `process.capabilities`
 * (`value`): for root those in all of bounding, permitted and effective,
 * for another user the ambient ones among them that are also inheritable.
 */
export function grantedCapabilities(
  value: Json,
  uid: number,
  path = "process.capabilities",
): string[] {
  const given = object(value, path);
  const sets = Object.fromEntries(CAPABILITY_SETS.map((set) => [
    set,
    new Set(strings(given[set] ?? [], `${path}.${set}`).map((name) => name.toUpperCase())),
  ])) as Record<(typeof CAPABILITY_SETS)[number], Set<string>>;
  // the kernel raises an ambient capability only when it is permitted and inheritable
  return [...uid === 0 ? sets.effective : sets.ambient].filter((name) =>
    sets.bounding.has(name) && sets.permitted.has(name) &&
    (uid === 0 || sets.inheritable.has(name))
  );
}

/**
 * The containment fields onto the engine's (lib/contain.ts):
 * `process.capabilities` (the command gets exactly the capabilities in all
 * of bounding, permitted and effective, or for a user other than root the
 * ambient ones; its bounding set is that set too, narrower than runc's),
 * `process.rlimits`, `process.noNewPrivileges`, `linux.seccomp`, and the
 * masked and read-only paths (one that does not exist is skipped, as runc).
 * With capabilities the user changes in the engine's credential steps (so
 * that they survive it), not in the container's own.
 */
export function containmentFields(config: JsonObject, spec: LaunchSpec): void {
  const process = optionalObject(config.process, "process");
  const linux = optionalObject(config.linux, "linux");
  if (process.capabilities !== undefined && process.capabilities !== null) {
    const user = spec.container!.user;
    const granted = grantedCapabilities(process.capabilities, user.uid);
    spec.capabilities = { drop: ["ALL"], add: granted };
    spec.uid = user.uid;
    spec.gid = user.gid;
    if (user.additionalGids.length) spec.groups = user.additionalGids; // else none, as runc
    spec.container!.userByContainment = true;
  }
  const rlimits: NonNullable<LaunchSpec["rlimits"]> = {};
  array(process.rlimits, "process.rlimits").forEach((item, i) => {
    const path = `process.rlimits[${i}]`;
    const entry = object(item, path);
    const type = string(entry.type, `${path}.type`);
    const name = type.replace(/^RLIMIT_/, "").toLowerCase();
    if (!/^RLIMIT_[A-Z]+$/.test(type) || !(name in RLIMITS)) {
      throw new ConfigError(`${path}.type`, `${type}: not a resource limit`);
    }
    rlimits[name] = [
      rlimitValue(entry.soft, `${path}.soft`),
      rlimitValue(entry.hard, `${path}.hard`),
    ];
  });
  if (Object.keys(rlimits).length > 0) spec.rlimits = rlimits;
  if (boolean(process.noNewPrivileges, "process.noNewPrivileges")) spec.noNewPrivs = true;
  if (linux.seccomp !== undefined && linux.seccomp !== null) {
    const seccomp = object(linux.seccomp, "linux.seccomp");
    refuseIfGiven(seccomp, "listenerPath", "linux.seccomp.listenerPath", "not implemented");
    refuseIfGiven(seccomp, "flags", "linux.seccomp.flags", "not implemented");
    spec.seccomp = seccomp as unknown as SeccompProfile;
  }
  const masked = strings(linux.maskedPaths ?? [], "linux.maskedPaths");
  const readonly = strings(linux.readonlyPaths ?? [], "linux.readonlyPaths");
  masked.forEach((path, i) => absolute(path, `linux.maskedPaths[${i}]`));
  readonly.forEach((path, i) => absolute(path, `linux.readonlyPaths[${i}]`));
  if (masked.length) spec.maskedPaths = masked;
  if (readonly.length) spec.readonlyPaths = readonly;
  if (masked.length || readonly.length) spec.skipMissingPaths = true;
}

/** Refuses `field` of `where` when it is given (a field this runtime has no step for). */
function refuseIfGiven(where: JsonObject, field: string, path: string, why: string): void {
  const value = where[field];
  if (value === undefined || value === null || value === "") return;
  if (Array.isArray(value) && value.length === 0) return;
  if (isObject(value) && Object.keys(value).length === 0) return;
  throw new UnsupportedError(path, why);
}

/**
 * Checks `config` (a parsed config.json of the bundle at `bundle`, an
 * absolute path) and maps it onto the engine. Throws a {@link ConfigError}
 * for a bad value, an {@link UnsupportedError} for a field that cannot be
 * honoured here.
 */
export function parseConfig(config: Json, bundle: string, host: HostFacts): ContainerConfig {
  const top = object(config, "config.json");
  const ociVersion = string(top.ociVersion, "ociVersion");
  if (!/^1\.\d+\.\d+/.test(ociVersion)) {
    throw new ConfigError("ociVersion", `${ociVersion}: only runtime-spec 1.x is understood`);
  }
  if (top.vm !== undefined) throw new UnsupportedError("vm", "this runtime runs no VMs");
  const root = object(top.root, "root");
  const rootfs = resolvePath(bundle, string(root.path, "root.path"));
  const process = object(top.process, "process");
  const args = strings(process.args, "process.args", true);
  if (args[0] === "") throw new ConfigError("process.args[0]", "must not be empty");
  if (process.commandLine !== undefined) {
    throw new UnsupportedError("process.commandLine", "a Windows field");
  }
  const env = process.env === undefined ? [] : strings(process.env, "process.env");
  env.forEach((entry, i) => {
    if (entry.indexOf("=") < 1) throw new ConfigError(`process.env[${i}]`, "must be KEY=VALUE");
  });
  const cwd = absolute(process.cwd ?? "/", "process.cwd");
  const user = object(process.user, "process.user");
  if (user.username !== undefined) throw new UnsupportedError("process.user.username", "Windows");
  const terminal = boolean(process.terminal, "process.terminal");
  let consoleSize: ContainerSetup["consoleSize"];
  if (process.consoleSize !== undefined) {
    const size = object(process.consoleSize, "process.consoleSize");
    consoleSize = {
      height: integer(size.height, "process.consoleSize.height", 0, 0xffff),
      width: integer(size.width, "process.consoleSize.width", 0, 0xffff),
    };
  }
  for (const field of ["ioPriority", "scheduler", "execCPUAffinity"]) {
    refuseIfGiven(process, field, `process.${field}`, "not implemented");
  }
  if (process.apparmorProfile) {
    throw new UnsupportedError(
      "process.apparmorProfile",
      host.apparmor ? "AppArmor profiles are not applied by this runtime" : "AppArmor is absent",
    );
  }
  if (process.selinuxLabel) {
    throw new UnsupportedError(
      "process.selinuxLabel",
      host.selinux ? "SELinux labels are not applied by this runtime" : "SELinux is absent",
    );
  }

  const linux = optionalObject(top.linux, "linux");
  const spec: LaunchSpec = { command: args };
  const joins: ContainerSetup["joins"] = [];
  const created = new Set<string>();
  array(linux.namespaces, "linux.namespaces").forEach((item, i) => {
    const path = `linux.namespaces[${i}]`;
    const entry = object(item, path);
    const type = string(entry.type, `${path}.type`);
    if (!NAMESPACE_TYPES.includes(type)) {
      throw new ConfigError(`${path}.type`, `must be one of ${NAMESPACE_TYPES.join(", ")}`);
    }
    if (created.has(type) || joins.some((join) => join.spec === type)) {
      throw new ConfigError(`${path}.type`, `${type} is given twice`);
    }
    if (entry.path !== undefined && entry.path !== "") {
      const file = absolute(entry.path, `${path}.path`);
      const joinable = JOINABLE[type];
      if (!joinable) {
        throw new UnsupportedError(`${path}.path`, `joining a ${type} namespace by path`);
      }
      joins.push({ spec: type, type: joinable, path: file });
    } else created.add(type);
  });
  const namespaces: ContainerSetup["namespaces"] = [];
  if (created.has("pid")) spec.pid = true;
  if (created.has("mount")) spec.mount = true;
  if (created.has("network")) spec.net = true;
  if (created.has("ipc")) spec.ipc = true;
  if (created.has("cgroup")) spec.cgroup = true;
  if (created.has("uts")) namespaces.push("uts");
  if (!spec.mount) throw new ConfigError("linux.namespaces", "must create a mount namespace");

  const uidMappings = parseIdMappings(linux.uidMappings, "linux.uidMappings");
  const gidMappings = parseIdMappings(linux.gidMappings, "linux.gidMappings");
  if (created.has("user")) {
    if (uidMappings.length === 0) {
      throw new ConfigError("linux.uidMappings", "a new user namespace needs them");
    }
    if (gidMappings.length === 0) {
      throw new ConfigError("linux.gidMappings", "a new user namespace needs them");
    }
    spec.idRanges = { users: uidMappings, groups: gidMappings };
  } else if (uidMappings.length || gidMappings.length) {
    throw new ConfigError("linux.uidMappings", "only with a new user namespace");
  }

  if (top.hostname !== undefined) {
    const name = string(top.hostname, "hostname");
    if (!created.has("uts") && name !== "") {
      throw new ConfigError("hostname", "needs a new uts namespace");
    }
    if (name !== "") spec.hostname = name;
  }
  let domainname: string | undefined;
  if (top.domainname !== undefined) {
    domainname = string(top.domainname, "domainname");
    if (!created.has("uts") && domainname !== "") {
      throw new ConfigError("domainname", "needs a new uts namespace");
    }
    if (domainname.length > 64) throw new ConfigError("domainname", "longer than 64 bytes");
  }

  const timeOffsets = linux.timeOffsets === undefined
    ? undefined
    : object(linux.timeOffsets, "linux.timeOffsets");
  if (created.has("time")) {
    const offsets: { monotonic?: number; boottime?: number } = {};
    for (const [clock, entry] of Object.entries(timeOffsets ?? {})) {
      const path = `linux.timeOffsets.${clock}`;
      if (clock !== "monotonic" && clock !== "boottime") {
        throw new ConfigError(path, "only monotonic and boottime have offsets");
      }
      const offset = object(entry, path);
      if (offset.nanosecs !== undefined && offset.nanosecs !== 0) {
        throw new UnsupportedError(`${path}.nanosecs`, "offsets are whole seconds here");
      }
      offsets[clock] = integer(offset.secs ?? 0, `${path}.secs`, -(2 ** 52), 2 ** 52);
    }
    spec.time = offsets;
  } else if (timeOffsets !== undefined && Object.keys(timeOffsets).length > 0) {
    throw new ConfigError("linux.timeOffsets", "needs a new time namespace");
  }

  const mounts = array(top.mounts, "mounts").map((item, i) => parseMount(item, `mounts[${i}]`));
  const devices = [...DEFAULT_DEVICES];
  array(linux.devices, "linux.devices").forEach((item, i) => {
    const device = parseDevice(item, `linux.devices[${i}]`);
    const same = devices.findIndex((known) => known.path === device.path);
    if (same >= 0) devices.splice(same, 1);
    devices.push(device);
  });
  const sysctl: Record<string, string> = {};
  for (const [key, value] of Object.entries(optionalObject(linux.sysctl, "linux.sysctl"))) {
    const path = `linux.sysctl.${key}`;
    if (!/^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-*]+)*$/.test(key)) {
      throw new ConfigError(path, "not a sysctl name");
    }
    sysctl[key] = string(value, path);
  }
  let rootfsPropagation: number | undefined;
  if (linux.rootfsPropagation !== undefined) {
    const name = string(linux.rootfsPropagation, "linux.rootfsPropagation");
    if (!(name in PROPAGATION)) {
      throw new ConfigError(
        "linux.rootfsPropagation",
        `must be one of ${Object.keys(PROPAGATION).join(", ")}`,
      );
    }
    rootfsPropagation = PROPAGATION[name];
  }
  let personality: number | undefined;
  if (linux.personality !== undefined) {
    const entry = object(linux.personality, "linux.personality");
    const domain = string(entry.domain, "linux.personality.domain");
    if (domain !== "LINUX" && domain !== "LINUX32") {
      throw new ConfigError("linux.personality.domain", 'must be "LINUX" or "LINUX32"');
    }
    if (array(entry.flags, "linux.personality.flags").length > 0) {
      throw new UnsupportedError("linux.personality.flags", "no flags are defined yet");
    }
    personality = domain === "LINUX32" ? 0x8 : 0;
  }
  let oomScoreAdj: number | undefined;
  if (process.oomScoreAdj !== undefined) {
    oomScoreAdj = integer(process.oomScoreAdj, "process.oomScoreAdj", -1000, 1000);
  }
  let cgroupsPath: string | undefined;
  if (linux.cgroupsPath !== undefined && linux.cgroupsPath !== "") {
    cgroupsPath = string(linux.cgroupsPath, "linux.cgroupsPath");
    if (cgroupsPath.split("/").includes("..")) {
      throw new ConfigError("linux.cgroupsPath", 'may not contain ".."');
    }
    if (/^[^/]*:[^/]*:/.test(cgroupsPath)) {
      throw new UnsupportedError(
        "linux.cgroupsPath",
        "a systemd slice:prefix:name path; use podman --cgroup-manager=cgroupfs",
      );
    }
  }
  refuseIfGiven(
    linux,
    "mountLabel",
    "linux.mountLabel",
    host.selinux ? "not applied" : "SELinux is absent",
  );
  for (const field of ["intelRdt", "memoryPolicy", "netDevices"]) {
    refuseIfGiven(linux, field, `linux.${field}`, "not implemented");
  }

  const hooksConfig = optionalObject(top.hooks, "hooks");
  const hooks = (name: string) =>
    array(hooksConfig[name], `hooks.${name}`).map((item, i) =>
      parseHook(item, `hooks.${name}[${i}]`)
    );
  const createRuntime = [...hooks("prestart"), ...hooks("createRuntime")];
  const createContainer = hooks("createContainer");
  const startContainer = hooks("startContainer");
  spec.hooks = {};
  if (createRuntime.length) spec.hooks.createRuntime = createRuntime;
  if (createContainer.length) spec.hooks.createContainer = createContainer;
  if (startContainer.length) spec.hooks.startContainer = startContainer;

  spec.jail = rootfs;
  spec.container = {
    namespaces,
    joins,
    mounts,
    devices,
    readonlyRoot: boolean(root.readonly, "root.readonly"),
    rootfsPropagation,
    env,
    cwd,
    user: {
      uid: uint32(user.uid, "process.user.uid"),
      gid: uint32(user.gid, "process.user.gid"),
      additionalGids: (array(user.additionalGids, "process.user.additionalGids")).map((gid, i) =>
        uint32(gid, `process.user.additionalGids[${i}]`)
      ),
      umask: user.umask === undefined
        ? undefined
        : integer(user.umask, "process.user.umask", 0, 0o777),
    },
    terminal,
    consoleSize,
    domainname: domainname || undefined,
    sysctl,
    personality,
    oomScoreAdj,
  };
  containmentFields(top, spec);
  const resources = parseResources(linux);
  if (resources?.devices.length) {
    // the devices the container has stay usable, as runc allows them
    for (const device of devices) {
      if (device.type === "p") continue;
      const { type, major, minor } = device;
      resources.devices.push({ allow: true, type, major, minor, access: "rwm" });
    }
  }
  if (resources && !cgroupsPath) {
    throw new UnsupportedError("linux.resources", "needs a linux.cgroupsPath to write them to");
  }

  const annotations: Record<string, string> = {};
  for (
    const [key, value] of Object.entries(optionalObject(top.annotations, "annotations"))
  ) {
    annotations[key] = string(value, `annotations.${key}`);
  }
  return {
    ociVersion,
    spec,
    cgroupsPath,
    ...resources ? { resources } : {},
    exec: {
      ...process.capabilities != null ? { capabilities: process.capabilities } : {},
      noNewPrivs: spec.noNewPrivs === true,
      ...spec.seccomp !== undefined ? { seccomp: spec.seccomp } : {},
    },
    poststart: hooks("poststart"),
    poststop: hooks("poststop"),
    annotations,
  };
}
