import type { Node, Target, Vars } from '../src/target.ts';
import type { Profile } from './layout.ts';
import { COMMON } from './areas.ts';
import { art, storageOutputs, storageStep, type StorageFiles } from './storage.ts';
import { PUBLISHED_DB_PATH, publishedInputCommand } from '../src/publish/published-input.ts';

/**
 * The data side of the pipeline, as the real data build runs it (modal_app/data_build.py and the
 * Makefile at e01a0384; /work/notes/real-contract.md §1-4): the pinned private prerequisites, the
 * database as the Makefile's ETL modules in the Makefile's order, the dataset phases P1-P5, the
 * dataset validation and the repository's unit tests. One command per target for the built-in
 * twin and a real checkout: the twin has the same modules, flags and fixed storage paths.
 *
 * There is no uprating target: `policyengine_us_data.utils.uprating` has no `__main__` (the real
 * build's `python -m` of it is a no-op); its CSVs are written by puf.py, so they are outputs of `puf`.
 */

const py = (module: string, ...args: string[]) => ['{python}', '-m', module, ...args];

/**
 * EXECUTOR=modal runs the data build on Modal as the real one runs (data_build.py
 * `build_datasets`: 8 CPU / 32 GiB, 8 h, non-preemptible, the HF token as a Modal secret): the
 * prerequisites, every ETL step and every dataset phase, on `run_data`, each its own call.
 */
const ON_MODAL = { executor: 'modal', resources: () => ({ class: 'data' }) } as const satisfies Pick<Target, 'executor' | 'resources'>;
const file = (module: string) => `${module.replaceAll('.', '/')}.py`;
const STORAGE_INIT = 'policyengine_us_data/storage/__init__.py';

/**
 * The twin's size knobs (the real scripts have none, and no flags): its own environment variables,
 * set in front of the command from the build's HOUSEHOLDS and SEED, inert for a real checkout.
 */
const KNOBS = ['HOUSEHOLDS', 'SEED'];
const knobs = (v: Vars) => ['env', `EXAMPLE_HOUSEHOLDS=${v.HOUSEHOLDS}`, `EXAMPLE_SEED=${v.SEED}`];

/** The private Hugging Face repository of the prerequisites, and its three files (download_private_prerequisites.py:7-24). */
const PREREQUISITE_FILES = ['puf_2015.csv', 'demographics_2015.csv', 'np2023_d5_mid.csv'];
const ADAPTER = '{adapters}/download_prerequisites.py';
const REVISION = 'prerequisites_revision.txt';

/** A script run through a storage step: its upstream artifacts placed in storage, its outputs collected. */
function storageTarget(o: {
  name: string;
  description: string;
  module: string;
  deps: string[];
  files: StorageFiles;
  /** The script's own argv (the real flags). */
  args?: (v: Vars) => string[];
  vars?: string[];
  sources?: string[];
  /** What goes in front of the storage step (the twin's knobs). */
  prefix?: (v: Vars) => string[];
  /** Outputs compared by content for early cutoff (their bytes embed write history or times). */
  contentDigest?: Target['contentDigest'];
}): Target {
  return {
    name: o.name,
    description: o.description,
    deps: ['python-env', ...o.deps],
    sources: [...COMMON, STORAGE_INIT, file(o.module), ...(o.sources ?? [])],
    pythonModules: [o.module],
    vars: o.vars ?? [],
    command: (v) => [...(o.prefix?.(v) ?? []), ...storageStep(o.files, py(o.module, ...(o.args?.(v) ?? [])))],
    outputs: storageOutputs(o.files),
    ...(o.contentDigest && { contentDigest: o.contentDigest }),
    ...ON_MODAL,
  };
}

/**
 * `make database` (Makefile:79-93): `rm -f` of the database, then these modules, one target each,
 * in this order; `--year $(YEAR)` where the Makefile passes it. Each step reads the previous one's
 * database and writes its own; the last (`validate_database`) is the target `database`, whose
 * output `artifacts/policy_data.db` every consumer reads.
 */
export const DB_STEPS: { target: string; module: string; year: boolean }[] = [
  { target: 'db-create-tables', module: 'create_database_tables', year: false },
  { target: 'db-initial-strata', module: 'create_initial_strata', year: true },
  { target: 'db-national-targets', module: 'etl_national_targets', year: true },
  { target: 'db-age', module: 'etl_age', year: true },
  { target: 'db-medicaid', module: 'etl_medicaid', year: true },
  { target: 'db-snap', module: 'etl_snap', year: true },
  { target: 'db-tanf', module: 'etl_tanf', year: true },
  { target: 'db-state-income-tax', module: 'etl_state_income_tax', year: true },
  { target: 'db-irs-soi', module: 'etl_irs_soi', year: true },
  { target: 'db-aca-agi-state-targets', module: 'etl_aca_agi_state_targets', year: true },
  { target: 'db-aca-marketplace', module: 'etl_aca_marketplace', year: true },
  { target: 'db-pregnancy', module: 'etl_pregnancy', year: true },
  { target: 'database', module: 'validate_database', year: false },
];

/** The fixed database path of every ETL module; each step's copy is its own artifact. */
const DB_FILE = 'calibration/policy_data.db';
const stepDb = (target: string) => (target === 'database' ? 'policy_data.db' : `db/${target}.policy_data.db`);

function databaseChain(): Target[] {
  return DB_STEPS.map((step, i) => {
    const previous = DB_STEPS[i - 1];
    return storageTarget({
      name: step.target,
      description: step.target === 'database' ? 'policy_data.db, validated (db.validate_database)' : `db.${step.module} (make database)`,
      module: `policyengine_us_data.db.${step.module}`,
      deps: previous ? [previous.target] : [],
      files: {
        ...(previous ? { inputs: [{ path: DB_FILE, artifact: stepDb(previous.target) }] } : {}),
        outputs: [{ path: DB_FILE, artifact: stepDb(step.target) }],
      },
      // SQLite header counters vary with write history and library: cut off on content.
      contentDigest: { [`artifacts/${stepDb(step.target)}`]: 'sqlite' },
      // YEAR only reaches the steps that take it, so a change of year starts at create_initial_strata.
      ...(step.year ? { vars: ['YEAR'], args: (v: Vars) => ['--year', v.YEAR!] } : {}),
      sources: [
        'policyengine_us_data/db/_*.py',
        'policyengine_us_data/storage/calibration/raw_inputs/**',
        'policyengine_us_data/storage/calibration_targets/**',
      ],
    });
  });
}

/** BUILD_DB=0: `database` is a download of the registered version's database, pinned (src/publish/published-input.ts). */
function publishedDatabase(): Target {
  return {
    name: 'database',
    description: 'policy_data.db of the current registered version (BUILD_DB=0)',
    deps: ['python-env'],
    sources: [],
    vars: [],
    command: (v) => publishedInputCommand(PUBLISHED_DB_PATH, v, art('policy_data.db')),
    outputs: ['artifacts/policy_data.db'],
    // Run in-process by the build (src/publish/published-db.ts), never on Modal.
    executor: 'local',
  };
}

function prerequisites(real: boolean): Target[] {
  // The twin's Hub is a directory of the pinned tree (its revision is fixed by the SHA); the real
  // one is a remote repository whose head moves, so its revision is resolved in every build.
  const hub = real ? { secretEnv: ['HUGGING_FACE_TOKEN'], alwaysRun: true } : {};
  const modules = ['policyengine_us_data.utils.huggingface', 'policyengine_us_data.storage'];
  const files = { outputs: PREREQUISITE_FILES };
  return [
    {
      name: 'prerequisites-revision',
      description: 'the head revision of policyengine/irs-soi-puf, resolved once per build',
      deps: ['python-env'],
      sources: [...COMMON, STORAGE_INIT, ...(real ? [] : ['fixtures/huggingface/**'])],
      pythonModules: modules,
      vars: [],
      command: () => ['{python}', ADAPTER, 'revision', art(REVISION)],
      outputs: [`artifacts/${REVISION}`],
      ...hub,
      ...ON_MODAL,
    },
    {
      name: 'prerequisites',
      description: 'storage.download_private_prerequisites, at the resolved revision',
      deps: ['python-env', 'prerequisites-revision'],
      sources: [...COMMON, STORAGE_INIT],
      pythonModules: modules,
      vars: [],
      command: () => storageStep(files, ['{python}', ADAPTER, 'download', art(REVISION)]),
      outputs: storageOutputs(files),
      ...(real ? { secretEnv: ['HUGGING_FACE_TOKEN'] } : {}),
      ...ON_MODAL,
    },
  ];
}

/** The dataset phases of the real data build (modal_app/data_build.py:515-644), each script as it runs there. */
function datasets(): Target[] {
  return [
    storageTarget({
      name: 'acs', description: 'ACS_2022 -> acs_2022.h5 (P1)', module: 'policyengine_us_data.datasets.acs.acs', deps: [],
      files: { outputs: ['acs_2022.h5'] }, vars: KNOBS, prefix: knobs,
    }),
    storageTarget({
      name: 'irs-puf', description: 'IRS_PUF_2015 from the prerequisites -> irs_puf_2015.h5 (P1)', module: 'policyengine_us_data.datasets.puf.irs_puf',
      deps: ['prerequisites'], files: { inputs: ['puf_2015.csv', 'demographics_2015.csv'], outputs: ['irs_puf_2015.h5'] },
      // The real irs_puf.py writes a pandas HDFStore, whose object headers hold time.time(): cut off on content.
      contentDigest: { 'artifacts/irs_puf_2015.h5': 'hdf5' },
    }),
    storageTarget({
      name: 'cps', description: 'CPS_2024_Full and CPS_2024, reading ACS_2022 (P2)', module: 'policyengine_us_data.datasets.cps.cps',
      deps: ['acs'], files: { inputs: ['acs_2022.h5'], outputs: ['cps_2024_full.h5', 'cps_2024.h5'] }, vars: KNOBS, prefix: knobs,
    }),
    storageTarget({
      name: 'puf', description: 'PUF 2015/2021/2023/2024 and the uprating factors (P2, after cps)', module: 'policyengine_us_data.datasets.puf.puf',
      deps: ['irs-puf', 'cps'],
      files: {
        inputs: ['irs_puf_2015.h5', 'cps_2024.h5'],
        outputs: ['puf_2015.h5', 'puf_2021.h5', 'puf_2023.h5', 'puf_2024.h5', 'uprating_factors.csv', 'uprating_growth_factors.csv'],
      },
    }),
    storageTarget({
      name: 'extended-cps', description: 'ExtendedCPS_2024 and its half sample (P3)', module: 'policyengine_us_data.datasets.cps.extended_cps',
      deps: ['cps', 'puf'], files: { inputs: ['cps_2024_full.h5', 'cps_2024.h5', 'puf_2024.h5'], outputs: ['extended_cps_2024.h5', 'extended_cps_2024_half.h5'] },
    }),
    storageTarget({
      name: 'enhanced-cps', description: 'EnhancedCPS_2024, reweighted to the database (P4; a release dataset)', module: 'policyengine_us_data.datasets.cps.enhanced_cps',
      deps: ['extended-cps', 'database'],
      files: {
        inputs: ['extended_cps_2024_half.h5', { path: DB_FILE, artifact: 'policy_data.db' }],
        outputs: ['enhanced_cps_2024.h5', { path: 'calibration_log.csv', fromRoot: true, artifact: 'enhanced_cps_calibration_log.csv' }],
      },
    }),
    storageTarget({
      name: 'stratified-cps', description: 'the stratified extended CPS (P4)', module: 'policyengine_us_data.calibration.create_stratified_cps',
      deps: ['extended-cps'], files: { inputs: ['extended_cps_2024.h5'], outputs: ['stratified_extended_cps_2024.h5'] },
    }),
    storageTarget({
      name: 'source-imputed-cps', description: 'the source-imputed stratified CPS, the calibration dataset (P5)', module: 'policyengine_us_data.calibration.create_source_imputed_cps',
      deps: ['stratified-cps', 'acs'],
      files: { inputs: ['stratified_extended_cps_2024.h5', 'acs_2022.h5'], outputs: ['source_imputed_stratified_extended_cps_2024.h5'] },
    }),
    storageTarget({
      name: 'small-enhanced-cps', description: 'the small and sparse enhanced CPS (P5; release datasets)', module: 'policyengine_us_data.datasets.cps.small_enhanced_cps',
      deps: ['enhanced-cps'], files: { inputs: ['enhanced_cps_2024.h5'], outputs: ['small_enhanced_cps_2024.h5', 'sparse_enhanced_cps_2024.h5'] },
    }),
    storageTarget({
      name: 'validate-datasets', description: 'storage.upload_completed_datasets --validate-only (data_build.py:252-269)', module: 'policyengine_us_data.storage.upload_completed_datasets',
      deps: ['cps', 'enhanced-cps'], files: { inputs: ['cps_2024.h5', 'enhanced_cps_2024.h5'], outputs: [] }, args: () => ['--validate-only'],
    }),
  ];
}

/**
 * The repository's unit tests (Makefile:30-31 `pytest tests/unit/`; CI runs them with
 * HUGGING_FACE_TOKEN, .github/workflows/pr.yaml:61-78). A default goal unless UNIT_TESTS=0, so a
 * failure fails the run and nothing is staged.
 */
function unitTests(real: boolean): Target {
  return {
    name: 'unit-tests',
    description: 'pytest tests/unit/ (gates staging; UNIT_TESTS=0 skips it)',
    deps: ['python-env'],
    sources: ['pyproject.toml', 'conftest.py', 'tests/**', 'policyengine_us_data/**/*.py', 'policyengine_us_data/**/*.yaml', 'modal_app/**/*.py'],
    vars: [],
    command: () => py('pytest', 'tests/unit/'),
    outputs: [],
    ...(real ? { secretEnv: ['HUGGING_FACE_TOKEN'] } : {}),
  };
}

/** The data nodes, for tasks/pipeline.ts. BUILD_DB=0 takes `database` without its ETL chain. */
export function dataNodes(profile: Profile, vars: Vars = {}): Node[] {
  const real = profile === 'real';
  const chain = databaseChain();
  const database = vars.BUILD_DB === '0' ? [...chain.slice(0, -1), publishedDatabase()] : chain;
  return [...prerequisites(real), ...database, ...datasets(), unitTests(real)].map((target) => ({ kind: 'target', target }));
}

/** What `pipeline` builds on the data side besides what calibration consumes: release datasets, their validation, the unit tests. */
export function dataGoals(vars: Vars = {}): string[] {
  return ['small-enhanced-cps', 'validate-datasets', ...(vars.UNIT_TESTS === '0' ? [] : ['unit-tests'])];
}
