import type { ActionResult, Cache } from './caching/cache.ts';
import { diffFingerprints, type Change, type Fingerprint } from './fingerprint.ts';

/** For a source the target's Python imports (not a glob's), the import chain from the entry module to it; null otherwise. */
export type ImportedVia = (source: string) => string[] | null;

/** How many of a target's recent entries a dry run compares with (each is one small file read). */
const CANDIDATES = 8;

/** Why a target would run: the entry it was compared with (none: never built), and the causes, one per line. */
export interface StaleReason {
  closest?: ActionResult;
  causes: string[];
}

/**
 * The one answer to "why would this target run?", shared by `-n` and `explain` (both read it from
 * the dry run's plan event): the fingerprint is diffed against the closest of the target's recent
 * entries, the one with the fewest differences, so that a miss is explained by what really differs
 * from the nearest thing the cache holds, not from whichever run happened to be last.
 */
export async function staleReason(cache: Cache, target: string, fp: Fingerprint, importedVia?: ImportedVia): Promise<StaleReason> {
  let best: { entry: ActionResult; changes: Change[] } | undefined;
  for (const entry of await cache.recent(target, CANDIDATES)) {
    const changes = diffFingerprints(entry.fingerprint, fp);
    if (!best || changes.length < best.changes.length) best = { entry, changes };
  }
  if (!best) return { causes: ['never built'] };
  if (best.changes.length === 0) return { closest: best.entry, causes: ['cached outputs are missing or corrupt'] };
  return { closest: best.entry, causes: describeChanges(best.changes, importedVia) };
}

/**
 * The real causes in the words that differ: a command change that only repeats changed variables'
 * values is left out (the variable is the cause); a command shows only its differing words; many
 * changed files of one upstream or of the sources are counted on one line.
 */
export function describeChanges(changes: Change[], importedVia?: ImportedVia): string[] {
  const varChanges = changes.filter((c) => c.kind === 'var');
  const lines: string[] = [];
  const grouped = new Map<string, Change[]>();
  for (const c of changes) {
    if (c.kind === 'command') {
      const words = differingWords(c);
      if (words && !explainedByVars(words, varChanges)) lines.push(`command: ${words.before.join(' ')}  ->  ${words.after.join(' ')}`);
      if (!words) lines.push(`${c.kind} ${c.name}: ${c.detail}`);
      continue;
    }
    if (c.kind === 'upstream' || c.kind === 'source') {
      const group = c.kind === 'upstream' ? `upstream ${c.name.split(' ')[0]}` : 'sources';
      grouped.set(group, [...(grouped.get(group) ?? []), c]);
      continue;
    }
    lines.push(`${c.kind} ${c.name}: ${c.detail}`);
  }
  for (const [group, members] of grouped) {
    if (members.length <= 3) {
      for (const c of members) {
        const chain = c.kind === 'source' ? importedVia?.(c.name) : null;
        lines.push(`${c.kind} ${c.name}: ${c.detail}${chain ? ` (imported: ${chain.join(' -> ')})` : ''}`);
      }
    } else {
      const names = members.slice(0, 3).map((c) => (c.kind === 'upstream' ? c.name.split(' ').slice(1).join(' ') : c.name));
      lines.push(`${group}: ${members.length} files changed (${names.join(', ')}, ...)`);
    }
  }
  return lines;
}

/** Before/after commands are kept on the change as arrays by the caller's fingerprint; here from the detail's two sides. */
function differingWords(c: Change): { before: string[]; after: string[] } | null {
  const sides = c.detail.split('  ->  ');
  if (sides.length !== 2) return null;
  const a = sides[0]!.split(' ');
  const b = sides[1]!.split(' ');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  // One word of context before (the flag a value belongs to), and an ellipsis for what is the same.
  const from = Math.max(0, start - 1);
  const cut = (words: string[]) => [...(from > 0 ? ['…'] : []), ...words.slice(from, words.length - end), ...(end > 0 ? ['…'] : [])];
  return { before: cut(a), after: cut(b) };
}

/** True when every word that differs is a changed variable's old value before and its new value after. */
function explainedByVars(words: { before: string[]; after: string[] }, vars: Change[]): boolean {
  if (vars.length === 0) return false;
  const pairs = vars.map((v) => v.detail.split(' -> '));
  const strip = (w: string[]) => w.filter((x) => x !== '…');
  const before = strip(words.before);
  const after = strip(words.after);
  if (before.length !== after.length) return false;
  return before.every((w, i) => w === after[i] || pairs.some(([old, now]) => w.includes(old!) && after[i] === w.replace(old!, now!)));
}
