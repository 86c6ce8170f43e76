import type { Pipeline, Target, Vars } from '../src/target.ts';
import type { Profile } from './layout.ts';
import { areaFanOut, art, COMMON } from './areas.ts';
import { PUBLISHED_DB_PATH, publishedInputCommand } from '../src/publish/published-input.ts';
import { pythonEnvTarget } from './python-env.ts';

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

  const fit = (national: boolean): Target => {
    const prefix = national ? 'national_' : '';
    const files = ['calibration_weights.npy', 'geography_assignment.npz', 'unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'];
    const epochs = national ? 'NATIONAL_EPOCHS' : 'EPOCHS';
    const gpu = national ? 'NATIONAL_GPU' : 'GPU';
    const checkpoint = `{checkpoint}/${prefix}calibration_weights.checkpoint.npz`;
    return {
      name: national ? 'fit-national' : 'fit-regional',
      description: `${national ? 'national' : 'state'} weight fit (GPU on Modal)`,
      deps: ['python-env', 'calibration-package'],
      sources: [...COMMON, 'policyengine_us_data/calibration/**/*.py', 'calibration/target_config.yaml'],
      vars: [epochs, gpu, 'SEED'],
      env: ['EXAMPLE_FIT_SLEEP_MS'],
      command: (v) => [
        ...py('policyengine_us_data.calibration.unified_calibration'),
        '--device', real ? 'cuda' : 'cpu',
        '--epochs', v[epochs]!,
        '--package-path', art('calibration_package.pkl'),
        '--target-config', 'calibration/target_config.yaml',
        '--beta', '0.65',
        '--lambda-l0', national ? '2e-2' : '1e-7',
        '--lambda-l2', national ? '1e-12' : '1e-8',
        '--learning-rate', '0.15',
        // The real pipeline logs every 100 epochs (modal_app/pipeline.py: 10 points at its default
        // 1,000 epochs, each a full per-target log and checkpoint); the example logs 20 times per fit
        // whatever EPOCHS is, so the review's loss curves have enough points to judge convergence.
        '--log-freq', real ? '100' : String(Math.max(1, Math.floor(Number(v[epochs]) / 20))),
        '--seed', v.SEED!,
        '--output-dir', '{run}/artifacts',
        '--checkpoint-output', checkpoint,
        `{resume-from:${checkpoint}}`,
        ...(national ? ['--national'] : []),
      ],
      outputs: files.map((f) => `artifacts/${prefix}${f}`),
      executor: 'modal',
      resources: (v) => ({ class: v[gpu]! }),
    };
  };

  const diagnosticsFiles = ['unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'].flatMap((f) => [f, `national_${f}`]);

  return {
    defaultGoals: ['manifest', 'diagnostics'],
    nodes: [
      { kind: 'target', target: pythonEnvTarget(profile) },
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
          // SQLite header counters vary with write history and library: cut off on content.
          contentDigest: { 'artifacts/policy_data.db': 'sqlite' },
        },
      },
      { kind: 'target', target: dataset('uprating', 'policyengine_us_data.utils.uprating', 'uprating_factors.csv', [], () => []) },
      { kind: 'target', target: dataset('acs', 'policyengine_us_data.datasets.acs.acs', 'acs_2022.h5', [], (v) => ['--households', v.HOUSEHOLDS!, '--seed', v.SEED!], ['HOUSEHOLDS', 'SEED']) },
      // The real irs_puf.py writes a pandas HDFStore, whose object headers hold time.time(): cut off on content.
      { kind: 'target', target: { ...dataset('irs-puf', 'policyengine_us_data.datasets.puf.irs_puf', 'irs_puf_2015.h5', [], (v) => ['--households', v.HOUSEHOLDS!, '--seed', v.SEED!], ['HOUSEHOLDS', 'SEED']), contentDigest: { 'artifacts/irs_puf_2015.h5': 'hdf5' } } },
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
      {
        kind: 'target',
        target: {
          name: 'calibration-package',
          description: 'calibration_package.pkl: the target matrix over cloned households',
          deps: ['python-env', 'database', 'source-imputed-cps'],
          sources: [...COMMON, 'policyengine_us_data/calibration/**/*.py', 'calibration/target_config.yaml'],
          vars: ['N_CLONES', 'SEED'],
          command: (v) => [
            ...py('policyengine_us_data.calibration.unified_calibration'),
            '--device', 'cpu', '--epochs', '0', '--build-only',
            '--db-path', art('policy_data.db'),
            '--dataset', art('source_imputed_stratified_extended_cps_2024.h5'),
            '--package-output', art('calibration_package.pkl'),
            '--n-clones', v.N_CLONES!,
            '--target-config', 'calibration/target_config.yaml',
            '--seed', v.SEED!,
          ],
          outputs: ['artifacts/calibration_package.pkl', 'artifacts/calibration_package_meta.json'],
          executor: 'modal',
          resources: () => ({ class: 'cpu' }),
        },
      },
      { kind: 'target', target: fit(false) },
      { kind: 'target', target: fit(true) },
      {
        kind: 'target',
        target: {
          name: 'area-list',
          description: 'the areas to build, enumerated from the database',
          deps: ['python-env', 'database'],
          sources: [...COMMON, 'policyengine_us_data/calibration/area_catalog.py'],
          vars: [],
          command: () => py('policyengine_us_data.calibration.area_catalog', '--db-path', art('policy_data.db'), '--output', art('areas.json')),
          outputs: ['artifacts/areas.json'],
        },
      },
      { kind: 'fanout', fanout: areaFanOut() },
      {
        kind: 'target',
        target: {
          name: 'manifest',
          description: 'manifest.json: sha256 and size of every area file',
          deps: ['python-env', 'areas'],
          sources: [...COMMON],
          vars: [],
          command: () => py('policyengine_us_data.utils.manifest', '--h5-dir', '{run}/h5s', '--output', '{run}/h5s/manifest.json'),
          outputs: ['h5s/manifest.json'],
        },
      },
      {
        kind: 'target',
        target: {
          name: 'diagnostics',
          description: 'fit diagnostics gathered for review',
          deps: ['fit-regional', 'fit-national'],
          sources: [],
          vars: [],
          command: () => ['cp', ...diagnosticsFiles.map((f) => art(f)), '{run}/diagnostics/'],
          outputs: diagnosticsFiles.map((f) => `diagnostics/${f}`),
        },
      },
    ],
  };
}
