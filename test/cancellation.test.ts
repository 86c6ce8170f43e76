import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cache } from '../src/caching/cache.ts';
import { DigestMemo } from '../src/caching/digest-memo.ts';
import type { Event } from '../src/report/events.ts';
import type { ActionSpec, ExecOutcome, Executor } from '../src/executors/executor.ts';
import { Graph } from '../src/graph.ts';
import { RunRecorder } from '../src/recorder.ts';
import { makeRunId, runDir, startingMeta } from '../src/run.ts';
import { Scheduler } from '../src/scheduler.ts';
import type { Node } from '../src/target.ts';
import { cli, scratchDirs } from './helpers.ts';

/**
 * Cancellation is its own outcome (issue 12, item 3): a target stopped by Ctrl-C is `cancelled` in
 * the events, in meta.json and in `status`, never counted or worded as a failure.
 */
const target = (name: string, deps: string[]): Node => ({
  kind: 'target',
  target: { name, deps, sources: [], vars: [], command: () => [name], outputs: [`out/${name}.txt`] },
});

/** `fast` writes its output; `slow` is running when the user presses Ctrl-C (the signal aborts), and the executor reports it cancelled as the local one does. */
class InterruptedExecutor implements Executor {
  readonly kind = 'local';
  private readonly controller: AbortController;
  constructor(controller: AbortController) {
    this.controller = controller;
  }
  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    if (spec.target === 'slow') {
      this.controller.abort();
      return { ok: false, failure: { reason: 'cancelled', message: `${spec.target}: cancelled`, logTail: '' } };
    }
    for (const out of spec.outputs) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, spec.target);
    }
    return { ok: true, durationMs: 1 };
  }
}

describe('cancellation', () => {
  const scratch = scratchDirs('cancel');

  it('a target stopped by the signal is cancelled in events, meta.json and status, not failed', async () => {
    const dir = scratch();
    const cacheDir = join(dir, 'cache');
    mkdirSync(join(dir, 'src'));
    const memo = new DigestMemo(join(cacheDir, 'digests.json'));
    await memo.load();
    const runId = makeRunId('1.0.0', 'abcdef0123456789', new Date());
    const rd = runDir(cacheDir, runId);
    mkdirSync(rd, { recursive: true });
    const recorder = new RunRecorder(rd, startingMeta({ version: '1.0.0', sha: 'abcdef0123456789', branch: 'main', repo: dir, dirty: false, goals: ['after'], vars: {} }, runId, process.pid, new Date()));
    const controller = new AbortController();
    const events: Event[] = [];
    const report = await new Scheduler({
      graph: new Graph({ nodes: [target('fast', []), target('slow', ['fast']), target('after', ['slow'])], defaultGoals: ['after'] }),
      goals: ['after'], vars: {}, cache: new Cache(cacheDir, memo), memo, sourceRoot: join(dir, 'src'), adaptersDir: join(dir, 'adapters'),
      workspace: { runDir: rd, ensureCwd: async () => dir }, executors: { local: new InterruptedExecutor(controller) }, executorFor: () => 'local',
      baseEnv: {}, env: {}, cacheDir, envsDir: join(cacheDir, 'envs'), jobs: 1, keepGoing: false, emit: (e) => events.push(e), signal: controller.signal, record: recorder.record,
    }).run();
    await recorder.finish('cancelled');

    const outcomeOf = (name: string) => events.find((e): e is Extract<Event, { event: 'target' }> => e.event === 'target' && e.target === name)?.outcome;
    expect(outcomeOf('fast')).toBe('built');
    expect(outcomeOf('slow')).toBe('cancelled');
    expect(report).toMatchObject({ built: 1, failed: 0, cancelled: 1, aborted: true });

    const meta = JSON.parse(readFileSync(join(rd, 'meta.json'), 'utf8'));
    expect(meta.targets.slow.outcome).toBe('cancelled');
    expect(meta.counts).toMatchObject({ failed: 0, cancelled: 1 });

    const status = await cli(['status', `RUN_ID=${runId}`], { cache: cacheDir });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/counts .*0 failed, 1 cancelled/);
    expect(status.stdout).toMatch(/cancelled\s+slow/);
    expect(status.stdout).not.toMatch(/failed\s+slow/);
  });
});
