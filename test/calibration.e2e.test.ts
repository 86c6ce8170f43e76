import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, exampleRepo, outcomes, SMALL, summary, tempDir, type CliResult } from './helpers.ts';

/**
 * The calibration half on the example twin, through the real CLI, with the commands a real
 * checkout gets: a fit stopped after a checkpoint resumes with the remaining epochs only (the real
 * `--epochs` is additional on resume), and an area whose worker item fails (the worker exits 0)
 * fails its own target with the item's error.
 */
describe('calibration on the example (real commands)', () => {
  let repo: string;
  let root: string;
  const cache = (name: string) => join(root, name);
  const vars = [...SMALL.filter((v) => !v.startsWith('EPOCHS=')), 'EPOCHS=250', 'LOG_FREQ=100'];
  const build = (goals: string[], cacheName: string, env: Record<string, string> = {}, extra: string[] = []) =>
    cli([...goals, `REPO=${repo}`, ...vars, '--json', ...extra], { cache: cache(cacheName), env });
  const runDir = (r: CliResult, name: string) => join(cache(name), 'runs', summary(r).runId as string);
  const failure = (r: CliResult, target: string) => r.events.find((e) => e.event === 'target' && e.target === target);

  beforeAll(() => {
    repo = exampleRepo();
    root = tempDir('calibration-e2e');
  });
  afterAll(() => cleanup(repo, root));

  it('a fit stopped after its checkpoint resumes with the remaining epochs: 250 in all, as an uninterrupted fit', async () => {
    const stop = { EXAMPLE_FIT_FAIL_AT_EPOCH: '100' };
    const stopped = await build(['fit-regional'], 'resume', stop);
    expect(stopped.code).toBe(1);
    expect(failure(stopped, 'fit-regional')).toMatchObject({ outcome: 'failed' });

    const resumed = await build(['fit-regional'], 'resume', stop);
    expect(resumed.code, resumed.stderr).toBe(0);
    const dir = runDir(resumed, 'resume');
    const log = readFileSync(join(dir, 'logs', 'fit-regional.log'), 'utf8');
    expect(log).toMatch(/fit: checkpoint \S+\/checkpoints\/[0-9a-f]{32}\/calibration_weights\.checkpoint\.pt at epoch 100 of 250; running 150 more/);
    expect(log).toMatch(/--epochs 150 --resume-from|Continuing for 150 additional epochs \(total after run: 250\)/);
    const config = JSON.parse(readFileSync(join(dir, 'artifacts', 'unified_run_config.json'), 'utf8'));
    expect(config).toMatchObject({ epochs: 150, epochs_total: 250, resume_from: 'calibration_weights.checkpoint.pt' });
    // The epoch log was kept beside the checkpoint and appended: one row set per 100 epochs and the last.
    const rows = readFileSync(join(dir, 'artifacts', 'calibration_log.csv'), 'utf8').trim().split('\n').slice(1);
    const epochs = rows.map((r) => Number(r.split(',').at(-7)));
    const perEpoch = new Map<number, number>();
    for (const e of epochs) perEpoch.set(e, (perEpoch.get(e) ?? 0) + 1);
    expect([...perEpoch.keys()]).toEqual([100, 200, 250]);
    expect(new Set(perEpoch.values()).size).toBe(1);

    // Not one epoch more: the weights equal those of a fit that ran its 250 epochs at once (its cache serves the next test).
    const straight = await build(['fit-regional'], 'straight');
    expect(straight.code, straight.stderr).toBe(0);
    const weights = (r: CliResult, name: string) => readFileSync(join(runDir(r, name), 'artifacts', 'calibration_weights.npy'));
    expect(weights(resumed, 'resume').equals(weights(straight, 'straight'))).toBe(true);
  });

  it("an area whose worker item fails fails its own target with the item's error; the others build", async () => {
    const goals = ['h5:states/DE', 'h5:districts/DE-01', 'h5:cities/NYC'];
    const r = await build(goals, 'straight', { EXAMPLE_WORKER_FAIL_ITEMS: 'district:DE-01' }, ['-k']);
    expect(r.code).toBe(1);
    const o = outcomes(r);
    expect(o.get('h5:districts/DE-01')).toBe('failed');
    expect(o.get('h5:states/DE')).toBe('built');
    expect(o.get('h5:cities/NYC')).toBe('built');
    const dir = runDir(r, 'straight');
    expect(readFileSync(join(dir, 'logs', 'h5_districts_DE-01.log'), 'utf8')).toMatch(
      /run_areas: error: area district:DE-01 failed: EXAMPLE_WORKER_FAIL_ITEMS: injected failure of district:DE-01/,
    );
    // The built areas kept their validation rows (the 16 columns of validation_results.csv).
    const de = JSON.parse(readFileSync(join(dir, 'validation', 'states', 'DE.json'), 'utf8'));
    expect(de.item).toBe('state:DE');
    expect(de.rows.length).toBeGreaterThan(0);
    expect(Object.keys(de.rows[0])).toHaveLength(16);
    expect(de.rows.every((row: { area_type: string; area_id: string }) => row.area_type === 'states' && row.area_id === 'DE')).toBe(true);

    // The knob is declared environment (in the keys): without it, every area builds.
    const again = await build(goals, 'straight');
    expect(again.code, again.stderr).toBe(0);
    expect(outcomes(again).get('h5:districts/DE-01')).toBe('built');
  });
});
