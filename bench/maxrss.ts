/**
 * Runs a command and prints the peak resident set size (KiB) of the largest
 * process it waited for, from getrusage(RUSAGE_CHILDREN).
 * Usage: deno run --allow-run --allow-ffi bench/maxrss.ts CMD [ARG...]
 * @module
 */

const libc = Deno.dlopen("libc.so.6", {
  getrusage: { parameters: ["i32", "buffer"], result: "i32" },
});
const RUSAGE_CHILDREN = -1;
const [command, ...args] = Deno.args;
const { code } = await new Deno.Command(command, { args, stdout: "null", stderr: "inherit" })
  .output();
const usage = new BigInt64Array(18);
libc.symbols.getrusage(RUSAGE_CHILDREN, new Uint8Array(usage.buffer));
console.log(JSON.stringify({ code, maxrssKiB: Number(usage[4]) }));
