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

/**
 * Writes informational `text` to stdout, ignoring a closed or broken stdout
 * (`invoke_ns -v … | head -1`): the exit status stays the command's.
 */
export function writeOutBestEffort(text: string): void {
  try {
    writeOut(text);
  } catch {
    // nobody is reading any more
  }
}

/**
 * Shows `text` safely in a one-line message: C0 and C1 control characters
 * (newlines and terminal escape sequences among them) are written as `\xNN`.
 */
export function printable(text: string): string {
  let shown = "";
  for (const c of text) {
    const code = c.charCodeAt(0);
    const control = code < 0x20 || (code >= 0x7f && code <= 0x9f);
    shown += control ? `\\x${code.toString(16).padStart(2, "0")}` : c;
  }
  return shown;
}

/** Writes `message` to stderr as one line, whatever it echoes (see {@link printable}). */
export function writeErrorLine(message: string): void {
  writeAllSync(Deno.stderr, `${printable(message)}\n`);
}
