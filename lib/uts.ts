/**
 * UTS namespace (uts_namespaces(7)): the child has its own hostname.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { sethostname } from "../ffi/libc.ts";
import { call, type ChildStep } from "./step.ts";

/** The clone flag for a new UTS namespace. */
export const UTS_NAMESPACE = CLONE.NEWUTS;

/** The kernel's limit on a hostname, in bytes (HOST_NAME_MAX). */
export const HOSTNAME_MAX = 64;

/** Why `name` cannot be a hostname, or null when it can. */
export function hostnameProblem(name: string): string | null {
  if (name.length === 0) return "hostname is empty";
  if (name.includes("\0")) return "hostname contains a NUL byte";
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > HOSTNAME_MAX) return `hostname is ${bytes} bytes long (at most ${HOSTNAME_MAX})`;
  return null;
}

/** Child step: sets the hostname of the new UTS namespace. */
export function setHostname(name: string): void {
  sethostname(name);
}

/** The child step that sets the hostname. */
export function hostnameStep(name: string): ChildStep {
  return {
    name: "sethostname",
    calls: [call("sethostname", name, new TextEncoder().encode(name).length)],
    why: "the new UTS namespace's own hostname",
    run: () => setHostname(name),
  };
}
