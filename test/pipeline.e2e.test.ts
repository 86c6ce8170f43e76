import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, cleanup, cli, commitChange, exampleRepo, git, outcomes, SMALL, summary, tempDir, type CliResult } from './helpers.ts';

/**
 * The built-in example pipeline, end to end, in a real temporary git repository, through the
 * real CLI: one cache, a sequence of edits, each checked for exactly what rebuilds.
 */
describe('example pipeline end to end', () => {
  let repo: string;
  let cache: string;
  const run = (args: string[] = [], env?: Record<string, string>): Promise<CliResult> =>
    cli(['pipeline', `REPO=${repo}`, ...SMALL, '--json', ...args], { cache, ...(env ? { env } : {}) });

  beforeAll(() => {
    repo = exampleRepo();
    cache = join(tempDir('e2e'), 'cache');
  });
  afterAll(() => cleanup(repo, join(cache, '..')));

  let first: CliResult;
  let latest: CliResult;
  it('cold run builds every target and lays out the run', async () => {
    first = await run();
    expect(first.code, first.stderr).toBe(0);
    const s = summary(first);
    expect(s.status).toBe('completed');
    expect(s.failed).toBe(0);
    const runId = s.runId as string;
    expect(runId).toMatch(/^1\.72\.3_[0-9a-f]{8}_\d{8}_\d{6}$/);
    const dir = join(cache, 'runs', runId);
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    expect(meta.status).toBe('completed');
    expect(meta.sha).toBe(git(repo, 'rev-parse', 'HEAD'));
    expect(meta.dirty).toBe(false);
    expect(readdirSync(join(dir, 'h5s', 'states'))).toHaveLength(51);
    expect(readdirSync(join(dir, 'h5s', 'districts'))).toHaveLength(436);
    expect(existsSync(join(dir, 'h5s', 'cities', 'NYC.h5'))).toBe(true);
    expect(existsSync(join(dir, 'h5s', 'national', 'US.h5'))).toBe(true);
    // The real manifest lists states, districts and cities; national is published on its own.
    const manifest = JSON.parse(readFileSync(join(dir, 'h5s', 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files)).toHaveLength(488);
    expect(manifest.totals).toMatchObject({ states: 51, districts: 436, cities: 1 });
    for (const f of ['calibration_weights.npy', 'national_calibration_weights.npy', 'policy_data.db', 'calibration_package.pkl', 'calibration_package_meta.json', 'stacked_blocks.npy', 'national_geo_labels.json']) {
      expect(existsSync(join(dir, 'artifacts', f)), f).toBe(true);
    }
    const diagnostics = (f: string) => readFileSync(join(dir, 'diagnostics', f), 'utf8');
    expect(readdirSync(join(dir, 'diagnostics')).sort()).toEqual([
      'calibration_log.csv', 'calibration_package_validation.txt', 'national_calibration_log.csv', 'national_unified_diagnostics.csv',
      'national_unified_run_config.json', 'national_validation.txt', 'unified_diagnostics.csv', 'unified_run_config.json', 'validation_results.csv',
    ]);
    // The real formats (contract §10): column headers, the package report, the national checks.
    expect(diagnostics('unified_diagnostics.csv').split('\n')[0]).toBe('target,true_value,estimate,rel_error,abs_rel_error,achievable');
    expect(diagnostics('calibration_log.csv').split('\n')[0]).toBe('target_name,estimate,target,epoch,error,rel_error,abs_error,rel_abs_error,loss,achievable');
    expect(Object.keys(JSON.parse(diagnostics('unified_run_config.json')))).toEqual([
      'dataset', 'db_path', 'skip_source_impute', 'n_clones', 'lambda_l0', 'beta', 'lambda_l2', 'learning_rate', 'epochs', 'epochs_total', 'device', 'seed',
      'resume_from', 'checkpoint_output', 'domain_variables', 'hierarchical_domains', 'target_config', 'n_targets', 'n_records', 'weight_format', 'weight_sum',
      'weight_nonzero', 'mean_error_pct', 'elapsed_seconds', 'artifacts', 'git_commit', 'git_branch', 'git_dirty', 'package_version',
    ]);
    // csv.DictWriter, as the real code writes it: CRLF line ends.
    const results = diagnostics('validation_results.csv').trim().split('\r\n');
    expect(results[0]).toBe('area_type,area_id,display_name,district,variable,target_name,period,target_value,sim_value,error,rel_error,abs_error,rel_abs_error,sanity_check,sanity_reason,in_training');
    expect(new Set(results.slice(1).map((r) => r.split(',')[0]))).toEqual(new Set(['states', 'districts', 'cities', 'national']));
    expect(diagnostics('calibration_package_validation.txt')).toMatch(/=== Calibration Package Validation ===[\s\S]*RESULT: (PASS|FAIL)/);
    expect(diagnostics('national_validation.txt')).toMatch(/STRUCTURAL CHECKS[\s\S]*\d+\/\d+ passed, \d+ failed/);
    expect(JSON.parse(readFileSync(join(dir, 'artifacts', 'calibration_package_meta.json'), 'utf8'))).toMatchObject({ n_clones: 2, seed: 42, package_scope: 'minimal' });
    // One NDJSON target line per target, and a summary last.
    const targetLines = first.events.filter((e) => e.event === 'target');
    expect(targetLines.length).toBe((s.built as number) + (s.cached as number));
    expect(first.events.at(-1)?.event).toBe('summary');
  });

  it('a no-op rerun executes nothing and reads no file', async () => {
    const again = await run();
    expect(again.code).toBe(0);
    const s = summary(again);
    expect(s.built).toBe(0);
    expect(s.cached).toBe(summary(first).built as number + (summary(first).cached as number));
    expect(s.filesHashed).toBe(0);
    // Nothing changed: no new run is recorded; the identical run is named (issue 12, item 10).
    expect(s.status).toBe('unchanged');
    expect(s.runId).toBe(summary(first).runId);
    // The earlier run is untouched by the later one.
    const meta = JSON.parse(readFileSync(join(cache, 'runs', summary(first).runId as string, 'meta.json'), 'utf8'));
    expect(meta.counts.built).toBe(summary(first).built);
  });

  it('a comment in an ETL module rebuilds its step of the chain (and the unit tests) only: early cutoff at identical bytes', async () => {
    const file = 'policyengine_us_data/db/etl_snap.py';
    commitChange(repo, file, `${readFileSync(join(repo, file), 'utf8')}\n# a comment that changes no output\n`);
    const r = await run();
    expect(r.code).toBe(0);
    expect(built(r)).toEqual(['db-snap', 'unit-tests']);
  });

  it('explain names the source file that changed', async () => {
    const file = 'policyengine_us_data/db/etl_snap.py';
    commitChange(repo, file, readFileSync(join(repo, file), 'utf8').replace(/\d+\.\d+/, (n) => String(Number(n) * 1.5)));
    const e = await cli(['explain', 'db-snap', `REPO=${repo}`, ...SMALL], { cache });
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/db-snap: would run/);
    expect(e.stdout).toMatch(/source policyengine_us_data\/db\/etl_snap\.py: content changed/);
    const dry = await cli(['pipeline', `REPO=${repo}`, ...SMALL, '-n', '--json'], { cache });
    const plan = dry.events.filter((x) => x.event === 'plan').map((x) => x.target);
    expect(plan).toContain('db-snap');
    expect(plan).toContain('database');
    expect(plan).not.toContain('db-medicaid');
    expect(plan).not.toContain('acs');
  });

  it('an ETL change that changes the database rebuilds the rest of the chain and its readers, not the datasets that do not read it', async () => {
    const r = await run();
    expect(r.code).toBe(0);
    const o = outcomes(r);
    for (const t of ['db-snap', 'db-tanf', 'db-pregnancy', 'database', 'enhanced-cps', 'calibration-package']) expect(o.get(t), t).toBe('built');
    for (const untouched of ['python-env', 'db-medicaid', 'prerequisites', 'acs', 'irs-puf', 'cps', 'puf', 'extended-cps', 'source-imputed-cps']) {
      expect(o.get(untouched), untouched).toBe('cached');
    }
  });

  it('a change to calibration code does not rebuild the database or the datasets', async () => {
    const file = 'policyengine_us_data/calibration/unified_calibration.py';
    commitChange(repo, file, `${readFileSync(join(repo, file), 'utf8')}\n# tuning note\n`);
    const r = await run();
    expect(r.code).toBe(0);
    const o = outcomes(r);
    for (const t of ['database', 'cps', 'puf', 'extended-cps', 'stratified-cps', 'source-imputed-cps']) expect(o.get(t), t).toBe('cached');
    expect(o.get('calibration-package')).toBe('built');
  });

  it('a change to the area worker rebuilds the areas only, and their identical files stop there', async () => {
    const file = 'modal_app/worker_script.py';
    commitChange(repo, file, `${readFileSync(join(repo, file), 'utf8')}\n# a comment that changes no output\n`);
    const r = await run();
    latest = r;
    expect(r.code).toBe(0);
    const rebuilt = built(r);
    // The 489 areas, and the repository's unit tests (they read all of its code).
    expect(rebuilt.filter((t) => t.startsWith('h5:'))).toHaveLength(489);
    expect(rebuilt.filter((t) => !t.startsWith('h5:'))).toEqual(['unit-tests']);
  });

  it('status lists runs and shows one target by target; graph prints Mermaid and DOT', async () => {
    const list = await cli(['status'], { cache });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(summary(first).runId as string);
    expect(list.stdout).toMatch(/completed/);
    const one = await cli(['status', `RUN_ID=${summary(first).runId}`], { cache });
    expect(one.stdout).toMatch(/built\s+database/);
    expect(one.stdout).toMatch(/sha\s+[0-9a-f]{40}/);
    const mermaid = await cli(['graph'], { cache });
    expect(mermaid.stdout).toMatch(/^flowchart LR/);
    expect(mermaid.stdout).toContain('db_pregnancy --> database');
    expect(mermaid.stdout).toContain('acs --> cps');
    const dot = await cli(['graph', '--dot'], { cache });
    expect(dot.stdout).toMatch(/^digraph pipeline/);
  });

  it('cache ls, du and verify inspect the store; verify catches a corrupted blob', async () => {
    const ls = await cli(['cache', 'ls'], { cache });
    expect(ls.stdout).toMatch(/^database\s+[0-9a-f]{12}/m);
    const du = await cli(['cache', 'du', '--json'], { cache });
    expect(du.events.find((e) => e.event === 'cache-area' && e.area === 'blobs')!.count).toBeGreaterThan(489);
    const ok = await cli(['cache', 'verify'], { cache });
    expect(ok.code).toBe(0);
    // Corrupt the blob behind the latest manifest (run files are hard links to blobs).
    const file = join(cache, 'runs', summary(latest).runId as string, 'h5s', 'manifest.json');
    chmodSync(file, 0o644);
    writeFileSync(file, '{"tampered": true}');
    const bad = await cli(['cache', 'verify'], { cache });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/1 corrupt/);
    const healed = await run();
    expect(healed.code).toBe(0);
    expect(built(healed)).toEqual(['manifest']);
  });

  it("a failing unit test fails the run and nothing is staged; UNIT_TESTS=0 leaves the tests out", async () => {
    commitChange(repo, 'tests/unit/test_fails.py', 'def test_fails():\n    assert 1 == 2\n');
    const r = await run();
    expect(r.code).toBe(1);
    expect(outcomes(r).get('unit-tests')).toBe('failed');
    expect(outcomes(r).get('manifest')).toBe('cached');
    expect(r.events.filter((e) => e.event === 'publish' && e.step === 'staging')).toEqual([]);
    const skipped = await run(['UNIT_TESTS=0', 'PUBLISH=0']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(outcomes(skipped).has('unit-tests')).toBe(false);
    expect(summary(skipped).built).toBe(0);
  });
});
