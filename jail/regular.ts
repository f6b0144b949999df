/**
 * Opening a file the jail tools read (an ELF, a `#!` script, a loader
 * cache, a file to copy) only if it is a regular file. The paths come from
 * untrusted binaries (PT_INTERP, DT_NEEDED): a plain open of a FIFO blocks
 * until someone writes to it (the tool would hang forever), and opening a
 * device can have effects of its own. So the file is checked with stat first
 * (nothing but a regular file is ever opened), opened with O_NONBLOCK (a FIFO
 * swapped in after the check does not block), and checked again on the open
 * descriptor, which must be the same regular file.
 * @module
 */

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

/** `path` is not a regular file (a FIFO, a device, a socket, a directory). */
export class NotRegularFileError extends Error {
  /** The path, as given. */
  readonly path: string;
  /** What is wrong with it, e.g. "a FIFO, not a regular file". */
  readonly reason: string;

  /** Builds the error; `reason` says what is wrong, e.g. "a FIFO, not a regular file". */
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "NotRegularFileError";
    this.path = path;
    this.reason = reason;
  }
}

/** What a file that is not regular is, in words, e.g. "a FIFO, not a regular file". */
function kindOf(info: {
  isDirectory: boolean;
  isFifo: boolean | null;
  isSocket: boolean | null;
  isCharDevice: boolean | null;
  isBlockDevice: boolean | null;
}): string {
  const kind = info.isFifo
    ? "a FIFO"
    : info.isSocket
    ? "a socket"
    : info.isCharDevice
    ? "a character device"
    : info.isBlockDevice
    ? "a block device"
    : info.isDirectory
    ? "a directory"
    : "something";
  return `${kind}, not a regular file`;
}

/** An open regular file, read at offsets. */
export class RegularFile {
  #fd: number;
  /** Its size in bytes, when it was opened. */
  readonly size: number;

  /** Wraps an open descriptor (see {@link openRegularFile}). */
  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
  }

  /** Reads into `buffer` from `position`; returns the byte count (0 at the end). */
  readAt(buffer: Uint8Array, position: number): number {
    return readSync(this.#fd, buffer, 0, buffer.length, position);
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }

  /** Closes the file (`using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens `path` (symlinks followed) for reading if it is a regular file;
 * throws a {@link NotRegularFileError} otherwise, without ever blocking (see
 * the module docs), and Deno's own errors (`NotFound`, `PermissionDenied`)
 * when it cannot be reached.
 */
export function openRegularFile(path: string): RegularFile {
  const before = Deno.statSync(path);
  if (!before.isFile) throw new NotRegularFileError(path, kindOf(before));
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) {
      throw new NotRegularFileError(
        path,
        kindOf({
          isDirectory: info.isDirectory(),
          isFifo: info.isFIFO(),
          isSocket: info.isSocket(),
          isCharDevice: info.isCharacterDevice(),
          isBlockDevice: info.isBlockDevice(),
        }),
      );
    }
    if (info.ino !== before.ino || info.dev !== before.dev) {
      throw new NotRegularFileError(path, "replaced while it was being opened");
    }
    return new RegularFile(fd, info.size);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
