/**
 * Mount namespace (mount_namespaces(7)): the child gets a copy of the mount
 * table. Like `unshare --mount`, propagation is made private recursively
 * first, so nothing mounted inside ever shows up on the host.
 * @module
 */

import { CLONE, MS } from "../ffi/constants.ts";
import { mount } from "../ffi/libc.ts";

/** The clone flag for a new mount namespace. */
export const MOUNT_NAMESPACE = CLONE.NEWNS;

/** Child step: `mount --make-rprivate /`. */
export function makeMountsPrivate(): void {
  mount(null, "/", null, MS.REC | MS.PRIVATE);
}
