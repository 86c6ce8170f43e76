import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSettings, settingsSchema } from '../src/cli/settings.ts';
import { UsageError } from '../src/report/failures.ts';
import { cleanup, cli, ROOT, tempDir } from './helpers.ts';

/**
 * The environment is read once, into validated settings (src/cli/settings.ts): defaults, empty
 * values, and a bad value as one usage line naming the variable, exit 2, before any work.
 */
describe('settings from the environment', () => {
  const scratch = tempDir('settings');
  afterAll(() => cleanup(scratch));

  it('defaults: the cache under the project, environments under the cache, terminal output', () => {
    const s = readSettings({});
    expect(s.cacheDir).toBe(join(ROOT, 'cache'));
    expect(s.envsDir).toBe(join(ROOT, 'cache', 'envs'));
    expect(s.root).toBe(ROOT);
    expect(s.ci).toBe(false);
    expect(s.hashWorkers).toBe(true);
    expect(s.pinned).toEqual({ dirty: false });
    expect(s.modal).toEqual({ configured: false, env: {} });
  });

  it('reads each variable into its setting; an empty value counts as unset', () => {
    const env = {
      BUILD_CACHE_DIR: 'rel/cache', CI: 'true', BUILD_HASH_WORKERS: '0', BUILD_PINNED_SHA: 'a'.repeat(40), BUILD_PINNED_DIRTY: '1',
      MODAL_STANDIN_DIR: '/tmp/standin', BUILD_MODAL_BATCH_QUIET_MS: '50', HF_REPO: 'org/repo', BUILD_TASKS: '', BUILD_ENVS_DIR: '',
    };
    const s = readSettings(env);
    expect(s.cacheDir).toBe(join(process.cwd(), 'rel', 'cache'));
    expect(s.envsDir).toBe(join(process.cwd(), 'rel', 'cache', 'envs'));
    expect(s).toMatchObject({ ci: true, hashWorkers: false, pinned: { sha: 'a'.repeat(40), dirty: true }, publish: { HF_REPO: 'org/repo' } });
    expect(s.modal).toMatchObject({ standinDir: '/tmp/standin', batchQuietMs: 50 });
    expect(s.tasksFile).toBeUndefined();
    // The whole environment is passed down as it was, for declared env and child processes.
    expect(s.env).toBe(env);
  });

  it('every variable has its meaning documented in the schema (TSDoc), and the schema lists them all', () => {
    const source = readFileSync(join(ROOT, 'src', 'cli', 'settings.ts'), 'utf8');
    for (const name of Object.keys(settingsSchema.shape)) expect(source).toMatch(new RegExp(`\\*/\\n  ${name}: `));
  });

  const bad: [string, string, RegExp][] = [
    ['BUILD_PINNED_DIRTY', 'yes', /^BUILD_PINNED_DIRTY=yes in the environment is not valid \(expected 0 or 1\); correct it or unset it$/],
    ['BUILD_PINNED_SHA', 'main', /^BUILD_PINNED_SHA=main in the environment is not valid \(expected a full commit id\)/],
    ['BUILD_MODAL_BATCH_QUIET_MS', 'soon', /^BUILD_MODAL_BATCH_QUIET_MS=soon in the environment is not valid \(expected a whole number of milliseconds\)/],
    ['BUILD_HASH_WORKERS', 'off', /^BUILD_HASH_WORKERS=off in the environment is not valid/],
  ];
  for (const [name, value, message] of bad) {
    it(`${name}=${value}: a usage error naming the variable`, () => {
      let thrown: unknown;
      try {
        readSettings({ [name]: value });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(UsageError);
      expect((thrown as UsageError).reason).toBe('bad-setting');
      expect((thrown as UsageError).message).toMatch(message);
    });
  }

  it('the CLI refuses a bad value with one line and exit 2, before touching the cache', async () => {
    const cache = join(scratch, 'cache');
    const r = await cli(['status'], { cache, env: { BUILD_MODAL_BATCH_QUIET_MS: 'soon' } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      'error: BUILD_MODAL_BATCH_QUIET_MS=soon in the environment is not valid (expected a whole number of milliseconds); correct it or unset it',
    ]);
    expect(existsSync(cache)).toBe(false);
    const json = await cli(['status', '--json'], { cache, env: { BUILD_PINNED_DIRTY: 'maybe' } });
    expect(json.code).toBe(2);
    expect(json.events).toEqual([
      { event: 'schema', version: 1, command: 'status' },
      { event: 'error', reason: 'bad-setting', message: expect.stringMatching(/^BUILD_PINNED_DIRTY=maybe /) },
    ]);
  });

  it('help still works with a bad value (it reads no settings)', async () => {
    const r = await cli(['--help'], { cache: join(scratch, 'cache'), env: { BUILD_PINNED_DIRTY: 'maybe' } });
    expect(r.code).toBe(0);
  });
});
