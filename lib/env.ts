/**
 * The command's environment. The seed cleared it entirely; like sudo, the
 * tool instead starts from a clean environment (a default PATH, plus TERM,
 * HOME and a few session variables kept), adds `-e KEY=VAL` settings, and
 * passes everything with `--keep-env`.
 * @module
 */

/** The PATH a command gets unless one is given. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Variables kept from the caller's environment by default. */
export const KEPT_VARIABLES = [
  "TERM",
  "HOME",
  "SHELL",
  "USER",
  "LOGNAME",
  "LANG",
  "LC_ALL",
  "COLORTERM",
  "TZ",
];

/** Builds the command's environment as `KEY=VALUE` strings. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const commandEnvironment = (function commandEnvironment(
  extra: Record<string, string> = {},
  keepAll = false,
): string[] {
  const caller = Deno.env.toObject();
  const base: Record<string, string> = keepAll ? { ...caller } : { PATH: DEFAULT_PATH };
  if (!keepAll) {
    for (const name of KEPT_VARIABLES) if (caller[name] !== undefined) base[name] = caller[name];
  }
  return Object.entries({ ...base, ...extra }).map(([key, value]) => `${key}=${value}`);
}).bind(null);

/** Why `KEY=VALUE` (or a key and value) cannot be an environment entry, or null. */
export function environmentProblem(key: string, value: string): string | null {
  if (key.length === 0 || key.includes("=")) return `${JSON.stringify(key)}: not a variable name`;
  if (key.includes("\0") || value.includes("\0")) return `${key}: contains a NUL byte`;
  return null;
}
