import { formatBytes } from '../publish/result.ts';
import type { ErrorStats } from './fit-numbers.ts';
import type { ReviewNumbers } from './review-numbers.ts';

/**
 * The review's numbers as terminal tables (`./build.ts diff`, and the review part of
 * `promote -n`): one row per fit and geography level with the run's and the base's errors, then
 * the files by kind and what changed.
 */

/** `12.3%` (errors are fractions); `-` when unknown. */
export const pct = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(1)}%`);

/** `+1.2 pt`: a change of a fraction, in percentage points. */
export const points = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pt`);

/** Left-aligned first columns, right-aligned numbers. */
function table(header: string[], rows: string[][], left = 2): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

const worst = (s: ErrorStats | null) => (s?.worst ? pct(s.worst.relError).replace(/^(\d)/, '+$1') : '-');

/** The whole review as lines of text. */
export function diffTable(n: ReviewNumbers): string[] {
  const lines = [`review: ${n.run} against ${n.base ?? 'nothing (no registered version)'}`];
  const rows: string[][] = [];
  for (const f of n.fits) {
    if (!f.run) {
      rows.push([f.fit, 'all', '-', '-', '-', '-', '-', '-', pct(f.base?.mean), '-', '-', '-']);
      continue;
    }
    const c = f.changes;
    rows.push([f.fit, 'all', String(f.run.targets), pct(f.run.mean), pct(f.run.median), pct(f.run.p90), worst(f.run), String(f.run.over10), pct(f.base?.mean), points(f.base ? f.run.mean - f.base.mean : null), c ? String(c.worse) : '-', c ? String(c.better) : '-']);
    for (const l of f.levels) {
      rows.push(['', l.level, String(l.run.targets), pct(l.run.mean), pct(l.run.median), pct(l.run.p90), worst(l.run), String(l.run.over10), pct(l.base?.mean), points(l.base ? l.run.mean - l.base.mean : null), '', '']);
    }
  }
  const threshold = `>${(n.threshold * 100).toFixed(1)}pt`;
  lines.push(...table(['FIT', 'LEVEL', 'TARGETS', 'MEAN', 'MEDIAN', 'P90', 'WORST', '>10%', 'BASE MEAN', 'CHANGE', `WORSE ${threshold}`, 'BETTER'], rows));
  for (const f of n.fits) {
    if (f.run?.worst) lines.push(`  ${f.fit} worst target: ${f.run.worst.name} (${pct(f.run.worst.relError)})${f.changes?.largest && f.changes.largest.change > 0 ? `; largest regression: ${f.changes.largest.name} (${points(f.changes.largest.change)})` : ''}`);
    if (f.curvePoints !== null && f.curvePoints < 5) lines.push(`  ${f.fit} loss curve has only ${f.curvePoints} points: log more often (--log-freq) to judge convergence`);
  }
  const { run, base, changes } = n.files;
  if (run) {
    const baseBy = new Map((base ?? []).map((k) => [k.kind, k]));
    lines.push('', ...table(['KIND', 'FILES', 'BYTES', 'BASE FILES', 'BASE BYTES'], run.map((k) => [k.kind, String(k.files), formatBytes(k.bytes), String(baseBy.get(k.kind)?.files ?? '-'), baseBy.has(k.kind) ? formatBytes(baseBy.get(k.kind)!.bytes) : '-']), 1));
    if (changes) {
      const delta = `${changes.bytesDelta >= 0 ? '+' : '-'}${formatBytes(Math.abs(changes.bytesDelta))}`;
      lines.push(`files against the base: ${changes.added.length} added, ${changes.removed.length} removed, ${changes.changed.length} changed, ${changes.unchanged} unchanged (${delta})`);
    }
  }
  if (n.notes.length) lines.push('', ...n.notes.map((note) => `note: ${note}`));
  return lines;
}
