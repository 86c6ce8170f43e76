import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMachineEnv, settingsSchema } from '../src/cli/settings.ts';
import { describe, expect, it } from 'vitest';
import { cli, ROOT, scratchDirs } from './helpers.ts';

/** `targets`, and every environment setting listed by `vars` and in the README (issue 12, item 11). */
describe('discovery', () => {
  const scratch = scratchDirs('discovery');

  it('targets lists every target with its description, deps and executor; fan-out items are not known on a fresh cache', async () => {
    const r = await cli(['targets'], { cache: join(scratch(), 'cache') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^database\s+modal\s+\S/m);
    expect(r.stdout).toMatch(/^area-list\s+local\s+\S/m);
    expect(r.stdout).toMatch(/^fit-regional\s+modal\s+.*\n\s+needs .*calibration-package/m);
    expect(r.stdout).toMatch(/^areas\s+fan-out .*\n\s+needs .*area-list.*\n\s+items h5:\.\.\. not known yet/m);
    const json = await cli(['targets', '--json'], { cache: join(scratch(), 'cache') });
    const names = json.events.map((e) => e.target);
    expect(names).toContain('python-env');
    expect(json.events.find((e) => e.target === 'areas')).toMatchObject({ kind: 'fanout', items: null, childPrefix: 'h5:' });
  });

  it('the unknown-target error points to ./build.ts targets', async () => {
    const r = await cli(['no-such-target'], { cache: join(scratch(), 'cache') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown target 'no-such-target'; .*list targets with \.\/build\.ts targets/);
  });

  it('vars and the README list every setting the sources read from the environment', async () => {
    const read = new Set<string>();
    const scan = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) scan(path);
        else if (/\.(ts|mjs)$/.test(entry.name)) for (const m of readFileSync(path, 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) read.add(m[1]!);
      }
    };
    for (const dir of ['src', 'tasks', 'scripts']) scan(join(ROOT, dir));
    // The CLI reads the environment once, through its settings schema (src/cli/settings.ts).
    for (const name of Object.keys(settingsSchema.shape)) read.add(name);
    expect(read.has('BUILD_CACHE_DIR')).toBe(true);
    const vars = await cli(['vars'], { cache: join(scratch(), 'cache') });
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    // The machine's own variables (PATH, HOME, proxies; pyenv's and uv's, where Python discovery looks) are not settings of this build.
    const machine = (n: string) => isMachineEnv(n) || /^(PYENV_ROOT|PYENV_VERSION|XDG_DATA_HOME)$/.test(n);
    for (const name of [...read].filter((n) => !machine(n))) {
      expect(vars.stdout, name).toMatch(new RegExp(`^${name}[=\\s]`, 'm'));
      expect(readme, name).toContain(`| \`${name}\` |`);
    }
  });
});
