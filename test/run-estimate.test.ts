import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Event } from '../src/report/events.ts';
import { humanDuration, ttyLogger } from '../src/report/logger.ts';
import { cli, commitChange, git, scratchDirs, summary, type CliResult } from './helpers.ts';

/**
 * What a long run shows (issue 12, item 7), through the real CLI and real processes: a "fit" that
 * prints its epochs, keeps its epoch in `{checkpoint}` and can be made to stop half-way (a flag
 * file outside the pinned tree, so the action key stays the same), and a report that copies its
 * result. Estimates come from the durations the earlier runs recorded in their meta.json.
 */
const declaration = (flag: string) => `
export function makePipeline() {
  const target = (t) => ({ deps: [], sources: [], vars: [], ...t });
  const fit = [
    'start=1; if [ -f {checkpoint}/epoch ]; then start=$(( $(cat {checkpoint}/epoch) + 1 )); echo "resuming at epoch $start"; fi',
    'for i in $(seq $start 4); do echo "epoch $i loss 0.$i"; sleep 0.2; echo $i > {checkpoint}/epoch;',
    '  if [ $i = 2 ] && [ -f ${flag} ]; then echo "stopped at epoch 2"; exit 1; fi; done',
    'echo "4 epochs" > {run}/artifacts/weights.txt',
  ].join('\\n');
  return {
    defaultGoals: ['report'],
    nodes: [
      { kind: 'target', target: target({ name: 'fit', sources: ['pin.txt'], command: () => ['sh', '-c', fit], outputs: ['artifacts/weights.txt'] }) },
      { kind: 'target', target: target({ name: 'report', deps: ['fit'],
        command: () => ['sh', '-c', 'sleep 0.1; cp {run}/artifacts/weights.txt {run}/artifacts/report.txt'], outputs: ['artifacts/report.txt'] }) },
    ],
  };
}
`;

type Start = Extract<Event, { event: 'target-start' }>;
type Done = Extract<Event, { event: 'target' }>;

describe('estimates, early cutoff and resumed checkpoints, from real runs', () => {
  const scratch = scratchDirs('run-estimate');
  let root: string;
  let repo: string;
  let flag: string;
  const build = (args: string[] = ['--json']): Promise<CliResult> =>
    cli(['pipeline', `REPO=${repo}`, '-j', '1', ...args], { cache: join(root, 'cache'), env: { BUILD_TASKS: join(root, 'tasks.mjs') } });
  const ok = (r: CliResult) => {
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r;
  };
  const start = (r: CliResult, target: string) => r.events.find((e) => e.event === 'target-start' && e.target === target) as unknown as Start;
  const done = (r: CliResult, target: string) => r.events.find((e) => e.event === 'target' && e.target === target) as unknown as Done;
  const record = (runId: string, target: string) => JSON.parse(readFileSync(join(root, 'cache', 'runs', runId, 'meta.json'), 'utf8')).targets[target] as Record<string, unknown>;
  const recorded = (r: CliResult, target: string) => record(summary(r).runId as string, target).durationMs as number;

  beforeAll(() => {
    root = scratch();
    repo = join(root, 'repo');
    flag = join(root, 'stop-at-epoch-2');
    writeFileSync(join(root, 'tasks.mjs'), declaration(flag));
    mkdirSync(repo);
    writeFileSync(join(repo, 'pin.txt'), '1\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'config', 'user.email', 't@example.com');
    git(repo, 'config', 'user.name', 'T');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'init');
  });

  it('the first run has no history to estimate from; the next one estimates from the durations the first recorded, and marks the identical output', async () => {
    const first = ok(await build());
    expect(start(first, 'fit').history).toEqual({ previousMs: [] });
    expect(start(first, 'fit').runEstimate).toEqual({ leftMs: 0, unestimated: 2 });
    expect(done(first, 'fit').identicalOutput).toBeUndefined();
    expect(done(first, 'fit').resumedFromCheckpoint).toBeUndefined();
    const fitMs = recorded(first, 'fit');
    const reportMs = recorded(first, 'report');
    expect(fitMs).toBe(done(first, 'fit').durationMs);

    // A new source: the fit runs again, and writes the same bytes.
    commitChange(repo, 'pin.txt', '2\n');
    const second = ok(await build());
    const fit = start(second, 'fit');
    expect(fit.history).toEqual({ previousMs: [fitMs], medianMs: fitMs });
    // The fit just started (elapsed ~0) and the report waits, one job: the time left is their sum.
    expect(fit.runEstimate!.unestimated).toBe(0);
    expect(Math.abs(fit.runEstimate!.leftMs - (fitMs + reportMs))).toBeLessThanOrEqual(20);
    expect(done(second, 'fit')).toMatchObject({ outcome: 'built', identicalOutput: true });
    expect(done(second, 'report').outcome).toBe('cached');
    // The mark is in the run's record too, and status shows it later.
    const secondId = summary(second).runId as string;
    expect(record(secondId, 'fit')).toMatchObject({ outcome: 'built', identicalOutput: true });
    expect(record(secondId, 'report').identicalOutput).toBeUndefined();
    const shown = await cli(['status', `RUN_ID=${secondId}`], { cache: join(root, 'cache') });
    expect(shown.stdout).toMatch(/^\s+built\s+fit \S+ \(output identical to the last run's: downstream stays cached \(early cutoff\)\)$/m);

    // The terminal view of that event names the first run's duration.
    let written = '';
    const tty = { columns: 200, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
    const view = ttyLogger(tty);
    view.emit(fit);
    view.close();
    expect(written).toContain(`fit 0s ~${humanDuration(fitMs)} left (last runs: ${humanDuration(fitMs)})`);
    expect(written).toMatch(new RegExp(`^\\[0/0\\] 0s, ~${humanDuration(fitMs + reportMs)} left \\|`));
  });

  it('a fit stopped half-way resumes from its checkpoint, and says so', async () => {
    commitChange(repo, 'pin.txt', '3\n');
    writeFileSync(flag, '');
    const stopped = await build();
    expect(stopped.code).toBe(1);
    expect(done(stopped, 'fit')).toMatchObject({ outcome: 'failed' });
    expect(done(stopped, 'fit').resumedFromCheckpoint).toBeUndefined();
    rmSync(flag);

    // Off a terminal (CI): the final line of the fit says it resumed, and that its output is the same.
    const resumed = ok(await build([]));
    expect(resumed.stdout).toMatch(/^built\s+fit \d+\.\ds \(resumed from its checkpoint; output identical to the last run's: downstream stays cached \(early cutoff\)\)$/m);
    const runId = /\(run (\S+)\)/.exec(resumed.stdout)![1]!;
    const log = readFileSync(join(root, 'cache', 'runs', runId, 'logs', 'fit.log'), 'utf8');
    expect(record(runId, 'fit')).toMatchObject({ outcome: 'built', resumedFromCheckpoint: true, identicalOutput: true });
    expect(log).toContain('resuming at epoch 3');
    expect(log).not.toContain('epoch 1 loss');
    expect(existsSync(join(root, 'cache', 'runs', runId, 'artifacts', 'report.txt'))).toBe(true);
  });
});
