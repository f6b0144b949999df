/**
 * Writing the CLI's output: synchronously and completely, so that it
 * interleaves correctly with a child's output.
 * @module
 */

const encoder = new TextEncoder();

function writeAllSync(stream: { writeSync(bytes: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** Writes `text` to stdout. */
export function writeOut(text: string): void {
  writeAllSync(Deno.stdout, text);
}

/** Writes `text` to stderr. */
export function writeErr(text: string): void {
  writeAllSync(Deno.stderr, text);
}
