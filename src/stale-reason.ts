import type { ActionResult, Cache } from './caching/cache.ts';
import { diffFingerprints, type Change, type Fingerprint } from './fingerprint.ts';
import type { Cause } from './report/events.ts';

/** For a source the target's Python imports (not a glob's), the import chain from the entry module to it; null otherwise. */
export type ImportedVia = (source: string) => string[] | null;

/** How many of a target's recent entries a dry run compares with (each is one small file read). */
const CANDIDATES = 8;

/** Why a target would run: the entry it was compared with (none: never built), and the causes. */
export interface StaleReason {
  closest?: ActionResult;
  causes: Cause[];
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
  if (!best) return { causes: [{ kind: 'never-built' }] };
  if (best.changes.length === 0) return { closest: best.entry, causes: [{ kind: 'outputs-missing' }] };
  return { closest: best.entry, causes: changeCauses(best.changes, importedVia) };
}

/** The causes as lines, for the terminal (the structured causes are what `--json` carries). */
export function describeChanges(changes: Change[], importedVia?: ImportedVia): string[] {
  return changeCauses(changes, importedVia).map(describeCause);
}

const digest8 = (d: unknown) => String(d).slice(0, 8);
const fileChange = (c: Change) => (c.before === undefined ? ({ change: 'added' } as const) : c.after === undefined ? ({ change: 'removed' } as const) : { change: 'changed' as const, before: digest8(c.before), after: digest8(c.after) });

/**
 * The real causes in the words that differ: a command change that only repeats changed variables'
 * values is left out (the variable is the cause); a command shows only its differing words; many
 * changed files of one upstream or of the sources are counted as one cause.
 */
export function changeCauses(changes: Change[], importedVia?: ImportedVia): Cause[] {
  const varChanges = changes.filter((c) => c.kind === 'var');
  const causes: Cause[] = [];
  const grouped = new Map<string, Change[]>();
  for (const c of changes) {
    if (c.kind === 'command') {
      const words = differingWords(c);
      if (!explainedByVars(words, varChanges)) causes.push({ kind: 'command', ...words });
    } else if (c.kind === 'upstream' || c.kind === 'source') {
      const group = c.kind === 'upstream' ? `upstream ${c.name.split(' ')[0]}` : 'sources';
      grouped.set(group, [...(grouped.get(group) ?? []), c]);
    } else if (c.kind === 'var') {
      causes.push({ kind: 'var', name: c.name, before: (c.before as string | undefined) ?? null, after: (c.after as string | undefined) ?? null });
    } else if (c.kind === 'env') {
      const before = c.before == null ? 'unset' : 'set';
      const after = c.after == null ? 'unset' : 'set';
      causes.push({ kind: 'env', name: c.name, before, after, valueChanged: before === 'set' && after === 'set' });
    } else if (c.kind === 'schema') {
      causes.push({ kind: 'schema', before: String(c.before), after: String(c.after) });
    } else {
      causes.push({ kind: 'outputs', before: (c.before as string[] | undefined) ?? [], after: (c.after as string[] | undefined) ?? [] });
    }
  }
  for (const [group, members] of grouped) {
    if (members.length <= 3) {
      for (const c of members) {
        if (c.kind === 'source') {
          const chain = importedVia?.(c.name);
          causes.push({ kind: 'source', path: c.name, ...fileChange(c), ...(chain ? { importedVia: chain } : {}) });
        } else {
          const [target = '', ...path] = c.name.split(' ');
          causes.push({ kind: 'upstream', target, path: path.join(' '), ...fileChange(c) });
        }
      }
    } else {
      const paths = members.slice(0, 3).map((c) => (c.kind === 'upstream' ? c.name.split(' ').slice(1).join(' ') : c.name));
      causes.push(group === 'sources' ? { kind: 'files', of: 'sources', count: members.length, paths } : { kind: 'files', of: 'upstream', target: group.slice('upstream '.length), count: members.length, paths });
    }
  }
  return causes;
}

/** One cause as a line, in the words `-n` and `explain` print. */
export function describeCause(c: Cause): string {
  const change = (f: { change: string; before?: string; after?: string }) => (f.change === 'changed' ? `content changed (${f.before} -> ${f.after})` : f.change);
  switch (c.kind) {
    case 'never-built':
      return 'never built';
    case 'outputs-missing':
      return 'cached outputs are missing or corrupt';
    case 'always-run':
      return 'runs in every build (it reads something outside the pinned tree)';
    case 'upstream-would-run':
      return `upstream ${c.target} would run (unless its outputs come out identical)`;
    case 'items-not-known':
      return `fan-out; its items are not known yet: they are listed once its inputs are built${c.items?.length ? `; ${c.items.join(', ')} cannot be checked until then` : ''}`;
    case 'fan-out':
      return `fan-out of ${c.items} items: ${c.cached} cached, ${c.wouldRun} would run`;
    case 'schema':
      return `schema: fingerprint schema ${c.before} -> ${c.after}`;
    case 'command':
      return `command: ${c.before.join(' ')}  ->  ${c.after.join(' ')}`;
    case 'var':
      return `var ${c.name}: ${c.before ?? '(unset)'} -> ${c.after ?? '(unset)'}`;
    case 'env':
      return `env ${c.name}: ${c.valueChanged ? 'value changed' : `was ${c.before}, now ${c.after}`}`;
    case 'source':
      return `source ${c.path}: ${change(c)}${c.importedVia ? ` (imported: ${c.importedVia.join(' -> ')})` : ''}`;
    case 'upstream':
      return `upstream ${c.target} ${c.path}: ${change(c)}`;
    case 'files':
      return `${c.of === 'sources' ? 'sources' : `upstream ${c.target}`}: ${c.count} files changed (${c.paths.join(', ')}, ...)`;
    case 'outputs':
      return `outputs: ${c.before.join(', ')} -> ${c.after.join(', ')}`;
    case 'cannot-plan':
      return c.error;
    case 'not-reached':
      return 'the dry run did not reach it (an upstream could not be planned)';
    case 'not-comparable':
      return c.why === 'no-key' ? 'that run recorded no key for it'
        : c.why === 'inputs-not-known' ? 'its inputs today are not known (an upstream would run first)'
          : `its entry ${c.key?.slice(0, 12)} is in no cache this machine can read`;
  }
}

/** The words of a command change that differ, with one word of context; from the fingerprints' arrays (else from the detail's two sides). */
function differingWords(c: Change): { before: string[]; after: string[] } {
  const sides = c.detail.split('  ->  ');
  const a = Array.isArray(c.before) ? (c.before as string[]) : (sides[0] ?? '').split(' ');
  const b = Array.isArray(c.after) ? (c.after as string[]) : (sides[1] ?? '').split(' ');
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
