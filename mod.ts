/**
 * invoke_ns as a library: run commands in new Linux namespaces from Deno,
 * join the namespaces of running processes, see which namespaces exist, and
 * build jails from the ELF files themselves.
 *
 * ```ts
 * import { launch } from "./mod.ts";
 *
 * const { code } = await launch({
 *   command: ["sh", "-c", "hostname; echo $$"],
 *   pid: true,
 *   mount: true,
 *   hostname: "box",
 * });
 * ```
 *
 * Needs `--allow-ffi` (libc through `Deno.dlopen`), `--allow-read` and
 * `--allow-env` (`--allow-write` for {@link buildJail}); runs as root, or
 * rootless through a user namespace. Call it from Deno's main thread.
 * @module
 */

export { launch, LaunchError } from "./lib/launch.ts";
export type { LaunchOptions, LaunchResult, LaunchSpec } from "./lib/launch.ts";
// --explain as data (issue 20): types only, the module loads when asked for
export type { ExplainedStep, Explanation } from "./lib/explain.ts";
export type { Actor, Call } from "./lib/step.ts";
export type { MountRequest } from "./lib/mount.ts";
export type { VethSpec } from "./lib/net.ts";
export type { TimeOffsets } from "./lib/time.ts";
export type { IdRange, IdRanges } from "./lib/user.ts";
export type { Hook, Hooks } from "./lib/hooks.ts";
export type { FailureKind } from "./lib/supervise.ts";
export type { ChildFailure } from "./ffi/clone.ts";
export { enter } from "./lib/enter.ts";
export type { EnterSpec } from "./lib/enter.ts";
export type { PreparedSeccompFilter } from "./ffi/contain.ts";
export { listAllNamespaces, NAMESPACE_TYPES, namespacesOf } from "./lib/inspect.ts";
export type { NamespaceEntry, NamespaceType, SystemNamespace } from "./lib/inspect.ts";
export { SyscallError } from "./ffi/errors.ts";
export { resolveDependencies, ResolverCache } from "./jail/resolve.ts";
export type {
  FoundVia,
  MissingLibrary,
  ResolvedClosure,
  ResolvedObject,
  ResolveOptions,
  SkippedCandidate,
  SymlinkHop,
} from "./jail/resolve.ts";
export { ElfError } from "./jail/elf.ts";
export type { ElfInfo } from "./jail/elf.ts";
export { LdCacheError } from "./jail/ldcache.ts";
export type { LdCache, LdCacheEntry } from "./jail/ldcache.ts";
export { buildJail, JailError } from "./jail/rootfs.ts";
export type { JailOptions, JailSummary } from "./jail/rootfs.ts";
export type { EndReason, LaunchLimits, LaunchUsage } from "./lib/usage.ts";
export type { CgroupUsage, Limits } from "./lib/limits.ts";
export type { ContainmentSpec, RlimitValue } from "./lib/contain_spec.ts";
export type {
  SeccompArg,
  SeccompFilter,
  SeccompOperator,
  SeccompProfile,
  SeccompRule,
} from "./lib/seccomp.ts";
export { DEFAULT_PROFILE } from "./lib/seccomp_default.ts";
// The OCI runtime (issue 18): a container's setup, as LaunchSpec.container carries it.
export type {
  ContainerDevice,
  ContainerMount,
  ContainerSetup,
  JoinableNamespace,
} from "./lib/oci/setup.ts";

import { signalsIgnoredByCaller } from "./ffi/libc.ts";
// Read now, before the importing program can add a signal listener (which changes
// a disposition): a launch keeps the caller's ignored signals ignored.
signalsIgnoredByCaller();
