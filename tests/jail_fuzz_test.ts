// Fuzzing of the ELF reader and the ld.so.cache parser: thousands of mutated and truncated
// copies of real files must only ever produce the module's own error type, and quickly.
// The PRNG is seeded; set JAIL_FUZZ_SEED to replay a printed seed.

import assert from "node:assert/strict";
import { ElfError, parseElf, readElf } from "../jail/elf.ts";
import { buildElfImage } from "../jail/elf_builder.ts";
import { LdCacheError, parseLdCache } from "../jail/ldcache.ts";

const SEED = Number(Deno.env.get("JAIL_FUZZ_SEED") ?? Date.now() % 0x100000000);
console.log(`jail fuzz seed: ${SEED} (replay with JAIL_FUZZ_SEED=${SEED})`);

/** mulberry32: small, fast, good enough to spread mutations. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

/** A base file and the regions worth hitting (headers, program headers, dynamic section). */
interface FuzzBase {
  label: string;
  bytes: Uint8Array;
  regions: { offset: number; size: number }[];
}

/** Finds the program header table and PT_DYNAMIC of a little-endian ELF64 file. */
function elf64Regions(bytes: Uint8Array): { offset: number; size: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(32, true));
  const phnum = view.getUint16(56, true);
  const regions = [{ offset: 0, size: 64 }, { offset: phoff, size: phnum * 56 }];
  for (let index = 0; index < phnum; index++) {
    const at = phoff + index * 56;
    if (view.getUint32(at, true) === 2) {
      regions.push({
        offset: Number(view.getBigUint64(at + 8, true)),
        size: Number(view.getBigUint64(at + 32, true)),
      });
    }
  }
  return regions;
}

async function fuzzBases(): Promise<FuzzBase[]> {
  const bases: FuzzBase[] = [];
  for (
    const path of ["/bin/ls", "/usr/bin/true", "/lib64/ld-linux-x86-64.so.2", "/sbin/ldconfig"]
  ) {
    const bytes = await Deno.readFile(path);
    bases.push({ label: path, bytes, regions: elf64Regions(bytes) });
  }
  // libc is large: its first 64 KiB hold the headers; the dynamic section lies further on,
  // so fuzz a copy truncated just past it (the reader must then cope with the rest missing).
  const libc = await Deno.readFile("/usr/lib/x86_64-linux-gnu/libc.so.6");
  const regions = elf64Regions(libc);
  const end = Math.max(...regions.map((region) => region.offset + region.size));
  bases.push({ label: "libc.so.6 (cut)", bytes: libc.slice(0, end + 4096), regions });
  for (const bits of [32, 64] as const) {
    for (const endian of ["little", "big"] as const) {
      const image = buildElfImage({
        bits,
        endian,
        interpreter: "/lib/ld.so.1",
        needed: ["liba.so.1", "libb.so.2", "libc.so.6"],
        rpath: "$ORIGIN/lib",
        runpath: "/opt/lib",
        soname: "libfuzz.so.1",
        extendedPhnum: bits === 32,
      });
      bases.push({
        label: `synthetic ELF${bits} ${endian}`,
        bytes: image.bytes,
        regions: [{ offset: 0, size: bits === 64 ? 64 : 52 }, image.programHeaders, image.dynamic],
      });
    }
  }
  return bases;
}

/** Values that tend to break bounds arithmetic. */
const NASTY = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

function mutate(base: FuzzBase, random: () => number): Uint8Array {
  const pick = (limit: number) => Math.floor(random() * limit);
  let bytes = base.bytes.slice();
  const flips = 1 + pick(8);
  for (let flip = 0; flip < flips; flip++) {
    const region = random() < 0.85 ? base.regions[pick(base.regions.length)] : null;
    const offset = region === null
      ? pick(bytes.length)
      : Math.min(bytes.length - 1, region.offset + pick(Math.max(1, region.size)));
    bytes[offset] = random() < 0.5 ? NASTY[pick(NASTY.length)] : pick(256);
  }
  if (random() < 0.3) {
    // Truncate, mostly inside the interesting part.
    const region = base.regions[pick(base.regions.length)];
    bytes = bytes.slice(
      0,
      random() < 0.7 ? region.offset + pick(region.size + 1) : pick(bytes.length),
    );
  }
  return bytes;
}

/** Fails the test if `promise` neither settles within `ms` nor rejects with `errorType`. */
async function settlesCleanly(
  promise: Promise<unknown>,
  errorType: new (...args: never[]) => Error,
  label: string,
  ms = 2000,
): Promise<"ok" | "error"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([promise, timeout]);
    return "ok";
  } catch (error) {
    if (!(error instanceof errorType)) {
      throw new Error(`${label}: threw ${error} (seed ${SEED})`, { cause: error });
    }
    assert.ok(!error.message.includes("\n"), `${label}: multi-line message`);
    // "cannot parse:" is the readers' safety net for unexpected exceptions: it must stay unused.
    assert.ok(!error.message.includes(": cannot parse: "), `${label}: ${error.message}`);
    return "error";
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("fuzz: 10000 mutated/truncated ELF images only ever raise ElfError", async () => {
  const random = prng(SEED);
  const bases = await fuzzBases();
  const counts = { ok: 0, error: 0 };
  const started = performance.now();
  for (let iteration = 0; iteration < 10000; iteration++) {
    const base = bases[iteration % bases.length];
    const bytes = mutate(base, random);
    const label = `iteration ${iteration} on ${base.label}`;
    counts[await settlesCleanly(parseElf(bytes, label), ElfError, label)]++;
  }
  const elapsed = performance.now() - started;
  console.log(`  ${counts.ok} parsed, ${counts.error} rejected in ${elapsed.toFixed(0)} ms`);
  assert.ok(counts.error > 0 && counts.ok > 0, "mutations should both break and spare files");
  assert.ok(elapsed < 30_000, `fuzzing took ${elapsed} ms`);
});

Deno.test("fuzz: 300 mutated ELF files read from disk only ever raise ElfError", async () => {
  const random = prng(SEED ^ 0x5a5a5a5a);
  const bases = await fuzzBases();
  const dir = await Deno.makeTempDir({ prefix: "jail_fuzz_" });
  try {
    let errors = 0;
    for (let iteration = 0; iteration < 300; iteration++) {
      const base = bases[iteration % bases.length];
      const path = `${dir}/sample${iteration % 8}`;
      await Deno.writeFile(path, mutate(base, random));
      const label = `file iteration ${iteration} on ${base.label}`;
      if (await settlesCleanly(readElf(path), ElfError, label) === "error") errors++;
    }
    assert.ok(errors > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The system cache plus, when ldconfig can write them, old and compat layouts of it. */
async function cacheBases(dir: string): Promise<FuzzBase[]> {
  const bases: FuzzBase[] = [];
  const system = await Deno.readFile("/etc/ld.so.cache");
  bases.push({ label: "ld.so.cache", bytes: system, regions: [{ offset: 0, size: 48 + 24 * 8 }] });
  for (const format of ["old", "compat"]) {
    const path = `${dir}/${format}.cache`;
    try {
      const result = await new Deno.Command("/sbin/ldconfig", {
        args: ["-X", "-c", format, "-C", path],
        stdout: "null",
        stderr: "null",
      }).output();
      if (!result.success) continue;
    } catch {
      continue;
    }
    const bytes = await Deno.readFile(path);
    bases.push({
      label: `${format} ld.so.cache`,
      bytes,
      regions: [{ offset: 0, size: 16 + 12 * 8 }],
    });
  }
  // The extension area (hwcaps names) and the string table are also worth hitting.
  for (const base of bases) {
    base.regions.push({ offset: base.bytes.length - 2048, size: 2048 });
  }
  return bases;
}

Deno.test("fuzz: 5000 mutated/truncated ld.so.cache files only ever raise LdCacheError", async () => {
  const random = prng(SEED ^ 0x1234567);
  const dir = await Deno.makeTempDir({ prefix: "jail_fuzz_cache_" });
  try {
    const bases = await cacheBases(dir);
    console.log(`  cache layouts: ${bases.map((base) => base.label).join(", ")}`);
    const counts = { ok: 0, error: 0 };
    const started = performance.now();
    for (let iteration = 0; iteration < 5000; iteration++) {
      const base = bases[iteration % bases.length];
      const bytes = mutate(base, random);
      const label = `cache iteration ${iteration} on ${base.label}`;
      const parsing = Promise.resolve().then(() => {
        const cache = parseLdCache(bytes, label);
        // Look-ups on whatever survived must not throw either.
        cache.lookup("libc.so.6", [0x0303], ["x86-64-v3"]);
      });
      counts[await settlesCleanly(parsing, LdCacheError, label)]++;
    }
    const elapsed = performance.now() - started;
    console.log(`  ${counts.ok} parsed, ${counts.error} rejected in ${elapsed.toFixed(0)} ms`);
    assert.ok(counts.error > 0 && counts.ok > 0);
    assert.ok(elapsed < 30_000, `fuzzing took ${elapsed} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
