/**
 * Longest-processing-time-first partitioning, as the real pipeline's
 * `partitioning.partition_weighted_work_items`: items sorted by descending weight (ties keep
 * their input order), each given to the currently lightest bin (ties to the lowest bin), over
 * `min(bins, items)` bins; empty bins dropped. Deterministic: the same items in the same order
 * give the same batches. A state weighs its district count, NYC 11, a district 1 (tasks/areas.ts).
 *
 *   lpt([A5, B5, C2, D2], 2) -> [[A, C], [B, D]]  (loads 7 and 7)
 */
export interface Weighted {
  weight: number;
}

export function lpt<T extends Weighted>(items: readonly T[], bins: number): T[][] {
  const n = Math.min(Math.max(0, Math.floor(bins)), items.length);
  if (n === 0) return [];
  const order = items.map((item, index) => ({ item, index })).sort((a, b) => b.item.weight - a.item.weight || a.index - b.index);
  const loads = new Array<number>(n).fill(0);
  const out: T[][] = Array.from({ length: n }, () => []);
  for (const { item } of order) {
    // n is at most NUM_WORKERS (tens): a linear scan is clearer than a heap and as fast.
    let best = 0;
    for (let i = 1; i < n; i++) if (loads[i]! < loads[best]!) best = i;
    loads[best]! += item.weight;
    out[best]!.push(item);
  }
  return out.filter((bin) => bin.length > 0);
}
