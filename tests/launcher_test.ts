/**
 * `./invoke_ns` and `./binlibdepcp.sh` from a fresh clone, typed as the lab
 * types them, on a machine whose PATH has Node/npm and no Deno: with sudo
 * (in a mount namespace where every deno on sudo's PATH is hidden and root's
 * ~/.cache is an empty tmpfs, so root's first run really installs Deno from npm)
 * and rootless. Also the attacks on "root runs only root's Deno": a deno
 * owned by the user given in DENO, on PATH, or planted in the user's cache
 * while HOME points there.
 *
 * Deno is installed from the npm registry once per user here (root's run and
 * nobody's), then reused.
 */
import assert from "node:assert/strict";
import { isRoot, NOBODY } from "./helpers.ts";
import { NO_CONFIG_FLAGS, PERMISSION_FLAGS } from "../lib/deno_run.ts";

const repo = new URL("..", import.meta.url).pathname;
const SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const VERSION_LINE = /^invoke_ns \d+\.\d+\.\d+\n/;

function which(name: string, path = Deno.env.get("PATH") ?? ""): string | undefined {
  for (const dir of path.split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
}

function sh(script: string, env: Record<string, string> = {}): { code: number; out: string } {
  const result = new Deno.Command("sh", {
    args: ["-c", script],
    env,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    out: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

const npm = which("npm");
const hasSudo = which("sudo", SECURE_PATH) !== undefined;
const hasUnshare = which("unshare") !== undefined;

/** A directory everyone can enter, removed at the end. */
function publicTempDir(prefix: string): string {
  const dir = Deno.makeTempDirSync({ prefix });
  Deno.chmodSync(dir, 0o755);
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  return dir;
}

const base = publicTempDir("invoke_ns_launcher_");
const clone = `${base}/clone`;
const cloned = sh(`git clone -q "${repo}" "${clone}" && chmod -R a+rX "${clone}"`);

/** A bin directory with node and npm only (links to their real files). */
const nodeBin = `${base}/nodebin`;
Deno.mkdirSync(nodeBin, { mode: 0o755 });
for (const name of ["node", "npm"]) {
  const found = which(name);
  if (found) Deno.symlinkSync(Deno.realPathSync(found), `${nodeBin}/${name}`);
}
/** PATH with Node/npm and no deno (none of these directories has one). */
const NODE_PATH = `${nodeBin}:/usr/bin:/bin`;
const denoOnNodePath = which("deno", NODE_PATH);

/** Expected binlibdepcp rows for `binary`, by the seed's own pipeline over ldd (the oracle). */
function seedRows(binary: string): string {
  const ldd = new TextDecoder().decode(
    new Deno.Command("ldd", { args: [binary], stdout: "piped" }).outputSync().stdout,
  );
  const libs = ldd.split("\n").map((line) => line.split(">").at(-1)!.trim().split(/\s+/)[0])
    .filter((field) => field.includes("/lib"));
  const row = (name: string) => `${name.slice(0, 25).padStart(25)} : [OK]\n`;
  return `Copying ...\n\n${row(binary.split("/").at(-1)!)}${
    libs.map((lib) => row(lib.split("/").at(-1)!)).join("")
  }${libs.length ? row("ld.so.cache") : ""}\n...... Done\n`;
}

/** A fake deno owned by nobody that records being run; the attacks must never run it. */
function plantedDeno(dir: string, marker: string): string {
  Deno.mkdirSync(dir, { recursive: true });
  const path = `${dir}/deno`;
  Deno.writeTextFileSync(path, `#!/bin/sh\ntouch ${marker}\necho planted\n`);
  Deno.chmodSync(path, 0o755);
  sh(`chown -R ${NOBODY}:${NOBODY} "${dir}"`);
  return path;
}

const rootHome = sh("getent passwd 0 | cut -d: -f6").out.trim() || "/root";

function existsDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

const needs = (...missing: [boolean, string][]) =>
  missing.filter(([absent]) => absent).map(([, why]) => why).join("; ");

const rootWhy = needs(
  [!isRoot, "needs root"],
  [!hasSudo, "needs sudo (apt-get install sudo; CI installs it)"],
  [!hasUnshare, "needs unshare(1) to hide the host's deno"],
  [npm === undefined, "needs npm on PATH"],
  [denoOnNodePath !== undefined, `a deno is on ${NODE_PATH}: ${denoOnNodePath}`],
  [cloned.code !== 0, `git clone failed: ${cloned.out}`],
  [!existsDir(`${rootHome}/.cache`), `root's ${rootHome}/.cache does not exist`],
);
if (rootWhy) console.log(`skipping the sudo launcher tests: ${rootWhy}`);

Deno.test({
  name: "launcher: sudo ./invoke_ns and sudo ./binlibdepcp.sh from a fresh clone, no deno on PATH",
  ignore: rootWhy !== "",
  sanitizeResources: false,
  fn() {
    const out = `${base}/root_out`;
    const jail = `${base}/root_jail`;
    const userHome = `${base}/userhome`;
    const marker = `${base}/planted_ran`;
    plantedDeno(
      `${userHome}/.cache/invoke_ns/deno-2.9.6/node_modules/@deno/linux-x64-glibc`,
      marker,
    );
    const userBin = `${base}/userbin`;
    plantedDeno(userBin, marker);
    sh(`chown ${NOBODY} "${userHome}"`);
    Deno.mkdirSync(out);
    const script = `
      set -u
      mount --make-rprivate /
      for d in ${SECURE_PATH.replaceAll(":", " ")} ${nodeBin}; do
        [ -e "$d/deno" ] && mount --bind /dev/null "$d/deno"
      done
      mount -t tmpfs -o mode=0755 tmpfs "${rootHome}/.cache"
      cd "${clone}"
      run() { n=$1; shift; "$@" >"${out}/$n.out" 2>"${out}/$n.err" </dev/null; echo $? >"${out}/$n.rc"; }
      run first sudo ./invoke_ns -u calculus hostname
      run again sudo ./invoke_ns -u calculus hostname
      run lab sudo ./invoke_ns -vpmu calculus hostname
      run binlibdepcp sudo ./binlibdepcp.sh /bin/ls "${jail}"
      run usage sudo ./binlibdepcp.sh -h
      run home env HOME="${userHome}" PATH="${NODE_PATH}" ./invoke_ns --version
      run path env PATH="${userBin}:${NODE_PATH}" ./invoke_ns --version
      run given env DENO="${userBin}/deno" ./invoke_ns --version
      umount "${rootHome}/.cache"
      mount -t tmpfs -o mode=0755 tmpfs "${rootHome}/.cache"
      for d in ${SECURE_PATH.replaceAll(":", " ")}; do
        [ -e "$d/npm" ] && mount --bind /dev/null "$d/npm"
      done
      run nvm sudo ./invoke_ns --version
    `;
    const ran = sh(`unshare -m sh -c '${script.replaceAll("'", "'\\''")}'`);
    assert.equal(ran.code, 0, ran.out);
    const result = (name: string) => ({
      code: Number(Deno.readTextFileSync(`${out}/${name}.rc`)),
      stdout: Deno.readTextFileSync(`${out}/${name}.out`),
      stderr: Deno.readTextFileSync(`${out}/${name}.err`),
    });

    const first = result("first");
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "calculus\n");
    assert.equal(
      first.stderr,
      `invoke_ns: installing Deno 2.9.6 from the npm registry into ${rootHome}/.cache/invoke_ns (once)\n`,
    );
    assert.deepEqual(result("again"), { code: 0, stdout: "calculus\n", stderr: "" });
    const lab = result("lab");
    assert.equal(lab.code, 0, lab.stderr);
    assert.match(lab.stdout, /^Parent: PID of parent is \d+\n/);
    assert.match(lab.stdout, /^ Child: PID of child is 1$/m);
    assert.match(lab.stdout, /^calculus$/m);

    const binlibdepcp = result("binlibdepcp");
    assert.equal(binlibdepcp.stderr, "");
    assert.equal(binlibdepcp.code, 0);
    assert.equal(binlibdepcp.stdout, seedRows("/bin/ls"));
    assert.ok(Deno.statSync(`${jail}/bin/ls`).isFile);
    assert.match(result("usage").stdout, /^Useage:\n binlibdepcp\.sh -h\n/);

    // root never runs the user's deno: not from the user's cache under HOME, not from PATH
    for (const name of ["home", "path"]) {
      const { code, stdout } = result(name);
      assert.equal(code, 0, name);
      assert.match(stdout, VERSION_LINE, name);
    }
    const given = result("given");
    assert.equal(given.code, 126);
    assert.equal(
      given.stderr,
      `invoke_ns: not running ${userBin}/deno as root: ${userBin}/deno belongs to uid ${NOBODY} ` +
        "(use a Deno that root owns)\n",
    );
    assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound, "the planted deno ran");

    const nvm = result("nvm");
    assert.equal(nvm.code, 127);
    assert.equal(
      nvm.stderr,
      "invoke_ns: no Deno for root, and npm is not on sudo's PATH (an nvm install lives in " +
        "your home): install Node/npm or Deno system-wide, or set DENO to a deno that root owns\n",
    );
  },
});

const rootlessWhy = needs(
  [!isRoot, "needs root to become nobody"],
  [npm === undefined, "needs npm on PATH"],
  [denoOnNodePath !== undefined, `a deno is on ${NODE_PATH}: ${denoOnNodePath}`],
  [cloned.code !== 0, `git clone failed: ${cloned.out}`],
);
if (rootlessWhy) console.log(`skipping the rootless launcher tests: ${rootlessWhy}`);

Deno.test({
  name: "launcher: ./invoke_ns and ./binlibdepcp.sh rootless from a fresh clone, no deno on PATH",
  ignore: rootlessWhy !== "",
  fn() {
    const home = `${base}/nobody_home`;
    const jail = `${home}/jail`;
    Deno.mkdirSync(home);
    sh(`chown ${NOBODY}:${NOBODY} "${home}"`);
    const asNobody = (command: string, env: Record<string, string> = {}) =>
      sh(
        `cd "${clone}" && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ` +
          `env HOME="${env.HOME ?? home}" PATH="${env.PATH ?? NODE_PATH}" ${command} 2>&1`,
      );
    const first = asNobody("./invoke_ns -u calculus hostname");
    assert.equal(
      first.out,
      `invoke_ns: installing Deno 2.9.6 from the npm registry into ${home}/.cache/invoke_ns (once)\n` +
        "calculus\n",
    );
    assert.equal(first.code, 0);
    assert.deepEqual(asNobody("./invoke_ns -u calculus hostname"), {
      code: 0,
      out: "calculus\n",
    });
    const binlibdepcp = asNobody(`./binlibdepcp.sh /bin/ls "${jail}"`);
    assert.deepEqual(binlibdepcp, { code: 0, out: seedRows("/bin/ls") });

    // no npm and no deno: one line saying what to install, 127
    const empty = `${base}/emptybin`;
    Deno.mkdirSync(empty, { mode: 0o755 });
    assert.deepEqual(asNobody("./invoke_ns -h", { PATH: empty, HOME: `${base}/nowhere` }), {
      code: 127,
      out: "invoke_ns: no Deno found: install Node/npm (npm then fetches Deno 2.9.6 once) or " +
        "Deno itself (https://deno.com), or set DENO=/path/to/deno\n",
    });
  },
});

Deno.test("launcher: it and deno task start run main.ts with lib/deno_run.ts's flags, no more and no fewer", () => {
  const script = Deno.readTextFileSync(`${repo}invoke_ns`).replaceAll("\\\n", " ");
  const runs = [...script.matchAll(/exec "\$deno" run (.*?) "\$here\/main\.ts"/g)];
  assert.equal(runs.length, 2, "the CLI's and the OCI runtime's exec lines");
  for (const [, flags] of runs) {
    assert.deepEqual(flags.trim().split(/\s+/), [...NO_CONFIG_FLAGS, ...PERMISSION_FLAGS]);
  }
  const { tasks } = JSON.parse(Deno.readTextFileSync(`${repo}deno.json`));
  assert.equal(tasks.start, `deno run ${PERMISSION_FLAGS.join(" ")} main.ts`);
  assert.ok(tasks.bench.startsWith(`deno run ${PERMISSION_FLAGS.join(" ")} `), tasks.bench);
});
