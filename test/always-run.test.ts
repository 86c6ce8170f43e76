import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, git, outcomes, scratchDirs, summary, type CliResult } from './helpers.ts';

/**
 * Target.alwaysRun through the real CLI: a target that reads a "remote head" outside the pinned
 * tree runs in every build, so an upstream change is a rebuild and never a stale hit, while an
 * unchanged head leaves its dependants cached (early cutoff) and no build is replayed.
 */
const declaration = (remote: string) => `
export function makePipeline() {
  const target = (t) => ({ deps: [], sources: [], vars: [], ...t });
  return {
    defaultGoals: ['download'],
    nodes: [
      { kind: 'target', target: target({ name: 'revision', alwaysRun: true,
        command: () => ['sh', '-c', 'cat ${remote} > {run}/artifacts/revision.txt'], outputs: ['artifacts/revision.txt'] }) },
      { kind: 'target', target: target({ name: 'download', deps: ['revision'], sources: ['pin.txt'],
        command: () => ['sh', '-c', 'cp {run}/artifacts/revision.txt {run}/artifacts/data.txt'], outputs: ['artifacts/data.txt'] }) },
    ],
  };
}
`;

describe('always-run targets (Target.alwaysRun)', () => {
  const scratch = scratchDirs('always-run');
  let root: string;
  let remote: string;
  const build = (args: string[] = []): Promise<CliResult> =>
    cli(['pipeline', `REPO=${join(root, 'repo')}`, '--json', ...args], { cache: join(root, 'cache'), env: { BUILD_TASKS: join(root, 'tasks.mjs') } });
  const ok = (r: CliResult) => {
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return outcomes(r);
  };

  beforeAll(() => {
    root = scratch();
    remote = join(root, 'remote-head');
    writeFileSync(remote, 'sha-1\n');
    writeFileSync(join(root, 'tasks.mjs'), declaration(remote));
    const repo = join(root, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'pin.txt'), 'x\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'add', '-A');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'commit', '-q', '-m', 'init');
  });

  it('runs in every build; an unchanged result leaves its dependants cached; a changed one rebuilds them', async () => {
    expect(Object.fromEntries(ok(await build()))).toEqual({ revision: 'built', download: 'built' });

    const same = await build();
    expect(Object.fromEntries(ok(same))).toEqual({ revision: 'built', download: 'cached' });
    expect(summary(same).replayedFrom).toBeUndefined();

    writeFileSync(remote, 'sha-2\n');
    const moved = await build();
    expect(Object.fromEntries(ok(moved))).toEqual({ revision: 'built', download: 'built' });
    expect(readFileSync(join(root, 'cache', 'runs', summary(moved).runId as string, 'artifacts/data.txt'), 'utf8')).toBe('sha-2\n');

    const dry = await build(['-n']);
    expect(dry.code).toBe(0);
    const plan = dry.events.filter((e) => e.event === 'plan');
    expect(plan.map((e) => [e.target, e.why])).toEqual([
      ['revision', 'runs in every build (it reads something outside the pinned tree)'],
      ['download', 'upstream revision would run (unless its outputs come out identical)'],
    ]);
  });
});
