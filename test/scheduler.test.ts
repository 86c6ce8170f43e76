import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cache } from '../src/caching/cache.ts';
import { DigestMemo } from '../src/caching/digest-memo.ts';
import type { Event } from '../src/report/events.ts';
import type { ActionSpec, ExecOutcome, Executor } from '../src/executors/executor.ts';
import { Graph } from '../src/graph.ts';
import { Scheduler } from '../src/scheduler.ts';
import { RunHistory } from '../src/run-history.ts';
import type { Node, Pipeline, Target } from '../src/target.ts';
import { cleanup, tempDir } from './helpers.ts';

/**
 * The scheduler against real files and a real cache, with an executor whose commands are small
 * functions the test controls (wireit-style): concurrency, failures and early cutoff are checked
 * without spawning processes or sleeping.
 */
type Behaviour = (spec: ActionSpec) => Promise<void> | void;

class ScriptedExecutor implements Executor {
  readonly kind = 'local';
  readonly calls: string[] = [];
  running = 0;
  maxRunning = 0;
  private readonly behaviours: Record<string, Behaviour>;
  constructor(behaviours: Record<string, Behaviour>) {
    this.behaviours = behaviours;
  }
  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    this.calls.push(spec.target);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await (this.behaviours[spec.target] ?? this.behaviours['*'])!(spec);
      return { ok: true, durationMs: 1 };
    } catch (error) {
      return { ok: false, failure: { reason: 'command-failed', message: (error as Error).message, logTail: '' } };
    } finally {
      this.running--;
    }
  }
}

const write = (spec: ActionSpec, content: string) => {
  for (const out of spec.outputs) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, content);
  }
};

const target = (name: string, deps: string[], extra: Partial<Target> = {}): Node => ({
  kind: 'target',
  target: { name, deps, sources: [], vars: [], command: () => [name], outputs: [`out/${name}.txt`], ...extra },
});

describe('scheduler', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('sched');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a.py'), 'print(1)\n');
  });
  afterEach(() => cleanup(dir));

  async function run(pipeline: Pipeline, executor: Executor, opts: { goals?: string[]; jobs?: number; keepGoing?: boolean; runName?: string; history?: RunHistory } = {}) {
    const memo = new DigestMemo(join(dir, 'cache', 'digests.json'));
    await memo.load();
    const events: Event[] = [];
    const runDir = join(dir, 'runs', opts.runName ?? String(Math.random()));
    const scheduler = new Scheduler({
      graph: new Graph(pipeline), goals: opts.goals ?? pipeline.defaultGoals, vars: {}, cache: new Cache(join(dir, 'cache'), memo), memo,
      sourceRoot: join(dir, 'src'), adaptersDir: join(dir, 'adapters'), workspace: { runDir, ensureCwd: async () => dir },
      executors: { local: executor }, executorFor: () => 'local', baseEnv: {}, env: {}, cacheDir: join(dir, 'cache'), envsDir: join(dir, 'cache', 'envs'),
      jobs: opts.jobs ?? 2, keepGoing: opts.keepGoing ?? false, emit: (e) => events.push(e), signal: new AbortController().signal, record: () => undefined,
      ...(opts.history ? { history: opts.history } : {}),
    });
    const report = await scheduler.run();
    await memo.save();
    const outcome = (name: string) => events.find((e) => e.event === 'target' && e.target === name && true) as { outcome: string } | undefined;
    return { report, events, outcome, runDir };
  }

  it('runs at most -j actions at once and builds each once', async () => {
    const nodes = ['a', 'b', 'c', 'd', 'e'].map((n) => target(n, []));
    const release: (() => void)[] = [];
    const ex = new ScriptedExecutor({ '*': (spec) => new Promise<void>((r) => release.push(() => { write(spec, spec.target); r(); })) });
    const done = run({ nodes, defaultGoals: ['a', 'b', 'c', 'd', 'e'] }, ex, { jobs: 2 });
    for (let i = 0; i < 5; i++) {
      // Wait until as many actions as allowed are blocked in the executor, then let one finish.
      while (release.length < Math.min(2, 5 - i)) await new Promise((r) => setTimeout(r, 1));
      expect(ex.running).toBeLessThanOrEqual(2);
      release.shift()!();
    }
    const { report } = await done;
    expect(report.built).toBe(5);
    expect(ex.maxRunning).toBe(2);
    expect(ex.calls.sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a failure skips dependants; -k keeps building independent targets', async () => {
    const nodes = [target('bad', []), target('child', ['bad']), target('other', [])];
    const behaviours = { bad: () => { throw new Error('boom'); }, '*': (s: ActionSpec) => write(s, 'x') };
    const keep = await run({ nodes, defaultGoals: ['child', 'other'] }, new ScriptedExecutor(behaviours), { keepGoing: true, jobs: 1 });
    expect(keep.outcome('bad')?.outcome).toBe('failed');
    expect(keep.outcome('child')?.outcome).toBe('skipped');
    expect(keep.outcome('other')?.outcome).toBe('built');
  });

  it('early cutoff: a rebuilt target with identical output leaves dependants cached', async () => {
    const nodes = [target('root', [], { sources: ['*.py'] }), target('leaf', ['root'])];
    const ex = () => new ScriptedExecutor({ '*': (s) => write(s, 'same bytes') });
    const first = await run({ nodes, defaultGoals: ['leaf'] }, ex());
    expect(first.report.built).toBe(2);
    writeFileSync(join(dir, 'src', 'a.py'), 'print(1)  # a comment\n');
    const second = ex();
    const again = await run({ nodes, defaultGoals: ['leaf'] }, second);
    expect(again.outcome('root')?.outcome).toBe('built');
    expect(again.outcome('leaf')?.outcome).toBe('cached');
    expect(second.calls).toEqual(['root']);
  });

  it('earlier runs are read only once an action is about to run: a build where everything is cached never reads them', async () => {
    const nodes = [target('root', []), target('leaf', ['root'])];
    const ex = () => new ScriptedExecutor({ '*': (s) => write(s, 'x') });
    const cold = new RunHistory({ cacheDir: join(dir, 'cache') });
    const first = await run({ nodes, defaultGoals: ['leaf'] }, ex(), { history: cold });
    expect(cold.loaded).toBe(true);
    expect(first.events.find((e) => e.event === 'target-start')).toMatchObject({ history: { previousMs: [] } });
    const warm = new RunHistory({ cacheDir: join(dir, 'cache') });
    const again = await run({ nodes, defaultGoals: ['leaf'] }, ex(), { history: warm });
    expect(again.report.cached).toBe(2);
    expect(warm.loaded).toBe(false);
    expect(again.events.some((e) => e.event === 'target' && e.runEstimate !== undefined)).toBe(false);
  });

  it('a corrupt blob is a miss with a warning, then rebuilt', async () => {
    const nodes = [target('only', [])];
    const first = await run({ nodes, defaultGoals: ['only'] }, new ScriptedExecutor({ '*': (s) => write(s, 'good') }));
    const file = join(first.runDir, 'out', 'only.txt');
    chmodSync(file, 0o644);
    writeFileSync(file, 'evil'); // the run file is a hard link to the blob: this corrupts the cache
    const ex = new ScriptedExecutor({ '*': (s) => write(s, 'good') });
    const second = await run({ nodes, defaultGoals: ['only'] }, ex);
    expect(second.events.some((e) => e.event === 'warning' && /corrupt/.test(e.message))).toBe(true);
    expect(second.outcome('only')?.outcome).toBe('built');
    expect(readFileSync(join(second.runDir, 'out', 'only.txt'), 'utf8')).toBe('good');
  });

  it('a corrupt cache entry is reported and never trusted: the target rebuilds', async () => {
    const nodes = [target('only', [])];
    await run({ nodes, defaultGoals: ['only'] }, new ScriptedExecutor({ '*': (s) => write(s, 'good') }));
    const shard = readdirSync(join(dir, 'cache', 'actions'))[0]!;
    const entry = readdirSync(join(dir, 'cache', 'actions', shard)).find((f) => !f.endsWith('.fp.json'))!;
    writeFileSync(join(dir, 'cache', 'actions', shard, entry), '{"key": "not what it claims", "outputs": 7}');
    const ex = new ScriptedExecutor({ '*': (s) => write(s, 'good') });
    const second = await run({ nodes, defaultGoals: ['only'] }, ex);
    expect(second.events.some((e) => e.event === 'warning' && /cache entry [0-9a-f]{32} is corrupt/.test(e.message))).toBe(true);
    expect(ex.calls).toEqual(['only']);
    expect(second.outcome('only')?.outcome).toBe('built');
  });

  it('expands a fan-out from its input bytes; one changed item rebuilds alone', async () => {
    const list = (items: string[]) => (s: ActionSpec) => write(s, JSON.stringify(items));
    const fanout = (items: () => string[]): Pipeline => ({
      defaultGoals: ['total'],
      nodes: [
        target('list', [], { sources: ['*.py'] }),
        {
          kind: 'fanout',
          fanout: {
            name: 'items', deps: ['list'], childPrefix: 'item:',
            expand: ({ readJson }) => (readJson('out/list.txt') as string[]).map((id) => ({
              name: `item:${id}`, deps: [], sources: [], vars: [], command: () => ['make', id.split('=')[0]!, id], outputs: [`out/${id.split('=')[0]}.txt`],
            })),
          },
        },
        target('total', ['items']),
      ],
    });
    const ex1 = new ScriptedExecutor({ list: list(['x=1', 'y=1', 'z=1']), '*': (s) => write(s, s.argv.join(' ')) });
    const first = await run(fanout(() => []), ex1);
    expect(first.report.built).toBe(5);
    writeFileSync(join(dir, 'src', 'a.py'), 'changed');
    const ex2 = new ScriptedExecutor({ list: list(['x=1', 'y=2', 'z=1']), '*': (s) => write(s, s.argv.join(' ')) });
    const second = await run(fanout(() => []), ex2);
    expect(ex2.calls.sort()).toEqual(['item:y=2', 'list', 'total'].sort());
    expect(second.outcome('item:x=1')?.outcome).toBe('cached');
  });
});
