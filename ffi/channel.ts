/**
 * A channel between the tool and a process it started: one end of a
 * `socketpair(AF_UNIX, SOCK_SEQPACKET)`, carrying JSON messages with file
 * descriptors passed alongside (SCM_RIGHTS), in the manner of crun's sync
 * socket and youki's channel. A message travels as datagrams of at most
 * {@link CHUNK} bytes (a socket's buffer bounds one datagram, ~200 KiB by
 * default), each a flag byte (1: more follow, 0: the last, which carries the
 * fds) and a part of the JSON text.
 * @module
 */

import { Errno } from "./errors.ts";
import { close, errno, lastError, O_CLOEXEC, raw } from "./libc.ts";

const AF_UNIX = 1, SOCK_SEQPACKET = 5, SOCK_CLOEXEC = O_CLOEXEC;
const SOL_SOCKET = 1, SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000, MSG_DONTWAIT = 0x40, MSG_TRUNC = 0x20, MSG_NOSIGNAL = 0x4000;
const POLLIN = 1;
/** The largest part of a message one datagram carries. */
const CHUNK = 32 * 1024;
/** The largest message the channel carries in all. */
const MESSAGE_MAX = 64 << 20;
/** At most this many fds ride with one message. */
const FDS_MAX = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One message: any JSON value, and the fds that came with it. */
export interface Received<T> {
  /** The message, or null at end of file (the other end closed, or exec'd). */
  message: T | null;
  /** The fds passed with it (close-on-exec), in order. */
  fds: number[];
}

/** `[mine, theirs]`: both ends of a new channel, close-on-exec. */
export function channelPair(): [number, number] {
  const fds = new Int32Array(2);
  const result = raw.socketpair(
    AF_UNIX,
    SOCK_SEQPACKET | SOCK_CLOEXEC,
    0,
    new Uint8Array(fds.buffer),
  );
  if (result === -1) throw lastError("socketpair");
  return [fds[0], fds[1]];
}

/** A `struct msghdr` with one iovec and room for `fds` fds of ancillary data. */
function messageHeader(data: Uint8Array<ArrayBuffer>, fdCount: number) {
  const iov = new BigUint64Array(2);
  const iovBytes = new Uint8Array(iov.buffer);
  iov[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(data)));
  iov[1] = BigInt(data.length);
  const controlLength = fdCount === 0 ? 0 : 16 + Math.ceil((4 * fdCount) / 8) * 8;
  const control = new Uint8Array(Math.max(controlLength, 8));
  const header = new Uint8Array(56);
  const view = new DataView(header.buffer);
  view.setBigUint64(16, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(iovBytes))), true);
  view.setBigUint64(24, 1n, true);
  if (controlLength > 0) {
    view.setBigUint64(
      32,
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(control))),
      true,
    );
    view.setBigUint64(40, BigInt(controlLength), true);
  }
  return { header, view, control, keep: [iov, iovBytes] };
}

/** Sends `message` (as JSON) and `fds` on `socket`, in as many datagrams as it takes. */
export function sendMessage(socket: number, message: unknown, fds: number[] = []): void {
  if (fds.length > FDS_MAX) throw new Error(`at most ${FDS_MAX} fds travel with one message`);
  const text = encoder.encode(JSON.stringify(message));
  if (text.length > MESSAGE_MAX) throw new Error("message too large for the setup channel");
  for (let at = 0; at === 0 || at < text.length; at += CHUNK) {
    const part = text.subarray(at, at + CHUNK);
    const last = at + CHUNK >= text.length;
    const data = new Uint8Array(part.length + 1);
    data[0] = last ? 0 : 1;
    data.set(part, 1);
    sendDatagram(socket, data, last ? fds : []);
  }
}

/** One sendmsg(2) of `data` with `fds`. */
function sendDatagram(socket: number, data: Uint8Array<ArrayBuffer>, fds: number[]): void {
  const { header, control, keep } = messageHeader(data, fds.length);
  if (fds.length > 0) {
    const cmsg = new DataView(control.buffer);
    cmsg.setBigUint64(0, BigInt(16 + 4 * fds.length), true);
    cmsg.setInt32(8, SOL_SOCKET, true);
    cmsg.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((fd, i) => cmsg.setInt32(16 + 4 * i, fd, true));
  }
  for (;;) {
    const sent = raw.sendmsg(socket, header, MSG_NOSIGNAL);
    if (sent >= 0) break;
    if (errno() !== Errno.EINTR) throw lastError("sendmsg", "the setup channel");
  }
  void keep;
}

/** One datagram: its bytes (the flag byte first), its fds; null bytes at end of file. */
interface Datagram {
  bytes: Uint8Array | null;
  fds: number[];
}

/** The bytes and fds of a received datagram of `length` bytes. */
function decode(
  data: Uint8Array,
  length: number,
  view: DataView,
  control: Uint8Array<ArrayBuffer>,
): Datagram {
  const fds: number[] = [];
  const controlLength = Number(view.getBigUint64(40, true));
  if (controlLength >= 16) {
    const cmsg = new DataView(control.buffer);
    const level = cmsg.getInt32(8, true), type = cmsg.getInt32(12, true);
    const count = (Number(cmsg.getBigUint64(0, true)) - 16) / 4;
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let i = 0; i < count; i++) fds.push(cmsg.getInt32(16 + 4 * i, true));
    }
  }
  if (length === 0 || view.getInt32(48, true) & MSG_TRUNC) {
    for (const fd of fds) close(fd);
    if (length === 0) return { bytes: null, fds: [] };
    throw new Error("a datagram on the setup channel was too large");
  }
  return { bytes: data.slice(0, length), fds };
}

/** One receive attempt; null when nothing is there yet (with `wait` false). */
function receiveDatagram(socket: number, wait: boolean): Datagram | null {
  const data = new Uint8Array(CHUNK + 1);
  for (;;) {
    const { header, view, control, keep } = messageHeader(data, FDS_MAX);
    const flags = MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT);
    const length = Number(raw.recvmsg(socket, header, flags));
    void keep;
    if (length >= 0) return decode(data, length, view, control);
    const code = errno();
    if (code === Errno.EINTR) continue;
    if (code === Errno.EAGAIN && !wait) return null;
    // the other end is gone: as end of file
    if (code === Errno.ECONNRESET) return { bytes: null, fds: [] };
    throw lastError("recvmsg", "the setup channel");
  }
}

/** Puts a message together from its datagrams, as they arrive. */
class Assembly {
  #parts: Uint8Array[] = [];

  /** Takes one datagram; the whole message once the last part is in, else undefined. */
  add<T>(datagram: Datagram): Received<T> | undefined {
    if (datagram.bytes === null) return { message: null, fds: [] };
    this.#parts.push(datagram.bytes.subarray(1));
    if (datagram.bytes[0] === 1) {
      for (const fd of datagram.fds) close(fd);
      return undefined;
    }
    const text = this.#parts.map((part) => decoder.decode(part, { stream: true })).join("") +
      decoder.decode();
    return { message: JSON.parse(text) as T, fds: datagram.fds };
  }
}

/** Receives the next message, blocking the calling thread (for the init stage). */
export function receiveMessage<T>(socket: number): Received<T> {
  const assembly = new Assembly();
  for (;;) {
    const whole = assembly.add<T>(receiveDatagram(socket, true)!);
    if (whole) return whole;
  }
}

/** Receives the next message without blocking the JS thread (for the tool). */
export async function receiveMessageAsync<T>(socket: number): Promise<Received<T>> {
  const table = new Int32Array([socket, POLLIN]);
  const assembly = new Assembly();
  for (;;) {
    const datagram = receiveDatagram(socket, false);
    if (datagram) {
      const whole = assembly.add<T>(datagram);
      if (whole) return whole;
      continue;
    }
    // A failed poll (EINTR) is simply retried: its errno is another thread's.
    await raw.poll_async(new Uint8Array(table.buffer), 1n, -1);
  }
}
