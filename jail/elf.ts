/**
 * Minimal ELF reader: just what the dynamic loader looks at to find an object's dependencies.
 *
 * Reads the ELF header, the program headers (PT_LOAD, PT_INTERP, PT_DYNAMIC) and the dynamic
 * section (DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_FLAGS_1), for ELF32 and ELF64 in both
 * byte orders. Only the byte ranges needed are read, so huge libraries cost a few small reads;
 * reads are synchronous, which for a handful of small reads is several times cheaper in Deno.
 *
 * Every malformed or truncated input raises an {@link ElfError}; every loop is bounded by the
 * file size or a fixed cap, so no input can make the reader hang or throw anything else.
 *
 * @module
 */

import { NotRegularFileError, openRegularFile, type RegularFile } from "./regular.ts";

/** e_ident[EI_CLASS] value for 32-bit objects. */
export const ELFCLASS32 = 1;
/** e_ident[EI_CLASS] value for 64-bit objects. */
export const ELFCLASS64 = 2;
/** e_type of a shared object (also position-independent executables). */
export const ET_DYN = 3;
/** e_machine of Intel 80386. */
export const EM_386 = 3;
/** e_machine of 32-bit ARM. */
export const EM_ARM = 40;
/** e_machine of AMD x86-64. */
export const EM_X86_64 = 62;
/** e_machine of ARM AArch64. */
export const EM_AARCH64 = 183;
/** e_machine of 64-bit PowerPC. */
export const EM_PPC64 = 21;
/** e_machine of IBM S/390 (31 and 64 bit). */
export const EM_S390 = 22;
/** e_machine of 64-bit SPARC. */
export const EM_SPARCV9 = 43;
/** e_machine of Intel IA-64. */
export const EM_IA_64 = 50;
/** e_machine of RISC-V. */
export const EM_RISCV = 243;
/** e_machine of LoongArch. */
export const EM_LOONGARCH = 258;
/** DT_FLAGS_1 bit: ignore the default library search path (ld.so.cache and system dirs). */
export const DF_1_NODEFLIB = 0x800;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const DT_FLAGS_1 = 0x6ffffffb;
/** e_phnum value meaning "the real count is in sh_info of section header 0". */
const PN_XNUM = 0xffff;

/** Upper bound for any single table we read (program headers, dynamic section). */
const MAX_TABLE_BYTES = 16 * 1024 * 1024;
/** Upper bound for one string (interpreter path, needed name, search path list). */
const MAX_STRING_BYTES = 64 * 1024;
/** Bytes read up front: the ELF header and, almost always, the program header table. */
const HEAD_BYTES = 4096;

/** Raised for unreadable, non-ELF, malformed or truncated files; the message is one line. */
export class ElfError extends Error {
  /** The file the error is about. */
  readonly path: string;
  /** What is wrong, without the path. */
  readonly reason: string;

  /** Builds `"<path>: <reason>"`, flattening any line breaks so the message stays one line. */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    const oneLine = reason.replace(/\s*[\r\n]+\s*/g, " ");
    super(`${path}: ${oneLine}`, options);
    this.name = "ElfError";
    this.path = path;
    this.reason = oneLine;
  }
}

/** What the reader extracts from one ELF file. */
export interface ElfInfo {
  /** The path it was read from (or the label given to {@link parseElf}). */
  path: string;
  /** 32 or 64 (e_ident[EI_CLASS]). */
  bits: 32 | 64;
  /** Byte order (e_ident[EI_DATA]). */
  endian: "little" | "big";
  /** e_ident[EI_OSABI]: 0 System V, 3 GNU/Linux, ... */
  osAbi: number;
  /** e_ident[EI_ABIVERSION]. */
  abiVersion: number;
  /** e_type: 2 executable, 3 shared object / PIE, ... */
  type: number;
  /** e_machine, e.g. {@link EM_X86_64}. */
  machine: number;
  /** e_flags (processor specific, e.g. the ARM float ABI). */
  flags: number;
  /** The PT_INTERP path, or null when there is none. */
  interpreter: string | null;
  /** Whether there is a PT_DYNAMIC segment. */
  hasDynamic: boolean;
  /** DT_NEEDED names, in file order. */
  needed: string[];
  /** DT_RPATH (colon separated, DSTs unexpanded), or null. */
  rpath: string | null;
  /** DT_RUNPATH (colon separated, DSTs unexpanded), or null. */
  runpath: string | null;
  /** DT_SONAME, or null. */
  soname: string | null;
  /** DT_FLAGS_1 (0 when absent); see {@link DF_1_NODEFLIB}. */
  flags1: number;
  /** True when there is nothing for a dynamic loader to do: no PT_INTERP and no DT_NEEDED. */
  isStatic: boolean;
}

/** Random access to the bytes of one file or buffer. */
interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Returns exactly `length` bytes at `offset`; callers check bounds against `size` first. */
  read(offset: number, length: number): Uint8Array;
}

/** Serves reads from an in-memory buffer. */
class BufferSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(offset, offset + length);
  }
}

/**
 * Serves reads from an open file, answering from the first page when it can. Synchronous:
 * for these few small reads Deno's sync file calls are several times cheaper than async ones.
 */
class FileSource implements ByteSource {
  private constructor(
    private readonly file: RegularFile,
    private readonly path: string,
    readonly size: number,
    private readonly head: Uint8Array,
  ) {}

  /** Opens `path` (a regular file only: never a FIFO or a device), reads its first page. */
  static open(path: string): FileSource {
    let file: RegularFile;
    try {
      file = openRegularFile(path);
    } catch (error) {
      if (error instanceof NotRegularFileError) {
        throw new ElfError(path, error.reason, { cause: error });
      }
      throw error;
    }
    try {
      const head = readFully(file, 0, Math.min(file.size, HEAD_BYTES), path);
      return new FileSource(file, path, file.size, head);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  read(offset: number, length: number): Uint8Array {
    if (offset + length <= this.head.length) return this.head.subarray(offset, offset + length);
    return readFully(this.file, offset, length, this.path);
  }

  close(): void {
    this.file.close();
  }
}

/** Reads exactly `length` bytes at `offset`; a short file is an ElfError. */
function readFully(file: RegularFile, offset: number, length: number, path: string): Uint8Array {
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const count = file.readAt(buffer.subarray(filled), offset + filled);
    if (count === 0) throw new ElfError(path, "file changed while reading");
    filled += count;
  }
  return buffer;
}

/** Reads header fields of one class and byte order, refusing reads past the end of a block. */
class FieldReader {
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly little: boolean,
    private readonly path: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private check(offset: number, width: number): void {
    if (offset < 0 || offset + width > this.bytes.length) {
      throw new ElfError(this.path, "truncated structure");
    }
  }
  u16(offset: number): number {
    this.check(offset, 2);
    return this.view.getUint16(offset, this.little);
  }
  u32(offset: number): number {
    this.check(offset, 4);
    return this.view.getUint32(offset, this.little);
  }
  u64(offset: number): bigint {
    this.check(offset, 8);
    return this.view.getBigUint64(offset, this.little);
  }
  /** An address or size of the file's class, as a bigint. */
  word(offset: number, is64: boolean): bigint {
    return is64 ? this.u64(offset) : BigInt(this.u32(offset));
  }
}

/** A PT_LOAD segment, used to map virtual addresses (DT_STRTAB) to file offsets. */
interface LoadSegment {
  vaddr: bigint;
  offset: bigint;
  fileSize: bigint;
}

/** Layout offsets that differ between ELF32 and ELF64. */
interface ClassLayout {
  headerSize: number;
  phoff: number;
  shoff: number;
  flags: number;
  phentsize: number;
  phnum: number;
  phdrSize: number;
  shInfo: number;
  dynSize: number;
  ph: { offset: number; vaddr: number; filesz: number };
}

const LAYOUT32: ClassLayout = {
  headerSize: 52,
  phoff: 28,
  shoff: 32,
  flags: 36,
  phentsize: 42,
  phnum: 44,
  phdrSize: 32,
  shInfo: 28,
  dynSize: 8,
  ph: { offset: 4, vaddr: 8, filesz: 16 },
};

const LAYOUT64: ClassLayout = {
  headerSize: 64,
  phoff: 32,
  shoff: 40,
  flags: 48,
  phentsize: 54,
  phnum: 56,
  phdrSize: 56,
  shInfo: 44,
  dynSize: 16,
  ph: { offset: 8, vaddr: 16, filesz: 32 },
};

const utf8 = new TextDecoder("utf-8");

/** Converts a bigint offset or size to a number when it lies within [0, limit]. */
function within(value: bigint, limit: number): number | null {
  return value >= 0n && value <= BigInt(limit) ? Number(value) : null;
}

/** Parses an in-memory ELF image; `path` is only used in error messages and the result. */
export function parseElf(bytes: Uint8Array, path = "<buffer>"): ElfInfo {
  return guarded(path, () => parseSource(new BufferSource(bytes), path));
}

/** Reads and parses the ELF file at `path` (synchronously); I/O failures are ElfErrors too. */
export function readElf(path: string): ElfInfo {
  return guarded(path, () => {
    let source: FileSource;
    try {
      source = FileSource.open(path);
    } catch (error) {
      if (error instanceof ElfError) throw error;
      throw new ElfError(path, `cannot read: ${describe(error)}`, { cause: error });
    }
    try {
      return parseSource(source, path);
    } finally {
      source.close();
    }
  });
}

/** Runs a parse, turning anything but an ElfError into one (the reader's only error type). */
function guarded(path: string, parse: () => ElfInfo): ElfInfo {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ElfError) throw error;
    throw new ElfError(path, `cannot parse: ${describe(error)}`, { cause: error });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function parseSource(source: ByteSource, path: string): ElfInfo {
  if (source.size < 16) throw new ElfError(path, "not an ELF file");
  const ident = source.read(0, 16);
  if (ident[0] !== 0x7f || ident[1] !== 0x45 || ident[2] !== 0x4c || ident[3] !== 0x46) {
    throw new ElfError(path, "not an ELF file");
  }
  const elfClass = ident[4];
  if (elfClass !== ELFCLASS32 && elfClass !== ELFCLASS64) {
    throw new ElfError(path, `invalid ELF class ${elfClass}`);
  }
  const elfData = ident[5];
  if (elfData !== 1 && elfData !== 2) {
    throw new ElfError(path, `invalid ELF data encoding ${elfData}`);
  }
  const is64 = elfClass === ELFCLASS64;
  const little = elfData === 1;
  const layout = is64 ? LAYOUT64 : LAYOUT32;
  if (source.size < layout.headerSize) throw new ElfError(path, "truncated ELF header");
  const header = new FieldReader(source.read(0, layout.headerSize), little, path);

  const phentsize = header.u16(layout.phentsize);
  const phoff = header.word(layout.phoff, is64);
  let phnum = header.u16(layout.phnum);
  if (phnum === PN_XNUM) phnum = extendedPhnum(source, header, layout, is64, little, path);
  if (phnum > 0 && phentsize < layout.phdrSize) {
    throw new ElfError(path, `program header entry size ${phentsize} too small`);
  }
  const tableBytes = phnum * phentsize;
  const tableStart = within(phoff, source.size);
  if (
    tableBytes > MAX_TABLE_BYTES || tableStart === null || tableStart + tableBytes > source.size
  ) {
    throw new ElfError(path, "program header table out of bounds");
  }
  const table = new FieldReader(source.read(tableStart, tableBytes), little, path);

  const loads: LoadSegment[] = [];
  let interp: { offset: bigint; size: bigint } | null = null;
  let dynamic: { offset: bigint; size: bigint } | null = null;
  for (let index = 0; index < phnum; index++) {
    const base = index * phentsize;
    const type = table.u32(base);
    const segment = {
      offset: table.word(base + layout.ph.offset, is64),
      vaddr: table.word(base + layout.ph.vaddr, is64),
      size: table.word(base + layout.ph.filesz, is64),
    };
    if (type === PT_LOAD) {
      loads.push({ vaddr: segment.vaddr, offset: segment.offset, fileSize: segment.size });
    } else if (type === PT_INTERP && interp === null) {
      interp = segment;
    } else if (type === PT_DYNAMIC && dynamic === null) {
      dynamic = segment;
    }
  }

  const interpreter = interp === null ? null : readInterpreter(source, interp, path);
  const info: ElfInfo = {
    path,
    bits: is64 ? 64 : 32,
    endian: little ? "little" : "big",
    osAbi: ident[7],
    abiVersion: ident[8],
    type: header.u16(16),
    machine: header.u16(18),
    flags: header.u32(layout.flags),
    interpreter,
    hasDynamic: dynamic !== null,
    needed: [],
    rpath: null,
    runpath: null,
    soname: null,
    flags1: 0,
    isStatic: true,
  };
  if (dynamic !== null) readDynamic(source, dynamic, loads, layout, is64, little, info);
  info.isStatic = info.interpreter === null && info.needed.length === 0;
  return info;
}

/** With e_phnum == PN_XNUM the real count is sh_info of section header 0. */
function extendedPhnum(
  source: ByteSource,
  header: FieldReader,
  layout: ClassLayout,
  is64: boolean,
  little: boolean,
  path: string,
): number {
  const shoff = within(header.word(layout.shoff, is64), source.size);
  const entryEnd = shoff === null ? null : shoff + layout.shInfo + 4;
  if (shoff === null || entryEnd === null || entryEnd > source.size) {
    throw new ElfError(path, "section header 0 out of bounds (needed for PN_XNUM)");
  }
  const entry = new FieldReader(source.read(shoff, layout.shInfo + 4), little, path);
  return entry.u32(layout.shInfo);
}

function readInterpreter(
  source: ByteSource,
  segment: { offset: bigint; size: bigint },
  path: string,
): string {
  const offset = within(segment.offset, source.size);
  const size = within(segment.size, MAX_STRING_BYTES);
  if (offset === null || size === null || offset + size > source.size) {
    throw new ElfError(path, "PT_INTERP out of bounds");
  }
  const bytes = source.read(offset, size);
  const end = bytes.indexOf(0);
  const name = utf8.decode(end < 0 ? bytes : bytes.subarray(0, end));
  if (name === "") throw new ElfError(path, "empty PT_INTERP");
  return name;
}

function readDynamic(
  source: ByteSource,
  segment: { offset: bigint; size: bigint },
  loads: LoadSegment[],
  layout: ClassLayout,
  is64: boolean,
  little: boolean,
  info: ElfInfo,
): void {
  const path = info.path;
  const offset = within(segment.offset, source.size);
  const size = within(segment.size, MAX_TABLE_BYTES);
  if (offset === null || size === null || offset + size > source.size) {
    throw new ElfError(path, "PT_DYNAMIC out of bounds");
  }
  const table = new FieldReader(source.read(offset, size), little, path);
  const needed: bigint[] = [];
  let strtab: bigint | null = null;
  let strsz: bigint | null = null;
  let soname: bigint | null = null;
  let rpath: bigint | null = null;
  let runpath: bigint | null = null;
  const count = Math.floor(size / layout.dynSize);
  for (let index = 0; index < count; index++) {
    const base = index * layout.dynSize;
    const tag = is64 ? Number(BigInt.asIntN(64, table.u64(base))) : table.u32(base) | 0;
    const value = table.word(base + layout.dynSize / 2, is64);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) needed.push(value);
    else if (tag === DT_STRTAB) strtab = value;
    else if (tag === DT_STRSZ) strsz = value;
    else if (tag === DT_SONAME) soname = value;
    else if (tag === DT_RPATH) rpath = value;
    else if (tag === DT_RUNPATH) runpath = value;
    else if (tag === DT_FLAGS_1) info.flags1 = Number(value & 0xffffffffn);
  }
  const wanted = [...needed, soname, rpath, runpath].filter((v): v is bigint => v !== null);
  if (wanted.length === 0) return;
  if (strtab === null) throw new ElfError(path, "dynamic strings used but DT_STRTAB missing");
  const strings = StringTable.locate(source, loads, strtab, strsz, wanted, path);
  for (const entry of needed) info.needed.push(strings.get(entry));
  if (soname !== null) info.soname = strings.get(soname);
  if (rpath !== null) info.rpath = strings.get(rpath);
  if (runpath !== null) info.runpath = strings.get(runpath);
}

/** The dynamic string table, read as one window covering the wanted strings when small enough. */
class StringTable {
  private constructor(
    private readonly source: ByteSource,
    private readonly fileOffset: number,
    private readonly size: number,
    private readonly window: { start: number; bytes: Uint8Array },
    private readonly path: string,
  ) {}

  /** Maps DT_STRTAB through the PT_LOAD segments and reads the part holding `wanted` offsets. */
  static locate(
    source: ByteSource,
    loads: LoadSegment[],
    strtab: bigint,
    strsz: bigint | null,
    wanted: bigint[],
    path: string,
  ): StringTable {
    const segment = loads.find((load) =>
      strtab >= load.vaddr && strtab - load.vaddr < load.fileSize
    );
    if (segment === undefined) throw new ElfError(path, "DT_STRTAB not in any PT_LOAD segment");
    const fileOffset = within(segment.offset + (strtab - segment.vaddr), source.size - 1);
    if (fileOffset === null) throw new ElfError(path, "DT_STRTAB out of bounds");
    const available = source.size - fileOffset;
    const size = strsz === null || strsz > BigInt(available) ? available : Number(strsz);
    let low = Number.MAX_SAFE_INTEGER;
    let high = 0;
    for (const offset of wanted) {
      if (offset >= BigInt(size)) throw new ElfError(path, "dynamic string offset out of bounds");
      low = Math.min(low, Number(offset));
      high = Math.max(high, Number(offset));
    }
    const windowEnd = Math.min(size, high + 512);
    const window = high - low <= 256 * 1024
      ? { start: low, bytes: source.read(fileOffset + low, windowEnd - low) }
      : { start: 0, bytes: new Uint8Array(0) };
    return new StringTable(source, fileOffset, size, window, path);
  }

  /** The NUL-terminated string at `offset` (already checked to be inside the table). */
  get(offset: bigint): string {
    const start = Number(offset);
    const relative = start - this.window.start;
    if (relative >= 0 && relative < this.window.bytes.length) {
      const end = this.window.bytes.indexOf(0, relative);
      if (end >= 0) return utf8.decode(this.window.bytes.subarray(relative, end));
    }
    const length = Math.min(this.size - start, MAX_STRING_BYTES);
    const bytes = this.source.read(this.fileOffset + start, length);
    const end = bytes.indexOf(0);
    if (end < 0) throw new ElfError(this.path, "unterminated dynamic string");
    return utf8.decode(bytes.subarray(0, end));
  }
}
