/**
 * `invoke_ns ns [--all] [--json] [PID...]`: which namespaces processes are in.
 * @module
 */

import { SyscallError } from "../ffi/errors.ts";
import { getuid } from "../ffi/libc.ts";
import {
  linksOf,
  type LinkSummary,
  listAllNamespaces,
  type NamespaceEntry,
  namespacesOf,
} from "../lib/inspect.ts";
import { getopt, type OptionSpec, UsageError } from "./getopt.ts";
import { yellow } from "./colour.ts";
import { writeErrorLine, writeOut } from "./output.ts";

const OPTIONS: OptionSpec[] = [
  { name: "help", short: "h", value: "none" },
  { name: "all", short: "a", value: "none" },
  { name: "json", short: "J", value: "none" },
];

/** `ns --help`. */
export function nsHelp(program: string): string {
  return `Usage:
 ${program} ns [--json] [PID...]
 ${program} ns --all [--json]

Show the namespaces of each PID (default: ${program} itself): type and inode,
with a * where the namespace differs from PID 1's (or, when PID 1's cannot be
read, from ${program}'s own). With --all, list every namespace on the system:
type, inode, number of processes, lowest PID, its user and command, as lsns.

Options:
 -a, --all    list every namespace on the system
 -J, --json   print JSON, for scripts
 -h, --help   display this help

Examples:
 ${program} ns $$
 sudo ${program} ns --all

Exit status: 0 on success; 1 if a process could not be read; 2 for a usage error.
`;
}

/** Unreadable PIDs named in the one line, at most. */
const PIDS_SHOWN = 10;

/** The hint for what only root may read (`them`: what could not be read), when not root. */
function rootHint(them = "them"): string {
  return getuid() === 0 ? "" : `; run as root to see ${them}`;
}

/** The namespaces to compare against: PID 1's, else our own. */
function reference(): { label: string; entries: NamespaceEntry[]; note?: string } {
  try {
    return { label: "PID 1", entries: namespacesOf(1) };
  } catch (error) {
    const why = error instanceof SyscallError ? error.code : String(error);
    return {
      label: "this process",
      entries: namespacesOf("self"),
      note: `PID 1's namespaces cannot be read (${why}): compared with this process instead${
        rootHint("PID 1's")
      }`,
    };
  }
}

/** Runs `ns`; returns the exit status. */
export async function runNs(args: string[], program: string): Promise<number> {
  const { options, operands } = getopt(args, OPTIONS);
  const has = (name: string) => options.some((option) => option.name === name);
  if (has("help")) {
    writeOut(nsHelp(program));
    return 0;
  }
  const json = has("json");
  if (has("all")) {
    if (operands.length) throw new UsageError("ns: --all takes no PID");
    const { namespaces, unreadable, unreadablePids } = listAllNamespaces();
    if (json) {
      writeOut(`${JSON.stringify({ namespaces, unreadable, unreadablePids }, null, 2)}\n`);
      return unreadable ? 1 : 0;
    }
    const rows = namespacesRows(namespaces.map((ns) => [
      String(ns.inode),
      ns.type,
      String(ns.processes),
      String(ns.pid),
      ns.user,
      ns.command,
    ]));
    writeOut(rows);
    if (unreadable) {
      const shown = unreadablePids.slice(0, PIDS_SHOWN).join(", ") +
        (unreadable > PIDS_SHOWN ? ", …" : "");
      writeErrorLine(
        `${program}: ns: ${unreadable} process${unreadable === 1 ? "" : "es"} could not be read ` +
          `(PID ${shown})${rootHint()}`,
      );
    }
    return unreadable ? 1 : 0;
  }
  for (const operand of operands) {
    if (!/^\d+$/.test(operand)) throw new UsageError(`ns: '${operand}' is not a PID`);
  }
  // Each PID as typed, for messages (a long one rounds as a number), and its value.
  const pids: { pid: number | "self"; typed: string }[] = operands.length
    ? operands.map((typed) => ({ pid: Number(typed), typed }))
    : [{ pid: "self", typed: "self" }];
  const base = reference();
  const reports: {
    pid: number | "self";
    namespaces: (NamespaceEntry & { differs: boolean })[];
    links?: LinkSummary[];
  }[] = [];
  let failed = false;
  for (const { pid, typed } of pids) {
    try {
      const entries = namespacesOf(pid);
      let links: LinkSummary[] | undefined;
      try {
        links = await linksOf(pid);
      } catch {
        // not ours to join (rootless): the table goes without the links
      }
      reports.push({
        pid,
        namespaces: entries.map((entry) => ({
          ...entry,
          differs: base.entries.find((other) => other.type === entry.type)?.inode !== entry.inode,
        })),
        links,
      });
    } catch (error) {
      failed = true;
      const why = error instanceof SyscallError
        ? (error.code === "ENOENT"
          ? "no such process"
          : `${error.code}: ${error.description}${error.code === "EACCES" ? rootHint("it") : ""}`)
        : String(error);
      writeErrorLine(`${program}: ns: ${typed}: ${why}`);
    }
  }
  if (json) {
    writeOut(
      `${
        JSON.stringify({ comparedWith: base.label, note: base.note, processes: reports }, null, 2)
      }\n`,
    );
    return failed ? 1 : 0;
  }
  if (base.note) writeOut(`(${base.note})\n`);
  for (const report of reports) {
    writeOut(`PID ${report.pid === "self" ? `${Deno.pid} (${program})` : report.pid}\n`);
    writeOut(namespacesRows(
      report.namespaces.map((ns) => [
        ns.type,
        String(ns.inode),
        ns.differs ? yellow(`* differs from ${base.label}`) : "",
      ]),
      ["TYPE", "INODE", ""],
    ));
    for (const link of report.links ?? []) {
      const state = link.up ? "up" : "down";
      writeOut(`  link ${link.name} ${state}${link.addresses.map((a) => ` ${a}`).join("")}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Aligns rows into columns under a header, as lsns does. */
function namespacesRows(
  rows: string[][],
  header = ["NS", "TYPE", "NPROCS", "PID", "USER", "COMMAND"],
): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column].length)));
  return all.map((row) =>
    row.map((cell, column) => column === row.length - 1 ? cell : cell.padEnd(widths[column])).join(
      " ",
    ).trimEnd()
  ).join("\n") + "\n";
}
