import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunMeta } from '../src/run.ts';
import { parseCurve, parseTargets, readDiagnostics, type Diagnostics } from '../src/review/diagnostics.ts';
import { diffTable } from '../src/review/diff-table.ts';
import { areaFiles, compareFiles, totalsByKind, type ManifestFiles } from '../src/review/file-changes.ts';
import { compareTargets, errorHistogram, errorStats, statsByLevel, summariseChanges } from '../src/review/fit-numbers.ts';
import { placeOf } from '../src/review/geography.ts';
import { gateFailures } from '../src/review/quality-gates.ts';
import { reviewNumbers } from '../src/review/review-numbers.ts';
import type { ReviewSide } from '../src/review/review-sources.ts';
import { timelineOf } from '../src/review/timeline.ts';
import { eachCsvRow } from '../src/util/csv.ts';
import { scratchDirs } from './helpers.ts';

/**
 * The review's numbers on a small fixture pair in the real pipeline's formats
 * (unified_diagnostics.csv, calibration_log.csv, staging manifests) with known differences: every
 * expected value below is worked out by hand in the comments, not computed by the code under test.
 */
const tmp = scratchDirs('review-numbers');

const HEADER = 'target,true_value,estimate,rel_error,abs_rel_error,achievable';
// |rel error| of the achievable targets: 0.1, 0.2, 0.0, 0.5, 0.3 -> mean 0.22, median 0.2,
// p90 = 0.3 + 0.6 * (0.5 - 0.3) = 0.42, worst cd_601/snap, 3 over 10% (0.1 is not over).
const RUN = [
  HEADER,
  'national/snap,100,110,0.1,0.1,True',
  'state_6/snap,50,40,-0.2,0.2,True',
  '"state_6/person_count/[age>=18,age<65]",20,20,0.0,0.0,True',
  'cd_601/snap,10,15,0.5,0.5,True',
  'cd_1198/snap,10,13,0.3,0.3,True',
  'state_48/snap,30,0,-1.0,1.0,False',
].join('\n');
// Against the run: national +0.08 (worse), state_6/snap -0.1 (better), the bucket -0.01 (same),
// cd_601 +0.4 (worse, the largest), state_48 +0.5 but unachievable (not counted), cd_602 removed,
// cd_1198 added.
const BASE = [
  HEADER,
  'national/snap,100,102,0.02,0.02,True',
  'state_6/snap,50,35,-0.3,0.3,True',
  '"state_6/person_count/[age>=18,age<65]",20,20.2,0.01,0.01,True',
  'cd_601/snap,10,11,0.1,0.1,True',
  'cd_602/snap,10,10,0.0,0.0,True',
  'state_48/snap,30,15,-0.5,0.5,False',
].join('\n');

const NATIONAL_RUN = [HEADER, 'national/snap,100,104,0.04,0.04,True', 'national/aca_ptc,10,9,-0.1,0.1,True'].join('\n');
const NATIONAL_BASE = [HEADER, 'national/snap,100,101,0.01,0.01,True', 'national/aca_ptc,10,9.8,-0.02,0.02,True'].join('\n');

// Two targets logged at epochs 100 and 200: loss = sum of loss, mean and max of rel_abs_error.
const LOG = [
  'target_name,estimate,target,epoch,error,rel_error,abs_error,rel_abs_error,loss,achievable',
  '"national/snap",120,100,100,20,0.2,20,0.2,0.04,True',
  '"state_6/snap",30,50,100,-20,-0.4,20,0.4,0.16,True',
  '"national/snap",110,100,200,10,0.1,10,0.1,0.01,True',
  '"state_6/snap",40,50,200,-10,-0.2,10,0.2,0.04,True',
].join('\n');

const reader = (files: Record<string, string>) => async (name: string) => files[name] ?? null;

async function side(label: string, files: Record<string, string>, manifest: ManifestFiles | null): Promise<ReviewSide> {
  const diagnostics: Diagnostics = await readDiagnostics(reader(files), label);
  return { kind: 'run', label, meta: null, diagnostics, manifest, notes: diagnostics.notes };
}

const f = (sha256: string, size: number) => ({ sha256, size_bytes: size });
const RUN_FILES: ManifestFiles = { 'states/CA.h5': f('a', 100), 'states/TX.h5': f('b', 200), 'districts/CA-01.h5': f('c', 50), 'calibration/policy_data.db': f('d', 10) };
const BASE_FILES: ManifestFiles = { 'states/CA.h5': f('a', 100), 'states/TX.h5': f('b2', 180), 'calibration/policy_data.db': f('d', 10), 'districts/CA-02.h5': f('e', 60) };

describe('review numbers', () => {
  it('reads target names in the real and the twin spelling', () => {
    expect(placeOf('national/snap')).toEqual({ level: 'national', area: 'US', variable: 'snap' });
    expect(placeOf('national/person_count/[age<5]')).toEqual({ level: 'national', area: 'US', variable: 'person_count' });
    expect(placeOf('state_6/snap/[snap>0]')).toEqual({ level: 'state', area: 'CA', variable: 'snap', state: 'CA' });
    expect(placeOf('cd_601/snap')).toMatchObject({ level: 'district', area: 'CA-01', state: 'CA' });
    expect(placeOf('cd_200/snap').area).toBe('AK-01');
    expect(placeOf('cd_1198/snap').area).toBe('DC-01');
    expect(placeOf('district/CA-12/person_count/age<18&age>=0')).toEqual({ level: 'district', area: 'CA-12', variable: 'person_count', state: 'CA' });
    expect(placeOf('national/US/aca_ptc')).toEqual({ level: 'national', area: 'US', variable: 'aca_ptc' });
    expect(placeOf('county_06001/snap').level).toBe('other');
  });

  it('parses quoted CSV fields, real and twin columns, and aggregates the per-target log per epoch', () => {
    const rows: string[][] = [];
    eachCsvRow('a,"b,c","say ""hi"""\r\n\n1,,3\n"two\nlines",x,\n', (r) => rows.push(r));
    expect(rows).toEqual([['a', 'b,c', 'say "hi"'], ['1', '', '3'], ['two\nlines', 'x', '']]);

    const real = parseTargets(RUN);
    expect(real).toHaveLength(6);
    expect(real[2]).toMatchObject({ name: 'state_6/person_count/[age>=18,age<65]', level: 'state', area: 'CA', value: 20, relError: 0 });
    expect(real[5]!.achievable).toBe(false);
    const twin = parseTargets('target_name,target_value,initial_estimate,final_estimate,rel_error\nstate/CA/snap,50,60,40,-0.2\n');
    expect(twin[0]).toMatchObject({ level: 'state', area: 'CA', variable: 'snap', value: 50, estimate: 40, relError: -0.2, achievable: true });

    const curve = parseCurve(LOG);
    expect(curve.map((p) => p.epoch)).toEqual([100, 200]);
    expect(curve[0]!.loss).toBeCloseTo(0.2, 12);
    expect(curve[0]!.meanRelError).toBeCloseTo(0.3, 12);
    expect(curve[0]!.maxRelError).toBeCloseTo(0.4, 12);
    expect(curve[1]!.loss).toBeCloseTo(0.05, 12);
    expect(curve[1]!.meanRelError).toBeCloseTo(0.15, 12);
    expect(parseCurve('epoch,loss,mean_rel_error\n0,4.5,1.2\n10,0.5,0.3\n')).toEqual([{ epoch: 0, loss: 4.5, meanRelError: 1.2 }, { epoch: 10, loss: 0.5, meanRelError: 0.3 }]);
    expect(() => parseTargets('foo,bar\n1,2\n')).toThrow(/no target column/);
  });

  it('error statistics per fit and per geography level', () => {
    const stats = errorStats(parseTargets(RUN));
    expect(stats).toMatchObject({ targets: 6, achievable: 5, over10: 3, worst: { name: 'cd_601/snap', relError: 0.5 } });
    expect(stats.mean).toBeCloseTo(0.22, 12);
    expect(stats.median).toBeCloseTo(0.2, 12);
    expect(stats.p90).toBeCloseTo(0.42, 12);
    const levels = statsByLevel(parseTargets(RUN));
    expect(levels.map((l) => [l.level, l.stats.targets, l.stats.achievable])).toEqual([['national', 1, 1], ['state', 3, 2], ['district', 2, 2]]);
    expect(levels[1]!.stats.mean).toBeCloseTo(0.1, 12);
    expect(levels[2]!.stats.mean).toBeCloseTo(0.4, 12);
    // Bins: <=1% 0.0 | <=10% 0.1 | <=25% 0.2 | <=50% 0.3, 0.5; the unachievable 1.0 is left out.
    expect(errorHistogram(parseTargets(RUN))).toEqual([1, 0, 0, 1, 1, 2, 0, 0, 0]);
  });

  it('per-target changes against production: worse, better, added, removed', () => {
    const run = parseTargets(RUN);
    const base = parseTargets(BASE);
    const changes = compareTargets(run, base);
    expect(changes.find((c) => c.target.name === 'cd_601/snap')!.change).toBeCloseTo(0.4, 12);
    expect(changes.find((c) => c.target.name === 'cd_1198/snap')!.change).toBeUndefined();
    const summary = summariseChanges(changes, base, 0.05);
    expect(summary).toMatchObject({ compared: 5, worse: 2, better: 1, added: 1, removed: 1, threshold: 0.05, largest: { name: 'cd_601/snap' } });
    // A looser threshold: only cd_601 (+0.4) is worse by more than 10 points; none better.
    expect(summariseChanges(changes, base, 0.1)).toMatchObject({ worse: 1, better: 0 });
  });

  it('files by kind and against the production manifest', () => {
    expect(totalsByKind(RUN_FILES)).toEqual([
      { kind: 'states', files: 2, bytes: 300 },
      { kind: 'districts', files: 1, bytes: 50 },
      { kind: 'calibration', files: 1, bytes: 10 },
    ]);
    const changes = compareFiles(RUN_FILES, BASE_FILES);
    expect(changes.added.map((c) => c.rel)).toEqual(['districts/CA-01.h5']);
    expect(changes.removed.map((c) => c.rel)).toEqual(['districts/CA-02.h5']);
    expect(changes.changed).toEqual([{ rel: 'states/TX.h5', size: 200, baseSize: 180 }]);
    expect(changes.unchanged).toBe(2);
    expect(changes.bytesDelta).toBe(360 - 350);
    expect(areaFiles(RUN_FILES, BASE_FILES)).toEqual([
      { area: 'CA', kind: 'states', size: 100, baseSize: 100, changed: false },
      { area: 'TX', kind: 'states', size: 200, baseSize: 180, changed: true },
      { area: 'CA-01', kind: 'districts', size: 50, changed: true },
    ]);
  });

  it('the review, its table, and the quality gates with the numbers', async () => {
    const run = await side('run R', { 'unified_diagnostics.csv': RUN, 'calibration_log.csv': LOG, 'national_unified_diagnostics.csv': NATIONAL_RUN }, RUN_FILES);
    const base = await side('version 1.0.0', { 'unified_diagnostics.csv': BASE, 'national_unified_diagnostics.csv': NATIONAL_BASE }, BASE_FILES);
    expect(run.notes).toEqual(
      expect.arrayContaining(['unified_run_config.json: not in run R', 'national_calibration_log.csv: not in run R', expect.stringMatching(/^validation_results\.csv: not in run R/)]),
    );
    const n = reviewNumbers(run, base, 0.05);
    const [regional, national] = n.fits;
    expect(regional!.run!.mean).toBeCloseTo(0.22, 12);
    expect(regional!.base!.mean).toBeCloseTo((0.02 + 0.3 + 0.01 + 0.1 + 0.0) / 5, 12);
    expect(regional!.changes).toMatchObject({ worse: 2, better: 1 });
    expect(regional!.curvePoints).toBe(2);
    expect(national!.run!.mean).toBeCloseTo(0.07, 12);
    expect(national!.curvePoints).toBeNull();
    expect(n.files.changes).toMatchObject({ unchanged: 2 });

    const table = diffTable(n).join('\n');
    expect(table).toMatch(/review: run R against version 1\.0\.0/);
    expect(table).toMatch(/^regional\s+all\s+6\s+22\.0%\s+20\.0%\s+42\.0%\s+\+50\.0%\s+3\s+8\.6%\s+\+13\.4 pt\s+2\s+1$/m);
    expect(table).toMatch(/^\s+district\s+2\s+40\.0%/m);
    expect(table).toMatch(/regional loss curve has only 2 points/);
    expect(table).toMatch(/files against the base: 1 added, 1 removed, 1 changed, 2 unchanged \(\+10 B\)/);

    // Regional 22.0% and national 7.0% against a 10% ceiling; regional rose 13.4 points, national 5.5.
    expect(gateFailures(n, {})).toEqual([]);
    expect(gateFailures(n, { maxMeanError: 0.25, maxRegression: 0.2 })).toEqual([]);
    const failed = gateFailures(n, { maxMeanError: 0.1, maxRegression: 0.06 });
    expect(failed).toEqual([
      'regional fit: mean error 22.0% exceeds MAX_MEAN_ERROR=10 (3 of 5 targets more than 10% off)',
      'regional fit: mean error 22.0% vs 8.6% in version 1.0.0 (+13.4 pt) exceeds MAX_REGRESSION=6; 2 targets worse by more than 5.0 pt',
    ]);
    const noBase = reviewNumbers(run, null, 0.05);
    expect(gateFailures(noBase, { maxRegression: 0.01 })).toEqual([]);
    const blind = await side('run S', {}, null);
    expect(gateFailures(reviewNumbers(blind, base, 0.05), { maxMeanError: 0.5 })).toEqual([
      'regional fit: no diagnostics, so MAX_MEAN_ERROR=50 cannot be checked',
      'national fit: no diagnostics, so MAX_MEAN_ERROR=50 cannot be checked',
    ]);
  });

  it('timeline: cache hits, early cutoffs from the cache entries, GPU-hours', async () => {
    const cache = tmp();
    const entry = (key: string, upstream: string[]) => {
      mkdirSync(join(cache, 'actions', key.slice(0, 2)), { recursive: true });
      writeFileSync(join(cache, 'actions', key.slice(0, 2), `${key}.json`), `{"key":"${key}"}\n${JSON.stringify({ upstream: Object.fromEntries(upstream.map((u) => [`${u} artifacts/x`, 'd'])) })}\n`);
    };
    entry('aa01', ['fit-regional']);
    entry('bb02', ['database']);
    const meta = {
      startedAt: '2026-01-01T00:00:00.000Z',
      targets: {
        database: { outcome: 'cached', key: 'cc03', executor: 'local' },
        'fit-regional': { outcome: 'built', key: 'dd04', executor: 'modal', startedAt: '2026-01-01T00:00:02.000Z', durationMs: 3000, remote: { queueSeconds: 1.5, runSeconds: 2.5, gpuSeconds: 3600 } },
        'fit-national': { outcome: 'cached', key: 'ee05', executor: 'modal', remote: { gpuSeconds: 1800, saved: true } },
        'h5:states/CA': { outcome: 'cached', key: 'aa01', executor: 'local' },
        manifest: { outcome: 'cached', key: 'bb02', executor: 'local' },
      },
    } as unknown as RunMeta;
    const t = await timelineOf(meta, cache);
    expect(t.gpuHours).toEqual({ spent: 1, saved: 0.5 });
    expect(t.rows[0]).toEqual({ target: 'fit-regional', outcome: 'built', executor: 'modal', startMs: 2000, durationMs: 3000, queueSeconds: 1.5, runSeconds: 2.5, cacheHit: false, earlyCutoff: false });
    // h5:states/CA was a hit although its upstream fit rebuilt: an early cutoff; manifest's upstream (database) was itself a hit.
    expect(t.rows.filter((r) => r.earlyCutoff).map((r) => r.target)).toEqual(['h5:states/CA']);
    expect(t.rows.filter((r) => r.cacheHit)).toHaveLength(4);
  });
});
