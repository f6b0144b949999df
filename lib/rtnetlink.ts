/**
 * rtnetlink(7) operations for the launcher's networking: veth pairs,
 * addresses, the default route, and listings for `invoke_ns ns`.
 *
 * A {@link RouteSocket} owns one `NETLINK_ROUTE` socket and acts on the
 * network namespace that the *calling thread* was in when the socket was
 * created: a netlink socket is bound to its creator's namespace for life,
 * whatever namespace the thread moves to afterwards. So the launcher opens
 * one socket on the host, and another on the main thread after
 * `unshare(CLONE_NEWNET)` (or setns) to configure the new namespace.
 *
 * Each request asks for an acknowledgement (NLM_F_ACK) and carries its own
 * sequence number; the socket then reads until the kernel's ack (or error)
 * for that number, or NLMSG_DONE for a dump. A kernel error becomes a
 * {@link SyscallError} whose call is the request type, e.g.
 * `RTM_NEWLINK: veth ns1234 (EEXIST: File exists)`, with the kernel's
 * extended-ack text, when there is one, after the object's name.
 * @module
 */

import { Errno, SyscallError } from "../ffi/errors.ts";
import { close, strerror } from "../ffi/libc.ts";
import {
  AF_NETLINK,
  bindSocket,
  NETLINK_ROUTE,
  receiveMessage,
  sendMessage,
  setSocketOption,
  SOCK_RAW,
  socket,
} from "../ffi/socket.ts";
import { type Cidr, formatCidr, parseCidr, parseIPv4 } from "./ipv4.ts";
import {
  deleteLinkRequest,
  dumpAddressesRequest,
  dumpLinksRequest,
  getLinkRequest,
  type InterfaceAddress,
  type Link,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  type NetlinkMessage,
  newAddressRequest,
  newDefaultRouteRequest,
  newVethRequest,
  NLMSG_DONE,
  NLMSG_ERROR,
  parseAddress,
  parseDoneReply,
  parseErrorReply,
  parseLink,
  parseMessages,
  setLinkUpRequest,
  SOL_NETLINK,
} from "./netlink.ts";

/** errno for "no such device": what RTM_GETLINK/RTM_DELLINK answer for an unknown name. */
/**
 * Receive buffer size: the kernel never puts more than 32 KiB in one netlink
 * datagram, so a bigger buffer never truncates.
 */
const RECEIVE_BUFFER_SIZE = 64 * 1024;

/** One NETLINK_ROUTE socket, bound to the network namespace it was created in. */
export class RouteSocket {
  #fd: number;
  #sequence = 0;
  readonly #buffer = new Uint8Array(RECEIVE_BUFFER_SIZE);

  /**
   * Opens and binds the socket (sockaddr_nl with port ID 0: the kernel picks
   * one) in the calling thread's current network namespace, with extended
   * acks (the kernel's error text) and capped acks (no echo of the request).
   */
  constructor() {
    this.#fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    try {
      setSocketOption(this.#fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
      setSocketOption(this.#fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
      // struct sockaddr_nl (host byte order): nl_family u16, nl_pad u16, nl_pid u32, nl_groups u32.
      const address = new Uint8Array(12);
      new Uint16Array(address.buffer, 0, 1)[0] = AF_NETLINK;
      bindSocket(this.#fd, address);
    } catch (error) {
      close(this.#fd);
      throw error;
    }
  }

  /**
   * Creates the veth pair `hostName` <-> `peerName` in this socket's
   * namespace, or with the peer created directly in the network namespace
   * open at `peerNamespaceFd`. Both ends start down. EEXIST if either exists.
   */
  createVethPair(hostName: string, peerName: string, peerNamespaceFd?: number): void {
    this.#request(
      "RTM_NEWLINK",
      (sequence) => newVethRequest(sequence, hostName, peerName, peerNamespaceFd),
      `veth ${hostName}`,
    );
  }

  /** The index of the link called `name`, or null when there is none. */
  linkIndex(name: string): number | null {
    try {
      const [reply] = this.#request(
        "RTM_GETLINK",
        (sequence) => getLinkRequest(sequence, name),
        name,
      );
      return parseLink(reply.payload).index;
    } catch (error) {
      if (error instanceof SyscallError && error.errno === Errno.ENODEV) return null;
      throw error;
    }
  }

  /** Brings link `index` up (sets IFF_UP). */
  setLinkUp(index: number): void {
    this.#request(
      "RTM_NEWLINK",
      (sequence) => setLinkUpRequest(sequence, index),
      `link ${index} up`,
    );
  }

  /** Adds the IPv4 address `cidr` (e.g. `"10.0.0.1/24"`) to link `index`. */
  addAddress(index: number, cidr: Cidr | string): void {
    const parsed = typeof cidr === "string" ? parseCidr(cidr) : cidr;
    this.#request(
      "RTM_NEWADDR",
      (sequence) => newAddressRequest(sequence, index, parsed),
      `${formatCidr(parsed)} on link ${index}`,
    );
  }

  /** Adds the IPv4 default route via `gateway` (dotted quad) out of link `index`. */
  addDefaultRoute(gateway: string, index: number): void {
    const address = parseIPv4(gateway);
    this.#request(
      "RTM_NEWROUTE",
      (sequence) => newDefaultRouteRequest(sequence, address, index),
      `default via ${gateway} on link ${index}`,
    );
  }

  /**
   * Deletes the link called `name` (for a veth, both ends, wherever the peer
   * is); returns false when no such link exists.
   */
  deleteLink(name: string): boolean {
    try {
      this.#request("RTM_DELLINK", (sequence) => deleteLinkRequest(sequence, name), name);
      return true;
    } catch (error) {
      if (error instanceof SyscallError && error.errno === Errno.ENODEV) return false;
      throw error;
    }
  }

  /** Every link in this socket's namespace, by index order. */
  listLinks(): Link[] {
    return this.#request("RTM_GETLINK", dumpLinksRequest, "links").map((reply) =>
      parseLink(reply.payload)
    );
  }

  /** Every IPv4 address in this socket's namespace. */
  listAddresses(): InterfaceAddress[] {
    return this.#request("RTM_GETADDR", dumpAddressesRequest, "addresses").map((reply) =>
      parseAddress(reply.payload)
    );
  }

  /** Closes the socket (again is a no-op). */
  close(): void {
    if (this.#fd === -1) return;
    close(this.#fd);
    this.#fd = -1;
  }

  /** Closes the socket at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Sends the request `build` makes for the next sequence number and returns
   * the replies to it (data messages only) once the kernel has acknowledged
   * it or ended its dump. Errors are named `call` (the request type) and
   * `what` (the object).
   */
  #request(
    call: string,
    build: (sequence: number) => Uint8Array<ArrayBuffer>,
    what: string,
  ): NetlinkMessage[] {
    if (this.#fd === -1) throw new Error(`${call}: RouteSocket used after close()`);
    this.#sequence = (this.#sequence + 1) >>> 0;
    const sequence = this.#sequence;
    sendMessage(this.#fd, build(sequence));
    const replies: NetlinkMessage[] = [];
    for (;;) {
      const received = receiveMessage(this.#fd, this.#buffer);
      // A copy: the replies kept must survive the next receive into the buffer.
      for (const message of parseMessages(this.#buffer.slice(0, received))) {
        if (message.sequence !== sequence) continue;
        if (message.type === NLMSG_ERROR) {
          const { errno, detail } = parseErrorReply(message);
          if (errno === 0) return replies;
          throw kernelError(call, errno, detail ? `${what}: ${detail}` : what);
        }
        if (message.type === NLMSG_DONE) {
          const errno = parseDoneReply(message);
          if (errno === 0) return replies;
          throw kernelError(call, errno, what);
        }
        replies.push(message);
      }
    }
  }
}

function kernelError(call: string, errno: number, what: string): SyscallError {
  return new SyscallError(call, errno, strerror(errno), what);
}
