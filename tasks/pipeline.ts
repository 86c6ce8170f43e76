import type { Pipeline, Target, Vars } from '../src/target.ts';
import type { Profile } from './layout.ts';
import { art, COMMON } from './areas.ts';
import { CALIBRATION_GOALS, calibrationNodes } from './calibration.ts';
import { PUBLISHED_DB_PATH, publishedInputCommand } from '../src/publish/published-input.ts';

/**
 * The PolicyEngine US data pipeline, declared once. The same targets drive the built-in example
 * (examples/us-data, default) and a real policyengine-us-data checkout (REPO=...): the example
 * mirrors the real module names and flags, and where the real scripts write to fixed paths under
 * storage/, the real profile copies the result into the run (see `collect`).
 */
const py = (module: string, ...args: string[]) => ['{python}', '-m', module, ...args];
/** Real scripts write fixed storage/ paths; copy their result into the run's artifacts. */
const collect = (command: string[], from: string, to: string) => ['sh', '-c', `${command.join(' ')} && cp ${from} ${to}`];

export function makePipeline(profile: Profile): Pipeline {
  const real = profile === 'real';
  const dataset = (
    name: string,
    module: string,
    output: string,
    deps: string[],
    args: (v: Vars) => string[],
    vars: string[] = [],
    sources: string[] = [],
  ): Target => ({
    name,
    description: `${module} -> ${output}`,
    deps: ['python-env', ...deps],
    sources: [...COMMON, `${module.replaceAll('.', '/')}.py`, ...sources],
    vars,
    command: (v) =>
      real ? collect(py(module), `storage/${output}`, art(output)) : py(module, ...args(v), '--output', art(output)),
    outputs: [`artifacts/${output}`],
  });

  return {
    defaultGoals: CALIBRATION_GOALS,
    nodes: [
      {
        kind: 'target',
        target: {
          name: 'python-env',
          description: 'the pipeline Python environment, keyed by its requirements',
          deps: [],
          sources: real ? ['pyproject.toml', 'uv.lock'] : ['requirements.txt'],
          vars: [],
          command: () =>
            real
              ? ['sh', '-c', 'uv export --frozen --no-emit-project -o {out}.req && uv venv {out} && uv pip install --python {out}/bin/python -r {out}.req']
              : ['sh', '-c', 'python3 -m venv {out} && {out}/bin/pip install --disable-pip-version-check --no-input -q -r requirements.txt'],
          outputs: [],
          environment: true,
        },
      },
      {
        kind: 'target',
        target: {
          name: 'database',
          description: 'policy_data.db: the 13 ETL modules of `make database`',
          deps: ['python-env'],
          sources: [...COMMON, 'policyengine_us_data/db/**/*.py', ...(real ? ['Makefile', 'storage/calibration/raw_inputs/**'] : [])],
          vars: ['YEAR'],
          // BUILD_DB=0: a download of the registered version's database, pinned (src/published-input.ts).
          command: (v) =>
            v.BUILD_DB === '0'
              ? publishedInputCommand(PUBLISHED_DB_PATH, v, art('policy_data.db'))
              : real
                ? collect(['make', 'database', `YEAR=${v.YEAR}`, 'PYTHON={python}'], 'storage/calibration/policy_data.db', art('policy_data.db'))
                : py('policyengine_us_data.db.build_database', '--year', v.YEAR!, '--db-path', art('policy_data.db')),
          outputs: ['artifacts/policy_data.db'],
        },
      },
      { kind: 'target', target: dataset('uprating', 'policyengine_us_data.utils.uprating', 'uprating_factors.csv', [], () => []) },
      { kind: 'target', target: dataset('acs', 'policyengine_us_data.datasets.acs.acs', 'acs_2022.h5', [], (v) => ['--households', v.HOUSEHOLDS!, '--seed', v.SEED!], ['HOUSEHOLDS', 'SEED']) },
      { kind: 'target', target: dataset('irs-puf', 'policyengine_us_data.datasets.puf.irs_puf', 'irs_puf_2015.h5', [], (v) => ['--households', v.HOUSEHOLDS!, '--seed', v.SEED!], ['HOUSEHOLDS', 'SEED']) },
      {
        kind: 'target',
        target: dataset('cps', 'policyengine_us_data.datasets.cps.cps', 'cps_2024.h5', ['database'], (v) => ['--households', v.HOUSEHOLDS!, '--seed', v.SEED!, '--db-path', art('policy_data.db')], ['HOUSEHOLDS', 'SEED']),
      },
      {
        kind: 'target',
        target: dataset('puf', 'policyengine_us_data.datasets.puf.puf', 'puf_2024.h5', ['irs-puf', 'cps', 'uprating'], () => [
          '--irs-puf', art('irs_puf_2015.h5'), '--cps', art('cps_2024.h5'), '--uprating', art('uprating_factors.csv'),
        ]),
      },
      {
        kind: 'target',
        target: dataset('extended-cps', 'policyengine_us_data.datasets.cps.extended_cps', 'extended_cps_2024.h5', ['cps', 'puf'], () => [
          '--cps', art('cps_2024.h5'), '--puf', art('puf_2024.h5'),
        ]),
      },
      {
        kind: 'target',
        target: dataset('stratified-cps', 'policyengine_us_data.calibration.create_stratified_cps', 'stratified_extended_cps_2024.h5', ['extended-cps'], () => [
          '--input', art('extended_cps_2024.h5'),
        ]),
      },
      {
        kind: 'target',
        target: dataset(
          'source-imputed-cps',
          'policyengine_us_data.calibration.create_source_imputed_cps',
          'source_imputed_stratified_extended_cps_2024.h5',
          ['stratified-cps', 'acs'],
          () => ['--input', art('stratified_extended_cps_2024.h5'), '--acs', art('acs_2022.h5')],
        ),
      },
      ...calibrationNodes(),
    ],
  };
}
