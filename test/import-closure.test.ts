import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, cleanup, cli, commitChange, exampleRepo, git, SMALL, summary, tempDir, type CliResult } from './helpers.ts';

/**
 * Sources are what runs: a file that only the area worker imports, matched by no source glob,
 * is part of every area's key through the worker's static import closure (pythonModules). An
 * edit to it rebuilds the areas and nothing upstream; before the closure, it was a stale hit.
 */
describe('import-closure keys on the example twin', () => {
  let repo: string;
  let cache: string;
  const helper = 'policyengine_us_data/area_labels.py';
  const run = (...args: string[]): Promise<CliResult> => cli(['pipeline', `REPO=${repo}`, ...SMALL, '--json', ...args], { cache });

  beforeAll(() => {
    repo = exampleRepo();
    cache = join(tempDir('closure'), 'cache');
    // A helper module only the worker imports, in no glob of any target (COMMON is utils/**).
    writeFileSync(join(repo, helper), 'LABEL_VERSION = 1\n');
    const worker = join(repo, 'modal_app/worker_script.py');
    const text = readFileSync(worker, 'utf8');
    const at = text.search(/^import (?!__future__)/m);
    expect(at).toBeGreaterThanOrEqual(0);
    writeFileSync(worker, `${text.slice(0, at)}from policyengine_us_data import area_labels  # noqa: F401\n${text.slice(at)}`);
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'worker imports a helper');
  });
  afterAll(() => cleanup(repo, join(cache, '..')));

  it('an edit to a helper only the area worker imports rebuilds the areas and nothing upstream', async () => {
    const first = await run();
    expect(first.code, first.stderr).toBe(0);
    expect(summary(first).status).toBe('completed');

    commitChange(repo, helper, 'LABEL_VERSION = 2\n');
    const e = await cli(['explain', 'h5:states/AL', `REPO=${repo}`, ...SMALL], { cache });
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(
      /source policyengine_us_data\/area_labels\.py: content changed \([0-9a-f]{8} -> [0-9a-f]{8}\) \(imported: modal_app\.worker_script -> modal_app\/worker_script\.py -> policyengine_us_data\/area_labels\.py\)/,
    );

    const second = await run();
    expect(second.code, second.stderr).toBe(0);
    const rebuilt = built(second);
    const areas = rebuilt.filter((t) => t.startsWith('h5:'));
    expect(areas).toHaveLength(489);
    // The area files come out identical, so what reads them (the manifest) stays cached; the
    // repository's unit tests read all of its code, so they run again.
    expect(rebuilt.filter((t) => !t.startsWith('h5:'))).toEqual(['unit-tests']);
  });
});
