/**
 * Mount namespace (mount_namespaces(7)): the child gets a copy of the mount
 * table. Like `unshare --mount`, propagation is made private recursively
 * first, so nothing mounted inside ever shows up on the host, even where `/`
 * is shared (systemd makes it so). The mounts themselves (binds, tmpfs,
 * `/dev`) are in `lib/mount.ts`, loaded only when asked for.
 * @module
 */

import { MS } from "../ffi/constants.ts";
import { mount } from "../ffi/libc.ts";
import { call, type ChildStep } from "./step.ts";

/** Child step: `mount --make-rprivate /` (the source "none", as unshare(1) passes). */
export function makeMountsPrivate(): void {
  mount("none", "/", null, MS.REC | MS.PRIVATE);
}

/** The child step that makes the new mount namespace's propagation private. */
export function privateMountsStep(): ChildStep {
  return {
    name: "mount",
    calls: [call("mount", "none", "/", null, "MS_REC|MS_PRIVATE", null)],
    why: "so nothing mounted inside shows on the host, even where / is shared",
    run: makeMountsPrivate,
  };
}

/** Parses `SRC:DST` (or `SRC`, meaning the same path inside). */
export function parseBindSpec(spec: string): { source: string; target: string } {
  const at = spec.indexOf(":");
  return at === -1
    ? { source: spec, target: spec }
    : { source: spec.slice(0, at), target: spec.slice(at + 1) };
}
