// The resolver (jail/resolve.ts) against `ldd` as the oracle: every ELF executable of /usr/bin
// and /usr/sbin, plus gcc-built fixtures for RPATH vs RUNPATH, $ORIGIN/${ORIGIN}/$LIB/$PLATFORM,
// wrong-class candidates, LD_LIBRARY_PATH, DF_1_NODEFLIB, glibc-hwcaps, a custom ld.so.cache
// and resolution inside another root.
//
// Comparison rule: canonical (realpath) paths in load order, "not found" names as a set, and
// the PT_INTERP file always counted (the kernel maps it even when ldd, because no DT_NEEDED
// names it, does not list it). ldd is given the canonical path of the binary, because it takes
// $ORIGIN from the path it is given while the kernel (/proc/self/exe) and the resolver use the
// canonical one (see the "symlinked executable" case).

import assert from "node:assert/strict";
import { skipped } from "./helpers.ts";
import { copyIntoRoot } from "../jail/copy.ts";
import { ElfError, EM_386, EM_X86_64, readElf } from "../jail/elf.ts";
import { buildElfImage } from "../jail/elf_builder.ts";
import { cacheFlagsFor, type LdCache, parseLdCache, readLdCache } from "../jail/ldcache.ts";
import {
  type ResolvedClosure,
  resolveDependencies,
  type ResolveOptions,
  ResolverCache,
} from "../jail/resolve.ts";

interface LddReport {
  /** Canonical paths in ldd's order (vdso left out). */
  paths: string[];
  /** Names ldd could not find. */
  missing: Set<string>;
  /** ldd said "statically linked" or "not a dynamic executable". */
  notDynamic: boolean;
}

async function ldd(path: string, env: Record<string, string> = {}): Promise<LddReport> {
  const output = await new Deno.Command("ldd", {
    args: [path],
    env: { LC_ALL: "C", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const report: LddReport = { paths: [], missing: new Set(), notDynamic: false };
  for (const line of text.split("\n")) {
    const arrow = /^\s*(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$/.exec(line);
    const bare = /^\s*(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (arrow !== null && arrow[2] === "not found") report.missing.add(arrow[1]);
    else if (arrow !== null && arrow[2].startsWith("/")) {
      report.paths.push(await Deno.realPath(arrow[2]));
    } else if (bare !== null) report.paths.push(await Deno.realPath(bare[1]));
    else if (/statically linked|not a dynamic executable/.test(line)) report.notDynamic = true;
  }
  return report;
}

/** The closure in ldd's terms: canonical paths in order, missing names. */
function asLddSees(closure: ResolvedClosure) {
  return {
    paths: closure.objects.map((object) => object.realPath),
    missing: new Set(closure.missing.map((entry) => entry.name)),
  };
}

/** ldd's report with the interpreter added at the end when ldd left it out. */
async function expectedFromLdd(report: LddReport, interpreter: string | null) {
  const paths = [...report.paths];
  if (interpreter !== null) {
    const real = await Deno.realPath(interpreter);
    if (!paths.includes(real)) paths.push(real);
  }
  return { paths, missing: report.missing };
}

async function assertMatchesLdd(
  path: string,
  options: ResolveOptions = {},
  env: Record<string, string> = {},
): Promise<ResolvedClosure> {
  const closure = await resolveDependencies(path, options);
  const report = await ldd(await Deno.realPath(path), env);
  assert.deepEqual(
    asLddSees(closure),
    await expectedFromLdd(report, closure.elf.interpreter),
    path,
  );
  return closure;
}

/** Runs `task` over `items` with `width` concurrent workers. */
async function pool<T>(items: T[], width: number, task: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

Deno.test("resolve: every ELF executable in /usr/bin and /usr/sbin matches ldd", async () => {
  const realPaths = new Set<string>();
  for (const dir of ["/usr/bin", "/usr/sbin"]) {
    for (const entry of Deno.readDirSync(dir)) {
      try {
        const real = Deno.realPathSync(`${dir}/${entry.name}`);
        if (Deno.statSync(real).isFile) realPaths.add(real);
      } catch {
        // Dangling symlink.
      }
    }
  }
  const cache = new ResolverCache();
  const counts = { dynamic: 0, static: 0, notElf: 0 };
  const notElf: string[] = [];
  await pool([...realPaths].sort(), 3, async (path) => {
    let closure: ResolvedClosure;
    try {
      closure = await resolveDependencies(path, { cache });
    } catch (error) {
      assert.ok(error instanceof ElfError, `${path}: ${error}`);
      assert.match(error.message, /: not an ELF file$/, path);
      counts.notElf++;
      notElf.push(path);
      return;
    }
    const report = await ldd(path);
    if (closure.isStatic) {
      counts.static++;
      assert.deepEqual(closure.objects, []);
      assert.ok(report.notDynamic, `${path}: static for us, dynamic for ldd`);
      return;
    }
    counts.dynamic++;
    assert.ok(!report.notDynamic, `${path}: dynamic for us, not for ldd`);
    assert.deepEqual(
      asLddSees(closure),
      await expectedFromLdd(report, closure.elf.interpreter),
      path,
    );
  });
  console.log(`  ${counts.dynamic} dynamic, ${counts.static} static, ${counts.notElf} not ELF`);
  assert.ok(counts.dynamic > 100, "expected a populated /usr/bin");
  // ldd agrees that a sample of the non-ELF files (scripts) are not dynamic executables.
  for (const path of notElf.slice(0, 10)) assert.ok((await ldd(path)).notDynamic, path);
});

Deno.test("resolve: a static-pie executable (ldconfig) has an empty closure", async () => {
  const closure = await resolveDependencies("/sbin/ldconfig");
  assert.equal(closure.isStatic, true);
  assert.deepEqual(closure.objects, []);
  assert.deepEqual(closure.missing, []);
  assert.ok((await ldd("/sbin/ldconfig")).notDynamic);
});

Deno.test("resolve: a shell script is 'not an ELF file'", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/run.sh`, "#!/bin/sh\nexit 0\n");
    await assert.rejects(
      () => resolveDependencies(`${dir}/run.sh`),
      (error) => error instanceof ElfError && error.message === `${dir}/run.sh: not an ELF file`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolve: /bin/ls in detail: order, interpreter, symlink chain", async () => {
  const closure = await resolveDependencies("/bin/ls");
  const names = closure.objects.map((object) => object.name);
  assert.deepEqual(names.slice(0, 2), ["libselinux.so.1", "libc.so.6"]);
  const libc = closure.objects.find((object) => object.name === "libc.so.6")!;
  assert.equal(libc.path, "/lib/x86_64-linux-gnu/libc.so.6");
  assert.equal(libc.foundVia, "ld.so.cache");
  assert.equal(libc.neededBy, "/bin/ls");
  const interpreter = closure.objects.find((object) => object.foundVia === "interpreter")!;
  assert.equal(interpreter.path, "/lib64/ld-linux-x86-64.so.2");
  // /lib64/ld-linux-x86-64.so.2 is a symlink on Debian: the chain must lead to the file.
  const info = await Deno.lstat(interpreter.path);
  if (info.isSymlink) {
    assert.equal(interpreter.symlinks[0].path, interpreter.path);
    assert.equal(interpreter.symlinks[0].target, await Deno.readLink(interpreter.path));
    assert.ok((await Deno.lstat(interpreter.filePath)).isFile);
  } else {
    assert.deepEqual(interpreter.symlinks, []);
  }
  assert.equal(interpreter.realPath, await Deno.realPath(interpreter.path));
});

// ---------------------------------------------------------------------------------------------
// gcc fixtures

/**
 * The subdirectories this machine's loader tries in each search directory, best first ("" for
 * the directory itself), as `LD_DEBUG=libs` shows them for an LD_LIBRARY_PATH entry.
 */
async function loaderSubdirs(): Promise<string[]> {
  const probe = "/nonexistent-jail-probe";
  const output = await new Deno.Command("/bin/true", {
    env: { LD_DEBUG: "libs", LD_LIBRARY_PATH: probe },
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stderr);
  const list = /search path=(\S+)\s+\(LD_LIBRARY_PATH\)/.exec(text)?.[1];
  assert.ok(list, `no LD_DEBUG search path in: ${text}`);
  const subdirs = list.split(":").map((entry) => entry.slice(probe.length + 1));
  return [...new Set(subdirs.map((subdir) => subdir === "" ? "" : `${subdir}/`))];
}

async function hasGcc(): Promise<boolean> {
  try {
    return (await new Deno.Command("gcc", { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

async function gcc(args: string[]): Promise<void> {
  const result = await new Deno.Command("gcc", { args, stdout: "piped", stderr: "piped" }).output();
  if (!result.success) {
    throw new Error(`gcc ${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
  }
}

/** Builds libfix2 <- libfix1 and executables linked against libfix1 with various rpaths. */
async function buildFixtures(dir: string): Promise<void> {
  for (
    const sub of [
      "src",
      "lib",
      "bin",
      "other/deeper",
      "wrong",
      "x86_64",
      "hw",
      "lib/x86_64-linux-gnu",
    ]
  ) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  await Deno.writeTextFile(`${dir}/src/fix2.c`, "int fix2(void) { return 2; }\n");
  await Deno.writeTextFile(
    `${dir}/src/fix1.c`,
    "int fix2(void);\nint fix1(void) { return fix2() + 1; }\n",
  );
  await Deno.writeTextFile(
    `${dir}/src/app.c`,
    "int fix1(void);\nint main(void) { return fix1(); }\n",
  );
  const lib = `${dir}/lib`;
  await gcc([
    "-shared",
    "-fPIC",
    "-Wl,-soname,libfix2.so",
    "-o",
    `${lib}/libfix2.so`,
    `${dir}/src/fix2.c`,
  ]);
  await gcc([
    "-shared",
    "-fPIC",
    "-Wl,-soname,libfix1.so.1",
    "-Wl,--no-as-needed",
    "-o",
    `${lib}/libfix1.so.1.0`,
    `${dir}/src/fix1.c`,
    `-L${lib}`,
    "-lfix2",
  ]);
  await Deno.symlink("libfix1.so.1.0", `${lib}/libfix1.so.1`);
  await Deno.symlink("libfix1.so.1", `${lib}/libfix1.so`);
  for (const copy of ["lib/x86_64-linux-gnu", "x86_64"]) {
    await Deno.copyFile(`${lib}/libfix1.so.1.0`, `${dir}/${copy}/libfix1.so.1`);
    await Deno.copyFile(`${lib}/libfix2.so`, `${dir}/${copy}/libfix2.so`);
  }
  const app = (name: string, ...flags: string[]) =>
    gcc([
      "-o",
      `${dir}/bin/${name}`,
      `${dir}/src/app.c`,
      `-L${lib}`,
      "-lfix1",
      `-Wl,-rpath-link,${lib}`,
      ...flags,
    ]);
  await app("app_runpath", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib");
  await app("app_rpath", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib");
  await app("app_curly_lib", "-Wl,--disable-new-dtags", "-Wl,-rpath,${ORIGIN}/../$LIB");
  await app("app_platform", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../$PLATFORM");
  await app("app_wrong_class", "-Wl,--disable-new-dtags", `-Wl,-rpath,${dir}/wrong:$ORIGIN/../lib`);
  await app("app_plain");
  await app(
    "app_nodeflib",
    "-Wl,-z,nodefaultlib",
    "-Wl,--enable-new-dtags",
    "-Wl,-rpath,$ORIGIN/../lib",
  );
  await Deno.symlink("../../bin/app_rpath", `${dir}/other/deeper/app_link`);
  // A 32-bit i386 object of the same name, which the loader must pass over.
  const wrong = buildElfImage({
    bits: 32,
    endian: "little",
    machine: EM_386,
    soname: "libfix1.so.1",
  });
  await Deno.writeFile(`${dir}/wrong/libfix1.so.1`, wrong.bytes);
  // A glibc-hwcaps copy of libfix2 that a x86-64-v2 (or better) CPU must prefer.
  await Deno.mkdir(`${dir}/hw/glibc-hwcaps/x86-64-v2`, { recursive: true });
  await Deno.copyFile(`${lib}/libfix2.so`, `${dir}/hw/glibc-hwcaps/x86-64-v2/libfix2.so`);
  await Deno.copyFile(`${lib}/libfix2.so`, `${dir}/hw/libfix2.so`);
}

const GCC_TEST = "resolve: gcc fixtures ($ORIGIN, RPATH vs RUNPATH, DSTs, class, env, cache)";
Deno.test({
  name: GCC_TEST,
  ignore: skipped(
    GCC_TEST,
    await hasGcc() ? null : "gcc is not installed, the $ORIGIN/RUNPATH fixtures cannot be built",
  ),
}, async (t) => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "jail_resolve_" }));
  try {
    await buildFixtures(dir);
    const bin = `${dir}/bin`;

    await t.step("DT_RUNPATH applies to direct dependencies only", async () => {
      const closure = await assertMatchesLdd(`${bin}/app_runpath`);
      const fix1 = closure.objects.find((object) => object.name === "libfix1.so.1")!;
      assert.equal(fix1.foundVia, "runpath");
      assert.equal(fix1.path, `${bin}/../lib/libfix1.so.1`);
      assert.deepEqual(closure.missing, [{ name: "libfix2.so", neededBy: fix1.path }]);
    });

    await t.step("DT_RPATH of the executable is inherited by libraries", async () => {
      const closure = await assertMatchesLdd(`${bin}/app_rpath`);
      assert.deepEqual(closure.missing, []);
      const fix2 = closure.objects.find((object) => object.name === "libfix2.so")!;
      assert.equal(fix2.foundVia, "rpath");
      assert.equal(fix2.realPath, `${dir}/lib/libfix2.so`);
    });

    await t.step("${ORIGIN} and $LIB expand like the loader's", async () => {
      const closure = await assertMatchesLdd(`${bin}/app_curly_lib`);
      const fix1 = closure.objects.find((object) => object.name === "libfix1.so.1")!;
      assert.equal(fix1.path, `${bin}/../lib/x86_64-linux-gnu/libfix1.so.1`);
    });

    await t.step("$PLATFORM expands to x86_64", async () => {
      const closure = await assertMatchesLdd(`${bin}/app_platform`);
      assert.ok(closure.objects.some((object) => object.path === `${bin}/../x86_64/libfix2.so`));
    });

    await t.step("a candidate of the wrong ELF class is skipped", async () => {
      const closure = await assertMatchesLdd(`${bin}/app_wrong_class`);
      assert.deepEqual(closure.skipped, [
        { path: `${dir}/wrong/libfix1.so.1`, reason: "wrong ELF class (32-bit)" },
      ]);
      const fix1 = closure.objects.find((object) => object.name === "libfix1.so.1")!;
      assert.equal(fix1.realPath, `${dir}/lib/libfix1.so.1.0`);
    });

    await t.step("symlinks on the library path are reported hop by hop", async () => {
      const closure = await resolveDependencies(`${bin}/app_rpath`);
      const fix1 = closure.objects.find((object) => object.name === "libfix1.so.1")!;
      assert.deepEqual(fix1.symlinks, [{
        path: `${dir}/lib/libfix1.so.1`,
        target: "libfix1.so.1.0",
      }]);
      assert.equal(fix1.filePath, `${dir}/lib/libfix1.so.1.0`);
    });

    await t.step("a symlinked executable takes $ORIGIN from its canonical path", async () => {
      const link = `${dir}/other/deeper/app_link`;
      const closure = await assertMatchesLdd(link);
      assert.deepEqual(closure.missing, []);
      // ldd on the link itself takes $ORIGIN from the link's directory and finds nothing.
      assert.ok((await ldd(link)).missing.has("libfix1.so.1"));
    });

    await t.step("LD_LIBRARY_PATH only when passed as an option", async () => {
      const without = await assertMatchesLdd(`${bin}/app_plain`, {}, { LD_LIBRARY_PATH: "" });
      assert.deepEqual(without.missing.map((entry) => entry.name), ["libfix1.so.1"]);
      const options = { ldLibraryPath: `${dir}/lib` };
      const closure = await assertMatchesLdd(`${bin}/app_plain`, options, {
        LD_LIBRARY_PATH: `${dir}/lib`,
      });
      assert.ok(closure.objects.every((object) => object.foundVia !== "rpath"));
      assert.equal(closure.objects[0].foundVia, "ld_library_path");
    });

    await t.step(
      "glibc-hwcaps subdirectories: the loader's list, and the safe default",
      async () => {
        const env = { LD_LIBRARY_PATH: `${dir}/hw:${dir}/lib` };
        const subdirs = await loaderSubdirs();
        const exact = await assertMatchesLdd(`${bin}/app_plain`, {
          ldLibraryPath: env.LD_LIBRARY_PATH,
          hwcapSubdirs: subdirs,
        }, env);
        const pick = (closure: ResolvedClosure) =>
          closure.objects.find((object) => object.name === "libfix2.so")!.path;
        const best = subdirs.find((subdir) => subdir.startsWith("glibc-hwcaps/x86-64-v2"));
        assert.equal(pick(exact), `${dir}/hw/${best ?? ""}libfix2.so`);
        // By default the resolver reads the CPU's level from /proc/cpuinfo, which Deno allows
        // only with --allow-all; without it, it assumes no level (the plain directory, which
        // the loader always falls back to, so a jail built from it works on any CPU).
        const fallback = await resolveDependencies(`${bin}/app_plain`, {
          ldLibraryPath: env.LD_LIBRARY_PATH,
        });
        let cpuReadable = true;
        try {
          Deno.readTextFileSync("/proc/cpuinfo");
        } catch {
          cpuReadable = false;
        }
        assert.equal(pick(fallback), cpuReadable ? pick(exact) : `${dir}/hw/libfix2.so`);
        const plain = await resolveDependencies(`${bin}/app_plain`, {
          ldLibraryPath: env.LD_LIBRARY_PATH,
          hwcapSubdirs: [""],
        });
        assert.equal(pick(plain), `${dir}/hw/libfix2.so`);
      },
    );

    await t.step("DF_1_NODEFLIB keeps the cache's system entries and system dirs out", async () => {
      const closure = await assertMatchesLdd(`${bin}/app_nodeflib`);
      assert.ok((await readElf(`${bin}/app_nodeflib`)).flags1 & 0x800);
      assert.ok(closure.missing.some((entry) => entry.name === "libc.so.6"));
    });

    await Deno.writeTextFile(`${dir}/ld.so.conf`, `${dir}/lib\n`);
    const cache = await new Deno.Command("/sbin/ldconfig", {
      args: ["-X", "-C", `${dir}/ld.so.cache`, "-f", `${dir}/ld.so.conf`],
      stdout: "null",
      stderr: "piped",
    }).output().catch(() => null);
    const CACHE_STEP = "a custom ld.so.cache is consulted after RUNPATH";
    await t.step({
      name: CACHE_STEP,
      ignore: skipped(
        CACHE_STEP,
        cache?.success ? null : "ldconfig could not write a test cache (needs root)",
      ),
      fn: async () => {
        const closure = await resolveDependencies(`${bin}/app_plain`, {
          ldCachePath: `${dir}/ld.so.cache`,
        });
        const fix1 = closure.objects.find((object) => object.name === "libfix1.so.1")!;
        assert.equal(fix1.foundVia, "ld.so.cache");
        assert.equal(fix1.path, `${dir}/lib/libfix1.so.1`);
        assert.deepEqual(closure.missing, []);
        // Without any cache, libc comes from the system directories instead.
        const noCache = await resolveDependencies(`${bin}/app_plain`, { ldCachePath: null });
        const libc = noCache.objects.find((object) => object.name === "libc.so.6")!;
        assert.equal(libc.foundVia, "system");
        assert.equal(libc.path, "/lib/x86_64-linux-gnu/libc.so.6");
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolve: inside another root, symlinks are resolved within that root", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "jail_root_" }));
  try {
    const host = await resolveDependencies("/usr/bin/ls");
    for (const path of ["/usr/bin/ls", "/etc/ld.so.cache", ...host.objects.map((o) => o.path)]) {
      await copyIntoRoot(root, path);
    }
    const closure = await resolveDependencies("/usr/bin/ls", { root });
    assert.deepEqual(closure.objects.map((o) => o.path), host.objects.map((o) => o.path));
    assert.deepEqual(closure.missing, []);
    for (const object of closure.objects) {
      // Canonical paths are the root's own, and point at the copies.
      const inRoot = `${root}${object.realPath}`;
      assert.ok((await Deno.lstat(inRoot)).isFile, inRoot);
    }
    // The interpreter link is absolute (/lib/x86_64-linux-gnu/...): inside the root it leads to
    // the root's /lib, a real directory there, unlike the host's /lib -> usr/lib.
    const interpreter = closure.objects.find((object) => object.foundVia === "interpreter")!;
    assert.equal(interpreter.realPath, interpreter.filePath);
    assert.ok(interpreter.realPath.startsWith("/lib/"), interpreter.realPath);

    await Deno.remove(`${root}/lib/x86_64-linux-gnu/libpcre2-8.so.0`);
    const broken = await resolveDependencies("/usr/bin/ls", { root });
    assert.deepEqual(broken.missing.map((entry) => entry.name), ["libpcre2-8.so.0"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// ld.so.cache

/** `ldconfig -p -C file` entries as [name, path] pairs, in file order. */
async function ldconfigList(cacheFile: string): Promise<string[][]> {
  const output = await new Deno.Command("/sbin/ldconfig", {
    args: ["-p", "-C", cacheFile],
    env: { LC_ALL: "C" },
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  return [...text.matchAll(/^\t(\S+) \(.*\) => (\S+)$/gm)].map((match) => [match[1], match[2]]);
}

function entryPairs(cache: LdCache): string[][] {
  return cache.entries.map((entry) => [entry.name, entry.path]);
}

Deno.test("ld.so.cache: new, old and compat layouts read as ldconfig -p lists them", async (t) => {
  const system = readLdCache("/etc/ld.so.cache");
  assert.ok(system.entries.length > 10);
  assert.deepEqual(entryPairs(system), await ldconfigList("/etc/ld.so.cache"));
  const dir = await Deno.makeTempDir({ prefix: "jail_ldcache_" });
  try {
    for (const format of ["old", "compat", "new"] as const) {
      const file = `${dir}/${format}.cache`;
      const made = await new Deno.Command("/sbin/ldconfig", {
        args: ["-X", "-c", format, "-C", file],
        stdout: "null",
        stderr: "null",
      }).output().catch(() => null);
      await t.step({
        name: format,
        ignore: skipped(
          format,
          made?.success ? null : "ldconfig could not write a cache (needs root)",
        ),
        fn: async () => {
          const cache = readLdCache(file);
          assert.equal(cache.format, format);
          assert.deepEqual(entryPairs(cache), await ldconfigList(file), format);
          const libc = cache.lookup("libc.so.6", [0x0303], []);
          assert.equal(libc, system.lookup("libc.so.6", [0x0303], []));
        },
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A new-format cache with the given entries (and optional hwcaps names), either byte order. */
function buildCache(
  entries: { flags: number; name: string; path: string; hwcapsIndex?: number }[],
  little: boolean,
  hwcapsNames: string[] = [],
): Uint8Array {
  const encoder = new TextEncoder();
  const headerSize = 48 + entries.length * 24;
  const strings: number[] = [];
  const offsets = new Map<string, number>();
  const intern = (text: string) => {
    if (!offsets.has(text)) {
      offsets.set(text, headerSize + strings.length);
      strings.push(...encoder.encode(text), 0);
    }
    return offsets.get(text)!;
  };
  for (const entry of entries) {
    intern(entry.name);
    intern(entry.path);
  }
  hwcapsNames.forEach(intern);
  const extensionOffset = Math.ceil((headerSize + strings.length) / 8) * 8;
  const size = extensionOffset + (hwcapsNames.length ? 8 + 16 + hwcapsNames.length * 4 : 0);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(encoder.encode("glibc-ld.so.cache1.1"));
  view.setUint32(20, entries.length, little);
  view.setUint32(24, strings.length, little);
  bytes[28] = little ? 2 : 3;
  view.setUint32(32, hwcapsNames.length ? extensionOffset : 0, little);
  entries.forEach((entry, index) => {
    const at = 48 + index * 24;
    view.setInt32(at, entry.flags, little);
    view.setUint32(at + 4, intern(entry.name), little);
    view.setUint32(at + 8, intern(entry.path), little);
    if (entry.hwcapsIndex !== undefined) {
      view.setBigUint64(at + 16, (1n << 62n) | BigInt(entry.hwcapsIndex), little);
    }
  });
  bytes.set(strings, headerSize);
  if (hwcapsNames.length) {
    view.setUint32(extensionOffset, 0xeaa42174, little);
    view.setUint32(extensionOffset + 4, 1, little);
    view.setUint32(extensionOffset + 8, 1, little);
    view.setUint32(extensionOffset + 16, extensionOffset + 24, little);
    view.setUint32(extensionOffset + 20, hwcapsNames.length * 4, little);
    hwcapsNames.forEach((name, index) => {
      view.setUint32(extensionOffset + 24 + index * 4, intern(name), little);
    });
  }
  return bytes;
}

Deno.test("ld.so.cache: look-ups pick the binary's ABI and the best glibc-hwcaps level", () => {
  const x8664 = cacheFlagsFor({ machine: EM_X86_64, bits: 64, flags: 0 });
  const i386 = cacheFlagsFor({ machine: EM_386, bits: 32, flags: 0 });
  assert.deepEqual(x8664, [0x0303]);
  assert.deepEqual(i386, [0x0001, 0x0003]);
  for (const little of [true, false]) {
    const cache = parseLdCache(
      buildCache(
        [
          { flags: 0x0303, name: "libx.so.1", path: "/v3/libx.so.1", hwcapsIndex: 1 },
          { flags: 0x0303, name: "libx.so.1", path: "/v2/libx.so.1", hwcapsIndex: 0 },
          { flags: 0x0003, name: "libx.so.1", path: "/lib/i386-linux-gnu/libx.so.1" },
          { flags: 0x0303, name: "libx.so.1", path: "/lib/x86_64-linux-gnu/libx.so.1" },
        ],
        little,
        ["x86-64-v2", "x86-64-v3"],
      ),
    );
    assert.equal(cache.entries[0].hwcapsSubdir, "x86-64-v3");
    assert.equal(cache.lookup("libx.so.1", i386, []), "/lib/i386-linux-gnu/libx.so.1");
    assert.equal(cache.lookup("libx.so.1", x8664, []), "/lib/x86_64-linux-gnu/libx.so.1");
    assert.equal(cache.lookup("libx.so.1", x8664, ["x86-64-v2"]), "/v2/libx.so.1");
    assert.equal(cache.lookup("libx.so.1", x8664, ["x86-64-v3", "x86-64-v2"]), "/v3/libx.so.1");
    assert.equal(cache.lookup("liby.so.1", x8664, []), null);
  }
});
