import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT } from './helpers.ts';

/**
 * Without BUILD_CACHE_DIR the cache is `<project>/cache`, wherever the bundled code that asks
 * lives (dist/cli.mjs or a chunk under dist/chunks/): never inside dist/, which every re-bundle
 * replaces.
 */
describe('project root', () => {
  it('the default cache is <project>/cache, from any working directory', () => {
    const env = { ...process.env };
    delete env.BUILD_CACHE_DIR;
    const r = spawnSync(process.execPath, [CLI, 'cache', 'du'], { cwd: '/', env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').find((l) => l.startsWith('blobs '))).toMatch(new RegExp(` ${join(ROOT, 'cache', 'cas')}$`));
  });
});
