// binlibdepcpMain (jail/binlibdepcp.ts) against the seed script binlibdepcp.sh as the oracle:
// the script is written to a temp file and run with sh on the same arguments; stdout, stderr
// and the exit code must be identical, and the port must have copied at least what the script
// copied (same content, mode and mtime). Rows come in the same order because the resolver
// returns ldd's order (breadth-first load order, interpreter where first needed).
//
// The script below reconstructs the seed from its specification. Its library list takes every
// absolute path ldd prints, and like the original (which counts only 2 or 3 words in all) it
// ignores an operand after TARGET; unlike it, a missing TARGET is a usage error here and in
// the port (the original went on with an empty TARGET until mkdir failed). It is only ever run on fresh targets without
// planted symlinks, since it would follow them outside the target.

import assert from "node:assert/strict";
import { skipped } from "./helpers.ts";
import { posix } from "node:path";
import { binlibdepcpMain } from "../jail/binlibdepcp.ts";
import { resolveInRoot } from "../jail/rootpath.ts";

const SEED_SCRIPT = String.raw`#!/bin/sh
# binlibdepcp.sh - copy a binary and the shared libraries it needs into a target directory

usage() {
  echo "Useage:"
  echo " $(basename $0) -h"
  echo " $(basename $0) [-n] <full path of binary> <target directory>"
  echo
  echo "Option:"
  echo " -h   print this help text"
  echo " -n   noclobber, i.e. skip overwrite of existing file"
}

if [ $# -eq 1 -a "$1" = "-h" ]; then
  usage
  exit 0
fi
if [ $# -lt 2 -o $# -gt 3 ]; then
  usage >&2
  exit 2
fi

NOCLOBBER=0
while getopts ":n" OPT; do
  case $OPT in
    n) NOCLOBBER=1 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ]; then
  usage >&2
  exit 2
fi
BINARY=$1
TARGET=$2

if [ ! -f "$BINARY" -o ! -r "$BINARY" ]; then
  echo "$BINARY: not accessible ...... aborting" >&2
  exit 1
fi

if [ ! -d "$TARGET" -o ! -w "$TARGET" ]; then
  if [ -f "$TARGET" ]; then
    echo "$TARGET: a regular file of this name already exists ...... aborting" >&2
    exit 1
  fi
  if [ -d "$TARGET" ]; then
    echo "$TARGET: no write permission on directory ...... aborting" >&2
    exit 1
  fi
  EXISTING_DIR=$TARGET
  while [ ! -d "$EXISTING_DIR" ]; do
    EXISTING_DIR=$(dirname "$EXISTING_DIR")
  done
  if [ ! -w "$EXISTING_DIR" ]; then
    echo "$TARGET: no write permission at $EXISTING_DIR ...... aborting" >&2
    exit 1
  fi
  mkdir -p "$TARGET"
fi

copy() {
  printf "%25s : " "$(basename "$1" | cut -c1-25)"
  mkdir -p "$TARGET$(dirname "$1")"
  if [ -e "$TARGET$1" -a $NOCLOBBER -eq 1 ]; then
    echo "[SKIPPED]"
  else
    cp -p "$1" "$TARGET$(dirname "$1")/"
    echo "[OK]"
  fi
}

printf "Copying ...\n\n"
copy "$BINARY"
LIBS=$(ldd "$BINARY" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
for LIB in $LIBS; do
  copy "$LIB"
done
if [ -f /etc/ld.so.cache -a -n "$LIBS" ]; then
  copy /etc/ld.so.cache
fi
printf "\n...... Done\n"
exit 0
`;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** A scratch directory holding the seed script; removed by `dispose`. */
class Workspace {
  private constructor(readonly dir: string, readonly script: string) {}

  static async create(): Promise<Workspace> {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "jail_binlibdepcp_" }));
    const script = `${dir}/binlibdepcp.sh`;
    await Deno.writeTextFile(script, SEED_SCRIPT, { mode: 0o755 });
    return new Workspace(dir, script);
  }

  async seed(args: string[]): Promise<Outcome> {
    const output = await new Deno.Command("sh", {
      args: [this.script, ...args],
      env: { LC_ALL: "C" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  }

  async port(args: string[]): Promise<Outcome> {
    const chunks = { stdout: [] as Uint8Array[], stderr: [] as Uint8Array[] };
    const sink = (into: Uint8Array[]) => ({
      write: (bytes: Uint8Array) => {
        into.push(bytes.slice());
        return Promise.resolve(bytes.length);
      },
    });
    const code = await binlibdepcpMain(args, this.script, {
      stdout: sink(chunks.stdout),
      stderr: sink(chunks.stderr),
    });
    const text = (parts: Uint8Array[]) => new TextDecoder().decode(concat(parts));
    return { code, stdout: text(chunks.stdout), stderr: text(chunks.stderr) };
  }

  /** Runs both on the same arguments, `{TARGET}` replaced per side; asserts equal outcomes. */
  async same(args: string[], targets?: { seed: string; port: string }): Promise<Outcome> {
    const fill = (target: string) => args.map((arg) => arg.replaceAll("{TARGET}", target));
    const seed = await this.seed(targets ? fill(targets.seed) : args);
    const port = await this.port(targets ? fill(targets.port) : args);
    const normalise = (outcome: Outcome, target: string) => ({
      ...outcome,
      stderr: outcome.stderr.replaceAll(target, "{TARGET}"),
    });
    assert.deepEqual(
      targets ? normalise(port, targets.port) : port,
      targets ? normalise(seed, targets.seed) : seed,
      `binlibdepcp ${args.join(" ")}`,
    );
    return port;
  }

  dispose(): Promise<void> {
    return Deno.remove(this.dir, { recursive: true });
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** Regular files under `dir`, relative, sorted (symlinks not followed). */
async function regularFiles(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${dir}${prefix}`)) {
    const relative = `${prefix}/${entry.name}`;
    if (entry.isDirectory) found.push(...await regularFiles(dir, relative));
    else if (entry.isFile) found.push(relative);
  }
  return found.sort();
}

/** Every file the script copied is in the port's target too (through its symlinks, in-root). */
async function assertCopiedAtLeastAsSeed(seedTarget: string, portTarget: string): Promise<number> {
  const files = await regularFiles(seedTarget);
  for (const file of files) {
    const seedInfo = await Deno.stat(`${seedTarget}${file}`);
    const portInfo = await Deno.stat(resolveInRoot(await Deno.realPath(portTarget), file));
    assert.equal(portInfo.size, seedInfo.size, file);
    assert.equal(portInfo.mode, seedInfo.mode, file);
    assert.equal(portInfo.mtime?.getTime(), seedInfo.mtime?.getTime(), file);
  }
  return files.length;
}

/** Whether we run as root (`id -u`; Deno.uid() would need --allow-sys). */
async function isRoot(): Promise<boolean> {
  const output = await new Deno.Command("id", { args: ["-u"], stdout: "piped" }).output();
  return new TextDecoder().decode(output.stdout).trim() === "0";
}

function rows(stdout: string): string[] {
  return stdout.split("\n").filter((line) => / : \[/.test(line));
}

Deno.test("binlibdepcp: usage, option and argument errors match the script", async () => {
  const work = await Workspace.create();
  try {
    const help = await work.same(["-h"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Useage:\n binlibdepcp\.sh -h\n/);
    for (
      const args of [
        [],
        ["/usr/bin/ls"],
        ["-x", "/usr/bin/ls", "/tmp/x"],
        ["-h", "/usr/bin/ls", "/tmp/x"],
        ["-n", "-n", "/usr/bin/ls", "/tmp/x"],
        ["-n", "/usr/bin/ls"],
        ["/usr/bin/ls", "/tmp/x", "extra", "more"],
      ]
    ) {
      const outcome = await work.same(args);
      assert.equal(outcome.code, 2, args.join(" "));
      assert.equal(outcome.stdout, "");
      assert.match(outcome.stderr, /^Useage:/);
    }
    // the script counts 2 or 3 words in all: an operand after TARGET is ignored
    const targets = { seed: `${work.dir}/seed-extra`, port: `${work.dir}/port-extra` };
    const extra = await work.same(["/usr/bin/true", "{TARGET}", "extra"], targets);
    assert.equal(extra.code, 0);
    assert.ok((await Deno.stat(`${targets.port}/usr/bin/true`)).isFile);
  } finally {
    await work.dispose();
  }
});

Deno.test("binlibdepcp: unusable binary or target aborts like the script", async () => {
  const work = await Workspace.create();
  try {
    const target = `${work.dir}/target`;
    const missing = await work.same([`${work.dir}/no-such-binary`, target]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `${work.dir}/no-such-binary: not accessible ...... aborting\n`);
    const directory = await work.same(["/usr/bin", target]);
    assert.equal(directory.code, 1);
    await Deno.writeTextFile(`${work.dir}/plain-file`, "x");
    const file = await work.same(["/usr/bin/ls", `${work.dir}/plain-file`]);
    assert.equal(file.code, 1);
    assert.equal(
      file.stderr,
      `${work.dir}/plain-file: a regular file of this name already exists ...... aborting\n`,
    );
    await assert.rejects(() => Deno.stat(target), Deno.errors.NotFound);
  } finally {
    await work.dispose();
  }
});

Deno.test("binlibdepcp: copies like the script, then -n skips everything", async () => {
  const work = await Workspace.create();
  try {
    const targets = { seed: `${work.dir}/seed/new/dir`, port: `${work.dir}/port/new/dir` };
    const first = await work.same(["/usr/bin/ls", "{TARGET}"], targets);
    assert.equal(first.code, 0);
    assert.match(first.stdout, /^Copying \.\.\.\n\n {23}ls : \[OK\]\n/);
    assert.match(first.stdout, /\n {14}ld\.so\.cache : \[OK\]\n\n\.\.\.\.\.\. Done\n$/);
    assert.ok(rows(first.stdout).length >= 4);
    assert.ok(await assertCopiedAtLeastAsSeed(targets.seed, targets.port) >= 5);

    const again = await work.same(["-n", "/usr/bin/ls", "{TARGET}"], targets);
    assert.ok(rows(again.stdout).every((row) => row.endsWith(": [SKIPPED]")), again.stdout);
    assert.equal(rows(again.stdout).length, rows(first.stdout).length);

    const overwrite = await work.same(["/usr/bin/ls", "{TARGET}"], targets);
    assert.ok(rows(overwrite.stdout).every((row) => row.endsWith(": [OK]")));

    if (await isRoot()) {
      // The port's copy is a working jail.
      const run = await new Deno.Command("chroot", {
        args: [targets.port, "/usr/bin/ls", "/"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      assert.match(new TextDecoder().decode(run.stdout), /\blib\b/);
    }
  } finally {
    await work.dispose();
  }
});

Deno.test("binlibdepcp: RUNPATH, static and script binaries match the script", async (t) => {
  const work = await Workspace.create();
  try {
    for (const binary of ["/usr/bin/man", "/sbin/ldconfig", "/usr/bin/ldd", "/usr/bin/systemctl"]) {
      const installed = await Deno.stat(binary).then(() => true, () => false);
      await t.step({
        name: binary,
        ignore: skipped(binary, installed ? null : "not installed"),
        fn: async () => {
          const name = posix.basename(binary);
          const targets = { seed: `${work.dir}/seed-${name}`, port: `${work.dir}/port-${name}` };
          const outcome = await work.same([binary, "{TARGET}"], targets);
          assert.equal(outcome.code, 0);
          await assertCopiedAtLeastAsSeed(targets.seed, targets.port);
        },
      });
    }
  } finally {
    await work.dispose();
  }
});

/** Runs the script and the port (`deno run jail/binlibdepcp.ts`) as user nobody. */
async function asNobody(work: Workspace, args: string[]) {
  const denoDir = `${work.dir}/deno-dir`;
  await Deno.mkdir(denoDir, { recursive: true });
  await Deno.chmod(denoDir, 0o777);
  const run = async (command: string[]): Promise<Outcome> => {
    const output = await new Deno.Command("setpriv", {
      args: ["--reuid=65534", "--regid=65534", "--clear-groups", ...command],
      env: { LC_ALL: "C", DENO_DIR: denoDir },
      cwd: work.dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  };
  const port = new URL("../jail/binlibdepcp.ts", import.meta.url).pathname;
  const flags = ["--allow-read", "--allow-write", "--allow-run"];
  return {
    seed: await run(["sh", work.script, ...args]),
    port: await run([Deno.execPath(), "run", ...flags, port, ...args]),
  };
}

const NOBODY_TEST = "binlibdepcp: permission checks as an unprivileged user match the script";
Deno.test({
  name: NOBODY_TEST,
  ignore: skipped(NOBODY_TEST, await isRoot() ? null : "needs root to switch to user nobody"),
}, async () => {
  const work = await Workspace.create();
  try {
    await Deno.chmod(work.dir, 0o755);
    const locked = `${work.dir}/locked`;
    await Deno.mkdir(locked, { mode: 0o755 });
    const secret = `${work.dir}/secret-binary`;
    await Deno.copyFile("/usr/bin/true", secret);
    await Deno.chmod(secret, 0o700);
    const cases: [string[], RegExp][] = [
      [[secret, `${work.dir}/t`], /secret-binary: not accessible \.\.\.\.\.\. aborting\n$/],
      [["/usr/bin/ls", locked], /locked: no write permission on directory \.{6} aborting\n$/],
      [
        ["/usr/bin/ls", `${locked}/a/b`],
        /locked\/a\/b: no write permission at .*\/locked \.{6} aborting\n$/,
      ],
    ];
    for (const [args, message] of cases) {
      const { seed, port } = await asNobody(work, args);
      assert.deepEqual(port, seed, args.join(" "));
      assert.equal(port.code, 1);
      assert.match(port.stderr, message);
    }
  } finally {
    await work.dispose();
  }
});

/** A tree with nothing in it, to detect writes that escaped the target. */
async function assertEmptyDir(dir: string): Promise<void> {
  const entries = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry.name);
  assert.deepEqual(entries, [], `${dir} must stay empty`);
}

Deno.test("binlibdepcp: planted symlinks in TARGET never lead writes outside it", async () => {
  const work = await Workspace.create();
  try {
    const target = `${work.dir}/target`;
    const outsideDir = `${work.dir}/outside_dir`;
    const outsideFile = `${work.dir}/outside_file`;
    await Deno.mkdir(target);
    await Deno.mkdir(outsideDir);
    await Deno.writeTextFile(outsideFile, "precious\n");
    // A directory link to an absolute host path, one to the host root, one relative that climbs
    // out, and a file link at a destination.
    await Deno.symlink(outsideDir, `${target}/usr`);
    await Deno.symlink("/", `${target}/lib`);
    await Deno.symlink("../../outside_dir", `${target}/etc`);
    await Deno.mkdir(`${target}/lib64`);
    await Deno.symlink(outsideFile, `${target}/lib64/ld-linux-x86-64.so.2`);

    const noClobber = await work.port(["-n", "/usr/bin/ls", target]);
    assert.equal(noClobber.code, 0, noClobber.stderr);
    // -n keeps the planted link itself (only the missing link target gets copied).
    assert.equal(await Deno.readLink(`${target}/lib64/ld-linux-x86-64.so.2`), outsideFile);
    assert.equal(await Deno.readTextFile(outsideFile), "precious\n");
    const outcome = await work.port(["/usr/bin/ls", target]);
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.ok(rows(outcome.stdout).every((row) => row.endsWith(": [OK]")), outcome.stdout);

    await assertEmptyDir(outsideDir);
    assert.equal(await Deno.readTextFile(outsideFile), "precious\n");
    // The files landed where the jail sees them: TARGET/usr -> outside_dir means
    // TARGET/<outside_dir's path>, TARGET/lib -> / means TARGET itself.
    const root = await Deno.realPath(target);
    for (const path of ["/usr/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/etc/ld.so.cache"]) {
      const host = resolveInRoot(root, path);
      assert.ok(host.startsWith(`${root}/`), host);
      assert.ok((await Deno.stat(host)).isFile, path);
    }
    assert.ok((await Deno.stat(`${root}${outsideDir}/bin/ls`)).isFile);
    // The planted file link was replaced by the loader's own link, not written through.
    const planted = `${target}/lib64/ld-linux-x86-64.so.2`;
    if ((await Deno.lstat("/lib64/ld-linux-x86-64.so.2")).isSymlink) {
      assert.equal(
        await Deno.readLink(planted),
        await Deno.readLink("/lib64/ld-linux-x86-64.so.2"),
      );
    } else {
      assert.ok((await Deno.lstat(planted)).isFile);
    }
  } finally {
    await work.dispose();
  }
});

Deno.test("binlibdepcp: a damaged ELF file is copied with one line saying what is wrong", async () => {
  const work = await Workspace.create();
  try {
    const damaged = `${work.dir}/damaged`;
    const ls = await Deno.readFile("/usr/bin/ls");
    await Deno.writeFile(damaged, ls.subarray(0, 3000), { mode: 0o755 });
    const outcome = await work.port([damaged, `${work.dir}/target`]);
    assert.equal(outcome.code, 0);
    assert.match(outcome.stderr, /^binlibdepcp\.sh: \S+\/damaged: [^\n]+\n$/);
    assert.deepEqual(rows(outcome.stdout), [`${"damaged".padStart(25)} : [OK]`]);
  } finally {
    await work.dispose();
  }
});
