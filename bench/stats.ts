/** Small statistics for the report: median and spread (min..max), plus the interquartile range. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** (q3 - q1) / median: a relative spread robust to one outlier. */
  iqrRel: number;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarise(samples: number[]): Summary | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const median = quantile(s, 0.5);
  return { n: s.length, median, min: s[0]!, max: s[s.length - 1]!, iqrRel: median > 0 ? (quantile(s, 0.75) - quantile(s, 0.25)) / median : 0 };
}
