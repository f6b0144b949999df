/**
 * invoke_ns as a library: run commands in new Linux namespaces from Deno.
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
 * Needs `--allow-ffi` (libc through `Deno.dlopen`) and `--allow-read`,
 * `--allow-env`; runs as root, or rootless through a user namespace.
 * @module
 */

export { launch, LaunchError } from "./lib/launch.ts";
export type { LaunchOptions, LaunchResult, LaunchSpec } from "./lib/launch.ts";
export { enter } from "./lib/enter.ts";
export type { EnterSpec } from "./lib/enter.ts";
export { listAllNamespaces, namespacesOf } from "./lib/inspect.ts";
export type { NamespaceEntry, NamespaceType, SystemNamespace } from "./lib/inspect.ts";
export { SyscallError } from "./ffi/errors.ts";
export { resolveDependencies } from "./jail/resolve.ts";
export type { ResolvedClosure, ResolvedObject, ResolveOptions } from "./jail/resolve.ts";
export { ElfError } from "./jail/elf.ts";
export { buildJail, JailError } from "./jail/rootfs.ts";
export type { JailOptions, JailSummary } from "./jail/rootfs.ts";
