import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cliEnv, ROOT, scratchDirs } from './helpers.ts';

/**
 * An internal error of the bundled CLI names TypeScript lines, not minified dist/cli.cjs ones:
 * the bundle's source map is applied when the error is printed (src/util/source-mapped-stack.ts).
 * The error is a real one, a plain Error thrown by a pipeline declaration (BUILD_TASKS) while the
 * build prepares its graph, and the lines are checked against the same CLI run from source with
 * tsx, whose stack Node maps itself.
 */
const DECLARATION = `
export function makePipeline() {
  throw new Error('a bug in the declaration');
}
`;

const scratch = scratchDirs('source-map');

/** The `src/...ts:line` locations of a stack, in order. */
const srcFrames = (stack: string) => [...stack.matchAll(/\/(src\/[\w/.-]+\.ts):(\d+):\d+\)?$/gm)].map((m) => `${m[1]}:${m[2]}`);

describe('source map', () => {
  it('an internal error of the bundle points at the TypeScript lines a run from source names', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'tasks.mjs'), DECLARATION);
    const env = cliEnv(join(dir, 'cache'), { BUILD_TASKS: join(dir, 'tasks.mjs') });
    const run = (args: string[]) => spawnSync(process.execPath, [...args, 'pipeline'], { cwd: ROOT, env, encoding: 'utf8' });

    const bundled = run([CLI]);
    expect(bundled.status, bundled.stderr).toBe(70);
    expect(bundled.stderr).toMatch(/^internal error: Error: a bug in the declaration\n/);
    expect(bundled.stderr).not.toContain('cli.cjs:');
    const frames = srcFrames(bundled.stderr);
    expect(frames.length, bundled.stderr).toBeGreaterThan(0);

    const fromSource = run(['--import', 'tsx', join(ROOT, 'build.ts')]);
    expect(fromSource.status, fromSource.stderr).toBe(70);
    expect(frames).toEqual(srcFrames(fromSource.stderr));
  });
});
