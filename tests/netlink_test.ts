/**
 * The rtnetlink codec against byte layouts worked out by hand from the
 * kernel's uapi headers (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h,
 * veth.h), on a little-endian host; and IPv4 CIDR parsing. No privilege.
 */
import assert from "node:assert/strict";
import {
  attribute,
  deleteLinkRequest,
  dumpAddressesRequest,
  dumpLinksRequest,
  encodeMessage,
  getLinkRequest,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_NET_NS_FD,
  IFLA_NET_NS_PID,
  nestedAttribute,
  NetlinkFormatError,
  newAddressRequest,
  newDefaultRouteRequest,
  newVethRequest,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  parseAddress,
  parseAttributes,
  parseDoneReply,
  parseErrorReply,
  parseLink,
  parseMessages,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTPROT_BOOT,
  setLinkUpRequest,
  stringAttribute,
  u32Attribute,
  VETH_INFO_PEER,
} from "../lib/netlink.ts";
import {
  broadcastAddress,
  CidrError,
  formatCidr,
  formatIPv4,
  networkAddress,
  networksOverlap,
  parseCidr,
  parseIPv4,
} from "../lib/ipv4.ts";

/** Little-endian bytes of a u16 and a u32, for writing expected layouts. */
const u16 = (n: number) => [n & 0xff, n >> 8];
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
/** nlmsghdr: len, type, flags, seq, pid. */
const header = (length: number, type: number, flags: number, sequence: number, pid = 0) => [
  ...u32(length),
  ...u16(type),
  ...u16(flags),
  ...u32(sequence),
  ...u32(pid),
];
const bytes = (values: number[]) => new Uint8Array(values);

Deno.test("netlink: constants match the kernel headers", () => {
  assert.deepEqual(
    [RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE],
    [16, 17, 18, 20, 24],
  );
  const flags = [NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP];
  assert.deepEqual(flags, [1, 4, 0x200, 0x400, 0x300]);
  assert.deepEqual([NLMSG_ERROR, NLMSG_DONE], [2, 3]);
  assert.deepEqual(
    [IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER],
    [3, 18, 1, 2, 1],
  );
  assert.deepEqual([IFLA_NET_NS_FD, IFLA_NET_NS_PID], [28, 19]);
  assert.deepEqual([RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST], [254, 3, 0, 1]);
});

Deno.test("netlink: odd-length attribute payloads are padded to 4, rta_len excludes it", () => {
  // "vh123\0" is 6 bytes: rta_len 10, then 2 zero bytes of padding.
  assert.deepEqual(
    stringAttribute(IFLA_IFNAME, "vh123"),
    bytes([...u16(10), ...u16(3), ...ascii("vh123"), 0, 0, 0]),
  );
  // "eth0\0" is 5 bytes: rta_len 9, 3 bytes of padding.
  assert.deepEqual(
    stringAttribute(IFLA_IFNAME, "eth0"),
    bytes([...u16(9), ...u16(3), ...ascii("eth0"), 0, 0, 0, 0]),
  );
  assert.deepEqual(attribute(7, new Uint8Array(0)), bytes([...u16(4), ...u16(7)]));
  assert.deepEqual(u32Attribute(IFLA_NET_NS_FD, 7), bytes([...u16(8), ...u16(28), ...u32(7)]));
});

Deno.test("netlink: a nested attribute's length covers its children and their padding", () => {
  const kind = stringAttribute(IFLA_INFO_KIND, "veth"); // rta_len 9, 12 bytes
  const nested = nestedAttribute(IFLA_LINKINFO, kind, u32Attribute(5, 1));
  assert.equal(nested.length, 4 + 12 + 8);
  assert.deepEqual(nested.subarray(0, 4), bytes([...u16(24), ...u16(18)]));
  const parsed = parseAttributes(nested);
  assert.deepEqual([...parsed.keys()], [IFLA_LINKINFO]);
  const children = parseAttributes(parsed.get(IFLA_LINKINFO)!);
  assert.deepEqual(children.get(IFLA_INFO_KIND), bytes([...ascii("veth"), 0]));
  assert.deepEqual(children.get(5), bytes(u32(1)));
});

Deno.test("netlink: RTM_NEWLINK veth request with the peer in another namespace", () => {
  // deno-fmt-ignore
  const expected = [
    ...header(100, 16, 0x605, 1), // REQUEST | ACK | EXCL | CREATE
    ...new Array(16).fill(0), // ifinfomsg: all zero
    ...u16(10), ...u16(3), ...ascii("vh123"), 0, 0, 0, // IFLA_IFNAME "vh123"
    ...u16(56), ...u16(18), // IFLA_LINKINFO
    ...u16(9), ...u16(1), ...ascii("veth"), 0, 0, 0, 0, //   IFLA_INFO_KIND "veth"
    ...u16(40), ...u16(2), //   IFLA_INFO_DATA
    ...u16(36), ...u16(1), //     VETH_INFO_PEER
    ...new Array(16).fill(0), //       ifinfomsg of the peer
    ...u16(8), ...u16(3), ...ascii("vp1"), 0, //       IFLA_IFNAME "vp1"
    ...u16(8), ...u16(28), ...u32(7), //       IFLA_NET_NS_FD 7
  ];
  assert.deepEqual(newVethRequest(1, "vh123", "vp1", 7), bytes(expected));
});

Deno.test("netlink: RTM_NEWLINK veth request without a namespace has no IFLA_NET_NS_FD", () => {
  const request = newVethRequest(9, "a", "b");
  const [message] = parseMessages(request);
  assert.equal(message.length, 16 + 16 + 8 + 4 + 12 + 4 + 4 + 16 + 8);
  const linkInfo = parseAttributes(message.payload.subarray(16)).get(IFLA_LINKINFO)!;
  const data = parseAttributes(linkInfo).get(IFLA_INFO_DATA)!;
  const peer = parseAttributes(data).get(VETH_INFO_PEER)!;
  const peerAttributes = parseAttributes(peer.subarray(16));
  assert.deepEqual([...peerAttributes.keys()], [IFLA_IFNAME]);
});

Deno.test("netlink: RTM_NEWADDR request for 10.0.0.1/24 on link 5", () => {
  // deno-fmt-ignore
  const expected = [
    ...header(40, 20, 0x605, 2),
    2, 24, 0, 0, ...u32(5), // ifaddrmsg: AF_INET, /24, no flags, universe, index 5
    ...u16(8), ...u16(2), 10, 0, 0, 1, // IFA_LOCAL
    ...u16(8), ...u16(1), 10, 0, 0, 1, // IFA_ADDRESS
  ];
  assert.deepEqual(newAddressRequest(2, 5, parseCidr("10.0.0.1/24")), bytes(expected));
});

Deno.test("netlink: RTM_NEWROUTE request for the default route via 10.0.0.1 on link 5", () => {
  // deno-fmt-ignore
  const expected = [
    ...header(44, 24, 0x605, 3),
    // rtmsg: AF_INET, dst_len/src_len/tos 0, main table, boot, universe, unicast, flags 0
    2, 0, 0, 0, 254, 3, 0, 1, ...u32(0),
    ...u16(8), ...u16(5), 10, 0, 0, 1, // RTA_GATEWAY
    ...u16(8), ...u16(4), ...u32(5), // RTA_OIF
  ];
  assert.deepEqual(newDefaultRouteRequest(3, parseIPv4("10.0.0.1"), 5), bytes(expected));
});

Deno.test("netlink: link requests: get, up, delete, and the dumps", () => {
  /** ifinfomsg: family 0, pad, type 0, then index, flags, change. */
  const link = (
    index: number,
    flags = 0,
    change = 0,
  ) => [0, 0, 0, 0, ...u32(index), ...u32(flags), ...u32(change)];
  // deno-fmt-ignore
  const expected = {
    get: [...header(44, 18, 5, 4), ...link(0), ...u16(9), ...u16(3), ...ascii("eth0"), 0, 0, 0, 0],
    up: [...header(32, 16, 5, 5), ...link(3, 1, 1)],
    delete: [...header(40, 17, 5, 7), ...link(0), ...u16(7), ...u16(3), ...ascii("ab"), 0, 0],
    dumpLinks: [...header(32, 18, 0x301, 8), ...link(0)],
    dumpAddresses: [...header(24, 22, 0x301, 9), 2, 0, 0, 0, ...u32(0)], // ifaddrmsg, AF_INET
  };
  assert.deepEqual(getLinkRequest(4, "eth0"), bytes(expected.get));
  assert.deepEqual(setLinkUpRequest(5, 3), bytes(expected.up));
  assert.deepEqual(deleteLinkRequest(7, "ab"), bytes(expected.delete));
  assert.deepEqual(dumpLinksRequest(8), bytes(expected.dumpLinks));
  assert.deepEqual(dumpAddressesRequest(9), bytes(expected.dumpAddresses));
});

Deno.test("netlink: encodeMessage pads each part to 4 bytes and counts the padding", () => {
  const message = encodeMessage({ type: RTM_DELLINK, flags: 1, sequence: 2 }, bytes([1, 2, 3]));
  assert.deepEqual(message, bytes([...header(20, 17, 1, 2), 1, 2, 3, 0]));
});

Deno.test("netlink: NLMSG_ERROR with an errno, and with 0 (an ack)", () => {
  const original = header(100, RTM_NEWLINK, 0x605, 7);
  const error = parseErrorReply(
    parseMessages(bytes([...header(36, 2, 0x100, 7, 0), ...u32(-17 >>> 0), ...original]))[0],
  );
  assert.deepEqual(error, {
    errno: 17,
    request: { length: 100, type: RTM_NEWLINK, flags: 0x605, sequence: 7, portId: 0 },
  });
  const ack = parseErrorReply(
    parseMessages(bytes([...header(36, 2, 0x100, 8), ...u32(0), ...header(32, 16, 5, 8)]))[0],
  );
  assert.equal(ack.errno, 0);
  assert.equal(ack.request.sequence, 8);
  assert.equal(ack.detail, undefined);
});

Deno.test("netlink: NLMSG_ERROR extended-ack text, after a capped or a full echo", () => {
  const text = [...u16(8), ...u16(1), ...ascii("bad"), 0]; // NLMSGERR_ATTR_MSG "bad"
  const capped = bytes([
    ...header(44, 2, 0x300, 3), // NLM_F_CAPPED | NLM_F_ACK_TLVS
    ...u32(-22 >>> 0),
    ...header(60, 24, 0x605, 3),
    ...text,
  ]);
  assert.deepEqual(parseErrorReply(parseMessages(capped)[0]).detail, "bad");
  // deno-fmt-ignore
  const full = bytes([
    ...header(48, 2, 0x200, 3), // NLM_F_ACK_TLVS: the whole 19-byte request echoed, padded
    ...u32(-22 >>> 0),
    ...header(19, 24, 0x605, 3),
    1, 2, 3, 0,
    ...text,
  ]);
  const reply = parseErrorReply(parseMessages(full)[0]);
  assert.equal(reply.errno, 22);
  assert.equal(reply.detail, "bad");
});

Deno.test("netlink: a multi-part dump buffer ending in NLMSG_DONE", () => {
  // deno-fmt-ignore
  const buffer = bytes([
    ...header(40, 16, 2, 5, 99), // RTM_NEWLINK, NLM_F_MULTI
    0, 0, ...u16(772), ...u32(1), ...u32(0x49), ...u32(0),
    ...u16(7), ...u16(3), ...ascii("lo"), 0, 0, // "lo\0", 1 byte of padding
    ...header(44, 16, 2, 5, 99),
    0, 0, ...u16(1), ...u32(4), ...u32(0x1002), ...u32(0),
    ...u16(9), ...u16(3), ...ascii("eth0"), 0, 0, 0, 0,
    ...header(20, 3, 2, 5, 99), ...u32(0), // NLMSG_DONE, error 0
  ]);
  const messages = parseMessages(buffer);
  assert.deepEqual(messages.map((m) => m.type), [16, 16, 3]);
  assert.ok(messages.every((m) => m.sequence === 5 && m.portId === 99));
  assert.deepEqual(messages.slice(0, 2).map((m) => parseLink(m.payload)), [
    { index: 1, name: "lo", flags: 0x49, up: true },
    { index: 4, name: "eth0", flags: 0x1002, up: false },
  ]);
  assert.equal(parseDoneReply(messages[2]), 0);
  const failed = parseMessages(bytes([...header(20, 3, 2, 5), ...u32(-4 >>> 0)]))[0];
  assert.equal(parseDoneReply(failed), 4);
});

Deno.test("netlink: an unaligned nlmsg_len is followed by padding before the next message", () => {
  const buffer = bytes([...header(21, 20, 0, 1), 1, 2, 3, 4, 5, 0, 0, 0, ...header(16, 3, 0, 1)]);
  const messages = parseMessages(buffer);
  assert.deepEqual(messages.map((m) => [m.type, m.payload.length]), [[20, 5], [3, 0]]);
});

Deno.test("netlink: an RTM_NEWADDR reply decodes to index, address and prefix", () => {
  // deno-fmt-ignore
  const payload = bytes([
    2, 24, 0x80, 0, ...u32(6), // AF_INET /24, IFA_F_PERMANENT, universe, index 6
    ...u16(8), ...u16(1), 10, 0, 0, 9, // IFA_ADDRESS (a point-to-point peer would differ)
    ...u16(8), ...u16(2), 10, 0, 0, 2, // IFA_LOCAL wins
    ...u16(8), ...u16(3), ...ascii("vp0"), 0, // IFA_LABEL
  ]);
  assert.deepEqual(parseAddress(payload), { index: 6, address: "10.0.0.2", prefixLength: 24 });
  assert.throws(() => parseAddress(bytes([10, 64, 0, 0, ...u32(1)])), NetlinkFormatError);
  assert.throws(() => parseAddress(bytes([2, 8, 0, 0, ...u32(1)])), /without address/);
});

Deno.test("netlink: attribute type flag bits (NLA_F_NESTED) are masked off", () => {
  const nested = bytes([...u16(8), ...u16(0x8000 | 18), ...u16(4), ...u16(1)]);
  assert.deepEqual([...parseAttributes(nested).keys()], [18]);
});

Deno.test("netlink: truncated and garbage input is rejected with NetlinkFormatError", () => {
  const cases: [string, () => unknown][] = [
    ["short header", () => parseMessages(bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))],
    ["length past the end", () => parseMessages(bytes(header(100, 16, 0, 1)))],
    ["length below a header", () => parseMessages(bytes(header(8, 16, 0, 1)))],
    ["zero length", () => parseMessages(bytes(header(0, 16, 0, 1)))],
    ["attribute past the end", () => parseAttributes(bytes([...u16(200), ...u16(3), 1, 2]))],
    ["zero-length attribute", () => parseAttributes(bytes([...u16(0), ...u16(3), 0, 0]))],
    ["short ifinfomsg", () => parseLink(bytes([0, 0, 0, 0, 1, 0, 0, 0]))],
    ["short ifaddrmsg", () => parseAddress(bytes([2, 24]))],
    [
      "short nlmsgerr",
      () => parseErrorReply(parseMessages(bytes([...header(20, 2, 0, 1), 0, 0, 0, 0]))[0]),
    ],
    [
      "positive error",
      () =>
        parseErrorReply(
          parseMessages(bytes([...header(36, 2, 0, 1), 1, 0, 0, 0, ...header(16, 16, 0, 1)]))[0],
        ),
    ],
    [
      "echo overruns",
      () =>
        parseErrorReply(
          parseMessages(
            bytes([...header(36, 2, 0x200, 1), 0, 0, 0, 0, ...header(64, 16, 0, 1)]),
          )[0],
        ),
    ],
  ];
  for (const [name, parse] of cases) {
    assert.throws(parse, (error) => error instanceof NetlinkFormatError, name);
  }
});

Deno.test("netlink: every truncation of a valid buffer, and random bytes, fail cleanly", () => {
  const valid = newVethRequest(1, "vh123", "vp1", 7);
  let seed = 0x12345678;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const inputs: Uint8Array[] = [];
  for (let length = 0; length < valid.length; length++) inputs.push(valid.slice(0, length));
  for (let i = 0; i < 2000; i++) {
    const input = valid.slice();
    for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) {
      input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    }
    inputs.push(input);
    inputs.push(bytes(Array.from({ length: Math.floor(random() * 64) }, () => random() * 256)));
  }
  for (const input of inputs) {
    for (
      const decode of [
        () => parseMessages(input).map((message) => parseErrorReply(message)),
        () => parseMessages(input).map((message) => parseLink(message.payload)),
        () => parseMessages(input).map((message) => parseAddress(message.payload)),
        () => parseAttributes(input),
      ]
    ) {
      try {
        decode();
      } catch (error) {
        assert.ok(error instanceof NetlinkFormatError, `${error} for [${input}]`);
      }
    }
  }
});

Deno.test("cidr: valid input", () => {
  assert.deepEqual(parseCidr("10.0.0.1/24"), { address: bytes([10, 0, 0, 1]), prefixLength: 24 });
  assert.deepEqual(parseCidr("0.0.0.0/0"), { address: bytes([0, 0, 0, 0]), prefixLength: 0 });
  assert.deepEqual(parseCidr("255.255.255.255/32").address, bytes([255, 255, 255, 255]));
  assert.equal(formatCidr(parseCidr("192.168.1.130/25")), "192.168.1.130/25");
  assert.deepEqual(parseIPv4("172.16.0.1"), bytes([172, 16, 0, 1]));
});

Deno.test("cidr: invalid input gets a one-line CidrError naming it", () => {
  const cases: [string, RegExp][] = [
    ["10.0.0.256/24", /^invalid address "10\.0\.0\.256\/24": 256 is out of range 0-255$/],
    ["10.0.0.1/33", /^invalid address "10\.0\.0\.1\/33": prefix length 33 is out of range 0-32$/],
    ["abc", /^invalid address "abc": missing \/prefix-length \(expected a\.b\.c\.d\/len\)$/],
    ["10.0.0.1", /^invalid address "10\.0\.0\.1": missing \/prefix-length/],
    ["", /^invalid address "": empty \(expected a\.b\.c\.d\/len\)$/],
    ["abc/24", /expected four dot-separated numbers$/],
    ["10.0.0/24", /expected four dot-separated numbers$/],
    ["10.0.0.1.5/24", /expected four dot-separated numbers$/],
    ["10.0.0.1/", /prefix length "" is not a decimal number$/],
    ["10.0.0.1/24/8", /prefix length "24\/8" is not a decimal number$/],
    ["10.0.0.1/-1", /prefix length "-1" is not a decimal number$/],
    ["10.0.0.01/24", /"01" is not a decimal number$/],
    [" 10.0.0.1/24", /" 10" is not a decimal number$/],
    ["10.0.0.x/24", /"x" is not a decimal number$/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => parseCidr(input), (error) => {
      assert.ok(error instanceof CidrError, `${input}: ${error}`);
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
  }
  assert.throws(() => parseIPv4(""), /^CidrError: invalid address "": empty/);
  assert.throws(() => parseIPv4("1.2.3.4/8"), CidrError);
});

Deno.test("cidr: network address clears the host bits", () => {
  const network = (text: string) => formatCidr(networkAddress(parseCidr(text)));
  assert.equal(network("10.0.0.7/24"), "10.0.0.0/24");
  assert.equal(network("10.1.2.3/12"), "10.0.0.0/12");
  assert.equal(network("192.168.1.130/25"), "192.168.1.128/25");
  assert.equal(network("172.31.255.255/0"), "0.0.0.0/0");
  assert.equal(network("172.31.255.255/32"), "172.31.255.255/32");
  assert.equal(network("10.0.0.7/31"), "10.0.0.6/31");
});

Deno.test("cidr: broadcast address sets the host bits; networks overlap under the shorter prefix", () => {
  const broadcast = (text: string) => formatIPv4(broadcastAddress(parseCidr(text)));
  assert.equal(broadcast("10.0.0.7/24"), "10.0.0.255");
  assert.equal(broadcast("192.168.1.130/25"), "192.168.1.255");
  assert.equal(broadcast("10.1.2.3/12"), "10.15.255.255");
  assert.equal(broadcast("10.0.0.7/32"), "10.0.0.7");
  const overlap = (a: string, b: string) => networksOverlap(parseCidr(a), parseCidr(b));
  assert.equal(overlap("10.204.0.5/24", "10.204.0.1/24"), true);
  assert.equal(overlap("10.204.0.9/16", "10.204.1.1/24"), true);
  assert.equal(overlap("10.204.1.1/24", "10.204.0.9/16"), true);
  assert.equal(overlap("10.204.1.1/24", "10.204.0.1/24"), false);
  assert.equal(overlap("192.168.1.1/25", "192.168.1.129/25"), false);
});
