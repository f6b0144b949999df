/**
 * Reader for glibc's /etc/ld.so.cache, the index ldconfig writes and the dynamic loader consults
 * after DT_RPATH, LD_LIBRARY_PATH and DT_RUNPATH.
 *
 * Understands the new format (`glibc-ld.so.cache1.1`, with its glibc-hwcaps extension) and the
 * old one (`ld.so-1.7.0`), possibly followed by the new one ("compat" layout, in which case the
 * loader, and this reader, use the new part). Corruption raises only {@link LdCacheError}; all
 * loops are bounded by the entry count, which is checked against the file size first.
 *
 * @module
 */

import { NotRegularFileError, openRegularFile } from "./regular.ts";

import {
  type ElfInfo,
  EM_AARCH64,
  EM_ARM,
  EM_IA_64,
  EM_LOONGARCH,
  EM_PPC64,
  EM_RISCV,
  EM_S390,
  EM_SPARCV9,
  EM_X86_64,
} from "./elf.ts";

/** Entry flag: plain ELF library (no libc version). */
export const FLAG_ELF = 0x0001;
/** Entry flag: ELF library built against glibc (libc6). */
export const FLAG_ELF_LIBC6 = 0x0003;
/** Entry flag: 64-bit SPARC. */
export const FLAG_SPARC_LIB64 = 0x0100;
/** Entry flag: IA-64. */
export const FLAG_IA64_LIB64 = 0x0200;
/** Entry flag: x86-64, LP64 ABI. */
export const FLAG_X8664_LIB64 = 0x0300;
/** Entry flag: 64-bit s390. */
export const FLAG_S390_LIB64 = 0x0400;
/** Entry flag: 64-bit PowerPC. */
export const FLAG_POWERPC_LIB64 = 0x0500;
/** Entry flag: x86-64, x32 ABI. */
export const FLAG_X8664_LIBX32 = 0x0800;
/** Entry flag: ARM hard-float ABI. */
export const FLAG_ARM_LIBHF = 0x0900;
/** Entry flag: AArch64. */
export const FLAG_AARCH64_LIB64 = 0x0a00;
/** Entry flag: ARM soft-float ABI. */
export const FLAG_ARM_LIBSF = 0x0b00;
/** Entry flag: RISC-V soft-float ABI. */
export const FLAG_RISCV_FLOAT_ABI_SOFT = 0x0f00;
/** Entry flag: RISC-V double-float ABI. */
export const FLAG_RISCV_FLOAT_ABI_DOUBLE = 0x1000;
/** Entry flag: LoongArch soft-float ABI. */
export const FLAG_LARCH_FLOAT_ABI_SOFT = 0x1100;
/** Entry flag: LoongArch double-float ABI. */
export const FLAG_LARCH_FLOAT_ABI_DOUBLE = 0x1200;

const MAGIC_OLD = "ld.so-1.7.0";
const MAGIC_NEW = "glibc-ld.so.cache1.1";
const OLD_HEADER_SIZE = 16;
const OLD_ENTRY_SIZE = 12;
const NEW_HEADER_SIZE = 48;
const NEW_ENTRY_SIZE = 24;
const EXTENSION_MAGIC = 0xeaa42174;
const EXTENSION_TAG_GLIBC_HWCAPS = 1;
/** Upper 32 bits of `hwcap` marking "low 32 bits index the glibc-hwcaps extension". */
const HWCAP_EXTENSION_MARK = 1n << 30n;
/** Larger than any real cache (a few hundred KiB); refuses to slurp a huge bogus file. */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;
const MAX_STRING_BYTES = 4096;

/** Raised for an unreadable or corrupt cache file; the message is one line. */
export class LdCacheError extends Error {
  /** The cache file the error is about. */
  readonly path: string;

  /** Builds `"<path>: <reason>"`. */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`${path}: ${reason.replace(/\s*[\r\n]+\s*/g, " ")}`, options);
    this.name = "LdCacheError";
    this.path = path;
  }
}

/** One library entry of the cache. */
export interface LdCacheEntry {
  /** Architecture/ABI flags, e.g. `FLAG_X8664_LIB64 | FLAG_ELF_LIBC6`. */
  flags: number;
  /** The name looked up (usually a SONAME such as `libc.so.6`). */
  name: string;
  /** The full path the loader opens. */
  path: string;
  /** The raw hwcap word (0 for ordinary entries; always 0 in the old format). */
  hwcap: bigint;
  /** For entries of a glibc-hwcaps subdirectory (e.g. `x86-64-v3`), its name; else null. */
  hwcapsSubdir: string | null;
}

/** A parsed cache, with the loader's lookup rule. */
export class LdCache {
  private index: Map<string, LdCacheEntry[]> | null = null;

  /** Wraps entries in file order; `format` tells which layout they came from. */
  constructor(
    readonly format: "new" | "old" | "compat",
    readonly entries: readonly LdCacheEntry[],
  ) {}

  /**
   * The path the loader would take for `name`: among entries of that name whose flags are in
   * `acceptedFlags`, the glibc-hwcaps entry whose subdirectory comes first in `activeHwcaps`,
   * else the first ordinary (hwcap 0) entry; null when none fits.
   */
  lookup(
    name: string,
    acceptedFlags: readonly number[],
    activeHwcaps: readonly string[],
  ): string | null {
    this.index ??= indexByName(this.entries);
    let best: { path: string; rank: number } | null = null;
    for (const entry of this.index.get(name) ?? []) {
      if (!acceptedFlags.includes(entry.flags)) continue;
      if (entry.hwcapsSubdir !== null) {
        const rank = activeHwcaps.indexOf(entry.hwcapsSubdir);
        if (rank >= 0 && (best === null || rank < best.rank)) best = { path: entry.path, rank };
      } else if (entry.hwcap === 0n) {
        return best?.path ?? entry.path;
      }
    }
    return best?.path ?? null;
  }
}

function indexByName(entries: readonly LdCacheEntry[]): Map<string, LdCacheEntry[]> {
  const index = new Map<string, LdCacheEntry[]>();
  for (const entry of entries) {
    const list = index.get(entry.name);
    if (list === undefined) index.set(entry.name, [entry]);
    else list.push(entry);
  }
  return index;
}

/** Reads and parses a cache file (synchronously); I/O failures are LdCacheErrors too. */
export function readLdCache(path: string): LdCache {
  let bytes: Uint8Array;
  try {
    using file = openRegularFile(path); // never a FIFO or a device: see jail/regular.ts
    if (file.size > MAX_CACHE_BYTES) throw new LdCacheError(path, "implausibly large cache");
    bytes = new Uint8Array(file.size);
    for (let filled = 0; filled < bytes.length;) {
      const count = file.readAt(bytes.subarray(filled), filled);
      if (count === 0) throw new LdCacheError(path, "file changed while reading");
      filled += count;
    }
  } catch (error) {
    if (error instanceof LdCacheError) throw error;
    if (error instanceof NotRegularFileError) throw new LdCacheError(path, error.reason);
    const reason = error instanceof Error ? error.message : String(error);
    throw new LdCacheError(path, `cannot read: ${reason}`, { cause: error });
  }
  return parseLdCache(bytes, path);
}

/** Parses cache bytes; `path` is only used in error messages. */
export function parseLdCache(bytes: Uint8Array, path = "<buffer>"): LdCache {
  try {
    return parseLayout(new CacheBytes(bytes, path));
  } catch (error) {
    if (error instanceof LdCacheError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new LdCacheError(path, `cannot parse: ${reason}`, { cause: error });
  }
}

const utf8 = new TextDecoder();
const latin1 = new TextDecoder("latin1");

/** Bounds-checked access to the cache bytes. */
class CacheBytes {
  readonly view: DataView;
  little = true;
  private latin1: string | null = null;
  constructor(readonly bytes: Uint8Array, readonly path: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(reason: string): never {
    throw new LdCacheError(this.path, reason);
  }
  has(offset: number, length: number): boolean {
    return offset >= 0 && length >= 0 && offset + length <= this.bytes.length;
  }
  ascii(offset: number, length: number): string {
    return this.has(offset, length)
      ? String.fromCharCode(...this.bytes.subarray(offset, offset + length))
      : "";
  }
  u32(offset: number): number {
    if (!this.has(offset, 4)) this.fail("truncated");
    return this.view.getUint32(offset, this.little);
  }
  u64(offset: number): bigint {
    if (!this.has(offset, 8)) this.fail("truncated");
    return this.view.getBigUint64(offset, this.little);
  }
  /** The NUL-terminated string at `base + offset`. */
  string(base: number, offset: number): string {
    const start = base + offset;
    if (!this.has(start, 1)) this.fail("string offset out of bounds");
    // One latin1 decode of the whole file makes the many short look-ups cheap; strings with
    // bytes >= 0x80 are then decoded properly as UTF-8.
    this.latin1 ??= latin1.decode(this.bytes);
    const end = this.latin1.indexOf("\0", start);
    if (end < 0 || end - start > MAX_STRING_BYTES) this.fail("unterminated string");
    const text = this.latin1.slice(start, end);
    return /[\u0080-\u00ff]/.test(text) ? utf8.decode(this.bytes.subarray(start, end)) : text;
  }
}

function parseLayout(data: CacheBytes): LdCache {
  if (data.ascii(0, MAGIC_NEW.length) === MAGIC_NEW) {
    return new LdCache("new", parseNew(data, 0));
  }
  if (data.ascii(0, MAGIC_OLD.length) !== MAGIC_OLD) data.fail("not an ld.so.cache file");
  // The old format has no byte-order mark: take the order under which the count fits the file.
  const plausible = (little: boolean) => {
    data.little = little;
    const count = data.u32(MAGIC_OLD.length + 1);
    return OLD_HEADER_SIZE + count * OLD_ENTRY_SIZE <= data.bytes.length ? count : -1;
  };
  let count = plausible(true);
  if (count < 0) count = plausible(false);
  if (count < 0) data.fail("entry count exceeds file size");
  const oldEnd = OLD_HEADER_SIZE + count * OLD_ENTRY_SIZE;
  const newStart = (oldEnd + 7) & ~7;
  if (data.ascii(newStart, MAGIC_NEW.length) === MAGIC_NEW) {
    return new LdCache("compat", parseNew(data, newStart));
  }
  const entries: LdCacheEntry[] = [];
  for (let index = 0; index < count; index++) {
    const at = OLD_HEADER_SIZE + index * OLD_ENTRY_SIZE;
    entries.push({
      flags: data.u32(at) | 0,
      name: data.string(oldEnd, data.u32(at + 4)),
      path: data.string(oldEnd, data.u32(at + 8)),
      hwcap: 0n,
      hwcapsSubdir: null,
    });
  }
  return new LdCache("old", entries);
}

/** Parses the new-format part starting at `base`; its string offsets are relative to `base`. */
function parseNew(data: CacheBytes, base: number): LdCacheEntry[] {
  if (!data.has(base, NEW_HEADER_SIZE)) data.fail("truncated header");
  const order = data.bytes[base + 28];
  if (order === 1) data.fail("invalid byte order mark");
  data.little = order !== 3;
  const count = data.u32(base + 20);
  if (!data.has(base + NEW_HEADER_SIZE, count * NEW_ENTRY_SIZE)) {
    data.fail("entry count exceeds file size");
  }
  const hwcapsNames = readHwcapsExtension(data, base);
  const entries: LdCacheEntry[] = [];
  for (let index = 0; index < count; index++) {
    const at = base + NEW_HEADER_SIZE + index * NEW_ENTRY_SIZE;
    const hwcap = data.u64(at + 16);
    let hwcapsSubdir: string | null = null;
    if (hwcap >> 32n === HWCAP_EXTENSION_MARK) {
      hwcapsSubdir = hwcapsNames[Number(hwcap & 0xffffffffn)] ?? data.fail("bad hwcaps index");
    }
    entries.push({
      flags: data.u32(at) | 0,
      name: data.string(base, data.u32(at + 4)),
      path: data.string(base, data.u32(at + 8)),
      hwcap,
      hwcapsSubdir,
    });
  }
  return entries;
}

/** The glibc-hwcaps subdirectory names of the extension area (empty when there is none). */
function readHwcapsExtension(data: CacheBytes, base: number): string[] {
  const extensionOffset = data.u32(base + 32);
  if (extensionOffset === 0) return [];
  const at = base + extensionOffset;
  if (!data.has(at, 8) || data.u32(at) !== EXTENSION_MAGIC) return [];
  const sections = data.u32(at + 4);
  if (!data.has(at + 8, sections * 16)) data.fail("extension section count exceeds file size");
  for (let index = 0; index < sections; index++) {
    const section = at + 8 + index * 16;
    if (data.u32(section) !== EXTENSION_TAG_GLIBC_HWCAPS) continue;
    const offset = base + data.u32(section + 8);
    const size = data.u32(section + 12);
    if (size % 4 !== 0 || !data.has(offset, size)) data.fail("bad glibc-hwcaps section");
    const names: string[] = [];
    for (let item = 0; item < size / 4; item++) {
      names.push(data.string(base, data.u32(offset + item * 4)));
    }
    return names;
  }
  return [];
}

const EF_ARM_ABI_FLOAT_HARD = 0x400;

/**
 * The entry flags the loader of `elf`'s architecture accepts (glibc's
 * `_dl_cache_check_flags`), so a lookup only returns libraries of the binary's ABI.
 */
export function cacheFlagsFor(elf: Pick<ElfInfo, "machine" | "bits" | "flags">): number[] {
  const libc6 = (arch: number) => [arch | FLAG_ELF_LIBC6];
  const is64 = elf.bits === 64;
  switch (elf.machine) {
    case EM_X86_64:
      return libc6(is64 ? FLAG_X8664_LIB64 : FLAG_X8664_LIBX32);
    case EM_AARCH64:
      return libc6(FLAG_AARCH64_LIB64);
    case EM_ARM:
      return elf.flags & EF_ARM_ABI_FLOAT_HARD
        ? libc6(FLAG_ARM_LIBHF)
        : [FLAG_ARM_LIBSF | FLAG_ELF_LIBC6, FLAG_ELF_LIBC6];
    case EM_SPARCV9:
      return libc6(FLAG_SPARC_LIB64);
    case EM_IA_64:
      return libc6(FLAG_IA64_LIB64);
    case EM_PPC64:
      return libc6(FLAG_POWERPC_LIB64);
    case EM_S390:
      if (is64) return libc6(FLAG_S390_LIB64);
      break;
    case EM_RISCV:
      if (is64) {
        const double = (elf.flags & 0x6) === 0x4;
        return libc6(double ? FLAG_RISCV_FLOAT_ABI_DOUBLE : FLAG_RISCV_FLOAT_ABI_SOFT);
      }
      break;
    case EM_LOONGARCH:
      return libc6(
        (elf.flags & 0x7) === 0x3 ? FLAG_LARCH_FLOAT_ABI_DOUBLE : FLAG_LARCH_FLOAT_ABI_SOFT,
      );
  }
  return [FLAG_ELF, FLAG_ELF_LIBC6];
}
