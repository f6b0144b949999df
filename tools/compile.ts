/**
 * `deno task compile [--target TRIPLE]`: builds `dist/invoke_ns` with
 * `deno compile`, baking in only the permissions the tool needs.
 *
 * `deno compile` fetches its runtime (`denort`) on first use. Where that
 * download is impossible (no network), this says so in one line and how to
 * point `DENORT_BIN` at a local runtime, instead of Deno's stack of causes.
 * @module
 */

/** The permissions baked into the executable (README explains each). */
export const COMPILE_PERMISSIONS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
];

/** Targets `deno compile` supports that the tool can run on (x86-64 glibc Linux). */
export const TARGETS = ["x86_64-unknown-linux-gnu"];

const root = new URL("..", import.meta.url).pathname;

/**
 * Compiles main.ts to `output`; resolves with null on success, or with the
 * one-line reason it could not.
 */
export async function compile(output: string, target?: string): Promise<string | null> {
  const args = ["compile", ...COMPILE_PERMISSIONS, "--no-check", "-o", output];
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
  const first = log.split("\n").find((line) => line.startsWith("error:")) ?? log.trim();
  return `deno compile failed: ${first.replace(/^error:\s*/, "")}`;
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--target");
  const target = at === -1 ? undefined : Deno.args[at + 1];
  if (at !== -1 && !target) {
    console.error("compile: --target needs a value, e.g. x86_64-unknown-linux-gnu");
    Deno.exit(2);
  }
  if (target && !TARGETS.includes(target)) {
    console.error(`compile: ${target}: not supported (the clone engine is x86-64 glibc only)`);
    Deno.exit(2);
  }
  const output = `${root}dist/invoke_ns`;
  await Deno.mkdir(`${root}dist`, { recursive: true });
  const problem = await compile(output, target);
  if (problem) {
    console.error(`compile: ${problem}`);
    Deno.exit(1);
  }
  console.log(`compiled ${output}; link or copy it as binlibdepcp for that tool`);
}
