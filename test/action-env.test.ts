import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, exampleRepo, git, outcomes, scratchDirs, SHARED_ENVS, summary } from './helpers.ts';
import { bundleTasksModule } from './tasks-module.ts';

/**
 * What every action sees of the pipeline's Python and of the run's provenance: the environment's
 * bin first on PATH (the real `make database` calls a bare `python`), GIT_COMMIT / GIT_BRANCH of
 * the pinned run, and no enclosing git repository (the real `get_git_provenance` asks git first),
 * even when the cache lives inside a checkout. None of it changes a key.
 */
const scratch = scratchDirs('action-env');

const PIPELINE = `
import { pythonEnvTarget } from '@tasks/python-env.ts';
const PROBE = 'set -e; { command -v python; echo "$GIT_COMMIT"; echo "$GIT_BRANCH"; git rev-parse HEAD 2>/dev/null || echo no-repository; } > {run}/artifacts/probe.txt';
export function makePipeline(profile) {
  return {
    defaultGoals: ['probe'],
    nodes: [
      { kind: 'target', target: pythonEnvTarget(profile) },
      { kind: 'target', target: { name: 'probe', deps: ['python-env'], sources: [], vars: [], command: () => ['sh', '-c', PROBE], outputs: ['artifacts/probe.txt'] } },
    ],
  };
}
`;

describe('the action environment', () => {
  let repo: string;
  let tasks: string;
  let cache: string;
  beforeAll(async () => {
    repo = exampleRepo();
    const outer = scratch();
    tasks = await bundleTasksModule(outer, PIPELINE);
    // The cache inside a git checkout: git run in an action's tree would find this one.
    git(outer, 'init', '-q', '-b', 'trunk');
    git(outer, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'outer');
    cache = join(outer, 'cache');
  });

  it("puts the environment's bin first on PATH and gives the run's provenance, not an enclosing repository's", async () => {
    const r = await cli(['pipeline', `REPO=${repo}`, '--json'], { cache, env: { BUILD_TASKS: tasks } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const envKey = r.events.find((e) => e.event === 'target' && e.target === 'python-env')!.key as string;
    const probe = readFileSync(join(cache, 'runs', summary(r).runId as string, 'artifacts', 'probe.txt'), 'utf8').trim().split('\n');
    expect(probe).toEqual([join(SHARED_ENVS, envKey, 'bin', 'python'), git(repo, 'rev-parse', 'HEAD'), 'main', 'no-repository']);
  });

  it('the branch is not in any key', async () => {
    git(repo, 'branch', '-f', 'other', 'main');
    const r = await cli(['pipeline', `REPO=${repo}`, 'BRANCH=other', '-n', '--json'], { cache, env: { BUILD_TASKS: tasks } });
    expect(r.code, r.stderr).toBe(0);
    expect(outcomes(r).get('probe')).toBe('cached');
  });
});
