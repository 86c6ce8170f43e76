import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cache } from '../src/caching/cache.ts';
import { DigestMemo } from '../src/caching/digest-memo.ts';
import type { Event } from '../src/report/events.ts';
import type { ActionSpec, ExecOutcome, Executor } from '../src/executors/executor.ts';
import { Graph } from '../src/graph.ts';
import { Scheduler } from '../src/scheduler.ts';
import type { Node, Pipeline } from '../src/target.ts';
import { cleanup, cli, exampleRepo, scratchDirs } from './helpers.ts';

/**
 * A goal naming a fan-out item (`h5:states/ZZ`) is checked as soon as the item list is known,
 * before the expensive upstreams run, and fails as one clear usage error, never an unhandled
 * rejection (issue 12, item 5). In -n, when the list is not known yet, the plan says so.
 */
class WritingExecutor implements Executor {
  readonly kind = 'local';
  readonly calls: string[] = [];
  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    this.calls.push(spec.target);
    for (const out of spec.outputs) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, spec.target === 'list' ? JSON.stringify(['aa', 'bb']) : spec.target);
    }
    return { ok: true, durationMs: 1 };
  }
}

const target = (name: string, deps: string[]): Node => ({
  kind: 'target',
  target: { name, deps, sources: [], vars: [], command: () => [name], outputs: [`out/${name}.txt`] },
});

/** `list` is cheap and names the items; `fit` is the expensive upstream the items also read. */
const pipeline: Pipeline = {
  defaultGoals: ['items'],
  nodes: [
    target('list', []),
    target('fit', ['list']),
    {
      kind: 'fanout',
      fanout: {
        name: 'items', deps: ['list', 'fit'], childPrefix: 'item:',
        expand: ({ readJson }) => (readJson('out/list.txt') as string[]).map((id) => ({ name: `item:${id}`, deps: [], sources: [], vars: [], command: () => [id], outputs: [`out/${id}.txt`] })),
      },
    },
  ],
};

describe('fan-out items named by a goal', () => {
  const scratch = scratchDirs('fanout-items');

  async function walk(goals: string[], dry: boolean) {
    const dir = scratch();
    mkdirSync(join(dir, 'src'));
    const memo = new DigestMemo(join(dir, 'cache', 'digests.json'));
    await memo.load();
    const events: Event[] = [];
    const executor = new WritingExecutor();
    const report = await new Scheduler({
      graph: new Graph(pipeline), goals, vars: {}, cache: new Cache(join(dir, 'cache'), memo), memo, sourceRoot: join(dir, 'src'), adaptersDir: join(dir, 'adapters'),
      ...(dry ? {} : { workspace: { runDir: join(dir, 'run'), ensureCwd: async () => dir } }),
      executors: { local: executor }, executorFor: () => 'local', baseEnv: {}, env: {}, cacheDir: join(dir, 'cache'), envsDir: join(dir, 'cache', 'envs'),
      jobs: 1, keepGoing: true, emit: (e) => events.push(e), signal: new AbortController().signal, record: () => undefined,
    }).run();
    return { report, events, executor };
  }

  it('an item the list lacks stops the walk once the list is built, before the other upstreams run', async () => {
    const { report, events, executor } = await walk(['item:zz'], false);
    expect(report.usageError?.message).toMatch(/unknown target 'item:zz': not an item of items/);
    expect(executor.calls).toEqual(['list']);
    expect(events).toContainEqual(expect.objectContaining({ event: 'target', target: 'items', outcome: 'failed', reason: 'unknown-target' }));
  });

  it('a known item builds', async () => {
    const { report, executor } = await walk(['item:aa'], false);
    expect(report.usageError).toBeUndefined();
    expect(executor.calls).toEqual(['list', 'fit', 'item:aa']);
  });

  it('-n says the list is not known yet, naming the item it cannot check', async () => {
    const { report, events } = await walk(['item:zz'], true);
    expect(report.usageError).toBeUndefined();
    const plan = events.find((e): e is Extract<Event, { event: 'plan' }> => e.event === 'plan' && e.target === 'items');
    expect(plan?.why).toMatch(/items are not known yet.*item:zz cannot be checked until then/);
  });

  describe('the CLI', () => {
    let repo: string;
    beforeAll(() => {
      repo = exampleRepo();
    });
    afterAll(() => cleanup(repo));

    it('-n h5:states/ZZ on a fresh cache says the area list is not known yet', async () => {
      const r = await cli(['h5:states/ZZ', `REPO=${repo}`, '-n'], { cache: join(scratch(), 'cache') });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/areas .*not known yet.*h5:states\/ZZ cannot be checked until then/);
      expect(r.stderr).not.toMatch(/internal error/);
    });
  });
});
