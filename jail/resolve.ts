/**
 * Shared-library dependency resolution that follows glibc's dynamic loader (Debian glibc 2.36),
 * without running anything: no `ldd`, no loader, only file reads.
 *
 * For each DT_NEEDED name the search order is the loader's:
 *  1. a name containing "/" is a path (DSTs expanded), no search;
 *  2. an already loaded object whose name or DT_SONAME matches is reused;
 *  3. DT_RPATH of the requesting object, then of the object that loaded it and so on up to the
 *     executable, then the executable's own DT_RPATH; all skipped when the requesting object
 *     has a DT_RUNPATH;
 *  4. LD_LIBRARY_PATH, only when given as {@link ResolveOptions.ldLibraryPath} (the
 *     environment of this process is ignored);
 *  5. DT_RUNPATH of the requesting object (not inherited);
 *  6. ld.so.cache, entries of the binary's ABI only (skipped for system directories when the
 *     requesting object has DF_1_NODEFLIB);
 *  7. the system directories (skipped with DF_1_NODEFLIB): on a Debian multiarch root
 *     /lib/<tuple>/, /usr/lib/<tuple>/, /lib/, /usr/lib/ (what `ld.so --list-diagnostics`
 *     reports for glibc 2.36 on Debian 12: no /lib64), else /lib64/, /usr/lib64/ for 64-bit
 *     and /lib/, /usr/lib/ for 32-bit binaries.
 * Every directory of steps 3-7 is tried with the loader's hardware-capability subdirectories
 * first (glibc-hwcaps/x86-64-v4 ... tls ... x86_64), as `LD_DEBUG=libs` shows. Candidates whose
 * ELF class, byte order or machine differ from the executable's are skipped, as the loader
 * does. $ORIGIN, ${ORIGIN}, $LIB, $PLATFORM are expanded in search paths and in names with "/".
 * The executable's $ORIGIN is the directory of its canonical path, like the kernel's
 * /proc/self/exe (ldd differs: it uses the path it was given).
 *
 * Objects come out in the loader's load order: breadth first over DT_NEEDED, each object
 * once (same name, same SONAME or same file), the interpreter (PT_INTERP) where the first
 * DT_NEEDED names it, or last.
 *
 * Not modelled: LD_PRELOAD and /etc/ld.so.preload, setuid secure mode, DT_AUXILIARY/DT_FILTER,
 * legacy hwcap bits in cache entries (such entries are skipped).
 *
 * @module
 */

import { posix } from "node:path";
import {
  DF_1_NODEFLIB,
  ElfError,
  type ElfInfo,
  EM_386,
  EM_AARCH64,
  EM_ARM,
  EM_LOONGARCH,
  EM_PPC64,
  EM_RISCV,
  EM_S390,
  EM_X86_64,
  readElf,
} from "./elf.ts";
import { cacheFlagsFor, LdCache, LdCacheError, readLdCache } from "./ldcache.ts";
import { NotRegularFileError } from "./regular.ts";
import { realPathInRoot, resolveInRoot, symlinkChain, type SymlinkHop } from "./rootpath.ts";

export type { SymlinkHop } from "./rootpath.ts";

/** Where the loader found an object. */
export type FoundVia =
  | "interpreter"
  | "path"
  | "rpath"
  | "ld_library_path"
  | "runpath"
  | "ld.so.cache"
  | "system";

/** One object of the closure (the executable itself is not one). */
export interface ResolvedObject {
  /** The DT_NEEDED name that first pulled it in (the PT_INTERP path for the interpreter). */
  name: string;
  /** The path as the loader opens it, e.g. `/lib/x86_64-linux-gnu/libc.so.6` (inside root). */
  path: string;
  /** Symlinks met at the last component, from `path` on; empty when `path` is the file. */
  symlinks: SymlinkHop[];
  /** Where the symlink chain ends (the file's lexical location); equals `path` if no symlink. */
  filePath: string;
  /** The canonical path of the file (inside root). */
  realPath: string;
  /** How it was found. */
  foundVia: FoundVia;
  /** The path of the object whose DT_NEEDED pulled it in (the executable's for PT_INTERP). */
  neededBy: string;
  /** Its parsed ELF headers. */
  elf: ElfInfo;
}

/** A DT_NEEDED name that no search step could satisfy (`ldd` prints "not found"). */
export interface MissingLibrary {
  /** The DT_NEEDED name (or PT_INTERP path). */
  name: string;
  /** The path of the object that needs it. */
  neededBy: string;
}

/** A file that matched a name but was passed over, and why. */
export interface SkippedCandidate {
  /** The candidate path (inside root). */
  path: string;
  /** E.g. "wrong ELF class" or the ElfError reason. */
  reason: string;
  /**
   * Set when the candidate is not a regular file (a FIFO, a device, a socket):
   * the loader would block or worse opening it, so tools refuse the binary.
   */
  notRegular?: boolean;
}

/** The full dependency closure of one file. */
export interface ResolvedClosure {
  /** The file asked about (inside root). */
  path: string;
  /** Its parsed ELF headers. */
  elf: ElfInfo;
  /** True for static executables (and static-pie): nothing to load, `objects` is empty. */
  isStatic: boolean;
  /** Everything the loader maps besides the file itself, in load order. */
  objects: ResolvedObject[];
  /** Names nothing was found for. */
  missing: MissingLibrary[];
  /** Candidates passed over during the search. */
  skipped: SkippedCandidate[];
}

/** Options for {@link resolveDependencies}. */
export interface ResolveOptions {
  /** Root of the file system to resolve in (a chroot); paths are inside it. Default "/". */
  root?: string;
  /** Value of LD_LIBRARY_PATH to honour; default none (this process's env is not read). */
  ldLibraryPath?: string;
  /** Path of the loader cache inside root, or null for none. Default "/etc/ld.so.cache". */
  ldCachePath?: string | null;
  /**
   * System directories (inside root), searched last; default derived from the binary's ABI and
   * the root's layout (see the module documentation).
   */
  systemDirs?: readonly string[];
  /**
   * Subdirectories tried in each search directory, best first; include "" for the directory
   * itself. Default: what the loader for the binary's ABI uses on this CPU.
   */
  hwcapSubdirs?: readonly string[];
  /** Caches shared across calls (file reads, ld.so.cache); speeds up many resolutions. */
  cache?: ResolverCache;
}

/**
 * Memoised file system look-ups, shareable between {@link resolveDependencies} calls. Keyed
 * by host path, so one cache serves any number of roots; reuse it only while the trees it
 * has seen stay unchanged.
 */
export class ResolverCache {
  private readonly elves = new Map<string, ElfInfo | ElfError>();
  private readonly fileIds = new Map<string, string | null>();
  private readonly special = new Set<string>();
  private readonly dirs = new Map<string, boolean>();
  private readonly ldCaches = new Map<string, LdCache | LdCacheError | null>();
  private readonly chains = new Map<string, { hops: SymlinkHop[]; end: string }>();
  private readonly realPaths = new Map<string, string>();

  /** Parsed ELF of a host path, or the ElfError it raised. */
  elf(hostPath: string): ElfInfo | ElfError {
    return memo(this.elves, hostPath, () => {
      try {
        return readElf(hostPath);
      } catch (error) {
        if (error instanceof ElfError) return error;
        throw error;
      }
    });
  }

  /** "dev:ino" of a host path that is a regular file (symlinks followed), else null. */
  fileId(hostPath: string): string | null {
    return memo(this.fileIds, hostPath, () => {
      try {
        const info = Deno.statSync(hostPath);
        if (!info.isFile && !info.isDirectory) this.special.add(hostPath);
        return info.isFile ? `${info.dev}:${info.ino}` : null;
      } catch {
        return null;
      }
    });
  }

  /**
   * Whether a host path {@link fileId} was asked about exists but is neither
   * a regular file nor a directory (a FIFO, a device, a socket).
   */
  isSpecial(hostPath: string): boolean {
    return this.special.has(hostPath);
  }

  /** Whether a host path is a directory (symlinks followed). */
  isDirectory(hostPath: string): boolean {
    return memo(this.dirs, hostPath, () => {
      try {
        return Deno.statSync(hostPath).isDirectory;
      } catch {
        return false;
      }
    });
  }

  /** The parsed loader cache at a host path; null when absent, the error when corrupt. */
  ldCache(hostPath: string): LdCache | LdCacheError | null {
    return memo(this.ldCaches, hostPath, () => {
      try {
        return readLdCache(hostPath);
      } catch (error) {
        if (!(error instanceof LdCacheError)) throw error;
        return error.cause instanceof Deno.errors.NotFound ? null : error;
      }
    });
  }

  /** The last-component symlink chain of a path inside a root. */
  chain(root: string, path: string): { hops: SymlinkHop[]; end: string } {
    return memo(this.chains, `${root}\0${path}`, () => symlinkChain(root, path));
  }

  /** The canonical path of a path inside a root. */
  realPath(root: string, path: string): string {
    return memo(this.realPaths, `${root}\0${path}`, () => realPathInRoot(root, path));
  }
}

function memo<T>(map: Map<string, T>, key: string, compute: () => T): T {
  if (map.has(key)) return map.get(key) as T;
  const value = compute();
  map.set(key, value);
  return value;
}

/** One mapped object during resolution (glibc's `struct link_map`, reduced). */
interface LoadedObject {
  name: string;
  path: string;
  elf: ElfInfo;
  /** $ORIGIN: directory of `path` (of the canonical path for the executable). */
  origin: string;
  /** The object whose DT_NEEDED loaded this one; null for the executable and interpreter. */
  loader: LoadedObject | null;
  foundVia: FoundVia;
  loadIndex: number;
}

/** Per-call settings derived from the executable and the options. */
interface SearchContext {
  root: string;
  cwd: string;
  main: ElfInfo;
  cache: ResolverCache;
  platform: string | null;
  libDir: string;
  systemDirs: readonly string[];
  hwcapSubdirs: readonly string[];
  activeHwcaps: readonly string[];
  ldLibraryPath: string | null;
  ldCache: LdCache | null;
  acceptedCacheFlags: readonly number[];
  skipped: SkippedCandidate[];
}

/**
 * Resolves the full transitive closure of shared objects the dynamic loader would map for the
 * ELF file at `path` (inside `options.root`). Rejects with {@link ElfError} when `path` itself
 * is not a readable ELF file ("not an ELF file" for scripts and other data); a static
 * executable yields an empty closure. The work is done with synchronous file reads, which are
 * several times cheaper than Deno's asynchronous ones for such small reads.
 */
export function resolveDependencies(
  path: string,
  options: ResolveOptions = {},
): Promise<ResolvedClosure> {
  try {
    return Promise.resolve(resolveClosure(path, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

function resolveClosure(path: string, options: ResolveOptions): ResolvedClosure {
  const root = options.root === undefined || options.root === "/"
    ? "/"
    : Deno.realPathSync(options.root);
  const cache = options.cache ?? new ResolverCache();
  const absolute = posix.resolve(root === "/" ? Deno.cwd() : "/", path);
  const mainHost = resolveInRoot(root, absolute);
  let elf: ElfInfo;
  try {
    elf = readElf(mainHost);
  } catch (error) {
    if (error instanceof ElfError) throw new ElfError(absolute, error.reason, { cause: error });
    throw error;
  }
  const closure: ResolvedClosure = {
    path: absolute,
    elf,
    isStatic: elf.isStatic,
    objects: [],
    missing: [],
    skipped: [],
  };
  if (elf.isStatic) return closure;

  const context = createContext(root, elf, cache, options, closure.skipped);
  const resolver = new Resolver(context);
  const main = resolver.addObject(
    {
      name: absolute,
      path: absolute,
      elf,
      origin: posix.dirname(cache.realPath(root, absolute)),
      loader: null,
      foundVia: "path",
    },
    cache.fileId(mainHost),
    [],
  );
  const interpreter = elf.interpreter === null
    ? null
    : resolver.loadInterpreter(elf.interpreter, main, closure.missing);

  const queue: LoadedObject[] = [main];
  const queued = new Set<LoadedObject>([main]);
  for (let index = 0; index < queue.length; index++) {
    const object = queue[index];
    for (const name of object.elf.needed) {
      const dependency = resolver.map(name, object);
      if (dependency === null) {
        if (!closure.missing.some((entry) => entry.name === name)) {
          closure.missing.push({ name, neededBy: object.path });
        }
      } else if (!queued.has(dependency)) {
        queued.add(dependency);
        queue.push(dependency);
      }
    }
  }
  if (interpreter !== null && !queued.has(interpreter)) queue.push(interpreter);

  for (const object of queue.slice(1)) {
    closure.objects.push(describeObject(context, object, main));
  }
  return closure;
}

function describeObject(
  context: SearchContext,
  object: LoadedObject,
  main: LoadedObject,
): ResolvedObject {
  const { hops, end } = context.cache.chain(context.root, object.path);
  return {
    name: object.name,
    path: object.path,
    symlinks: hops,
    filePath: end,
    realPath: context.cache.realPath(context.root, object.path),
    foundVia: object.foundVia,
    neededBy: (object.loader ?? main).path,
    elf: object.elf,
  };
}

function createContext(
  root: string,
  main: ElfInfo,
  cache: ResolverCache,
  options: ResolveOptions,
  skipped: SkippedCandidate[],
): SearchContext {
  const layout = loaderLayout(root, main, cache);
  const ldCachePath = options.ldCachePath === undefined ? "/etc/ld.so.cache" : options.ldCachePath;
  let ldCache: LdCache | null = null;
  if (ldCachePath !== null) {
    const loaded = cache.ldCache(resolveInRoot(root, ldCachePath));
    // The loader silently ignores a corrupt cache; so do we, noting it.
    if (loaded instanceof LdCacheError) skipped.push({ path: ldCachePath, reason: loaded.message });
    else ldCache = loaded;
  }
  const hwcapSubdirs = (options.hwcapSubdirs ?? defaultHwcapSubdirs(main))
    .map((subdir) => subdir.replace(/\/*$/, "/").replace(/^\/$/, ""));
  return {
    root,
    cwd: root === "/" ? Deno.cwd() : "/",
    main,
    cache,
    platform: platformFor(main),
    libDir: layout.libDir,
    systemDirs: (options.systemDirs ?? layout.systemDirs).map(asSearchDir),
    hwcapSubdirs,
    activeHwcaps: activeHwcaps(hwcapSubdirs),
    ldLibraryPath: options.ldLibraryPath ?? null,
    ldCache,
    acceptedCacheFlags: cacheFlagsFor(main),
    skipped,
  };
}

/** The loader's search logic over the objects mapped so far. */
class Resolver {
  private readonly objects: LoadedObject[] = [];
  private readonly byName = new Map<string, LoadedObject>();
  private readonly byFileId = new Map<string, LoadedObject>();

  constructor(private readonly context: SearchContext) {}

  /** Registers a mapped object under its names and file identity. */
  addObject(
    fields: Omit<LoadedObject, "loadIndex">,
    fileId: string | null,
    names: readonly string[],
  ): LoadedObject {
    const object: LoadedObject = { ...fields, loadIndex: this.objects.length };
    this.objects.push(object);
    for (const name of names) this.addName(object, name);
    if (fileId !== null && !this.byFileId.has(fileId)) this.byFileId.set(fileId, object);
    return object;
  }

  private addName(object: LoadedObject, name: string): void {
    if (!this.byName.has(name)) this.byName.set(name, object);
  }

  /** Maps PT_INTERP: opened by path, known by that path and its SONAME. */
  loadInterpreter(
    interpreterPath: string,
    main: LoadedObject,
    missing: MissingLibrary[],
  ): LoadedObject | null {
    const host = resolveInRoot(this.context.root, interpreterPath);
    const elf = this.context.cache.elf(host);
    if (elf instanceof ElfError) {
      missing.push({ name: interpreterPath, neededBy: main.path });
      if (elf.cause instanceof NotRegularFileError) {
        this.context.skipped.push({ path: interpreterPath, reason: elf.reason, notRegular: true });
      }
      return null;
    }
    return this.addObject(
      {
        name: interpreterPath,
        path: interpreterPath,
        elf,
        origin: posix.dirname(interpreterPath),
        loader: null,
        foundVia: "interpreter",
      },
      this.context.cache.fileId(host),
      elf.soname === null ? [interpreterPath] : [interpreterPath, elf.soname],
    );
  }

  /** glibc's `_dl_map_object`: the object `name` (needed by `loader`) resolves to, or null. */
  map(name: string, loader: LoadedObject): LoadedObject | null {
    const known = this.findLoaded(name);
    if (known !== null) return known;
    const found = name.includes("/") ? this.openPath(name, loader) : this.search(name, loader);
    if (found === null) return null;
    const existing = found.fileId === null ? undefined : this.byFileId.get(found.fileId);
    if (existing !== undefined) {
      this.addName(existing, name);
      return existing;
    }
    return this.addObject(
      {
        name,
        path: found.path,
        elf: found.elf,
        origin: originOf(found.path),
        loader,
        foundVia: found.via,
      },
      found.fileId,
      [name, found.path],
    );
  }

  /** A mapped object known by `name`, or whose DT_SONAME is `name` (first in load order). */
  private findLoaded(name: string): LoadedObject | null {
    let best = this.byName.get(name) ?? null;
    for (const object of this.objects) {
      if (best !== null && object.loadIndex >= best.loadIndex) break;
      if (object.elf.soname === name) {
        best = object;
        break;
      }
    }
    if (best !== null) this.addName(best, name);
    return best;
  }

  private openPath(name: string, loader: LoadedObject): Candidate | null {
    const expanded = expandTokens(name, loader, this.context);
    if (expanded === null) return null;
    return this.verify(expanded, "path");
  }

  private search(name: string, loader: LoadedObject): Candidate | null {
    const context = this.context;
    if (loader.elf.runpath === null) {
      let mainSearched = false;
      for (let object: LoadedObject | null = loader; object !== null; object = object.loader) {
        if (object.elf.rpath === null) continue;
        const found = this.searchDirs(
          name,
          splitPath(object.elf.rpath, object, context),
          "rpath",
        );
        if (found !== null) return found;
        mainSearched ||= object.loadIndex === 0;
      }
      const main = this.objects[0];
      if (!mainSearched && main.elf.rpath !== null) {
        const found = this.searchDirs(
          name,
          splitPath(main.elf.rpath, main, context),
          "rpath",
        );
        if (found !== null) return found;
      }
    }
    if (context.ldLibraryPath !== null) {
      const dirs = splitPath(context.ldLibraryPath, this.objects[0], context, /[:;]/);
      const found = this.searchDirs(name, dirs, "ld_library_path");
      if (found !== null) return found;
    }
    if (loader.elf.runpath !== null) {
      const dirs = splitPath(loader.elf.runpath, loader, context);
      const found = this.searchDirs(name, dirs, "runpath");
      if (found !== null) return found;
    }
    const noDefaultLibs = (loader.elf.flags1 & DF_1_NODEFLIB) !== 0;
    const cached = context.ldCache?.lookup(name, context.acceptedCacheFlags, context.activeHwcaps);
    if (cached && !(noDefaultLibs && context.systemDirs.some((dir) => cached.startsWith(dir)))) {
      const found = this.verify(cached, "ld.so.cache");
      if (found !== null) return found;
    }
    if (noDefaultLibs) return null;
    return this.searchDirs(name, context.systemDirs, "system");
  }

  /** Tries `name` in each directory, hwcap subdirectories first, like glibc's `open_path`. */
  private searchDirs(
    name: string,
    dirs: readonly string[],
    via: FoundVia,
  ): Candidate | null {
    const { root, cwd, cache, hwcapSubdirs } = this.context;
    for (const dir of dirs) {
      for (const subdir of hwcapSubdirs) {
        const directory = absolute(cwd, dir + subdir);
        if (!cache.isDirectory(resolveInRoot(root, directory))) continue;
        const found = this.verify(dir === "" ? subdir + name : dir + subdir + name, via);
        if (found !== null) return found;
      }
    }
    return null;
  }

  /** Accepts `path` if it is a regular ELF file of the executable's class and machine. */
  private verify(path: string, via: FoundVia): Candidate | null {
    const { root, cwd, cache, main, skipped } = this.context;
    const full = absolute(cwd, path);
    const host = resolveInRoot(root, full);
    const fileId = cache.fileId(host);
    if (fileId === null) {
      if (cache.isSpecial(host) && !skipped.some((entry) => entry.path === full)) {
        const special = cache.elf(host); // says what it is, without opening it
        const reason = special instanceof ElfError ? special.reason : "not a regular file";
        skipped.push({ path: full, reason, notRegular: true });
      }
      return null;
    }
    const elf = cache.elf(host);
    let reason: string | null = null;
    if (elf instanceof ElfError) reason = elf.reason;
    else if (elf.bits !== main.bits) reason = `wrong ELF class (${elf.bits}-bit)`;
    else if (elf.endian !== main.endian) reason = `wrong byte order (${elf.endian})`;
    else if (elf.machine !== main.machine) reason = `wrong machine (${elf.machine})`;
    else return { path: full, elf, fileId, via };
    if (!skipped.some((entry) => entry.path === full)) skipped.push({ path: full, reason });
    return null;
  }
}

/** A file found for a name, before it is registered. */
interface Candidate {
  path: string;
  elf: ElfInfo;
  fileId: string | null;
  via: FoundVia;
}

/** `path` made absolute against `cwd` without normalising it (the loader does not). */
function absolute(cwd: string, path: string): string {
  if (path.startsWith("/")) return path;
  return cwd.endsWith("/") ? cwd + path : `${cwd}/${path}`;
}

/** glibc's $ORIGIN of a library: the directory part of the path it was opened as. */
function originOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** A directory as the loader stores it: trailing slashes folded into exactly one. */
function asSearchDir(path: string): string {
  return path.replace(/\/*$/, "/");
}

/**
 * Splits a search path list into directories ending in "/" (glibc's `fillin_rpath`): DSTs
 * expanded relative to `object`, elements whose DST cannot be expanded dropped, an empty
 * element meaning the current directory.
 */
function splitPath(
  list: string,
  object: LoadedObject,
  context: SearchContext,
  separators: RegExp = /:/,
): string[] {
  const dirs: string[] = [];
  for (const element of list.split(separators)) {
    if (element === "") {
      dirs.push("");
      continue;
    }
    const expanded = expandTokens(element, object, context);
    if (expanded === null || expanded === "") continue;
    const dir = asSearchDir(expanded);
    if (!dirs.includes(dir)) dirs.push(dir);
  }
  return dirs;
}

/**
 * Expands $ORIGIN, $LIB, $PLATFORM (also in `${...}` form) like glibc's `_dl_dst_substitute`;
 * null when a known token has no value (the loader then drops the element). Unknown `$NAME`s
 * stay as they are.
 */
function expandTokens(text: string, object: LoadedObject, context: SearchContext): string | null {
  let dropped = false;
  const result = text.replace(
    /\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))/g,
    (_match, curly: string | undefined, bare: string | undefined) => {
      const token = curly ?? bare;
      const value = token === "ORIGIN"
        ? object.origin
        : token === "LIB"
        ? context.libDir
        : context.platform;
      if (value === null) dropped = true;
      return value ?? "";
    },
  );
  return dropped ? null : result;
}

/** AT_PLATFORM as the kernel reports it for the binary's architecture ($PLATFORM). */
function platformFor(elf: ElfInfo): string | null {
  switch (elf.machine) {
    case EM_X86_64:
      return elf.bits === 64 ? "x86_64" : null;
    case EM_386:
      return "i686";
    case EM_AARCH64:
      return "aarch64";
    default:
      return null;
  }
}

/** Debian's multiarch tuple for the binary's ABI, or null when unknown. */
function multiarchTuple(elf: ElfInfo): string | null {
  const is64 = elf.bits === 64;
  switch (elf.machine) {
    case EM_X86_64:
      return is64 ? "x86_64-linux-gnu" : "x86_64-linux-gnux32";
    case EM_386:
      return "i386-linux-gnu";
    case EM_AARCH64:
      return "aarch64-linux-gnu";
    case EM_ARM:
      return elf.flags & 0x400 ? "arm-linux-gnueabihf" : "arm-linux-gnueabi";
    case EM_PPC64:
      return elf.endian === "little" ? "powerpc64le-linux-gnu" : "powerpc64-linux-gnu";
    case EM_S390:
      return is64 ? "s390x-linux-gnu" : null;
    case EM_RISCV:
      return is64 ? "riscv64-linux-gnu" : null;
    case EM_LOONGARCH:
      return "loongarch64-linux-gnu";
    default:
      return null;
  }
}

/**
 * $LIB and the system directories of the loader that would run the binary: Debian's multiarch
 * layout (`/lib/<tuple>/`, `/usr/lib/<tuple>/`, `/lib/`, `/usr/lib/`, as `ld.so
 * --list-diagnostics` shows on Debian 12) when the root has `/usr/lib/<tuple>` or
 * `/lib/<tuple>`, else the classic one (`/lib64/`, `/usr/lib64/` for 64-bit, else `/lib/`,
 * `/usr/lib/`).
 */
function loaderLayout(
  root: string,
  elf: ElfInfo,
  cache: ResolverCache,
): { libDir: string; systemDirs: string[] } {
  const tuple = multiarchTuple(elf);
  if (tuple !== null) {
    for (const dir of [`/usr/lib/${tuple}`, `/lib/${tuple}`]) {
      if (cache.isDirectory(resolveInRoot(root, dir))) {
        return {
          libDir: `lib/${tuple}`,
          systemDirs: [`/lib/${tuple}/`, `/usr/lib/${tuple}/`, "/lib/", "/usr/lib/"],
        };
      }
    }
  }
  return elf.bits === 64
    ? { libDir: "lib64", systemDirs: ["/lib64/", "/usr/lib64/"] }
    : { libDir: "lib", systemDirs: ["/lib/", "/usr/lib/"] };
}

/** CPU flags glibc requires for each x86-64 ISA level, best level first. */
const X86_64_LEVELS: readonly [string, readonly string[]][] = [
  ["x86-64-v4", ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]],
  ["x86-64-v3", ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"]],
  ["x86-64-v2", ["cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"]],
];

let hostCpuFlags: Set<string> | null = null;

/** The CPU feature flags of this machine (/proc/cpuinfo); empty when it cannot be read. */
function cpuFlags(): Set<string> {
  if (hostCpuFlags === null) {
    let flags: string[] = [];
    try {
      const text = Deno.readTextFileSync("/proc/cpuinfo");
      flags = /^flags\s*:(.*)$/m.exec(text)?.[1].trim().split(/\s+/) ?? [];
    } catch {
      // Deno refuses /proc reads without --allow-all; see defaultHwcapSubdirs.
    }
    hostCpuFlags = new Set(flags);
  }
  return hostCpuFlags;
}

/**
 * The subdirectories glibc 2.36 tries inside each search directory, best first, ending with
 * "" for the directory itself. For x86-64 on an x86-64 host: the glibc-hwcaps levels this CPU
 * supports, then the legacy tls/x86_64 ones (exactly the list `LD_DEBUG=libs` prints here).
 * The CPU's level comes from /proc/cpuinfo, which Deno lets us read only with --allow-all;
 * otherwise no level is assumed, which is safe for a jail: the loader always falls back to
 * the plain directory. Elsewhere: the legacy `tls/<platform>`, `tls`, `<platform>` ones.
 */
function defaultHwcapSubdirs(elf: ElfInfo): string[] {
  const platform = platformFor(elf);
  if (elf.machine === EM_X86_64 && elf.bits === 64) {
    const levels: string[] = [];
    if (Deno.build.arch === "x86_64") {
      const flags = cpuFlags();
      // Each level also requires all lower ones.
      for (let index = X86_64_LEVELS.length - 1; index >= 0; index--) {
        const [level, required] = X86_64_LEVELS[index];
        if (!required.every((flag) => flags.has(flag))) break;
        levels.unshift(`glibc-hwcaps/${level}/`);
      }
    }
    const legacy = ["tls/x86_64/x86_64/", "tls/x86_64/", "tls/", "x86_64/x86_64/", "x86_64/"];
    return [...levels, ...legacy, ""];
  }
  return platform === null ? ["tls/", ""] : [`tls/${platform}/`, "tls/", `${platform}/`, ""];
}

/** The glibc-hwcaps subdirectory names in `subdirs`, for ld.so.cache look-ups. */
function activeHwcaps(subdirs: readonly string[]): string[] {
  return subdirs.flatMap((subdir) => {
    const match = /^glibc-hwcaps\/([^/]+)\/$/.exec(subdir);
    return match === null ? [] : [match[1]];
  });
}
