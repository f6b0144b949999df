/**
 * An encoder and decoder for rtnetlink(7) messages: pure functions over
 * bytes, no I/O (the socket lives in `rtnetlink.ts`, addresses in `ipv4.ts`).
 *
 * Layouts follow the kernel's uapi headers (`linux/netlink.h`,
 * `linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`,
 * `linux/veth.h`): every message is a 16-byte `nlmsghdr` followed by a
 * fixed family header (`ifinfomsg`, `ifaddrmsg` or `rtmsg`) and a list of
 * `rtattr` type-length-value attributes, each padded to 4 bytes. Integers are
 * in host byte order; IPv4 addresses are their four bytes in network order.
 * Malformed input is rejected with a {@link NetlinkFormatError}.
 * @module
 */

import { type Cidr, formatIPv4 } from "./ipv4.ts";

/** Netlink control message types (`linux/netlink.h`): an error or ack, the end of a dump. */
export const NLMSG_ERROR = 2, NLMSG_DONE = 3;
/** rtnetlink link message types (`linux/rtnetlink.h`). */
export const RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18;
/** rtnetlink address message types. */
export const RTM_NEWADDR = 20, RTM_GETADDR = 22;
/** rtnetlink message type adding a route. */
export const RTM_NEWROUTE = 24;

/** `nlmsghdr.nlmsg_flags` bits: a request, part of a multi-part reply, ack wanted. */
export const NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4;
/** `nlmsg_flags` bits for new-object requests: fail if it exists, create it. */
export const NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
/** `nlmsg_flags` for a dump request (NLM_F_ROOT | NLM_F_MATCH). */
export const NLM_F_DUMP = 0x300;
/** `nlmsg_flags` bits of an NLMSG_ERROR reply: original message cut to its header; TLVs follow. */
export const NLM_F_CAPPED = 0x100, NLM_F_ACK_TLVS = 0x200;
/** Extended-ack attribute carrying the kernel's error text (`enum nlmsgerr_attrs`). */
export const NLMSGERR_ATTR_MSG = 1;

/** Socket option level and options for netlink sockets (`SOL_NETLINK`, `linux/netlink.h`). */
export const SOL_NETLINK = 270, NETLINK_CAP_ACK = 10, NETLINK_EXT_ACK = 11;

/** Address families (`linux/socket.h`). */
export const AF_UNSPEC = 0, AF_INET = 2;

/** Link attributes (`enum IFLA_*`, `linux/if_link.h`). */
export const IFLA_IFNAME = 3, IFLA_LINKINFO = 18, IFLA_NET_NS_PID = 19, IFLA_NET_NS_FD = 28;
/** Attributes nested in IFLA_LINKINFO. */
export const IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2;
/** Attribute nested in a veth's IFLA_INFO_DATA (`linux/veth.h`). */
export const VETH_INFO_PEER = 1;
/** Address attributes (`enum IFA_*`, `linux/if_addr.h`). */
export const IFA_ADDRESS = 1, IFA_LOCAL = 2;
/** Route attributes (`enum rtattr_type_t`): output interface, gateway. */
export const RTA_OIF = 4, RTA_GATEWAY = 5;
/** Interface flag: administratively up (`linux/if.h`). */
export const IFF_UP = 0x1;
/** The main routing table. */
export const RT_TABLE_MAIN = 254;
/** Route origin: installed "at boot", i.e. by an administrator (what `ip route add` uses). */
export const RTPROT_BOOT = 3;
/** Route scope of a route to anywhere (a gateway route). */
export const RT_SCOPE_UNIVERSE = 0;
/** Route type: a gateway or direct route. */
export const RTN_UNICAST = 1;

/** Bits of `rtattr.rta_type` that are flags, not the type (NLA_F_NESTED, NLA_F_NET_BYTEORDER). */
const ATTRIBUTE_TYPE_MASK = 0x3fff;
/** sizeof(struct nlmsghdr). */
const NLMSG_HDRLEN = 16;
const RTATTR_HDRLEN = 4;
const IFINFOMSG_LEN = 16, IFADDRMSG_LEN = 8, RTMSG_LEN = 12;

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Input that is not a well-formed netlink message (truncated, or lengths that do not fit). */
export class NetlinkFormatError extends Error {
  /** Builds the error; `detail` says what was wrong. */
  constructor(detail: string) {
    super(`malformed netlink message: ${detail}`);
    this.name = "NetlinkFormatError";
  }
}

/** NLMSG_ALIGN / RTA_ALIGN: `length` rounded up to a multiple of 4. */
function align(length: number): number {
  return (length + 3) & ~3;
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------- encoding

/**
 * One rtattr: `rta_len` (u16, header plus payload, without padding),
 * `rta_type` (u16), the payload, then zero padding to a multiple of 4.
 */
export function attribute(type: number, payload: Uint8Array): Uint8Array {
  const length = RTATTR_HDRLEN + payload.length;
  if (length > 0xffff) throw new RangeError(`attribute ${type}: payload too long`);
  const bytes = new Uint8Array(align(length));
  const view = viewOf(bytes);
  view.setUint16(0, length, hostIsLittleEndian);
  view.setUint16(2, type, hostIsLittleEndian);
  bytes.set(payload, RTATTR_HDRLEN);
  return bytes;
}

/** An attribute holding `text` as a NUL-terminated C string (NLA_STRING / NLA_NUL_STRING). */
export function stringAttribute(type: number, text: string): Uint8Array {
  return attribute(type, encoder.encode(`${text}\0`));
}

/** An attribute holding a u32 in host byte order. */
export function u32Attribute(type: number, value: number): Uint8Array {
  const payload = new Uint8Array(4);
  viewOf(payload).setUint32(0, value, hostIsLittleEndian);
  return attribute(type, payload);
}

/**
 * A nested attribute whose payload is the concatenation of `parts` (encoded
 * attributes, possibly preceded by a family header as VETH_INFO_PEER's
 * ifinfomsg). Its length covers the children's padding, as nla_nest_end's does.
 */
export function nestedAttribute(type: number, ...parts: Uint8Array[]): Uint8Array {
  return attribute(type, concat(parts));
}

/** The fields of `nlmsghdr` a request sets (the length is computed, the port ID is 0). */
export interface RequestHeader {
  /** `nlmsg_type`, e.g. RTM_NEWLINK. */
  type: number;
  /** `nlmsg_flags`, e.g. NLM_F_REQUEST | NLM_F_ACK. */
  flags: number;
  /** `nlmsg_seq`, echoed by the kernel in its replies. */
  sequence: number;
}

/**
 * A whole message: nlmsghdr (`nlmsg_len` computed, `nlmsg_pid` 0) followed by
 * `parts`, each starting 4-aligned.
 */
export function encodeMessage(
  header: RequestHeader,
  ...parts: Uint8Array[]
): Uint8Array<ArrayBuffer> {
  const length = parts.reduce((sum, part) => sum + align(part.length), NLMSG_HDRLEN);
  const bytes = new Uint8Array(length);
  const view = viewOf(bytes);
  view.setUint32(0, length, hostIsLittleEndian);
  view.setUint16(4, header.type, hostIsLittleEndian);
  view.setUint16(6, header.flags, hostIsLittleEndian);
  view.setUint32(8, header.sequence, hostIsLittleEndian);
  let at = NLMSG_HDRLEN;
  for (const part of parts) {
    bytes.set(part, at);
    at += align(part.length);
  }
  return bytes;
}

/** The fields of `struct ifinfomsg`; all default to 0. */
export interface LinkHeaderFields {
  /** `ifi_family` (AF_UNSPEC for links). */
  family?: number;
  /** `ifi_type`: ARPHRD_* device type. */
  deviceType?: number;
  /** `ifi_index`: interface index, 0 to select by IFLA_IFNAME. */
  index?: number;
  /** `ifi_flags`: IFF_* flags. */
  flags?: number;
  /** `ifi_change`: which IFF_* flags to change. */
  change?: number;
}

/** `struct ifinfomsg` (16 bytes): family u8, pad u8, type u16, index i32, flags u32, change u32. */
export function encodeLinkHeader(fields: LinkHeaderFields = {}): Uint8Array {
  const bytes = new Uint8Array(IFINFOMSG_LEN);
  const view = viewOf(bytes);
  view.setUint8(0, fields.family ?? AF_UNSPEC);
  view.setUint16(2, fields.deviceType ?? 0, hostIsLittleEndian);
  view.setInt32(4, fields.index ?? 0, hostIsLittleEndian);
  view.setUint32(8, fields.flags ?? 0, hostIsLittleEndian);
  view.setUint32(12, fields.change ?? 0, hostIsLittleEndian);
  return bytes;
}

/** The fields of `struct ifaddrmsg`; all but the family default to 0. */
export interface AddressHeaderFields {
  /** `ifa_family`, AF_INET unless given. */
  family?: number;
  /** `ifa_prefixlen`. */
  prefixLength?: number;
  /** `ifa_flags`: IFA_F_* flags. */
  flags?: number;
  /** `ifa_scope`: RT_SCOPE_*. */
  scope?: number;
  /** `ifa_index`: the interface. */
  index?: number;
}

/** `struct ifaddrmsg` (8 bytes): family, prefixlen, flags, scope (u8 each), index u32. */
export function encodeAddressHeader(fields: AddressHeaderFields = {}): Uint8Array {
  const bytes = new Uint8Array(IFADDRMSG_LEN);
  const view = viewOf(bytes);
  view.setUint8(0, fields.family ?? AF_INET);
  view.setUint8(1, fields.prefixLength ?? 0);
  view.setUint8(2, fields.flags ?? 0);
  view.setUint8(3, fields.scope ?? RT_SCOPE_UNIVERSE);
  view.setUint32(4, fields.index ?? 0, hostIsLittleEndian);
  return bytes;
}

/** The fields of `struct rtmsg`; all but the family default to 0. */
export interface RouteHeaderFields {
  /** `rtm_family`, AF_INET unless given. */
  family?: number;
  /** `rtm_dst_len`: destination prefix length (0 for the default route). */
  destinationLength?: number;
  /** `rtm_src_len`. */
  sourceLength?: number;
  /** `rtm_tos`. */
  tos?: number;
  /** `rtm_table`: RT_TABLE_*. */
  table?: number;
  /** `rtm_protocol`: RTPROT_*. */
  protocol?: number;
  /** `rtm_scope`: RT_SCOPE_*. */
  scope?: number;
  /** `rtm_type`: RTN_*. */
  routeType?: number;
  /** `rtm_flags`: RTM_F_*. */
  flags?: number;
}

/** `struct rtmsg` (12 bytes): eight u8 fields then flags u32. */
export function encodeRouteHeader(fields: RouteHeaderFields = {}): Uint8Array {
  const bytes = new Uint8Array(RTMSG_LEN);
  const view = viewOf(bytes);
  view.setUint8(0, fields.family ?? AF_INET);
  view.setUint8(1, fields.destinationLength ?? 0);
  view.setUint8(2, fields.sourceLength ?? 0);
  view.setUint8(3, fields.tos ?? 0);
  view.setUint8(4, fields.table ?? 0);
  view.setUint8(5, fields.protocol ?? 0);
  view.setUint8(6, fields.scope ?? RT_SCOPE_UNIVERSE);
  view.setUint8(7, fields.routeType ?? 0);
  view.setUint32(8, fields.flags ?? 0, hostIsLittleEndian);
  return bytes;
}

// ------------------------------------------------------- request builders

const NEW_OBJECT = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
const CHANGE_OBJECT = NLM_F_REQUEST | NLM_F_ACK;

/**
 * RTM_NEWLINK creating a veth pair `hostName` <-> `peerName`, like
 * `ip link add HOST type veth peer name PEER [netns FD]`: the peer's
 * ifinfomsg and attributes sit inside IFLA_LINKINFO / IFLA_INFO_DATA /
 * VETH_INFO_PEER, with IFLA_NET_NS_FD there when the peer is to be created
 * directly in another network namespace.
 */
export function newVethRequest(
  sequence: number,
  hostName: string,
  peerName: string,
  peerNamespaceFd?: number,
): Uint8Array<ArrayBuffer> {
  const peerAttributes = [stringAttribute(IFLA_IFNAME, peerName)];
  if (peerNamespaceFd !== undefined) {
    peerAttributes.push(u32Attribute(IFLA_NET_NS_FD, peerNamespaceFd));
  }
  return encodeMessage(
    { type: RTM_NEWLINK, flags: NEW_OBJECT, sequence },
    encodeLinkHeader(),
    stringAttribute(IFLA_IFNAME, hostName),
    nestedAttribute(
      IFLA_LINKINFO,
      stringAttribute(IFLA_INFO_KIND, "veth"),
      nestedAttribute(
        IFLA_INFO_DATA,
        nestedAttribute(VETH_INFO_PEER, encodeLinkHeader(), ...peerAttributes),
      ),
    ),
  );
}

/** RTM_GETLINK for the link called `name` (answered with one RTM_NEWLINK, or ENODEV). */
export function getLinkRequest(sequence: number, name: string): Uint8Array<ArrayBuffer> {
  return encodeMessage(
    { type: RTM_GETLINK, flags: CHANGE_OBJECT, sequence },
    encodeLinkHeader(),
    stringAttribute(IFLA_IFNAME, name),
  );
}

/** RTM_NEWLINK on an existing link that sets IFF_UP (`ip link set dev X up`). */
export function setLinkUpRequest(sequence: number, index: number): Uint8Array<ArrayBuffer> {
  return encodeMessage(
    { type: RTM_NEWLINK, flags: CHANGE_OBJECT, sequence },
    encodeLinkHeader({ index, flags: IFF_UP, change: IFF_UP }),
  );
}

/** RTM_DELLINK of the link called `name` (a veth takes its peer with it). */
export function deleteLinkRequest(sequence: number, name: string): Uint8Array<ArrayBuffer> {
  return encodeMessage(
    { type: RTM_DELLINK, flags: CHANGE_OBJECT, sequence },
    encodeLinkHeader(),
    stringAttribute(IFLA_IFNAME, name),
  );
}

/**
 * RTM_NEWADDR giving link `index` the address `cidr`, like `ip addr add`:
 * IFA_LOCAL and IFA_ADDRESS both hold the address (they differ only on
 * point-to-point links), the prefix length goes in the header.
 */
export function newAddressRequest(
  sequence: number,
  index: number,
  cidr: Cidr,
): Uint8Array<ArrayBuffer> {
  return encodeMessage(
    { type: RTM_NEWADDR, flags: NEW_OBJECT, sequence },
    encodeAddressHeader({ prefixLength: cidr.prefixLength, index }),
    attribute(IFA_LOCAL, cidr.address),
    attribute(IFA_ADDRESS, cidr.address),
  );
}

/**
 * RTM_NEWROUTE adding the IPv4 default route via `gateway` out of link
 * `index`, like `ip route add default via GW dev X`: main table, protocol
 * boot, scope universe, unicast, destination length 0.
 */
export function newDefaultRouteRequest(
  sequence: number,
  gateway: Uint8Array,
  index: number,
): Uint8Array<ArrayBuffer> {
  return encodeMessage(
    { type: RTM_NEWROUTE, flags: NEW_OBJECT, sequence },
    encodeRouteHeader({
      table: RT_TABLE_MAIN,
      protocol: RTPROT_BOOT,
      scope: RT_SCOPE_UNIVERSE,
      routeType: RTN_UNICAST,
    }),
    attribute(RTA_GATEWAY, gateway),
    u32Attribute(RTA_OIF, index),
  );
}

const DUMP = NLM_F_REQUEST | NLM_F_DUMP;

/**
 * RTM_GETLINK dump of every link; the kernel answers with NLM_F_MULTI
 * RTM_NEWLINK messages ending in NLMSG_DONE.
 */
export function dumpLinksRequest(sequence: number): Uint8Array<ArrayBuffer> {
  return encodeMessage({ type: RTM_GETLINK, flags: DUMP, sequence }, encodeLinkHeader());
}

/** RTM_GETADDR dump of every IPv4 address (answered like {@link dumpLinksRequest}). */
export function dumpAddressesRequest(sequence: number): Uint8Array<ArrayBuffer> {
  return encodeMessage({ type: RTM_GETADDR, flags: DUMP, sequence }, encodeAddressHeader());
}

// ---------------------------------------------------------------- decoding

/** A decoded nlmsghdr. */
export interface MessageHeader {
  /** `nlmsg_len`: header plus payload, without trailing padding. */
  length: number;
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  sequence: number;
  /** `nlmsg_pid`: the sender's port ID (0 for the kernel). */
  portId: number;
}

/** A decoded message: its header and the payload after it. */
export interface NetlinkMessage extends MessageHeader {
  /** The bytes after the header, `length - 16` of them. */
  payload: Uint8Array;
}

function parseHeader(bytes: Uint8Array): MessageHeader {
  if (bytes.length < NLMSG_HDRLEN) {
    throw new NetlinkFormatError(`${bytes.length} bytes is too short for a message header`);
  }
  const view = viewOf(bytes);
  return {
    length: view.getUint32(0, hostIsLittleEndian),
    type: view.getUint16(4, hostIsLittleEndian),
    flags: view.getUint16(6, hostIsLittleEndian),
    sequence: view.getUint32(8, hostIsLittleEndian),
    portId: view.getUint32(12, hostIsLittleEndian),
  };
}

/**
 * Splits a received buffer into its messages (one recv may carry several,
 * each 4-aligned). Throws a {@link NetlinkFormatError} when a header or a
 * length does not fit in the buffer.
 */
export function parseMessages(bytes: Uint8Array): NetlinkMessage[] {
  const messages: NetlinkMessage[] = [];
  for (let at = 0; at < bytes.length;) {
    const header = parseHeader(bytes.subarray(at));
    if (header.length < NLMSG_HDRLEN || header.length > bytes.length - at) {
      throw new NetlinkFormatError(
        `message at offset ${at} claims ${header.length} bytes, ${bytes.length - at} remain`,
      );
    }
    messages.push({ ...header, payload: bytes.subarray(at + NLMSG_HDRLEN, at + header.length) });
    at += align(header.length);
  }
  return messages;
}

/**
 * The attributes in `bytes` by type (flag bits masked off). A repeated
 * type keeps its last value, as the kernel's nla_parse does; fewer than 4
 * bytes left over at the end are ignored, as there.
 */
export function parseAttributes(bytes: Uint8Array): Map<number, Uint8Array> {
  const attributes = new Map<number, Uint8Array>();
  const view = viewOf(bytes);
  for (let at = 0; bytes.length - at >= RTATTR_HDRLEN;) {
    const length = view.getUint16(at, hostIsLittleEndian);
    const type = view.getUint16(at + 2, hostIsLittleEndian) & ATTRIBUTE_TYPE_MASK;
    if (length < RTATTR_HDRLEN || length > bytes.length - at) {
      throw new NetlinkFormatError(
        `attribute at offset ${at} claims ${length} bytes, ${bytes.length - at} remain`,
      );
    }
    attributes.set(type, bytes.subarray(at + RTATTR_HDRLEN, at + length));
    at += align(length);
  }
  return attributes;
}

/** An attribute payload as a string, up to its NUL terminator. */
export function attributeString(payload: Uint8Array): string {
  const end = payload.indexOf(0);
  return decoder.decode(end === -1 ? payload : payload.subarray(0, end));
}

/** An attribute payload as a u32 in host byte order. */
export function attributeU32(payload: Uint8Array): number {
  if (payload.length < 4) throw new NetlinkFormatError(`${payload.length}-byte payload for a u32`);
  return viewOf(payload).getUint32(0, hostIsLittleEndian);
}

/** A decoded NLMSG_ERROR: an error or, with errno 0, an acknowledgement. */
export interface ErrorReply {
  /** The positive errno (0 for an ack). */
  errno: number;
  /** The header of the request this answers. */
  request: MessageHeader;
  /** The kernel's extended-ack text (NLMSGERR_ATTR_MSG), when it gave one. */
  detail?: string;
}

/**
 * Decodes an NLMSG_ERROR message: `struct nlmsgerr` (error i32, negative
 * errno or 0; then the request's nlmsghdr, followed by the rest of the request
 * unless NLM_F_CAPPED), then extended-ack attributes if NLM_F_ACK_TLVS.
 */
export function parseErrorReply(message: NetlinkMessage): ErrorReply {
  const { payload } = message;
  if (payload.length < 4 + NLMSG_HDRLEN) {
    throw new NetlinkFormatError(`${payload.length}-byte NLMSG_ERROR payload (needs 20)`);
  }
  const error = viewOf(payload).getInt32(0, hostIsLittleEndian);
  if (error > 0) throw new NetlinkFormatError(`positive error ${error} in NLMSG_ERROR`);
  const errno = error === 0 ? 0 : -error;
  const request = parseHeader(payload.subarray(4));
  const reply: ErrorReply = { errno, request };
  if (message.flags & NLM_F_ACK_TLVS) {
    const echoed = message.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align(request.length);
    if (4 + echoed > payload.length) {
      throw new NetlinkFormatError(`echoed request of ${echoed} bytes overruns NLMSG_ERROR`);
    }
    const text = parseAttributes(payload.subarray(4 + echoed)).get(NLMSGERR_ATTR_MSG);
    if (text) reply.detail = attributeString(text);
  }
  return reply;
}

/**
 * The positive errno an NLMSG_DONE carries (its payload is an int, negative
 * when the dump failed part way), or 0.
 */
export function parseDoneReply(message: NetlinkMessage): number {
  if (message.payload.length < 4) return 0;
  return Math.max(0, -viewOf(message.payload).getInt32(0, hostIsLittleEndian));
}

/** A network interface, from an RTM_NEWLINK reply. */
export interface Link {
  /** The interface index. */
  index: number;
  /** The interface name (IFLA_IFNAME). */
  name: string;
  /** The IFF_* flags. */
  flags: number;
  /** Whether IFF_UP is set. */
  up: boolean;
}

/** Decodes the payload of an RTM_NEWLINK message: ifinfomsg and its attributes. */
export function parseLink(payload: Uint8Array): Link {
  if (payload.length < IFINFOMSG_LEN) {
    throw new NetlinkFormatError(`${payload.length}-byte link message (ifinfomsg needs 16)`);
  }
  const view = viewOf(payload);
  const flags = view.getUint32(8, hostIsLittleEndian);
  const name = parseAttributes(payload.subarray(IFINFOMSG_LEN)).get(IFLA_IFNAME);
  return {
    index: view.getInt32(4, hostIsLittleEndian),
    name: name ? attributeString(name) : "",
    flags,
    up: (flags & IFF_UP) !== 0,
  };
}

/** An IPv4 address on an interface, from an RTM_NEWADDR reply. */
export interface InterfaceAddress {
  /** The interface index. */
  index: number;
  /** The address, dotted quad. */
  address: string;
  /** The prefix length. */
  prefixLength: number;
}

/**
 * Decodes the payload of an IPv4 RTM_NEWADDR message: ifaddrmsg, then
 * IFA_LOCAL (the interface's own address) or, without it, IFA_ADDRESS.
 */
export function parseAddress(payload: Uint8Array): InterfaceAddress {
  if (payload.length < IFADDRMSG_LEN) {
    throw new NetlinkFormatError(`${payload.length}-byte address message (ifaddrmsg needs 8)`);
  }
  const view = viewOf(payload);
  if (view.getUint8(0) !== AF_INET) {
    throw new NetlinkFormatError(`address family ${view.getUint8(0)} is not AF_INET`);
  }
  const attributes = parseAttributes(payload.subarray(IFADDRMSG_LEN));
  const address = attributes.get(IFA_LOCAL) ?? attributes.get(IFA_ADDRESS);
  if (address?.length !== 4) throw new NetlinkFormatError("IPv4 address message without address");
  return {
    index: view.getUint32(4, hostIsLittleEndian),
    address: formatIPv4(address),
    prefixLength: view.getUint8(1),
  };
}
