/**
 * "Did you mean ...?" for a misspelt name (a command, a target, a variable, an option): the
 * candidates nearest to `word` by Damerau-Levenshtein distance (optimal string alignment: an
 * insertion, a deletion, a substitution or a swap of two neighbours costs 1), compared without
 * case so that `households` finds HOUSEHOLDS. A candidate counts as near when at most a third of
 * the word's letters (at least one) would change, cargo's rule: `pipline` finds pipeline,
 * `datbase` database. Returns the phrase `did you mean a?` (or `a or b?`), or undefined.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const near = nearestNames(word, candidates);
  return near.length ? `did you mean ${near.join(' or ')}?` : undefined;
}

/** The (at most three) nearest candidates within the distance limit, nearest first. */
export function nearestNames(word: string, candidates: Iterable<string>): string[] {
  const limit = Math.max(1, Math.floor(word.length / 3));
  const scored: { name: string; distance: number }[] = [];
  for (const name of new Set(candidates)) {
    const distance = editDistance(word.toLowerCase(), name.toLowerCase());
    if (distance <= limit && name !== word) scored.push({ name, distance });
  }
  return scored.sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name)).slice(0, 3).map((s) => s.name);
}

/** Optimal-string-alignment distance between two strings (rows of the classic dynamic programme). */
export function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, before[j - 2]! + 1);
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}
