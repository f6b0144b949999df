/**
 * The subcommands, in one table: what `main.ts` dispatches on (only as the
 * first argument), what `-h` lists, what completion offers and what a
 * mistyped command name is compared with.
 * @module
 */

/** Each subcommand's name and the line `-h` shows for it. */
export const SUBCOMMANDS = [
  { name: "tour", summary: "a guided demonstration of every namespace type: start here" },
  { name: "enter", summary: "run a command in the namespaces of a running process, like nsenter" },
  { name: "ns", summary: "which namespaces processes are in, like lsns" },
  { name: "jail", summary: "build a root filesystem for -c (env, bash, ps, ls, top by default)" },
  { name: "binlibdepcp", summary: "copy a binary and the libraries it needs (the seed's script)" },
  { name: "completions", summary: "print a bash completion script" },
  { name: "oci", summary: "an OCI runtime with runc's verbs (create, start, state, kill, delete)" },
] as const;

/** A subcommand's name. */
export type SubcommandName = typeof SUBCOMMANDS[number]["name"];

/** The subcommands' names. */
export const SUBCOMMAND_NAMES: string[] = SUBCOMMANDS.map((entry) => entry.name);
