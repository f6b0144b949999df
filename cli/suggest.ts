/**
 * "Did you mean …?": which known word a typed one is a typo of.
 * @module
 */

/**
 * Whether `typed` is one typo away from `word`: one letter inserted, deleted
 * or changed, or one letter moved (two swapped neighbours included), so
 * `tuor`, `turo`, `enterr` and `jial` are each one edit away from a subcommand.
 */
export function oneEditAway(typed: string, word: string): boolean {
  if (typed === word) return false;
  const [a, b] = [typed, word];
  if (Math.abs(a.length - b.length) > 1) return false;
  if (a.length !== b.length) {
    const [short, long] = a.length < b.length ? [a, b] : [b, a];
    for (let at = 0; at < long.length; at++) {
      if (long.slice(0, at) + long.slice(at + 1) === short) return true;
    }
    return false;
  }
  const differing = [...a].filter((letter, at) => letter !== b[at]).length;
  if (differing === 1) return true;
  for (let from = 0; from < a.length; from++) {
    const rest = a.slice(0, from) + a.slice(from + 1);
    for (let to = 0; to < b.length; to++) {
      if (b[to] === a[from] && b.slice(0, to) + b.slice(to + 1) === rest) return true;
    }
  }
  return false;
}

/** The first of `words` that `typed` is a typo of, if any. */
export function typoOf(typed: string, words: string[]): string | undefined {
  return words.find((word) => oneEditAway(typed, word));
}
