/**
 * `invoke_ns completions bash`: a bash completion script. Install it with
 * `invoke_ns completions bash | sudo tee /etc/bash_completion.d/invoke_ns`, or
 * `source <(invoke_ns completions bash)` in a shell.
 * @module
 */

import { type OptionSpec, UsageError } from "./getopt.ts";
import { RUN_OPTIONS } from "./run.ts";
import { ENTER_OPTIONS } from "./enter.ts";
import { SUBCOMMAND_NAMES } from "./subcommands.ts";
import { writeOut } from "./output.ts";

/** The words that spell `options`: `-p --pid …`. */
function optionWords(options: OptionSpec[]): string {
  return options.flatMap((option) => [
    ...(option.short ? [`-${option.short}`] : []),
    `--${option.name}`,
  ]).join(" ");
}

/** The bash completion script for `program`. */
export function bashCompletion(program: string): string {
  const runOptions = optionWords(RUN_OPTIONS);
  const withValue = RUN_OPTIONS.filter((option) => option.value === "required")
    .flatMap((option) => [...(option.short ? [`-${option.short}`] : []), `--${option.name}`])
    .join("|");
  const fn = `_${program.replace(/\W/g, "_")}`;
  return `# bash completion for ${program}
${fn}() {
  local cur prev words cword
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ] && [[ "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "${SUBCOMMAND_NAMES.join(" ")}" -- "$cur") $(compgen -c -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
    enter)
      if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "${optionWords(ENTER_OPTIONS)}" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$(ls /proc | grep -E '^[0-9]+$')" -- "$cur") $(compgen -f -- "$cur"))
      fi
      return ;;
    ns)
      COMPREPLY=($(compgen -W "--all --json -h --help $(ls /proc | grep -E '^[0-9]+$')" -- "$cur"))
      return ;;
    jail)
      COMPREPLY=($(compgen -d -- "$cur") $(compgen -c -- "$cur"))
      return ;;
    binlibdepcp)
      COMPREPLY=($(compgen -W "-h -n" -- "$cur") $(compgen -f -- "$cur"))
      return ;;
    completions)
      COMPREPLY=($(compgen -W "bash" -- "$cur"))
      return ;;
    tour)
      COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
      return ;;
  esac
  case "$prev" in
    -c|--chroot-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    -i|--ipc-demo) COMPREPLY=($(compgen -W "no yes" -- "$cur")); return ;;
    --bind|--ro-bind|--tmpfs) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    ${withValue}) return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "${runOptions} --version" -- "$cur"))
  else
    COMPREPLY=($(compgen -c -- "$cur"))
  fi
}
complete -F ${fn} ${program}
`;
}

/** Runs `completions SHELL`; returns the exit status. */
export function runCompletions(args: string[], program: string): number {
  if (args[0] === "-h" || args[0] === "--help") {
    writeOut(
      `Usage:\n ${program} completions bash\n\nPrint a bash completion script.\n\n` +
        `Example:\n source <(${program} completions bash)\n\nExit status: 0, or 2 for a usage error.\n`,
    );
    return 0;
  }
  if (args.length !== 1 || args[0] !== "bash") {
    throw new UsageError("completions: the only shell supported is bash");
  }
  writeOut(bashCompletion(program));
  return 0;
}
