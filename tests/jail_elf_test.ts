// Unit tests of the ELF reader (jail/elf.ts) on the host's real binaries (checked against
// readelf when it is installed) and on synthetic ELF32/ELF64, big/little-endian images.

import assert from "node:assert/strict";
import { skipped } from "./helpers.ts";
import {
  DF_1_NODEFLIB,
  ElfError,
  type ElfInfo,
  EM_386,
  EM_AARCH64,
  EM_X86_64,
  parseElf,
  readElf,
} from "../jail/elf.ts";
import { buildElfImage, type ElfImageSpec } from "../jail/elf_builder.ts";

const LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const LD_SO = "/lib64/ld-linux-x86-64.so.2";

async function commandExists(name: string): Promise<boolean> {
  try {
    const result = await new Deno.Command(name, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return result.success;
  } catch {
    return false;
  }
}

function throwsElfError(parse: () => unknown, pattern: RegExp): ElfError {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof ElfError, `expected ElfError, got ${error}`);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), "message must be one line");
    return error;
  }
  assert.fail(`expected an ElfError matching ${pattern}`);
}

Deno.test("elf: /bin/ls is a dynamically linked x86-64 executable", () => {
  const info = readElf("/bin/ls");
  assert.equal(info.bits, 64);
  assert.equal(info.endian, "little");
  assert.equal(info.machine, EM_X86_64);
  assert.equal(info.interpreter, LD_SO);
  assert.ok(info.needed.includes("libc.so.6"), `needed: ${info.needed}`);
  assert.equal(info.hasDynamic, true);
  assert.equal(info.isStatic, false);
  assert.equal(info.soname, null);
});

Deno.test("elf: libc.so.6 has its SONAME, needs the loader, and is a shared object", () => {
  const info = readElf(LIBC);
  assert.equal(info.soname, "libc.so.6");
  assert.deepEqual(info.needed, ["ld-linux-x86-64.so.2"]);
  assert.equal(info.type, 3);
  assert.equal(info.osAbi, 3, "glibc is marked ELFOSABI_GNU");
  assert.equal(info.isStatic, false);
});

Deno.test("elf: the loader itself has no PT_INTERP and no DT_NEEDED, so it counts as static", () => {
  const info = readElf(LD_SO);
  assert.equal(info.interpreter, null);
  assert.deepEqual(info.needed, []);
  assert.equal(info.soname, "ld-linux-x86-64.so.2");
  assert.equal(info.hasDynamic, true);
  assert.equal(info.isStatic, true);
});

Deno.test("elf: static-pie ldconfig is static although it has PT_DYNAMIC", () => {
  const info = readElf("/sbin/ldconfig");
  assert.equal(info.hasDynamic, true);
  assert.equal(info.interpreter, null);
  assert.equal(info.isStatic, true);
});

Deno.test("elf: a shell script is rejected with 'not an ELF file'", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/script.sh`;
    await Deno.writeTextFile(script, "#!/bin/sh\necho hi\n");
    const error = throwsElfError(() => readElf(script), /script\.sh: not an ELF file$/);
    assert.equal(error.path, script);
    assert.equal(error.reason, "not an ELF file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("elf: missing files and directories are ElfErrors too", () => {
  throwsElfError(() => readElf("/nonexistent/file"), /^\/nonexistent\/file: cannot read/);
  throwsElfError(() => readElf("/usr"), /^\/usr: a directory, not a regular file$/);
  throwsElfError(
    () => readElf("/dev/null"),
    /^\/dev\/null: a character device, not a regular file$/,
  );
});

/** Parses `readelf -d -l` output into the fields the reader extracts. */
async function readelfFacts(path: string) {
  const output = await new Deno.Command("readelf", {
    args: ["-W", "-d", "-l", path],
    env: { LC_ALL: "C" },
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const field = (label: string) => new RegExp(`\\(${label}\\)\\s+.*?\\[(.*)\\]`).exec(text)?.[1];
  return {
    interpreter: /\[Requesting program interpreter: (.*)\]/.exec(text)?.[1] ?? null,
    needed: [...text.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]),
    soname: field("SONAME") ?? null,
    rpath: field("RPATH") ?? null,
    runpath: field("RUNPATH") ?? null,
  };
}

const READELF_TEST = "elf: agrees with readelf on many host binaries and libraries";
Deno.test({
  name: READELF_TEST,
  ignore: skipped(
    READELF_TEST,
    await commandExists("readelf") ? null : "readelf (binutils) is not installed",
  ),
}, async (t) => {
  const candidates: string[] = [];
  for (const dir of ["/usr/bin", "/usr/lib/x86_64-linux-gnu"]) {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile && (dir === "/usr/bin" || /\.so\.\d/.test(entry.name))) {
        candidates.push(`${dir}/${entry.name}`);
      }
    }
  }
  candidates.sort();
  // Every 7th file keeps the run short while covering RPATH/RUNPATH/SONAME variety.
  const sample = candidates.filter((_, index) => index % 7 === 0);
  let compared = 0;
  for (const path of sample) {
    let info: ElfInfo;
    try {
      info = readElf(path);
    } catch (error) {
      assert.ok(error instanceof ElfError);
      continue;
    }
    const facts = await readelfFacts(path);
    const mine = {
      interpreter: info.interpreter,
      needed: info.needed,
      soname: info.soname,
      rpath: info.rpath,
      runpath: info.runpath,
    };
    assert.deepEqual(mine, facts, path);
    compared++;
  }
  await t.step(`compared ${compared} files`, () => assert.ok(compared > 100));
});

const VARIANTS: ElfImageSpec[] = [
  { bits: 64, endian: "little", machine: EM_X86_64 },
  { bits: 64, endian: "big", machine: 21 },
  { bits: 32, endian: "little", machine: EM_386 },
  { bits: 32, endian: "big", machine: 8 },
];

for (const variant of VARIANTS) {
  Deno.test(`elf: synthetic ELF${variant.bits} ${variant.endian}-endian round-trips`, () => {
    const image = buildElfImage({
      ...variant,
      osAbi: 3,
      flags: 0x400,
      interpreter: "/lib/ld-test.so.1",
      needed: ["liba.so.1", "libb.so.2"],
      rpath: "$ORIGIN/../lib",
      runpath: "/opt/x:/opt/y",
      soname: "libself.so.7",
      flags1: DF_1_NODEFLIB,
    });
    const info = parseElf(image.bytes, "synthetic");
    assert.deepEqual(info, {
      path: "synthetic",
      bits: variant.bits,
      endian: variant.endian,
      osAbi: 3,
      abiVersion: 0,
      type: 3,
      machine: variant.machine,
      flags: 0x400,
      interpreter: "/lib/ld-test.so.1",
      hasDynamic: true,
      needed: ["liba.so.1", "libb.so.2"],
      rpath: "$ORIGIN/../lib",
      runpath: "/opt/x:/opt/y",
      soname: "libself.so.7",
      flags1: DF_1_NODEFLIB,
      isStatic: false,
    });
  });

  Deno.test(`elf: synthetic ELF${variant.bits} ${variant.endian}-endian with PN_XNUM`, () => {
    const image = buildElfImage({ ...variant, needed: ["libz.so.1"], extendedPhnum: true });
    const info = parseElf(image.bytes);
    assert.deepEqual(info.needed, ["libz.so.1"]);
    assert.equal(info.bits, variant.bits);
  });
}

Deno.test("elf: byte order really matters (a flipped EI_DATA misreads the header)", () => {
  const image = buildElfImage({ bits: 64, endian: "big", machine: EM_AARCH64, needed: ["x"] });
  const swapped = image.bytes.slice();
  swapped[5] = 1;
  // Little-endian reading of big-endian fields puts the program headers far out of the file.
  throwsElfError(() => parseElf(swapped), /out of bounds/);
  assert.equal((parseElf(image.bytes)).machine, EM_AARCH64);
});

Deno.test("elf: a synthetic file without interpreter or dynamic section is static", () => {
  const image = buildElfImage({ bits: 32, endian: "little", dynamic: false });
  const info = parseElf(image.bytes);
  assert.equal(info.hasDynamic, false);
  assert.equal(info.isStatic, true);
  assert.deepEqual(info.needed, []);
});

Deno.test("elf: malformed synthetic files raise ElfError with a precise reason", () => {
  const image = buildElfImage({
    bits: 64,
    endian: "little",
    needed: ["liba.so"],
    interpreter: "/i",
  });
  const bytes = image.bytes;
  const view = (copy: Uint8Array) => new DataView(copy.buffer);

  throwsElfError(() => parseElf(bytes.subarray(0, 10)), /not an ELF file/);
  throwsElfError(() => parseElf(bytes.subarray(0, 40)), /truncated ELF header/);
  throwsElfError(() => parseElf(bytes.subarray(0, 100)), /program header table out of bounds/);
  throwsElfError(() => parseElf(bytes.subarray(0, bytes.length - 8)), /PT_DYNAMIC out of bounds/);

  const badClass = bytes.slice();
  badClass[4] = 9;
  throwsElfError(() => parseElf(badClass), /invalid ELF class 9/);

  const badData = bytes.slice();
  badData[5] = 0;
  throwsElfError(() => parseElf(badData), /invalid ELF data encoding 0/);

  const smallEntries = bytes.slice();
  view(smallEntries).setUint16(54, 20, true);
  throwsElfError(() => parseElf(smallEntries), /program header entry size 20 too small/);

  // Point DT_STRTAB (second to last real entry) outside the PT_LOAD segment.
  const strtabEntry = image.dynamic.offset + 1 * 16;
  const unmapped = bytes.slice();
  assert.equal(view(unmapped).getBigUint64(strtabEntry, true), 5n);
  view(unmapped).setBigUint64(strtabEntry + 8, 0x7fff0000n, true);
  throwsElfError(() => parseElf(unmapped), /DT_STRTAB not in any PT_LOAD segment/);

  const farString = bytes.slice();
  view(farString).setBigUint64(image.dynamic.offset + 8, 0xffffn, true);
  throwsElfError(() => parseElf(farString), /dynamic string offset out of bounds/);

  const emptyInterp = bytes.slice();
  emptyInterp.fill(0, image.programHeaders.offset + image.programHeaders.size);
  throwsElfError(() => parseElf(emptyInterp), /empty PT_INTERP/);
});
