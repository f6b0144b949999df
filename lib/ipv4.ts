/**
 * IPv4 addresses and CIDR networks: parsing, formatting and the arithmetic
 * the veth option needs (network and broadcast addresses, overlaps).
 * Addresses are their four bytes in network order.
 * @module
 */

/** A malformed IPv4 address or CIDR; the message is one line naming the input. */
export class CidrError extends Error {
  /** Builds the error for `input`; `detail` says what is wrong with it. */
  constructor(input: string, detail: string) {
    super(`invalid address "${input}": ${detail}`);
    this.name = "CidrError";
  }
}

/** An IPv4 address with a prefix length, e.g. 10.0.0.1/24. */
export interface Cidr {
  /** The four address bytes, in network order. */
  address: Uint8Array;
  /** The prefix length, 0 to 32. */
  prefixLength: number;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** The four bytes of dotted quad `address`; errors name the whole `input` it came from. */
function octetsOf(address: string, input: string): Uint8Array {
  const octets = address.split(".");
  if (octets.length !== 4) throw new CidrError(input, "expected four dot-separated numbers");
  return new Uint8Array(octets.map((octet) => {
    if (!DECIMAL.test(octet)) throw new CidrError(input, `"${octet}" is not a decimal number`);
    if (Number(octet) > 255) throw new CidrError(input, `${octet} is out of range 0-255`);
    return Number(octet);
  }));
}

/** Parses a dotted-quad IPv4 address into its four bytes (network order). */
export function parseIPv4(text: string): Uint8Array {
  if (text === "") throw new CidrError(text, "empty (expected a.b.c.d)");
  return octetsOf(text, text);
}

/** Parses `a.b.c.d/len`; throws a {@link CidrError} with a one-line reason otherwise. */
export function parseCidr(text: string): Cidr {
  if (text === "") throw new CidrError(text, "empty (expected a.b.c.d/len)");
  const slash = text.indexOf("/");
  if (slash === -1) throw new CidrError(text, "missing /prefix-length (expected a.b.c.d/len)");
  const address = octetsOf(text.slice(0, slash), text);
  const length = text.slice(slash + 1);
  if (!DECIMAL.test(length)) {
    throw new CidrError(text, `prefix length "${length}" is not a decimal number`);
  }
  if (Number(length) > 32) {
    throw new CidrError(text, `prefix length ${length} is out of range 0-32`);
  }
  return { address, prefixLength: Number(length) };
}

/** Dotted-quad text of four address bytes. */
export function formatIPv4(address: Uint8Array): string {
  return Array.from(address).join(".");
}

/** `a.b.c.d/len` text of a {@link Cidr}. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.address)}/${cidr.prefixLength}`;
}

/** How many of byte `i`'s bits belong to the network part of a /`prefixLength`. */
const networkBits = (prefixLength: number, i: number) =>
  Math.min(8, Math.max(0, prefixLength - 8 * i));

/** The network a CIDR belongs to: its host bits cleared (10.0.0.7/24 -> 10.0.0.0/24). */
export function networkAddress(cidr: Cidr): Cidr {
  const address = cidr.address.map((byte, i) =>
    byte & (0xff << (8 - networkBits(cidr.prefixLength, i)))
  );
  return { address, prefixLength: cidr.prefixLength };
}

/** The broadcast address of a CIDR's network: its host bits set (10.0.0.7/24 -> 10.0.0.255). */
export function broadcastAddress(cidr: Cidr): Uint8Array {
  return cidr.address.map((byte, i) => byte | (0xff >> networkBits(cidr.prefixLength, i)));
}

/** Whether two networks share addresses: under the shorter prefix, they are the same network. */
export function networksOverlap(a: Cidr, b: Cidr): boolean {
  const prefixLength = Math.min(a.prefixLength, b.prefixLength);
  const network = (cidr: Cidr) => formatCidr(networkAddress({ ...cidr, prefixLength }));
  return network(a) === network(b);
}
