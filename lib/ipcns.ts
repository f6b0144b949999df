/**
 * IPC namespace (ipc_namespaces(7)): its clone flag, and what the command
 * line needs of the seed's message-queue demo without loading the demo
 * itself (lib/ipc.ts): the queue's default name and what a name may be.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";

/** The clone flag for a new IPC namespace. */
export const IPC_NAMESPACE = CLONE.NEWIPC;

/** The seed's queue name. */
export const DEMO_QUEUE = "/ipc_namespace";

/** Why `name` cannot name a POSIX message queue, or null when it can. */
export function queueNameProblem(name: string): string | null {
  if (!/^\/[^/\0]{1,254}$/.test(name)) {
    return `${JSON.stringify(name)}: a queue name is "/" followed by 1-254 characters, no "/"`;
  }
  return null;
}
