import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cliEnv, git, ROOT, tempDir } from './helpers.ts';

/**
 * The bundle's loader (scripts/cli-loader.mjs) and its V8 code cache, on a copy of dist/ run as a
 * real process: the cache is written after the first build of each path (walk, then replay, which
 * extends it), not after every build, and a cache V8 rejects is replaced with its markers.
 */
const DECLARATION = `
export function makePipeline() {
  return {
    defaultGoals: ['out'],
    nodes: [{ kind: 'target', target: { name: 'out', deps: [], sources: ['in.txt'], vars: [],
      command: () => ['sh', '-c', 'cp in.txt {run}/out.txt'], outputs: ['out.txt'] } }],
  };
}
`;

describe('code cache', () => {
  // Inside the project, so the bundle resolves its external packages from node_modules.
  const dist = join(ROOT, 'dist', `code-cache-test-${process.pid}`);
  const cacheFile = join(dist, 'cli.cjs.cache');
  let root: string;
  const build = () => {
    const run = spawnSync(process.execPath, [join(dist, 'cli.mjs'), 'pipeline', `REPO=${join(root, 'repo')}`], {
      cwd: ROOT,
      env: cliEnv(join(root, 'cache'), { BUILD_TASKS: join(root, 'tasks.mjs') }),
      encoding: 'utf8',
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    return run.stdout;
  };
  const markers = () => readdirSync(dist).filter((n) => n.startsWith('cli.cjs.cache.')).sort();

  beforeAll(() => {
    mkdirSync(dist);
    for (const name of ['cli.mjs', 'cli.cjs']) copyFileSync(join(ROOT, 'dist', name), join(dist, name));
    root = tempDir('code-cache');
    writeFileSync(join(root, 'tasks.mjs'), DECLARATION);
    const repo = join(root, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'in.txt'), 'hello\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'add', '-A');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'commit', '-q', '-m', 'init');
  });
  afterAll(() => cleanup(dist, root));

  it('is written after the first walk, extended by the first replay, then left alone', () => {
    expect(existsSync(cacheFile)).toBe(false);
    build();
    expect(markers()).toEqual(['cli.cjs.cache.walk']);
    const afterWalk = statSync(cacheFile);

    expect(build()).toContain('nothing changed since run');
    expect(markers()).toEqual(['cli.cjs.cache.replay', 'cli.cjs.cache.walk']);
    const afterReplay = statSync(cacheFile);
    expect(afterReplay.ino).not.toBe(afterWalk.ino); // renamed into place
    expect(afterReplay.size).toBeGreaterThan(afterWalk.size); // what the replay compiled, added

    build();
    expect(statSync(cacheFile).ino).toBe(afterReplay.ino);
  });

  it('a cache V8 rejects is rewritten, and the markers that described it are dropped', () => {
    writeFileSync(cacheFile, 'not a code cache');
    expect(build()).toContain('nothing changed since run');
    expect(markers()).toEqual(['cli.cjs.cache.replay']);
    expect(statSync(cacheFile).size).toBeGreaterThan(1000);
  });

  // Issue 13, item 7: V8 accepts a cache made for the same source at another path, and the
  // functions it restores keep that path: stack traces in a copied checkout named the original.
  it('a copy of dist/ with its cache names its own files in stack traces, not the original\'s', () => {
    expect(existsSync(cacheFile)).toBe(true);
    const copy = join(ROOT, 'dist', `code-cache-copy-${process.pid}`);
    cpSync(dist, copy, { recursive: true });
    try {
      writeFileSync(join(root, 'bad.mjs'), "export function makePipeline() { throw new Error('a bug'); }\n");
      const run = spawnSync(process.execPath, [join(copy, 'cli.mjs'), 'pipeline', `REPO=${join(root, 'repo')}`], {
        cwd: ROOT,
        env: cliEnv(join(root, 'cache'), { BUILD_TASKS: join(root, 'bad.mjs') }),
        encoding: 'utf8',
      });
      expect(run.status, run.stderr).toBe(70);
      expect(run.stderr).toContain(`${join(copy, 'cli.cjs')}:`);
      expect(run.stderr).not.toContain(`${dist}/`);
    } finally {
      cleanup(copy);
    }
  });
});
