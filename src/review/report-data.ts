import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FITS, type CurvePoint, type FitName } from './diagnostics.ts';
import { areaFiles } from './file-changes.ts';
import { areaErrors, ERROR_BINS, errorHistogram } from './fit-numbers.ts';
import { STATE_TILES, type StateTile } from './geography.ts';
import type { ReviewNumbers } from './review-numbers.ts';
import type { ReviewSide } from './review-sources.ts';
import type { Timeline } from './timeline.ts';

/**
 * Everything the review page shows, as one JSON document embedded in the page: plain numbers,
 * no markup. Built from the two sides, their numbers and the run's timeline; the page script
 * (page-script.ts) turns it into tables and charts.
 */
export interface ReportData {
  generatedAt: string;
  run: SideHeader;
  base: SideHeader | null;
  notes: string[];
  numbers: ReviewNumbers;
  bins: readonly number[];
  fits: Record<FitName, { curve: CurvePoint[] | null; baseCurve: CurvePoint[] | null; histogram: number[] | null; baseHistogram: number[] | null; config: Record<string, unknown> | null }>;
  /** One row per target: [fit, name, level, area, variable, value, estimate, relError, achievable, baseEstimate, baseRelError]. */
  targets: Array<[FitName, string, string, string, string, number, number, number, boolean, number | null, number | null]>;
  /** States and districts: the regional fit's mean |rel error| there, and the area file. */
  areas: Array<{ area: string; kind: 'states' | 'districts'; state: string; mean: number | null; baseMean: number | null; targets: number; size: number | null; baseSize: number | null; changed: boolean | null }>;
  timeline: Timeline | null;
  /** The state tile grid's layout. */
  tiles: readonly StateTile[];
}

/** The header facts of one side. */
export interface SideHeader {
  label: string;
  runId?: string;
  version?: string;
  sha?: string;
  branch?: string;
  repo?: string;
  dirty?: boolean;
  status?: string;
  startedAt?: string;
  durationMs?: number;
  counts?: Record<string, number>;
  variables?: Record<string, string>;
  /** Links to the run's logs, as file: URLs on the machine that built it. */
  logs?: Array<{ name: string; href: string }>;
}

/** `n` significant digits: the page shows 1-2 decimals, and full doubles would double its size. */
const sig = (x: number, n: number): number => (Number.isFinite(x) ? Number(x.toPrecision(n)) : x);

function header(side: ReviewSide, logs?: SideHeader['logs']): SideHeader {
  const m = side.meta;
  return {
    label: side.label,
    ...(side.runId && { runId: side.runId }),
    ...(side.version && { version: side.version }),
    ...(m && { sha: m.sha, branch: m.branch, repo: m.repo, dirty: m.dirty, status: m.status, startedAt: m.startedAt, counts: m.counts, variables: m.variables }),
    ...(m?.durationMs !== undefined && { durationMs: m.durationMs }),
    ...(logs && { logs }),
  };
}

/** Assembles the page's data; `logs` are the run's log files (`<run>/logs/*.log`), linked as file: URLs. */
export function reportData(input: { run: ReviewSide; base: ReviewSide | null; numbers: ReviewNumbers; timeline: Timeline | null; logs: string[]; now?: Date }): ReportData {
  const { run, base } = input;
  const fits = {} as ReportData['fits'];
  const targets: ReportData['targets'] = [];
  for (const fit of FITS) {
    const now = run.diagnostics.fits[fit];
    const before = base?.diagnostics.fits[fit];
    fits[fit] = {
      curve: now.curve,
      baseCurve: before?.curve ?? null,
      histogram: now.targets ? errorHistogram(now.targets) : null,
      baseHistogram: before?.targets ? errorHistogram(before.targets) : null,
      config: now.config,
    };
    const baseByName = new Map((before?.targets ?? []).map((t) => [t.name, t]));
    for (const t of now.targets ?? []) {
      const b = baseByName.get(t.name);
      targets.push([fit, t.name, t.level, t.area, t.variable, sig(t.value, 8), sig(t.estimate, 8), sig(t.relError, 6), t.achievable, b ? sig(b.estimate, 8) : null, b ? sig(b.relError, 6) : null]);
    }
  }
  const errors = areaErrors(run.diagnostics.fits.regional.targets ?? []);
  const baseErrors = areaErrors(base?.diagnostics.fits.regional.targets ?? []);
  const files = new Map((run.manifest ? areaFiles(run.manifest, base?.manifest ?? null) : []).map((f) => [f.area, f]));
  const districts = new Set<string>([...errors.keys(), ...files.keys()].filter((a) => /^[A-Z]{2}-\d{2}$/.test(a)));
  const area = (id: string, kind: 'states' | 'districts', state: string): ReportData['areas'][number] => {
    const f = files.get(id);
    return {
      area: id,
      kind,
      state,
      mean: errors.get(id)?.mean ?? null,
      baseMean: baseErrors.get(id)?.mean ?? null,
      targets: errors.get(id)?.targets ?? 0,
      size: f?.size ?? null,
      baseSize: f?.baseSize ?? null,
      changed: f ? f.changed : null,
    };
  };
  return {
    generatedAt: (input.now ?? new Date()).toISOString(),
    run: header(run, input.logs.map((path) => ({ name: basename(path, '.log'), href: pathToFileURL(path).href }))),
    base: base ? header(base) : null,
    notes: input.numbers.notes,
    numbers: input.numbers,
    bins: ERROR_BINS,
    fits,
    targets,
    areas: [...STATE_TILES.map((s) => area(s.abbr, 'states', s.abbr)), ...[...districts].sort().map((d) => area(d, 'districts', d.slice(0, 2)))],
    timeline: input.timeline,
    tiles: STATE_TILES,
  };
}
