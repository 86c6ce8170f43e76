import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, commitChange, exampleRepo, scratchDirs, SMALL } from './helpers.ts';

/**
 * Failures name what failed (issue 12, item 8): the resolved command on the terminal and at the
 * top of the target's log, tracebacks pointing into the repository the user edits, the failed
 * targets in the summary; `-n` ends with a count and whether the run would publish.
 */
describe('failure report', () => {
  let repo: string;
  const scratch = scratchDirs('failure-report');
  beforeAll(() => {
    repo = exampleRepo();
    const file = 'policyengine_us_data/datasets/acs/acs.py';
    commitChange(repo, file, `raise RuntimeError("acs is broken")\n${readFileSync(join(repo, file), 'utf8')}`, 'break acs');
  });
  afterAll(() => cleanup(repo));

  it('a failed target prints its resolved command and a traceback in the repository, and the summary names it', async () => {
    const cache = join(scratch(), 'cache');
    const r = await cli(['acs', `REPO=${repo}`, ...SMALL], { cache });
    expect(r.code, r.stderr).toBe(1);
    // The command as the log heads it (tasks pass the sizes as EXAMPLE_* and wrap the storage step's copy-then-rename).
    const command = /^\s*(\$ cd (\S+) && env EXAMPLE_HOUSEHOLDS=300 EXAMPLE_SEED=42 .*)$/m.exec(r.stdout);
    expect(command, r.stdout).not.toBeNull();
    const python = /^.* (\S+) -m policyengine_us_data\.datasets\.acs\.acs$/m.exec(r.stdout);
    expect(python, r.stdout).not.toBeNull();
    expect(python![1]).toMatch(/python/);
    expect(r.stdout).not.toMatch(/\{python\}|\{run\}/);
    expect(r.stdout).toContain(`File "${repo}/policyengine_us_data/datasets/acs/acs.py"`);
    expect(r.stdout).not.toMatch(/runs\/[^/]+\/tree\/policyengine_us_data/);
    expect(r.stdout).toMatch(/\nfailed targets: acs\n/);
    const runId = /\(run (\S+)\)/.exec(r.stdout)![1]!;
    const log = readFileSync(join(cache, 'runs', runId, 'logs', 'acs.log'), 'utf8');
    expect(log.split('\n')[0]).toBe(command![1]);
    expect(r.stdout.split(command![1]!)).toHaveLength(2); // once, not repeated by the log tail
  });

  it('-n ends with how many targets would run and whether the run would publish; --json ends with a summary event', async () => {
    const cache = join(scratch(), 'cache');
    const plain = await cli(['pipeline', `REPO=${repo}`, ...SMALL, '-n', 'PUBLISH=0'], { cache });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.trimEnd().split('\n').at(-1)).toMatch(/^dry run: \d+ would run, \d+ cached; the run would not publish$/);
    const json = await cli(['pipeline', `REPO=${repo}`, ...SMALL, '-n', '--json'], { cache });
    const last = json.events.at(-1)!;
    expect(last).toMatchObject({ event: 'summary', status: 'dry-run', wouldPublish: true });
    expect(last.wouldRun).toBe(json.events.filter((e) => e.event === 'plan' && e.target !== 'areas').length);
  });
});
