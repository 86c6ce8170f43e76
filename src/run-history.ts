import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutputRecord } from './output-record.ts';
import { listRunIds, runDir } from './run.ts';

/** How many earlier runs the estimates and the identical-output mark read (newest first). */
export const HISTORY_RUNS = 10;

/** What earlier runs say about one target: how long it took each time it ran, newest first. */
export interface PastDurations {
  /** Durations (ms) of the runs that built it, newest first; empty: none of the runs read built it. */
  previousMs: number[];
  /** Set when the target itself has no history and these are the durations of its fan-out's items. */
  fromFanout?: string;
}

/**
 * The last runs' records (their meta.json), read once and only when an action is about to run: a
 * no-op (every target cached, or a replay) never reads them. They give each target's earlier
 * durations (the live view's estimates) and the outputs it last had (the identical-output mark
 * of early cutoff). The run being built is left out; a corrupt or missing record is skipped.
 */
export class RunHistory {
  private readonly cacheDir: string;
  private readonly exclude: string | undefined;
  private readonly limit: number;
  private loading: Promise<void> | undefined;
  /** Each earlier run's targets, newest run first; empty until `load()` has settled. */
  private runs: Record<string, PastTarget>[] = [];
  private readonly own = new Map<string, number[]>();
  private readonly fanouts = new Map<string, { previousMs: number[]; count: number }>();
  loaded = false;

  constructor(o: { cacheDir: string; exclude?: string; limit?: number }) {
    this.cacheDir = o.cacheDir;
    this.exclude = o.exclude;
    this.limit = o.limit ?? HISTORY_RUNS;
  }

  /** Reads the last runs' records (once; later calls share the first read). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      const ids = (await listRunIds(this.cacheDir)).filter((id) => id !== this.exclude).slice(0, this.limit);
      const runs = await Promise.all(ids.map((id) => readTargets(join(runDir(this.cacheDir, id), 'meta.json'))));
      this.runs = runs.filter((t) => t !== null);
      this.loaded = true;
    })();
    return this.loading;
  }

  /**
   * The durations of the runs that built `target`; for a fan-out item with none of its own, those
   * of its fan-out's items (`fanout` names it, `prefix` is its childPrefix), one per item built.
   */
  durations(target: string, fanout?: { name: string; prefix: string }): PastDurations {
    let own = this.own.get(target);
    if (!own) this.own.set(target, (own = this.runs.flatMap((targets) => builtMs(targets[target]))));
    if (own.length > 0 || !fanout) return { previousMs: own };
    const items = this.items(fanout).previousMs;
    return items.length > 0 ? { previousMs: items, fromFanout: fanout.name } : { previousMs: [] };
  }

  /**
   * A fan-out's items in the earlier runs: every built item's duration (newest run first), and how
   * many items the newest run that recorded any of them held (what the fan-out will expand to).
   */
  items(fanout: { name: string; prefix: string }): { previousMs: number[]; count: number } {
    let found = this.fanouts.get(fanout.name);
    if (!found) {
      const previousMs: number[] = [];
      let count = 0;
      for (const targets of this.runs) {
        const names = Object.keys(targets).filter((n) => n.startsWith(fanout.prefix));
        if (count === 0) count = names.length;
        for (const name of names) previousMs.push(...builtMs(targets[name]));
      }
      this.fanouts.set(fanout.name, (found = { previousMs, count }));
    }
    return found;
  }

  /** The outputs `target` had in the newest earlier run that built or restored it. */
  lastOutputs(target: string): Record<string, OutputRecord> | undefined {
    for (const targets of this.runs) {
      const t = targets[target];
      if (t?.outputs && (t.outcome === 'built' || t.outcome === 'cached')) return t.outputs;
    }
    return undefined;
  }
}

/** What the history keeps of a target's record in a run's meta.json. */
interface PastTarget {
  outcome: string;
  durationMs?: number;
  outputs?: Record<string, OutputRecord>;
}

/**
 * A run's targets from its meta.json, checked field by field rather than by the full run schema
 * (run.ts): ten runs of ~500 targets took 30-170 ms to validate with zod against ~6 ms to parse,
 * and the history only feeds estimates and a mark. An unreadable record is null; a malformed
 * target is left out.
 */
async function readTargets(file: string): Promise<Record<string, PastTarget> | null> {
  let meta: unknown;
  try {
    meta = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
  const targets = (meta as { targets?: unknown } | null)?.targets;
  if (!isObject(targets)) return null;
  const out: Record<string, PastTarget> = {};
  for (const [name, t] of Object.entries(targets)) {
    if (!isObject(t) || typeof t.outcome !== 'string') continue;
    const durationMs = typeof t.durationMs === 'number' && Number.isFinite(t.durationMs) && t.durationMs >= 0 ? t.durationMs : undefined;
    const outputs = isObject(t.outputs) && Object.values(t.outputs).every(isOutputRecord) ? (t.outputs as Record<string, OutputRecord>) : undefined;
    out[name] = { outcome: t.outcome, ...(durationMs !== undefined ? { durationMs } : {}), ...(outputs ? { outputs } : {}) };
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isOutputRecord(v: unknown): boolean {
  return isObject(v) && typeof v.digest === 'string' && (v.content === undefined || typeof v.content === 'string');
}

function builtMs(t: PastTarget | undefined): number[] {
  return t?.outcome === 'built' && t.durationMs !== undefined ? [t.durationMs] : [];
}

/** The middle of the durations (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** True when two output sets have the same paths and bytes (a declared content digest stands for the bytes). */
export function sameOutputs(a: Record<string, OutputRecord>, b: Record<string, OutputRecord>): boolean {
  const paths = Object.keys(a);
  if (paths.length !== Object.keys(b).length) return false;
  return paths.every((p) => b[p] !== undefined && (a[p]!.content ?? a[p]!.digest) === (b[p]!.content ?? b[p]!.digest));
}
