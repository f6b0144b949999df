// Fuzzing of the ELF reader and the ld.so.cache parser: thousands of mutated and truncated
// copies of real files must only ever produce the module's own error type, and quickly.
// The PRNG is seeded; set JAIL_FUZZ_SEED to replay a printed seed.

import assert from "node:assert/strict";
import { buildElfImage } from "../jail/elf_builder.ts";

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
  // Real files, cut just past the furthest region the reader looks at (the rest is never
  // read; keeping the copies small keeps thousands of mutations cheap). The reader must cope
  // with whatever lies beyond being missing.
  const real = [
    "/bin/ls",
    "/usr/bin/true",
    "/lib64/ld-linux-x86-64.so.2",
    "/sbin/ldconfig",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
  ];
  for (const path of real) {
    const bytes = await Deno.readFile(path);
    const regions = elf64Regions(bytes);
    const end = Math.max(...regions.map((region) => region.offset + region.size));
    bases.push({ label: path, bytes: bytes.slice(0, end + 4096), regions });
  }
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

/** What the worker reports for one input. */
interface FuzzResult {
  outcome: "ok" | "error" | "foreign";
  message: string;
  ms: number;
}

/**
 * Parses inputs in a Worker, so that a hang (the readers are synchronous) makes the test fail
 * on a deadline instead of blocking it forever.
 */
class FuzzWorker {
  private readonly worker: Worker;

  constructor() {
    const elf = new URL("../jail/elf.ts", import.meta.url).href;
    const ldcache = new URL("../jail/ldcache.ts", import.meta.url).href;
    const code = `
      import { ElfError, parseElf, readElf } from ${JSON.stringify(elf)};
      import { LdCacheError, parseLdCache } from ${JSON.stringify(ldcache)};
      self.onmessage = ({ data }) => {
        self.postMessage(data.items.map((item, index) => {
          const started = performance.now();
          const label = data.labels[index];
          try {
            if (data.kind === "elf") parseElf(item, label);
            else if (data.kind === "file") readElf(item);
            else parseLdCache(item, label).lookup("libc.so.6", [0x0303], ["x86-64-v3"]);
            return { outcome: "ok", message: "", ms: performance.now() - started };
          } catch (error) {
            const own = data.kind === "cache"
              ? error instanceof LdCacheError
              : error instanceof ElfError;
            const message = String(error?.message ?? error);
            return { outcome: own ? "error" : "foreign", message, ms: performance.now() - started };
          }
        }));
      };`;
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    this.worker = new Worker(url, { type: "module" });
  }

  /** Parses `items` of one kind; rejects if the worker does not answer within `deadlineMs`. */
  run(
    kind: "elf" | "file" | "cache",
    items: (Uint8Array | string)[],
    labels: string[],
    deadlineMs = 30_000,
  ): Promise<FuzzResult[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.worker.terminate();
        reject(new Error(`no answer within ${deadlineMs} ms for ${labels[0]}.. (seed ${SEED})`));
      }, deadlineMs);
      this.worker.onmessage = (event: MessageEvent<FuzzResult[]>) => {
        clearTimeout(timer);
        resolve(event.data);
      };
      this.worker.onerror = (event) => {
        clearTimeout(timer);
        event.preventDefault();
        reject(new Error(`worker failed: ${event.message}`));
      };
      const buffers = items.flatMap((item) =>
        typeof item === "string" ? [] : [item.buffer as ArrayBuffer]
      );
      this.worker.postMessage({ kind, items, labels }, buffers);
    });
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/** Asserts every result is a parse or the module's own one-line error; returns counts. */
function checkResults(results: FuzzResult[], labels: string[]) {
  const counts = { ok: 0, error: 0, slowestMs: 0 };
  results.forEach((result, index) => {
    const label = labels[index];
    assert.notEqual(result.outcome, "foreign", `${label}: threw ${result.message} (seed ${SEED})`);
    assert.ok(!result.message.includes("\n"), `${label}: multi-line message`);
    // "cannot parse:" is the readers' safety net for unexpected exceptions: it must stay unused.
    assert.ok(!result.message.includes(": cannot parse: "), `${label}: ${result.message}`);
    counts[result.outcome as "ok" | "error"]++;
    counts.slowestMs = Math.max(counts.slowestMs, result.ms);
  });
  return counts;
}

/** Mutates `count` inputs from `bases` and runs them through the worker in batches. */
async function fuzz(
  kind: "elf" | "cache",
  bases: FuzzBase[],
  count: number,
  random: () => number,
) {
  const worker = new FuzzWorker();
  const totals = { ok: 0, error: 0, slowestMs: 0 };
  try {
    for (let first = 0; first < count; first += 1000) {
      const items: Uint8Array[] = [];
      const labels: string[] = [];
      for (let iteration = first; iteration < Math.min(count, first + 1000); iteration++) {
        const base = bases[iteration % bases.length];
        items.push(mutate(base, random));
        labels.push(`${kind} iteration ${iteration} on ${base.label}`);
      }
      const counts = checkResults(await worker.run(kind, items, labels), labels);
      totals.ok += counts.ok;
      totals.error += counts.error;
      totals.slowestMs = Math.max(totals.slowestMs, counts.slowestMs);
    }
  } finally {
    worker.terminate();
  }
  return totals;
}

Deno.test("fuzz: 10000 mutated/truncated ELF images only ever raise ElfError", async () => {
  const started = performance.now();
  const totals = await fuzz("elf", await fuzzBases(), 10_000, prng(SEED));
  const elapsed = performance.now() - started;
  console.log(
    `  ${totals.ok} parsed, ${totals.error} rejected in ${elapsed.toFixed(0)} ms ` +
      `(slowest ${totals.slowestMs.toFixed(1)} ms)`,
  );
  assert.ok(totals.error > 0 && totals.ok > 0, "mutations should both break and spare files");
  assert.ok(totals.slowestMs < 1000, `one parse took ${totals.slowestMs} ms`);
});

Deno.test("fuzz: 300 mutated ELF files read from disk only ever raise ElfError", async () => {
  const random = prng(SEED ^ 0x5a5a5a5a);
  const bases = await fuzzBases();
  const dir = await Deno.makeTempDir({ prefix: "jail_fuzz_" });
  const worker = new FuzzWorker();
  try {
    const paths: string[] = [];
    const labels: string[] = [];
    for (let iteration = 0; iteration < 300; iteration++) {
      const base = bases[iteration % bases.length];
      paths.push(`${dir}/sample${iteration}`);
      labels.push(`file iteration ${iteration} on ${base.label}`);
      await Deno.writeFile(paths[iteration], mutate(base, random));
    }
    const counts = checkResults(await worker.run("file", paths, labels), labels);
    assert.ok(counts.error > 0 && counts.ok > 0);
  } finally {
    worker.terminate();
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
  const dir = await Deno.makeTempDir({ prefix: "jail_fuzz_cache_" });
  try {
    const bases = await cacheBases(dir);
    console.log(`  cache layouts: ${bases.map((base) => base.label).join(", ")}`);
    const started = performance.now();
    const totals = await fuzz("cache", bases, 5000, prng(SEED ^ 0x1234567));
    const elapsed = performance.now() - started;
    console.log(`  ${totals.ok} parsed, ${totals.error} rejected in ${elapsed.toFixed(0)} ms`);
    assert.ok(totals.error > 0 && totals.ok > 0);
    assert.ok(totals.slowestMs < 1000, `one parse took ${totals.slowestMs} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
