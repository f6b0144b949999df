/**
 * Sockets: netlink (the veth link), AF_UNIX pairs that pass fds (SCM_RIGHTS),
 * a connection to a console socket, and waiting for readable fds (loaded only
 * by what uses them).
 * @module
 */

import { Errno, SyscallError } from "./errors.ts";
import {
  addressOf,
  check,
  close,
  encoder,
  errno,
  lastError,
  offHeap,
  raw as libc,
  strerror,
  syscall,
} from "./libc.ts";
import { SYS } from "./constants.ts";

/** socket(2); returns the fd (close-on-exec). */
export function socket(domain: number, type: number, protocol: number): number {
  return check("socket", libc.socket(domain, type | SOCK_CLOEXEC, protocol));
}

/** bind(2) to the address bytes `address` (e.g. a `struct sockaddr_nl`). */
export function bindSocket(fd: number, address: Uint8Array<ArrayBuffer>): void {
  check("bind", libc.bind(fd, address, address.length));
}

/** send(2) of all of `bytes` as one datagram/message. */
export function sendMessage(fd: number, bytes: Uint8Array<ArrayBuffer>): void {
  check("send", libc.send(fd, bytes, BigInt(bytes.length), 0));
}

/** recv(2) into `buffer`; returns the byte count. Retries EINTR. */
export function receiveMessage(fd: number, buffer: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(libc.recv(fd, buffer, BigInt(buffer.length), 0));
    if (n >= 0) return n;
    if (errno() !== Errno.EINTR) throw lastError("recv");
  }
}

/** setsockopt(2) with an int value. */
export function setSocketOption(fd: number, level: number, name: number, value: number): void {
  const bytes = new Uint8Array(new Int32Array([value]).buffer);
  check("setsockopt", libc.setsockopt(fd, level, name, bytes, 4));
}

/** signalfd(2) for the signals in `mask`. */
export function signalfd(mask: bigint): number {
  const set = new BigUint64Array(16);
  set[0] = mask;
  return check("signalfd", libc.signalfd(-1, new Uint8Array(set.buffer), SFD_CLOEXEC));
}

/** poll(2) on `fds` for input; returns the indexes that are ready. */
export function pollReadable(fds: number[], timeoutMs: number): number[] {
  const table = new Int32Array(fds.length * 2);
  fds.forEach((fd, i) => {
    table[2 * i] = fd;
    table[2 * i + 1] = POLLIN;
  });
  for (;;) {
    const result = libc.poll(new Uint8Array(table.buffer), BigInt(fds.length), timeoutMs);
    if (result >= 0) break;
    if (errno() !== Errno.EINTR) throw lastError("poll");
  }
  return fds.flatMap((_, i) => ((table[2 * i + 1] >> 16) !== 0 ? [i] : []));
}

/** poll(2) event. */
export const POLLIN = 1;

/** signalfd(2) flag. */
export const SFD_CLOEXEC = 0o2000000;

/** socket(2) constants: AF_NETLINK, SOCK_RAW, SOCK_CLOEXEC, NETLINK_ROUTE. */
export const AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0o2000000, NETLINK_ROUTE = 0;

const AF_UNIX = 1, SOCK_DGRAM = 2, SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_DONTWAIT = 0x40;

const MSG_CMSG_CLOEXEC = 0x40000000;

/** socketpair(2) of connected AF_UNIX datagram sockets (close-on-exec), to pass fds. */
export function fdChannel(): [number, number] {
  const fds = new Int32Array(2);
  check(
    "socketpair",
    libc.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, new Uint8Array(fds.buffer)),
  );
  return [fds[0], fds[1]];
}

/** The most fds one SCM_RIGHTS message carries (the kernel's SCM_MAX_FD is 253). */
export const FDS_PER_MESSAGE = 250;

/** A struct msghdr with one 1-byte iovec and room for {@link FDS_PER_MESSAGE} fds, off the V8 heap. */
function fdMessage(): { header: Uint8Array<ArrayBuffer>; control: DataView } {
  const space = 16 + Math.ceil((4 * FDS_PER_MESSAGE) / 8) * 8; // CMSG_SPACE
  const byte = offHeap(1), iovec = offHeap(16), control = offHeap(space), header = offHeap(56);
  const iov = new DataView(iovec.buffer);
  iov.setBigUint64(0, addressOf(byte), true);
  iov.setBigUint64(8, 1n, true);
  const msg = new DataView(header.buffer);
  msg.setBigUint64(16, addressOf(iovec), true); // msg_iov
  msg.setBigUint64(24, 1n, true); // msg_iovlen
  msg.setBigUint64(32, addressOf(control), true); // msg_control
  msg.setBigUint64(40, BigInt(space), true); // msg_controllen
  // keep the buffers reachable as long as the header
  (header as unknown as { keep: unknown[] }).keep = [byte, iovec];
  return { header, control: new DataView(control.buffer) };
}

/**
 * sendmsg(2) of `fds` over a {@link fdChannel} socket (SCM_RIGHTS, at most
 * {@link FDS_PER_MESSAGE} a message): the receiver gets its own copies, and
 * the files stay open while in flight even when the sender closes its own.
 */
export function sendFds(socket: number, fds: number[]): void {
  for (let at = 0; at < fds.length; at += FDS_PER_MESSAGE) {
    const batch = fds.slice(at, at + FDS_PER_MESSAGE);
    const { header, control } = fdMessage();
    control.setBigUint64(0, BigInt(16 + 4 * batch.length), true); // cmsg_len: CMSG_LEN
    control.setInt32(8, SOL_SOCKET, true);
    control.setInt32(12, SCM_RIGHTS, true);
    batch.forEach((fd, i) => control.setInt32(16 + 4 * i, fd, true));
    new DataView(header.buffer).setBigUint64(
      40,
      BigInt(16 + Math.ceil(batch.length / 2) * 8),
      true,
    );
    check("sendmsg", libc.sendmsg(socket, header, 0));
  }
}

/** Every fd waiting on a {@link fdChannel} socket, received (close-on-exec) without blocking. */
export function receiveFds(socket: number): number[] {
  const fds: number[] = [];
  for (;;) {
    const { header, control } = fdMessage();
    if (Number(libc.recvmsg(socket, header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0) {
      if (errno() === Errno.EAGAIN) return fds;
      throw lastError("recvmsg");
    }
    const length = Number(control.getBigUint64(0, true));
    if (length < 16 || control.getInt32(12, true) !== SCM_RIGHTS) continue;
    for (let i = 0; i < (length - 16) / 4; i++) fds.push(control.getInt32(16 + 4 * i, true));
  }
}

/** A stream socket connected to the AF_UNIX socket at `path` (close-on-exec). */
export function connectUnix(path: string): number {
  const name = encoder.encode(path);
  if (name.length >= 108) {
    throw new SyscallError("connect", Errno.ENAMETOOLONG, strerror(Errno.ENAMETOOLONG), path);
  }
  const address = offHeap(110);
  new DataView(address.buffer).setUint16(0, 1, true); // AF_UNIX
  address.set(name, 2);
  const fd = socket(1, 1 | SOCK_CLOEXEC, 0);
  try {
    syscall("connect", path, SYS.connect, BigInt(fd), addressOf(address), 110n);
  } catch (error) {
    close(fd);
    throw error;
  }
  return fd;
}
