/**
 * `deno task compile [--target TRIPLE] [-o PATH]`: builds `dist/invoke_ns`
 * (or PATH) with `deno compile`, baking in only the permissions the tool
 * needs, and checks that the result runs as invoke_ns.
 *
 * `deno compile` fetches its runtime (`denort`) on first use. Where that
 * download is impossible (no network), this says so in one line and how to
 * point `DENORT_BIN` at a local runtime, instead of Deno's stack of causes.
 * @module
 */

import { PERMISSION_FLAGS } from "../lib/deno_run.ts";

/** The permissions baked into the executable: the CLI's (README explains each). */
export const COMPILE_PERMISSIONS: string[] = PERMISSION_FLAGS;

/** Targets `deno compile` supports that the tool can run on (x86-64 glibc Linux). */
export const TARGETS = ["x86_64-unknown-linux-gnu"];

const root = new URL("..", import.meta.url).pathname;

/**
 * Compiles main.ts to `output`; resolves with null on success, or with the
 * one-line reason it could not.
 */
export async function compile(output: string, target?: string): Promise<string | null> {
  // --no-config: deno.json's lazy-dynamic-imports would leave every lazily
  // imported module (the run form, the subcommands, the init stage) out.
  const args = ["compile", "--no-config", ...COMPILE_PERMISSIONS, "--no-check", "-o", output];
  if (target) args.push("--target", target);
  args.push(`${root}main.ts`);
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(300_000),
  }).output();
  if (result.code === 0) return null;
  const log = new TextDecoder().decode(result.stderr);
  const download = log.match(/error sending request for url \((\S+)\)/);
  if (download) {
    return `deno compile could not download its runtime from ${download[1]} (no network?); ` +
      "download it where you can, unzip it, and set DENORT_BIN=/path/to/denort";
  }
  // Deno's error, or better its chain of causes ("Caused by: 0: ... 1: ..."), on one line
  const error = log.split("\nStack backtrace:")[0];
  const causes = [...error.matchAll(/^\s+\d+: (.*)$/gm)].map((match) => match[1].trim());
  const first = log.split("\n").find((line) => line.startsWith("error:")) ?? log.trim();
  return `deno compile failed: ${
    causes.length ? causes.join(": ") : first.replace(/^error:\s*/, "")
  }`;
}

/**
 * Why the executable at `path` is not a working invoke_ns, or null when its
 * `--version` says it is (a DENORT_BIN pointing at the deno CLI instead of
 * its runtime, denort, builds a copy of deno) and its `-h` works (a module
 * imported lazily is in it).
 */
export async function verify(path: string): Promise<string | null> {
  try {
    const result = await new Deno.Command(path, { args: ["--version"], stderr: "null" }).output();
    const first = new TextDecoder().decode(result.stdout).split("\n")[0];
    if (result.code !== 0 || !first.startsWith("invoke_ns ")) {
      return `the result does not run as invoke_ns (--version says ${JSON.stringify(first)}); ` +
        "is DENORT_BIN Deno's runtime, denort, and not the deno command?";
    }
    // a lazily imported module too (the run form's help), which a compile can leave out
    const help = await new Deno.Command(path, { args: ["-h"], stderr: "piped" }).output();
    if (help.code === 0 && new TextDecoder().decode(help.stdout).startsWith("Usage: ")) return null;
    return `the result lacks the run form's modules (-h: ${
      new TextDecoder().decode(help.stderr).trim().split("\n")[0]
    })`;
  } catch (error) {
    return `the result cannot be run: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** The value after `flag` in the arguments; exits 2 when it is missing. */
function optionValue(flag: string, example: string): string | undefined {
  const at = Deno.args.indexOf(flag);
  if (at === -1) return undefined;
  const value = Deno.args[at + 1];
  if (!value) {
    console.error(`compile: ${flag} needs a value, e.g. ${example}`);
    Deno.exit(2);
  }
  return value;
}

if (import.meta.main) {
  const target = optionValue("--target", "x86_64-unknown-linux-gnu");
  if (target && !TARGETS.includes(target)) {
    console.error(`compile: ${target}: not supported (the clone engine is x86-64 glibc only)`);
    Deno.exit(2);
  }
  const output = optionValue("-o", "/usr/local/bin/invoke_ns") ?? `${root}dist/invoke_ns`;
  await Deno.mkdir(output.slice(0, output.lastIndexOf("/")) || "/", { recursive: true });
  let problem = await compile(output, target);
  if (!problem && !target) {
    problem = await verify(output);
    if (problem) await Deno.remove(output).catch(() => {});
  }
  if (problem) {
    console.error(`compile: ${problem}`);
    Deno.exit(1);
  }
  console.log(
    `compiled ${output}; link or copy it as binlibdepcp, or as invoke_ns-oci (the OCI runtime), for that tool`,
  );
}
