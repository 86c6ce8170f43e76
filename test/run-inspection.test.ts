import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRunId, runDir, startingMeta } from '../src/run.ts';
import { cli, scratchDirs } from './helpers.ts';

/**
 * `logs` for foreground runs and for one target, `status` with the run's variables and filters
 * (issue 12, item 13). The run is a real run directory laid out as a foreground build leaves it:
 * meta.json and logs/<target>.log, no run.log.
 */
describe('inspecting a run', () => {
  const scratch = scratchDirs('run-inspection');

  function foregroundRun(cache: string): string {
    const runId = makeRunId('1.0.0', 'abcdef0123456789', new Date(Date.UTC(2026, 0, 2)));
    const dir = runDir(cache, runId);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const meta = startingMeta({ version: '1.0.0', sha: 'abcdef0123456789', branch: 'main', repo: cache, dirty: false, goals: [], vars: { SEED: '31' } }, runId, 1, new Date());
    meta.status = 'failed';
    meta.targets = {
      database: { outcome: 'cached', key: 'a'.repeat(32) },
      'h5:states/AL': { outcome: 'built', key: 'b'.repeat(32) },
      'h5:states/AK': { outcome: 'failed', error: 'command exited with 1' },
    };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
    writeFileSync(join(dir, 'logs', 'h5_states_AL.log'), '$ python worker AL\nAL done\n');
    writeFileSync(join(dir, 'logs', 'h5_states_AK.log'), '$ python worker AK\nTraceback: AK broke\n');
    return runId;
  }

  it('logs of a foreground run prints each target log; logs <target> prints one', async () => {
    const cache = scratch();
    const runId = foregroundRun(cache);
    const all = await cli(['logs', `RUN_ID=${runId}`], { cache });
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain('== h5_states_AK ==\n$ python worker AK\nTraceback: AK broke\n');
    expect(all.stdout).toContain('AL done');
    const one = await cli(['logs', `RUN_ID=${runId}`, 'h5:states/AK'], { cache });
    expect(one.stdout).toBe('$ python worker AK\nTraceback: AK broke\n');
    const cached = await cli(['logs', `RUN_ID=${runId}`, 'database'], { cache });
    expect(cached.code).toBe(2);
    expect(cached.stderr).toMatch(/database has no log in run .* \(it was cached\)/);
  });

  it('status shows the run variables and filters by a glob and --failed', async () => {
    const cache = scratch();
    const runId = foregroundRun(cache);
    const all = await cli(['status', `RUN_ID=${runId}`], { cache });
    expect(all.stdout).toMatch(/^variables SEED=31$/m);
    const states = await cli(['status', `RUN_ID=${runId}`, 'h5:states/*'], { cache });
    expect(states.stdout).toMatch(/h5:states\/AL/);
    expect(states.stdout).not.toMatch(/^\s+cached\s+database/m);
    const failed = await cli(['status', `RUN_ID=${runId}`, '--failed'], { cache });
    expect(failed.stdout).toMatch(/failed\s+h5:states\/AK/);
    expect(failed.stdout).not.toMatch(/h5:states\/AL/);
  });
});
