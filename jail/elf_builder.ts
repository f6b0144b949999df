/**
 * Builds small synthetic ELF images of any class and byte order, with the program headers and
 * dynamic entries jail/elf.ts reads. Used by the reader's tests and fuzzing to exercise
 * ELF32/ELF64 and big/little endian, which the host's own binaries cannot all provide.
 *
 * @module
 */

/** What to put into a synthetic image. */
export interface ElfImageSpec {
  /** ELF class. */
  bits: 32 | 64;
  /** Byte order. */
  endian: "little" | "big";
  /** e_machine; default 62 (x86-64). */
  machine?: number;
  /** e_type; default 3 (ET_DYN). */
  type?: number;
  /** e_ident[EI_OSABI]; default 0. */
  osAbi?: number;
  /** e_flags; default 0. */
  flags?: number;
  /** PT_INTERP path; none by default. */
  interpreter?: string;
  /** DT_NEEDED names. */
  needed?: string[];
  /** DT_RPATH. */
  rpath?: string;
  /** DT_RUNPATH. */
  runpath?: string;
  /** DT_SONAME. */
  soname?: string;
  /** DT_FLAGS_1. */
  flags1?: number;
  /** Whether to emit PT_DYNAMIC; default true. */
  dynamic?: boolean;
  /** Store the program header count as PN_XNUM + section header 0's sh_info. */
  extendedPhnum?: boolean;
}

/** A built image and where its parts are (for targeted mutation). */
export interface ElfImage {
  /** The file contents. */
  bytes: Uint8Array;
  /** Offset and size of the program header table. */
  programHeaders: { offset: number; size: number };
  /** Offset and size of the dynamic section (size 0 when absent). */
  dynamic: { offset: number; size: number };
  /** Offset and size of the dynamic string table. */
  strings: { offset: number; size: number };
}

const BASE_ADDRESS = 0x10000;

/** Builds an ELF image from `spec`: one PT_LOAD mapping the whole file, then the rest. */
export function buildElfImage(spec: ElfImageSpec): ElfImage {
  const is64 = spec.bits === 64;
  const little = spec.endian === "little";
  const word = is64 ? 8 : 4;
  const headerSize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const shentsize = is64 ? 64 : 40;
  const withDynamic = spec.dynamic ?? true;
  const encoder = new TextEncoder();

  const strings: number[] = [0];
  const stringOffset = (text: string) => {
    const offset = strings.length;
    strings.push(...encoder.encode(text), 0);
    return offset;
  };
  const entries: [number, number][] = [];
  for (const name of spec.needed ?? []) entries.push([1, stringOffset(name)]);
  if (spec.soname !== undefined) entries.push([14, stringOffset(spec.soname)]);
  if (spec.rpath !== undefined) entries.push([15, stringOffset(spec.rpath)]);
  if (spec.runpath !== undefined) entries.push([29, stringOffset(spec.runpath)]);
  if (spec.flags1 !== undefined) entries.push([0x6ffffffb, spec.flags1]);

  const phnum = 1 + (spec.interpreter === undefined ? 0 : 1) + (withDynamic ? 1 : 0);
  const phoff = headerSize;
  const shoff = phoff + phnum * phentsize;
  const interpOffset = shoff + (spec.extendedPhnum ? shentsize : 0);
  const interpBytes = spec.interpreter === undefined
    ? new Uint8Array(0)
    : encoder.encode(spec.interpreter + "\0");
  const strtabOffset = interpOffset + interpBytes.length;
  const dynamicOffset = Math.ceil((strtabOffset + strings.length) / 8) * 8;
  // STRTAB and STRSZ entries plus DT_NULL.
  const dynamicCount = entries.length + 3;
  const dynamicSize = withDynamic ? dynamicCount * 2 * word : 0;
  const size = dynamicOffset + dynamicSize;

  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  const put16 = (at: number, value: number) => view.setUint16(at, value, little);
  const put32 = (at: number, value: number) => view.setUint32(at, value, little);
  const putWord = (at: number, value: number) =>
    is64 ? view.setBigUint64(at, BigInt(value), little) : view.setUint32(at, value, little);

  bytes.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, little ? 1 : 2, 1, spec.osAbi ?? 0]);
  put16(16, spec.type ?? 3);
  put16(18, spec.machine ?? 62);
  put32(20, 1);
  putWord(is64 ? 32 : 28, phoff);
  putWord(is64 ? 40 : 32, spec.extendedPhnum ? shoff : 0);
  put32(is64 ? 48 : 36, spec.flags ?? 0);
  put16(is64 ? 52 : 40, headerSize);
  put16(is64 ? 54 : 42, phentsize);
  put16(is64 ? 56 : 44, spec.extendedPhnum ? 0xffff : phnum);
  put16(is64 ? 58 : 46, shentsize);
  put16(is64 ? 60 : 48, spec.extendedPhnum ? 1 : 0);
  if (spec.extendedPhnum) put32(shoff + (is64 ? 44 : 28), phnum);

  let header = phoff;
  const programHeader = (type: number, offset: number, fileSize: number) => {
    put32(header, type);
    if (is64) {
      put32(header + 4, 4);
      putWord(header + 8, offset);
      putWord(header + 16, BASE_ADDRESS + offset);
      putWord(header + 24, BASE_ADDRESS + offset);
      putWord(header + 32, fileSize);
      putWord(header + 40, fileSize);
      putWord(header + 48, 8);
    } else {
      putWord(header + 4, offset);
      putWord(header + 8, BASE_ADDRESS + offset);
      putWord(header + 12, BASE_ADDRESS + offset);
      putWord(header + 16, fileSize);
      putWord(header + 20, fileSize);
      put32(header + 24, 4);
      putWord(header + 28, 8);
    }
    header += phentsize;
  };
  programHeader(1, 0, size);
  if (spec.interpreter !== undefined) programHeader(3, interpOffset, interpBytes.length);
  if (withDynamic) programHeader(2, dynamicOffset, dynamicSize);

  bytes.set(interpBytes, interpOffset);
  bytes.set(strings, strtabOffset);
  if (withDynamic) {
    const all: [number, number][] = [
      ...entries,
      [5, BASE_ADDRESS + strtabOffset],
      [10, strings.length],
      [0, 0],
    ];
    all.forEach(([tag, value], index) => {
      putWord(dynamicOffset + index * 2 * word, tag);
      putWord(dynamicOffset + index * 2 * word + word, value);
    });
  }
  return {
    bytes,
    programHeaders: { offset: phoff, size: phnum * phentsize },
    dynamic: { offset: dynamicOffset, size: dynamicSize },
    strings: { offset: strtabOffset, size: strings.length },
  };
}
