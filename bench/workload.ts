/**
 * The benchmark workload: the example pipeline's shape (python-env, the database, the dataset
 * phases, the calibration package, two fits, the area list, one target per area, the manifest and
 * the diagnostics: ~505 targets), described once as plain data. `emit.ts` turns it into the four
 * declarations (our BUILD_TASKS module, a Makefile, a dvc.yaml, a Snakefile) so that every tool
 * runs the same commands on the same files.
 *
 * Paths: `sources` are relative to the workspace (the project directory); `reads` and `outputs`
 * are what the command reads from and writes to the build's output area. In our engine that area
 * is the run directory (`{run}/...`); for make, DVC and Snakemake it is the workspace itself.
 * A command is a list of tokens in which the literal prefix `{run}/` marks such a path: each
 * emitter keeps it (ours) or strips it (peers).
 *
 * Two command flavours:
 * - `trivial`: every target is one `sed` over its inputs (comments dropped), so the timings measure
 *   orchestration alone. Dropping `#` lines is what makes scenario 4 possible: a comment added to
 *   the database's input changes the input but not the output (early cutoff).
 * - `real`: the example's own `python -m policyengine_us_data...` commands in examples/us-data.
 */

export type Flavour = 'trivial' | 'real';

export interface Area {
  type: 'state' | 'district' | 'city' | 'national';
  id: string;
  /** h5s/-relative file, e.g. `districts/AL-01.h5`. */
  path: string;
  weight: number;
}

export interface Step {
  /** Target name, as our engine spells it (`h5:states/AL` for areas). */
  name: string;
  /** Workspace files the command reads (hashed as sources by us; `deps` in DVC). */
  sources: string[];
  /** Upstream targets. */
  deps: string[];
  /** Upstream outputs the command reads, `{run}/`-prefixed. */
  reads: string[];
  /** Outputs, `{run}/`-prefixed. */
  outputs: string[];
  /** argv tokens (`{run}/` marks run paths). Executed through a shell by every tool. */
  command: string[];
  /** Set for the per-area targets (our fan-out children; one wildcard rule in Snakemake). */
  area?: Area;
}

export interface Workload {
  flavour: Flavour;
  /** Static targets, in dependency order; the area targets are in `areaSteps`. */
  steps: Step[];
  areaSteps: Step[];
  areas: Area[];
  /** Files to write into a fresh workspace (path -> content), besides `copyFrom`. */
  files: Record<string, string>;
  /** Directories of outputs (peers need them to exist; our engine creates them per run). */
  outputDirs: string[];
  /** Scenario edits: which file each scenario touches and how. */
  edits: { leaf: string; root: string; area: string };
  /** The targets each edit must re-execute, at least and at most (minimality). */
  expected: { leaf: string[]; root: string[]; area: string[] };
}

export const RUN = '{run}/';
export const run = (p: string) => `${RUN}${p}`;
export const stripRun = (p: string) => (p.startsWith(RUN) ? p.slice(RUN.length) : p);

/** (USPS, seats in the 118th Congress): the same table as examples/us-data/.../geography.py. */
const SEATS: [string, number][] = [
  ['AL', 7], ['AK', 1], ['AZ', 9], ['AR', 4], ['CA', 52], ['CO', 8], ['CT', 5], ['DE', 1], ['DC', 1], ['FL', 28],
  ['GA', 14], ['HI', 2], ['ID', 2], ['IL', 17], ['IN', 9], ['IA', 4], ['KS', 4], ['KY', 6], ['LA', 6], ['ME', 2],
  ['MD', 8], ['MA', 9], ['MI', 13], ['MN', 8], ['MS', 4], ['MO', 8], ['MT', 2], ['NE', 3], ['NV', 4], ['NH', 2],
  ['NJ', 12], ['NM', 3], ['NY', 26], ['NC', 14], ['ND', 1], ['OH', 15], ['OK', 5], ['OR', 6], ['PA', 17], ['RI', 2],
  ['SC', 7], ['SD', 1], ['TN', 9], ['TX', 38], ['UT', 4], ['VT', 1], ['VA', 11], ['WA', 10], ['WV', 2], ['WI', 8], ['WY', 1],
];

/** 51 states, 436 districts, NYC and the national file: 489 areas, as the example's catalogue lists them. */
export function defaultAreas(): Area[] {
  const areas: Area[] = [];
  for (const [usps, seats] of SEATS) areas.push({ type: 'state', id: usps, path: `states/${usps}.h5`, weight: seats });
  for (const [usps, seats] of SEATS) {
    for (let d = 1; d <= seats; d++) {
      const id = `${usps}-${String(d).padStart(2, '0')}`;
      areas.push({ type: 'district', id, path: `districts/${id}.h5`, weight: 1 });
    }
  }
  areas.push({ type: 'city', id: 'NYC', path: 'cities/NYC.h5', weight: 11 });
  areas.push({ type: 'national', id: 'US', path: 'national/US.h5', weight: 1 });
  return areas;
}

export const areaTargetName = (a: Area) => `h5:${a.path.replace(/\.h5$/, '')}`;

const FIT_FILES = ['calibration_weights.npy', 'geography_assignment.npz', 'unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'];
const DIAGNOSTIC_FILES = ['unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'].flatMap((f) => [f, `national_${f}`]);
const art = (f: string) => run(`artifacts/${f}`);

/** The graph, independent of commands: name, deps, outputs, what it reads. */
interface Shape {
  name: string;
  deps: string[];
  reads: string[];
  outputs: string[];
}

const DATASETS: [name: string, output: string, deps: string[]][] = [
  ['uprating', 'uprating_factors.csv', []],
  ['acs', 'acs_2022.h5', []],
  ['irs-puf', 'irs_puf_2015.h5', []],
  ['cps', 'cps_2024.h5', ['database']],
  ['puf', 'puf_2024.h5', ['irs-puf', 'cps', 'uprating']],
  ['extended-cps', 'extended_cps_2024.h5', ['cps', 'puf']],
  ['stratified-cps', 'stratified_extended_cps_2024.h5', ['extended-cps']],
  ['source-imputed-cps', 'source_imputed_stratified_extended_cps_2024.h5', ['stratified-cps', 'acs']],
];
const datasetOutput = new Map<string, string>([['database', 'policy_data.db'], ...DATASETS.map(([n, o]) => [n, o] as [string, string])]);

function staticShapes(): Shape[] {
  const first = (dep: string) => art(datasetOutput.get(dep)!);
  const shapes: Shape[] = [
    { name: 'python-env', deps: [], reads: [], outputs: [art('python-env.txt')] },
    { name: 'database', deps: ['python-env'], reads: [], outputs: [art('policy_data.db')] },
    ...DATASETS.map(([name, output, deps]) => ({ name, deps: ['python-env', ...deps], reads: deps.map(first), outputs: [art(output)] })),
    {
      name: 'calibration-package',
      deps: ['python-env', 'database', 'source-imputed-cps'],
      reads: [art('policy_data.db'), first('source-imputed-cps')],
      outputs: [art('calibration_package.pkl'), art('calibration_package_meta.json')],
    },
    { name: 'fit-regional', deps: ['python-env', 'calibration-package'], reads: [art('calibration_package.pkl')], outputs: FIT_FILES.map(art) },
    { name: 'fit-national', deps: ['python-env', 'calibration-package'], reads: [art('calibration_package.pkl')], outputs: FIT_FILES.map((f) => art(`national_${f}`)) },
    { name: 'area-list', deps: ['python-env', 'database'], reads: [art('policy_data.db')], outputs: [art('areas.json')] },
  ];
  return shapes;
}

function areaShape(a: Area): Shape {
  const prefix = a.type === 'national' ? 'national_' : '';
  return {
    name: areaTargetName(a),
    // area-list too: the areas come from its list (our fan-out reads it; the peers list them statically).
    deps: ['python-env', 'area-list', 'database', 'source-imputed-cps', a.type === 'national' ? 'fit-national' : 'fit-regional'],
    reads: [art(`${prefix}calibration_weights.npy`), art(`${prefix}geography_assignment.npz`), art('source_imputed_stratified_extended_cps_2024.h5'), art('policy_data.db')],
    outputs: [run(`h5s/${a.path}`)],
  };
}

function tailShapes(areas: Area[]): Shape[] {
  return [
    { name: 'manifest', deps: ['python-env', ...areas.map(areaTargetName)], reads: areas.map((a) => run(`h5s/${a.path}`)), outputs: [run('h5s/manifest.json')] },
    {
      name: 'diagnostics',
      deps: ['fit-regional', 'fit-national'],
      reads: DIAGNOSTIC_FILES.map(art),
      outputs: DIAGNOSTIC_FILES.map((f) => run(`diagnostics/${f}`)),
    },
  ];
}

/** Input file of a target in the trivial flavour (its "script"). */
const inputOf = (name: string) => `inputs/${name.replace(/^h5:/, 'areas/').replace(/[^A-Za-z0-9/_-]/g, '_')}.txt`;
const COMMON = 'inputs/common.txt';

/** `sed '/^#/d' in... > out` (or `| tee` for several outputs): cheap, deterministic, comment-blind. */
function sedCommand(ins: string[], outs: string[]): string[] {
  const q = (p: string) => (/^[A-Za-z0-9_./{}:-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`);
  const head = `sed '/^#/d' ${ins.map(q).join(' ')}`;
  const [first, ...rest] = outs;
  const line = rest.length ? `${head} | tee ${rest.map(q).join(' ')} > ${q(first!)}` : `${head} > ${q(first!)}`;
  return ['sh', '-c', line];
}

export interface TrivialOptions {
  areas?: Area[];
}

export function trivialWorkload(options: TrivialOptions = {}): Workload {
  const areas = options.areas ?? defaultAreas();
  const files: Record<string, string> = {};
  const toStep = (s: Shape, area?: Area): Step => {
    const own = inputOf(s.name);
    const sources = s.name === 'python-env' ? [own] : [COMMON, own];
    files[own] = `# input of ${s.name}\n${s.name} v1\n`;
    return {
      name: s.name,
      sources,
      deps: s.deps,
      reads: s.reads,
      outputs: s.outputs,
      // area-list must emit the JSON the fan-out expands; it reads the database (its dependency) too.
      command: s.name === 'area-list' ? ['sh', '-c', `test -s ${s.reads[0]} && sed '/^#/d' inputs/areas.json > ${s.outputs[0]}`] : sedCommand([...sources, ...s.reads], s.outputs),
      ...(area ? { area } : {}),
    };
  };
  files[COMMON] = '# shared helpers of every stage\ncommon v1\n';
  files['inputs/areas.json'] = `${JSON.stringify(areas)}\n`;
  const steps = staticShapes().map((s) => toStep(s));
  steps.find((s) => s.name === 'area-list')!.sources.push('inputs/areas.json');
  const areaSteps = areas.map((a) => toStep(areaShape(a), a));
  steps.push(...tailShapes(areas).map((s) => toStep(s)));
  const probe = areas.find((a) => a.id === 'AL') ?? areas[0]!;
  return {
    flavour: 'trivial',
    steps,
    areaSteps,
    areas,
    files,
    outputDirs: outputDirs(areas),
    edits: { leaf: inputOf('diagnostics'), root: inputOf('database'), area: inputOf(areaTargetName(probe)) },
    expected: { leaf: ['diagnostics'], root: ['database'], area: [areaTargetName(probe), 'manifest'] },
  };
}

function outputDirs(areas: Area[]): string[] {
  const dirs = new Set(['artifacts', 'diagnostics', 'h5s']);
  for (const a of areas) dirs.add(`h5s/${a.path.split('/')[0]}`);
  return [...dirs].sort();
}

/** Variables of the real flavour: small, so that ~500 Python processes finish in minutes. */
export interface RealOptions {
  /** Absolute path of the Python that has the example's requirements (shared by every tool). */
  python: string;
  areas: Area[];
  households: number;
  nClones: number;
  epochs: number;
  seed: number;
  year: number;
}

/**
 * The example's own commands (the same modules and flags as tasks/pipeline.ts in the example
 * profile), with one Python for every tool: the environment target only records it, so building
 * the virtual environment is not part of what is compared.
 */
export function realWorkload(o: RealOptions): Workload {
  const py = (module: string, ...args: string[]) => [o.python, '-m', module, ...args];
  const COMMON_SOURCES = ['pyproject.toml', 'policyengine_us_data/__init__.py', 'policyengine_us_data/utils/*.py'];
  const hh = ['--households', String(o.households), '--seed', String(o.seed)];
  const datasets: Record<string, [module: string, args: string[]]> = {
    uprating: ['policyengine_us_data.utils.uprating', []],
    acs: ['policyengine_us_data.datasets.acs.acs', hh],
    'irs-puf': ['policyengine_us_data.datasets.puf.irs_puf', hh],
    cps: ['policyengine_us_data.datasets.cps.cps', [...hh, '--db-path', art('policy_data.db')]],
    puf: ['policyengine_us_data.datasets.puf.puf', ['--irs-puf', art('irs_puf_2015.h5'), '--cps', art('cps_2024.h5'), '--uprating', art('uprating_factors.csv')]],
    'extended-cps': ['policyengine_us_data.datasets.cps.extended_cps', ['--cps', art('cps_2024.h5'), '--puf', art('puf_2024.h5')]],
    'stratified-cps': ['policyengine_us_data.calibration.create_stratified_cps', ['--input', art('extended_cps_2024.h5')]],
    'source-imputed-cps': ['policyengine_us_data.calibration.create_source_imputed_cps', ['--input', art('stratified_extended_cps_2024.h5'), '--acs', art('acs_2022.h5')]],
  };
  const fit = (national: boolean) => [
    ...py('policyengine_us_data.calibration.unified_calibration'),
    '--device', 'cpu', '--epochs', String(o.epochs),
    '--package-path', art('calibration_package.pkl'),
    '--target-config', 'calibration/target_config.yaml',
    '--beta', '0.65', '--lambda-l0', national ? '2e-2' : '1e-7', '--lambda-l2', national ? '1e-12' : '1e-8',
    '--learning-rate', '0.15', '--log-freq', '100', '--seed', String(o.seed),
    '--output-dir', run('artifacts'),
    ...(national ? ['--national'] : []),
  ];
  const toStep = (s: Shape, area?: Area): Step => {
    const sources = [...COMMON_SOURCES];
    let command: string[];
    if (s.name === 'python-env') {
      return { ...s, sources: ['requirements.txt'], command: ['sh', '-c', `${o.python} -c 'import numpy, h5py' && cat requirements.txt > ${s.outputs[0]}`] };
    } else if (s.name === 'database') {
      sources.push('policyengine_us_data/db/*.py');
      command = py('policyengine_us_data.db.build_database', '--year', String(o.year), '--db-path', art('policy_data.db'));
    } else if (datasets[s.name]) {
      const [module, args] = datasets[s.name]!;
      sources.push(`${module.replaceAll('.', '/')}.py`);
      command = [...py(module, ...args), '--output', s.outputs[0]!];
    } else if (s.name === 'calibration-package') {
      sources.push('policyengine_us_data/calibration/*.py', 'calibration/target_config.yaml');
      command = [
        ...py('policyengine_us_data.calibration.unified_calibration'),
        '--device', 'cpu', '--epochs', '0', '--build-only',
        '--db-path', art('policy_data.db'), '--dataset', art('source_imputed_stratified_extended_cps_2024.h5'),
        '--package-output', art('calibration_package.pkl'), '--n-clones', String(o.nClones),
        '--target-config', 'calibration/target_config.yaml', '--seed', String(o.seed),
      ];
    } else if (s.name === 'fit-regional' || s.name === 'fit-national') {
      sources.push('policyengine_us_data/calibration/*.py', 'calibration/target_config.yaml');
      command = fit(s.name === 'fit-national');
    } else if (s.name === 'area-list') {
      sources.push('policyengine_us_data/calibration/area_catalog.py');
      command = py('policyengine_us_data.calibration.area_catalog', '--db-path', art('policy_data.db'), '--output', art('areas.json'));
    } else if (area) {
      sources.push('modal_app/*.py');
      const prefix = area.type === 'national' ? 'national_' : '';
      command = py(
        'modal_app.worker_script',
        '--work-items', JSON.stringify([{ type: area.type, id: area.id }]),
        '--weights-path', art(`${prefix}calibration_weights.npy`),
        '--geography-path', art(`${prefix}geography_assignment.npz`),
        '--dataset-path', art('source_imputed_stratified_extended_cps_2024.h5'),
        '--db-path', art('policy_data.db'),
        '--output-dir', run('h5s'),
        '--n-clones', String(o.nClones), '--seed', String(o.seed),
      );
    } else if (s.name === 'manifest') {
      command = py('policyengine_us_data.utils.manifest', '--h5-dir', run('h5s'), '--output', run('h5s/manifest.json'));
    } else if (s.name === 'diagnostics') {
      return { ...s, sources: [], command: ['cp', ...s.reads, run('diagnostics/')] };
    } else {
      throw new Error(`no real command for ${s.name}`);
    }
    return { ...s, sources, command, ...(area ? { area } : {}) };
  };
  const steps = staticShapes().map((s) => toStep(s));
  const areaSteps = o.areas.map((a) => toStep(areaShape(a), a));
  steps.push(...tailShapes(o.areas).map((s) => toStep(s)));
  return {
    flavour: 'real',
    steps,
    areaSteps,
    areas: o.areas,
    files: {},
    outputDirs: outputDirs(o.areas),
    edits: { leaf: '', root: '', area: '' },
    expected: { leaf: [], root: [], area: [] },
  };
}

/** Every target of a workload, in a stable order (what the four declarations must all declare). */
export function allSteps(w: Workload): Step[] {
  const tail = w.steps.filter((s) => s.name === 'manifest' || s.name === 'diagnostics');
  const head = w.steps.filter((s) => !tail.includes(s));
  return [...head, ...w.areaSteps, ...tail];
}
