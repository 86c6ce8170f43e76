import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunMeta } from '../run.ts';

/**
 * A run's targets in time, from its meta.json: when each started and how long it ran, where
 * (executor), the queue and run seconds a remote call recorded, whether it was a cache hit, and
 * whether the hit was an early cutoff: cached although an upstream target was rebuilt in this run
 * (its outputs came out identical). Upstream targets are read from the cache entry's fingerprint
 * (`cache/actions/<aa>/<key>.json`, second line: `upstream` is keyed "<target> <output>").
 */
export interface TimelineRow {
  target: string;
  outcome: string;
  executor: string;
  /** Milliseconds after the run started; absent for a cache hit (nothing ran). */
  startMs?: number;
  /** When it settled, in milliseconds after the run started (batch members: when their batch ended). */
  endMs?: number;
  durationMs?: number;
  queueSeconds?: number;
  runSeconds?: number;
  cacheHit: boolean;
  earlyCutoff: boolean;
}

/** The run's timeline and GPU-hours (spent by its remote fits; saved by cache hits on earlier ones). */
export interface Timeline {
  rows: TimelineRow[];
  gpuHours: { spent: number; saved: number };
}

const seconds = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** The timeline of a run; `cacheDir` locates the cache entries that name each target's upstream. */
export async function timelineOf(meta: RunMeta, cacheDir: string | null): Promise<Timeline> {
  const start = Date.parse(meta.startedAt);
  const rows: TimelineRow[] = [];
  let spent = 0;
  let saved = 0;
  for (const [target, t] of Object.entries(meta.targets)) {
    const gpu = seconds(t.remote?.gpuSeconds) ?? 0;
    if (t.outcome === 'cached' && t.remote?.saved) saved += gpu;
    else if (t.outcome === 'built') spent += gpu;
    const began = t.startedAt ? Date.parse(t.startedAt) - start : undefined;
    const ended = t.finishedAt ? Date.parse(t.finishedAt) - start : undefined;
    const queue = seconds(t.remote?.queueSeconds);
    const run = seconds(t.remote?.runSeconds);
    rows.push({
      target,
      outcome: t.outcome,
      executor: t.executor ?? 'local',
      ...(began !== undefined && Number.isFinite(began) && { startMs: began }),
      ...(ended !== undefined && Number.isFinite(ended) && { endMs: ended }),
      ...(t.durationMs !== undefined && { durationMs: t.durationMs }),
      ...(queue !== undefined && { queueSeconds: queue }),
      ...(run !== undefined && { runSeconds: run }),
      cacheHit: t.outcome === 'cached',
      earlyCutoff: t.outcome === 'cached' && t.key !== undefined && cacheDir !== null && (await upstreamOf(cacheDir, t.key)).some((u) => meta.targets[u]?.outcome === 'built'),
    });
  }
  rows.sort((a, b) => (a.startMs ?? Number.POSITIVE_INFINITY) - (b.startMs ?? Number.POSITIVE_INFINITY) || (a.target < b.target ? -1 : 1));
  return { rows, gpuHours: { spent: spent / 3600, saved: saved / 3600 } };
}

/** Upstream target names of a cache entry, from its fingerprint; [] when the entry is gone. */
async function upstreamOf(cacheDir: string, key: string): Promise<string[]> {
  try {
    const text = await readFile(join(cacheDir, 'actions', key.slice(0, 2), `${key}.json`), 'utf8');
    const fingerprint = JSON.parse(text.slice(text.indexOf('\n') + 1)) as { upstream?: Record<string, string> };
    return [...new Set(Object.keys(fingerprint.upstream ?? {}).map((k) => k.split(' ')[0]!))];
  } catch {
    return [];
  }
}
