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

/** Standard output could not be written (ENOSPC, EIO): the message says so in one line. */
export class OutputError extends Error {
  /** Builds the error from what the write threw. */
  constructor(line: string, cause: unknown) {
    super(`standard output: ${line}`, { cause });
    this.name = "OutputError";
  }
}

/** Writes `text` to stdout; a failed write (but a broken pipe) throws an {@link OutputError}. */
export function writeOut(text: string): void {
  try {
    writeAllSync(Deno.stdout, text);
  } catch (error) {
    const line = osErrorLine(error);
    if (error instanceof Deno.errors.BrokenPipe || !line) throw error;
    throw new OutputError(line, error);
  }
}

/**
 * One line for an operating-system error raised by a Deno API (an `Error`
 * whose `code` is an errno name, e.g. ENOSPC, which has no class of its own
 * in `Deno.errors`): `No space left on device: write '/x' (ENOSPC)`; null for
 * anything else.
 */
export function osErrorLine(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)) return null;
  return `${error.message.replace(/ \(os error \d+\)/, "")} (${code})`;
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
