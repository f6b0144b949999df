/**
 * Message queues: POSIX (mq_open and friends, the queue demo) and System V
 * (the probe of `tour`), loaded only by what uses them.
 * @module
 */

import { check, cstr, errno, lastError, raw as libc } from "./libc.ts";

/** msgget(2) of a new private System V message queue; returns its ID. */
export function createMessageQueue(): number {
  return check("msgget", libc.msgget(0, 0o1000 | 0o600));
}

/** msgctl(IPC_RMID): removes a System V message queue. */
export function removeMessageQueue(id: number): void {
  check("msgctl", libc.msgctl(id, 0, null));
}

/** Attributes of a POSIX message queue. */
export interface QueueAttributes {
  /** Maximum number of messages on the queue. */
  maxMessages: number;
  /** Maximum size of one message, in bytes. */
  messageSize: number;
}

/** mq_open(3); creates the queue when `create` is given (exclusively). */
export function mqOpen(name: string, flags: number, create?: QueueAttributes): number {
  let attributes: Uint8Array<ArrayBuffer> | null = null;
  if (create) {
    const words = new BigInt64Array(8);
    words[1] = BigInt(create.maxMessages);
    words[2] = BigInt(create.messageSize);
    attributes = new Uint8Array(words.buffer);
  }
  return check("mq_open", libc.mq_open(cstr(name), flags, 0o600, attributes), name);
}

/** mq_getattr(3). */
export function mqGetattr(queue: number): QueueAttributes {
  const words = new BigInt64Array(8);
  check("mq_getattr", libc.mq_getattr(queue, new Uint8Array(words.buffer)));
  return { maxMessages: Number(words[1]), messageSize: Number(words[2]) };
}

/** mq_send(3). */
export function mqSend(queue: number, message: Uint8Array<ArrayBuffer>): void {
  check("mq_send", libc.mq_send(queue, message, BigInt(message.length), 0));
}

/**
 * mq_timedreceive(3) waiting at most `timeoutMs`; returns the message bytes,
 * or null when the time ran out.
 */
export function mqReceive(queue: number, size: number, timeoutMs: number): Uint8Array | null {
  const now = new BigInt64Array(2);
  check("clock_gettime", libc.clock_gettime(0, new Uint8Array(now.buffer)));
  const deadlineNs = now[0] * 1_000_000_000n + now[1] + BigInt(timeoutMs) * 1_000_000n;
  const deadline = new BigInt64Array([deadlineNs / 1_000_000_000n, deadlineNs % 1_000_000_000n]);
  const buffer = new Uint8Array(size);
  const received = libc.mq_timedreceive(
    queue,
    buffer,
    BigInt(size),
    null,
    new Uint8Array(deadline.buffer),
  );
  if (Number(received) >= 0) return buffer.subarray(0, Number(received));
  if (errno() === 110) return null;
  throw lastError("mq_timedreceive");
}

/** mq_close(3). */
export function mqClose(queue: number): void {
  check("mq_close", libc.mq_close(queue));
}

/** mq_unlink(3); returns false when no queue of that name exists. */
export function mqUnlink(name: string): boolean {
  if (libc.mq_unlink(cstr(name)) === 0) return true;
  if (errno() === 2) return false;
  throw lastError("mq_unlink", name);
}
