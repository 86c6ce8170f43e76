import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, ROOT, scratchDirs } from './helpers.ts';

/**
 * `./build.ts` (its shell half, scripts/launch.sh) re-bundles dist/ when anything the bundle is
 * made of is newer than it, and only then: on a copy of the project, run as users run it, through
 * the shell. The copied files are dated an hour back and each case dates the bundle ten minutes
 * back, so an edit is newer than the bundle whatever the file system's timestamp resolution.
 */
const COPIED = ['build.ts', 'package.json', 'package-lock.json', 'tsconfig.json', 'src', 'tasks', 'scripts'];

describe('launcher (./build.ts)', () => {
  const project = scratchDirs('launcher')();
  const bundle = join(project, 'dist', 'cli.cjs');
  const now = Date.now() / 1000;
  const run = () => {
    const r = spawnSync(join(project, 'build.ts'), ['vars'], { cwd: project, env: cliEnv(join(project, 'cache')), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('BRANCH=');
    return r;
  };
  /** The bundle's inode: scripts/bundle.mjs swaps in a new dist/, so a re-bundle changes it. */
  const bundled = () => statSync(bundle).ino;
  /**
   * Runs the CLI after `change` made `path` newer than the bundle (dated back first), then dates
   * the file back again, so the next case sees only its own change.
   */
  const afterChanging = (path: string, change: (file: string) => void) => {
    const file = join(project, path);
    utimesSync(join(project, 'dist', 'cli.mjs'), now - 600, now - 600);
    change(file);
    const result = run();
    utimesSync(file, now - 3600, now - 3600);
    return result;
  };

  beforeAll(() => {
    for (const name of COPIED) cpSync(join(ROOT, name), join(project, name), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'));
    // Every copied file an hour old: older than any bundle made below.
    const age = (path: string): void => {
      utimesSync(path, now - 3600, now - 3600);
      if (statSync(path).isDirectory()) for (const name of readdirSync(path)) age(join(path, name));
    };
    for (const name of COPIED) age(join(project, name));
  });

  it('bundles on first use, then starts the existing bundle while nothing changed', () => {
    run();
    const first = bundled();
    afterChanging('build.ts', () => undefined);
    expect(bundled()).toBe(first);
  });

  it('finds the project from `sh build.ts` too (no directory in $0)', () => {
    const r = spawnSync('sh', ['build.ts', 'vars'], { cwd: project, env: cliEnv(join(project, 'cache')), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('BRANCH=');
  });

  it('an edit to the loader (scripts/) is bundled and runs', () => {
    const edited = afterChanging('scripts/cli-loader.mjs', (file) =>
      writeFileSync(file, `process.stderr.write('edited loader\\n');\n${readFileSync(file, 'utf8')}`),
    );
    expect(edited.stderr).toContain('edited loader');
  });

  it.each(['src/cli/main.ts', 'tasks/index.ts', 'scripts/bundle.mjs', 'package-lock.json', 'build.ts'])('a change to %s re-bundles', (path) => {
    const before = bundled();
    afterChanging(path, (file) => utimesSync(file, now, now));
    expect(bundled()).not.toBe(before);
  });
});
