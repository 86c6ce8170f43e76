import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DB_STEPS } from '../tasks/data.ts';
import { cli, ROOT, scratchDirs, type CliResult } from './helpers.ts';

/**
 * The data side of the plan against the real repository: a clone of the fixture bundle
 * (policyengine-us-data at e01a0384). The database targets must be the Makefile's `database`
 * recipe, module for module and flag for flag, in its order; every dataset target must run a
 * real module that has a `__main__`; the prerequisites adapter must fetch the files the real
 * download script names; and a real build without the Hugging Face token stops before any work.
 * Skipped, saying so, where the fixture is absent (CI has it).
 */
const BUNDLE = join(ROOT, '..', 'shared', 'fixtures', 'policyengine-us-data-e01a0384.bundle');
const FIXTURE = existsSync(BUNDLE) ? BUNDLE : join('/work', 'shared', 'fixtures', 'policyengine-us-data-e01a0384.bundle');
const present = existsSync(FIXTURE);
if (!present) console.warn(`skipping test/real-data-plan.test.ts: the fixture bundle ${FIXTURE} is absent`);

/** The dataset targets and the real module each runs (modal_app/data_build.py:515-644, 252-269). */
const DATASET_MODULES: Record<string, string> = {
  acs: 'policyengine_us_data.datasets.acs.acs',
  'irs-puf': 'policyengine_us_data.datasets.puf.irs_puf',
  cps: 'policyengine_us_data.datasets.cps.cps',
  puf: 'policyengine_us_data.datasets.puf.puf',
  'extended-cps': 'policyengine_us_data.datasets.cps.extended_cps',
  'enhanced-cps': 'policyengine_us_data.datasets.cps.enhanced_cps',
  'stratified-cps': 'policyengine_us_data.calibration.create_stratified_cps',
  'source-imputed-cps': 'policyengine_us_data.calibration.create_source_imputed_cps',
  'small-enhanced-cps': 'policyengine_us_data.datasets.cps.small_enhanced_cps',
  'validate-datasets': 'policyengine_us_data.storage.upload_completed_datasets',
};

describe.skipIf(!present)('the data plan of a real checkout (fixture e01a0384)', () => {
  const scratch = scratchDirs('real-data-plan');
  let clone: string;
  let cache: string;
  let plan: CliResult;
  /** target -> the command the dry run would execute. */
  const commands = new Map<string, string>();

  beforeAll(async () => {
    clone = join(scratch(), 'pe');
    execFileSync('git', ['clone', '-q', FIXTURE, clone]);
    cache = join(scratch(), 'cache');
    plan = await cli(['pipeline', '-n', `REPO=${clone}`, '--json'], { cache });
    for (const e of plan.events) if (e.event === 'plan' && typeof e.declared === 'string') commands.set(e.target as string, e.declared);
  });

  it('plans the Makefile database recipe, module by module and flag by flag, in its order', () => {
    expect(plan.code, plan.stderr).toBe(0);
    const makefile = readFileSync(join(clone, 'Makefile'), 'utf8');
    const recipe = makefile.slice(makefile.indexOf('\ndatabase:\n') + 1).split('\n\n')[0]!.split('\n').slice(1).map((l) => l.trim());
    expect(recipe[0]).toBe('rm -f policyengine_us_data/storage/calibration/policy_data.db');
    const modules = recipe.slice(1).map((line) => line.replace(/^python /, '{python} ').replace('$(YEAR)', '2024'));
    expect(modules).toHaveLength(13);
    DB_STEPS.forEach((step, i) => {
      const command = commands.get(step.target) ?? '';
      // The storage step removes the database first (the recipe's rm -f), then runs exactly the recipe's line.
      expect(command, step.target).toContain("rm -f 'policyengine_us_data/storage/calibration/policy_data.db'");
      expect(command.endsWith(` sh ${modules[i]}`), `${step.target}: ${command}`).toBe(true);
    });
    // And in the order of the recipe: each step depends on the one before it.
    const order = plan.events.filter((e) => e.event === 'plan').map((e) => e.target as string).filter((t) => DB_STEPS.some((s) => s.target === t));
    expect(order).toEqual(DB_STEPS.map((s) => s.target));
  });

  it('runs every dataset phase as the real module, with no flags but the real ones, from a module with a __main__', () => {
    for (const [target, module] of Object.entries(DATASET_MODULES)) {
      const command = commands.get(target) ?? '';
      const args = target === 'validate-datasets' ? ' --validate-only' : '';
      expect(command.endsWith(` sh {python} -m ${module}${args}`), `${target}: ${command}`).toBe(true);
      const source = readFileSync(join(clone, `${module.replaceAll('.', '/')}.py`), 'utf8');
      expect(source, module).toMatch(/^if __name__ == "__main__":/m);
    }
    // There is no uprating target: the module has no __main__ (its CSVs are outputs of puf).
    expect(commands.has('uprating')).toBe(false);
    expect(readFileSync(join(clone, 'policyengine_us_data/utils/uprating.py'), 'utf8')).not.toMatch(/__main__/);
    expect(commands.get('unit-tests')).toBe('{python} -m pytest tests/unit/');
    expect(existsSync(join(clone, 'tests/unit'))).toBe(true);
  });

  it('the prerequisites adapter fetches the files the real download script names, from the repository it names', () => {
    const real = readFileSync(join(clone, 'policyengine_us_data/storage/download_private_prerequisites.py'), 'utf8');
    const adapter = readFileSync(join(ROOT, 'tasks/adapters/download_prerequisites.py'), 'utf8');
    const files = [...real.matchAll(/repo_filename="([^"]+)"/g)].map((m) => m[1]);
    const repos = new Set([...real.matchAll(/repo="([^"]+)"/g)].map((m) => m[1]));
    expect(files).toHaveLength(3);
    expect(adapter).toContain(`FILES = (${files.map((f) => `"${f}"`).join(', ')})`);
    expect([...repos]).toEqual(['policyengine/irs-soi-puf']);
    expect(adapter).toContain('REPO = "policyengine/irs-soi-puf"');
    expect(commands.get('prerequisites-revision')).toBe('{python} {adapters}/download_prerequisites.py revision {run}/artifacts/prerequisites_revision.txt');
    expect(commands.get('prerequisites')).toMatch(/ sh \{python\} \{adapters\}\/download_prerequisites\.py download \{run\}\/artifacts\/prerequisites_revision\.txt$/);
  });

  it('a build without HUGGING_FACE_TOKEN stops before any work, naming the variable and the target', async () => {
    const r = await cli(['pipeline', `REPO=${clone}`, 'PUBLISH=0'], { cache, env: { HUGGING_FACE_TOKEN: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: target prerequisites-revision needs HUGGING_FACE_TOKEN in the environment, which is not set; .*\n$/);
    expect(existsSync(join(cache, 'runs'))).toBe(false);
  });
});
