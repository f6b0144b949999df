/**
 * A small POSIX getopt with `+` semantics (parsing stops at the first operand,
 * so a command's own options are never parsed), clustered short options
 * (`-vpmu calculus`), and GNU long options (`--name VALUE`, `--name=VALUE`,
 * and optional values given only with `=`).
 * @module
 */

/** How an option takes a value. */
export type ValueKind = "none" | "required" | "optional";

/** One option the parser knows. */
export interface OptionSpec {
  /** The long name without dashes, e.g. `"map-user"`. */
  name: string;
  /** The short letter, if any, e.g. `"u"`. */
  short?: string;
  /** Whether it takes a value. */
  value: ValueKind;
}

/** One option as found on the command line. */
export interface ParsedOption {
  /** The option's long name (its identity). */
  name: string;
  /** The value, when one was given. */
  value?: string;
  /** How the user spelled it (`-u` or `--hostname`), for messages. */
  spelled: string;
}

/** A command line that does not fit the options; exit status 2. */
export class UsageError extends Error {
  /** Builds the error with the one-line message to show. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parses `args` against `specs`; returns the options in order and the operands. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const getopt = (function getopt(
  args: string[],
  specs: OptionSpec[],
): { options: ParsedOption[]; operands: string[] } {
  const options: ParsedOption[] = [];
  let index = 0;
  while (index < args.length) {
    const arg = args[index];
    if (arg === "--") {
      index++;
      break;
    }
    if (arg.startsWith("--")) {
      const [name, inline] = splitOnce(arg.slice(2), "=");
      const matches = specs.filter((spec) => spec.name === name);
      const candidates = matches.length
        ? matches
        : specs.filter((spec) => spec.name.startsWith(name));
      if (candidates.length !== 1) {
        throw new UsageError(
          candidates.length === 0
            ? `unrecognized option '--${name}'`
            : `option '--${name}' is ambiguous; possibilities: ${
              candidates.map((spec) => `'--${spec.name}'`).join(" ")
            }`,
        );
      }
      const spec = candidates[0];
      const spelled = `--${spec.name}`;
      if (spec.value === "none") {
        if (inline !== undefined) throw new UsageError(`option '${spelled}' doesn't allow a value`);
        options.push({ name: spec.name, spelled });
      } else if (inline !== undefined || spec.value === "optional") {
        options.push({ name: spec.name, value: inline, spelled });
      } else {
        if (index + 1 >= args.length) {
          throw new UsageError(`option '${spelled}' requires a value`);
        }
        options.push({ name: spec.name, value: args[++index], spelled });
      }
      index++;
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let at = 1; at < arg.length; at++) {
        const letter = arg[at];
        const spec = specs.find((candidate) => candidate.short === letter);
        if (!spec) throw new UsageError(`invalid option -- '${letter}'`);
        const spelled = `-${letter}`;
        if (spec.value === "none") {
          options.push({ name: spec.name, spelled });
          continue;
        }
        const rest = arg.slice(at + 1);
        if (rest.length > 0) {
          options.push({ name: spec.name, value: rest, spelled });
        } else if (spec.value === "optional") {
          options.push({ name: spec.name, spelled });
        } else if (index + 1 < args.length) {
          options.push({ name: spec.name, value: args[++index], spelled });
        } else {
          throw new UsageError(`option requires an argument -- '${letter}'`);
        }
        break;
      }
      index++;
      continue;
    }
    break;
  }
  return { options, operands: args.slice(index) };
}).bind(null);

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** Parses an option's `KEY=VALUE` (as `-e` takes) into `{ KEY: VALUE }`. */
export function parseAssignment(value: string, spelled: string): Record<string, string> {
  const at = value.indexOf("=");
  if (at <= 0) throw new UsageError(`${spelled}: expected KEY=VALUE, got '${value}'`);
  return { [value.slice(0, at)]: value.slice(at + 1) };
}
