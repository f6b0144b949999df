/**
 * Benchmark: dependency closures of every ELF executable in /usr/bin with
 * resolveDependencies (shared cache, and cold: a fresh cache per file) against running `ldd`
 * once per file, printed side by side with the speed-up.
 *
 * Run: deno run --allow-read --allow-run bench/resolve.ts
 *
 * @module
 */

import { ElfError } from "../jail/elf.ts";
import { resolveDependencies, ResolverCache } from "../jail/resolve.ts";

const DIRECTORY = "/usr/bin";

/** Regular files of `dir` that start with the ELF magic, sorted. */
async function elfFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    try {
      if (!(await Deno.stat(path)).isFile) continue;
      const file = await Deno.open(path);
      const magic = new Uint8Array(4);
      const count = await file.read(magic);
      file.close();
      if (count === 4 && magic.join() === "127,69,76,70") files.push(path);
    } catch {
      // Unreadable or dangling: not part of the benchmark.
    }
  }
  return files.sort();
}

/** Resolves every file, with one shared cache or a fresh one per file; returns milliseconds. */
async function timeResolver(files: string[], shared: boolean): Promise<number> {
  const cache = new ResolverCache();
  const started = performance.now();
  for (const path of files) {
    try {
      await resolveDependencies(path, { cache: shared ? cache : new ResolverCache() });
    } catch (error) {
      if (!(error instanceof ElfError)) throw error;
    }
  }
  return performance.now() - started;
}

/** Runs `ldd` on every file, one process at a time; returns milliseconds. */
async function timeLdd(files: string[]): Promise<number> {
  const started = performance.now();
  for (const path of files) {
    await new Deno.Command("ldd", { args: [path], stdout: "null", stderr: "null" }).output();
  }
  return performance.now() - started;
}

function row(label: string, total: number, count: number): string {
  const perFile = (total / count).toFixed(3).padStart(7);
  return `  ${label.padEnd(38)} ${(total / 1000).toFixed(3).padStart(7)} s  ${perFile} ms/file`;
}

/** Prints resolver (shared and cold cache) and ldd timings over /usr/bin, and the ratios. */
export async function benchResolve(): Promise<void> {
  const files = await elfFiles(DIRECTORY);
  // One untimed pass warms the OS page cache for both contenders alike.
  await timeResolver(files, true);
  const shared = await timeResolver(files, true);
  const cold = await timeResolver(files, false);
  const ldd = await timeLdd(files);
  console.log(`dependency closures of ${files.length} ELF executables in ${DIRECTORY}`);
  console.log(row("resolveDependencies, shared cache", shared, files.length));
  console.log(row("resolveDependencies, cold per file", cold, files.length));
  console.log(row("ldd, one process per file", ldd, files.length));
  console.log(
    `  speed-up vs ldd: ${(ldd / shared).toFixed(1)}x (shared cache), ` +
      `${(ldd / cold).toFixed(1)}x (cold per file)`,
  );
}

if (import.meta.main) await benchResolve();
