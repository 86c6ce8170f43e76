import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { runBuildScenarios, type ScenarioId, type ScenarioResult } from './builds.ts';
import { emitAll } from './emit.ts';
import { prepareHashFiles, runHashing, type HashResult } from './hashing.ts';
import { capture } from './proc.ts';
import { renderMarkdown, verdicts, type Results } from './report.ts';
import { ensurePeers, machine, snapshotEngine, versions, type Setup } from './setup.ts';
import { TOOLS, type Env, type ToolName } from './tools.ts';
import { allSteps, defaultAreas, realWorkload, trivialWorkload, type Area, type Workload } from './workload.ts';

/**
 * `npm run bench` (node bench/run.mjs [options]): installs the peers, generates the workloads,
 * runs every scenario for every tool in alternation, writes bench/RESULTS.md and
 * bench/results.json. Options:
 *   --reps N           repetitions of each build scenario (default 5)
 *   --hash-reps N      repetitions of each hashing case (default 5)
 *   --tools a,b        subset of ours,make,dvc,snakemake
 *   --only a,b         subset of cold,noop,leaf,root,area,hash,real
 *   --areas N          use only the first N areas in the trivial workload (development only)
 *   --real-areas N     areas in the real-commands workload (default 40; 489 is the full graph)
 *   --real-reps N      repetitions of the real-commands workload (default 1)
 *   --cold-budget S    a tool whose cold build takes longer than S seconds is not rebuilt cold again (default 120)
 *   --dvc-areas N      DVC is measured on a graph of N areas, with every tool (default 60; 0: full graph)
 *   --quick            --reps 2 --hash-reps 2, 1 GiB hashing only, no real commands (a smoke run)
 *   --out DIR          where RESULTS.md and results.json go (default bench/)
 *   --merge            keep what an earlier results.json in DIR measured and this run does not
 */
interface Options {
  reps: number;
  hashReps: number;
  tools: ToolName[];
  only: Set<string>;
  areas: number | null;
  realAreas: number;
  realReps: number;
  coldBudget: number;
  /** Areas of the smaller graph on which DVC is measured (0: DVC on the full graph). */
  dvcAreas: number;
  jobs: number;
  quick: boolean;
  /** Keep the workloads and hashing of an earlier results.json that this run does not measure. */
  merge: boolean;
  out: string;
  hashSizes: number[];
}

function parse(argv: string[], root: string): Options {
  const o: Options = {
    reps: 5,
    hashReps: 5,
    tools: [...TOOLS],
    only: new Set(['cold', 'noop', 'leaf', 'root', 'area', 'hash', 'real']),
    areas: null,
    realAreas: 40,
    realReps: 1,
    coldBudget: 120,
    dvcAreas: 60,
    jobs: 2,
    quick: false,
    merge: false,
    out: join(root, 'bench'),
    hashSizes: [1, 4],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--reps') o.reps = Number(next());
    else if (a === '--hash-reps') o.hashReps = Number(next());
    else if (a === '--tools') o.tools = next().split(',') as ToolName[];
    else if (a === '--only') o.only = new Set(next().split(','));
    else if (a === '--areas') o.areas = Number(next());
    else if (a === '--real-areas') o.realAreas = Number(next());
    else if (a === '--real-reps') o.realReps = Number(next());
    else if (a === '--cold-budget') o.coldBudget = Number(next());
    else if (a === '--dvc-areas') o.dvcAreas = Number(next());
    else if (a === '--jobs' || a === '-j') o.jobs = Number(next());
    else if (a === '--out') o.out = resolve(next());
    else if (a === '--merge') o.merge = true;
    else if (a === '--quick') {
      o.quick = true;
      o.reps = 2;
      o.hashReps = 2;
      o.hashSizes = [1];
      o.only.delete('real');
    } else throw new Error(`unknown option ${a} (see bench/main.ts)`);
  }
  for (const t of o.tools) if (!TOOLS.includes(t)) throw new Error(`unknown tool ${t}`);
  if (!o.tools.includes('ours')) o.tools.unshift('ours');
  return o;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

async function writeWorkload(dir: string, w: Workload): Promise<{ emitted: ReturnType<typeof emitAll>; tasksModule: string }> {
  await mkdir(dir, { recursive: true });
  const emitted = emitAll(w);
  const tasksModule = join(dir, 'tasks.mjs');
  await writeFile(tasksModule, emitted.tasks);
  await writeFile(join(dir, 'Makefile'), emitted.makefile);
  await writeFile(join(dir, 'dvc.yaml'), emitted.dvcYaml);
  await writeFile(join(dir, 'Snakefile'), emitted.snakefile);
  return { emitted, tasksModule };
}

/** The example project and a Python with its requirements, shared by every tool (real commands). */
async function prepareReal(root: string, work: string, o: Options): Promise<{ w: Workload; copyFrom: string; note: string } | null> {
  const example = join(root, 'examples', 'us-data');
  const needed = ['modal_app/worker_script.py', 'policyengine_us_data/calibration/area_catalog.py', 'policyengine_us_data/calibration/unified_calibration.py', 'policyengine_us_data/utils/manifest.py'];
  const missing = needed.filter((f) => !existsSync(join(example, f)));
  if (missing.length) {
    log(`real commands skipped: examples/us-data lacks ${missing.join(', ')}`);
    return null;
  }
  const src = join(work, 'example-src');
  await rm(src, { recursive: true, force: true });
  await cp(example, src, { recursive: true, filter: (p) => !p.includes('__pycache__') && !p.endsWith('.pyc') });
  const venv = join(work, 'example-venv');
  const stamp = join(venv, 'requirements.txt');
  const req = await readFile(join(example, 'requirements.txt'), 'utf8');
  if (!existsSync(stamp) || (await readFile(stamp, 'utf8')) !== req) {
    log('installing the example requirements into bench/.work/example-venv (once)');
    if (!existsSync(join(venv, 'bin', 'python'))) await capture(['python3', '-m', 'venv', venv]);
    await capture([join(venv, 'bin', 'pip'), 'install', '-q', '--disable-pip-version-check', '-r', join(example, 'requirements.txt')]);
    await writeFile(stamp, req);
  }
  const python = join(venv, 'bin', 'python');
  // The area list comes from the example's own catalogue (as our fan-out reads it at build time).
  const scratch = join(work, 'example-areas');
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const env = { ...process.env, PYTHONHASHSEED: '0', PYTHONDONTWRITEBYTECODE: '1' };
  await capture([python, '-m', 'policyengine_us_data.db.build_database', '--year', '2024', '--db-path', join(scratch, 'db.sqlite')], { cwd: src, env });
  await capture([python, '-m', 'policyengine_us_data.calibration.area_catalog', '--db-path', join(scratch, 'db.sqlite'), '--output', join(scratch, 'areas.json')], { cwd: src, env });
  const all = JSON.parse(await readFile(join(scratch, 'areas.json'), 'utf8')) as Area[];
  const areas = subset(all, o.realAreas);
  const raw = realWorkload({ python, areas, households: 300, nClones: 2, epochs: 30, seed: 42, year: 2024 });
  // DVC and Snakemake take files, not globs: every tool gets the globs expanded against the example.
  const fg = (await import('fast-glob')).default;
  const expand = (sources: string[]) => [...new Set(sources.flatMap((p) => (fg.isDynamicPattern(p) ? fg.sync(p, { cwd: src, onlyFiles: true }).sort() : [p])))];
  const w: Workload = { ...raw, steps: raw.steps.map((s) => ({ ...s, sources: expand(s.sources) })), areaSteps: raw.areaSteps.map((s) => ({ ...s, sources: expand(s.sources) })) };
  const note =
    `Real commands: the example's own \`python -m policyengine_us_data...\` modules (HOUSEHOLDS=300, N_CLONES=2, EPOCHS=30), one Python (bench/.work/example-venv) for every tool; ` +
    `${areas.length} of the catalogue's ${all.length} areas${areas.length < all.length ? ' (a deterministic subset: national, NYC, then every k-th area)' : ''}.`;
  return { w, copyFrom: src, note };
}

/** Keeps national and NYC, then every k-th area, so the subset still has every area type. */
function subset(all: Area[], n: number): Area[] {
  if (n >= all.length) return all;
  const special = all.filter((a) => a.type === 'national' || a.type === 'city');
  const rest = all.filter((a) => !special.includes(a));
  const k = rest.length / Math.max(1, n - special.length);
  const picked = Array.from({ length: Math.max(0, n - special.length) }, (_, i) => rest[Math.floor(i * k)]!);
  return [...picked, ...special];
}

export async function main(argv: string[], root: string): Promise<void> {
  const started = Date.now();
  const o = parse(argv, root);
  const work = join(root, 'bench', '.work');
  await mkdir(work, { recursive: true });
  log(`bench: ${JSON.stringify({ ...o, only: [...o.only] })}`);
  const peers = await ensurePeers(work, log);
  const engine = await snapshotEngine(root, work, log);
  const setup: Setup = { ...peers, ...engine };

  const builds: ScenarioResult[] = [];
  const outputsAgree: Results['outputsAgree'] = {};
  const workloads: Results['workloads'] = {};
  const buildScenarios = (['cold', 'noop', 'leaf', 'root', 'area'] as ScenarioId[]).filter((s) => o.only.has(s));

  const trivialRun = async (name: string, areaCount: number | null, tools: ToolName[], note: string | undefined, coldBudget: number) => {
    const areas = areaCount ? defaultAreas().slice(0, areaCount) : defaultAreas();
    const w = trivialWorkload({ areas });
    const dir = join(work, name);
    const { emitted, tasksModule } = await writeWorkload(dir, w);
    workloads[name] = { targets: allSteps(w).length, areas: areas.length, ...(note ? { note } : {}) };
    log(`${name} workload: ${allSteps(w).length} targets; tools ${tools.join(', ')}`);
    const env: Env = { engineDir: setup.engineDir, venvBin: setup.venvBin, jobs: o.jobs, emitted, tasksModule, copyFrom: null };
    const r = await runBuildScenarios(w, env, {
      tools, scenarios: buildScenarios, reps: o.reps, coldBudget, slowAfter: 60, slowReps: 3, workRoot: join(dir, 'ws'), workload: name, log,
    });
    builds.push(...r.scenarios);
    outputsAgree[name] = r.outputsAgree;
  };
  if (buildScenarios.length) {
    // DVC writes its whole dvc.lock after every stage, so a cold `dvc repro` of the full graph is
    // quadratic: measured here, 144 of the 505 stages took 9 minutes and the rest ran slower still
    // (well over 30 minutes in all). The full graph is therefore measured without DVC, and DVC
    // joins every tool on the same graph with fewer areas (--dvc-areas, default 60).
    const full = o.dvcAreas > 0 ? o.tools.filter((t) => t !== 'dvc') : o.tools;
    const dev = o.areas ? `**Development run: only ${o.areas} areas.**` : undefined;
    await trivialRun('trivial', o.areas, full, dev ?? (full.length < o.tools.length ? `DVC is measured on the smaller graph below (its cold build of this one takes over 30 minutes).` : undefined), o.coldBudget);
    if (o.dvcAreas > 0 && o.tools.includes('dvc')) {
      await trivialRun('trivial-dvc-scale', o.dvcAreas, o.tools, `The same workload with the first ${o.dvcAreas} areas, so that DVC (sequential, quadratic dvc.lock updates) finishes: every tool is measured on it, so its ratios compare like with like.`, 60);
    }
  }

  if (o.only.has('real')) {
    const real = await prepareReal(root, work, o).catch((error: Error) => {
      log(`real commands skipped: ${error.message}`);
      workloads.real = { targets: 0, areas: 0, note: `Not measured: ${error.message.split('\n')[0]}` };
      return null;
    });
    if (real) {
      const dir = join(work, 'real');
      const { emitted, tasksModule } = await writeWorkload(dir, real.w);
      workloads.real = { targets: allSteps(real.w).length, areas: real.w.areas.length, note: real.note };
      log(`real workload: ${allSteps(real.w).length} targets`);
      const env: Env = { engineDir: setup.engineDir, venvBin: setup.venvBin, jobs: o.jobs, emitted, tasksModule, copyFrom: real.copyFrom };
      try {
        const r = await runBuildScenarios(real.w, env, {
          tools: o.tools, scenarios: ['cold', 'noop'], reps: o.realReps, coldBudget: 0, slowAfter: 60, slowReps: 1, workRoot: join(dir, 'ws'), workload: 'real', log,
        });
        builds.push(...r.scenarios);
        outputsAgree.real = r.outputsAgree;
      } catch (error) {
        log(`real commands failed: ${(error as Error).message}`);
        workloads.real!.note = `${workloads.real!.note ?? ''} **Failed**: ${(error as Error).message.split('\n')[0]}`;
      }
    }
  }

  let hashing: HashResult[] = [];
  if (o.only.has('hash')) {
    const cases = await prepareHashFiles(join(work, 'hash'), { big: o.hashSizes, many: { count: 16, bytes: 128 * 1024 * 1024 } });
    hashing = await runHashing(cases, { node: process.execPath, hashCli: setup.hashCli, xxhsum: setup.xxhsum, python: setup.python, scratch: join(work, 'hash-logs') }, o.hashReps, log);
  }

  const results: Results = {
    date: new Date().toISOString(),
    machine: machine(),
    versions: await versions(root, setup),
    options: { ...o, only: [...o.only], out: undefined },
    workloads,
    builds,
    outputsAgree,
    hashing,
    durationSeconds: (Date.now() - started) / 1000,
    loadavgAtEnd: loadavg().map((l) => l.toFixed(2)).join(' '),
  };
  if (o.merge && existsSync(join(o.out, 'results.json'))) {
    const old = JSON.parse(await readFile(join(o.out, 'results.json'), 'utf8')) as Results;
    // Per scenario: `--only noop` keeps the earlier cold, leaf, root and area results of the same workload.
    const measured = new Set(results.builds.map((b) => `${b.workload} ${b.id}`));
    results.builds.push(...old.builds.filter((b) => !measured.has(`${b.workload} ${b.id}`)));
    for (const [name, w] of Object.entries(old.workloads)) results.workloads[name] ??= w;
    for (const [name, agree] of Object.entries(old.outputsAgree)) results.outputsAgree[name] ??= agree;
    const order = Object.keys(results.workloads);
    results.builds.sort((a, b) => order.indexOf(a.workload) - order.indexOf(b.workload) || a.number - b.number);
    if (!results.hashing.length) results.hashing = old.hashing;
    results.options = { ...results.options, mergedWith: old.date };
  }
  await mkdir(o.out, { recursive: true });
  await writeFile(join(o.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const notesFile = join(root, 'bench', 'PROFILE.md');
  const notes = existsSync(notesFile) ? `See [PROFILE.md](PROFILE.md).` : '';
  await writeFile(join(o.out, 'RESULTS.md'), renderMarkdown(results, notes));
  log('');
  for (const v of verdicts(results)) log(`${v.met ? 'MET   ' : v.met === null ? '?     ' : 'MISSED'} ${v.target}: ${v.measured}`);
  log(`wrote ${join(o.out, 'RESULTS.md')} and results.json in ${((Date.now() - started) / 60000).toFixed(1)} min`);
}
