/**
 * Colour for the CLI's output: only when stdout is a terminal, and never
 * when `NO_COLOR` is set (https://no-color.org).
 * @module
 */

let enabled: boolean | undefined;

/** Whether stdout gets colour. */
export function colourEnabled(): boolean {
  enabled ??= Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
  return enabled;
}

function paint(code: string): (text: string) => string {
  return (text) => colourEnabled() ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** Bold text (headings). */
export const bold: (text: string) => string = paint("1");
/** Yellow text (what differs). */
export const yellow: (text: string) => string = paint("33");
/** Dim text (secondary details). */
export const dim: (text: string) => string = paint("2");
