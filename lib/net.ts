/**
 * Network namespace (network_namespaces(7)): the child gets a network stack
 * of its own, holding only a loopback interface that is down, exactly as the
 * kernel creates it.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";

/** The clone flag for a new network namespace. */
export const NET_NAMESPACE = CLONE.NEWNET;
