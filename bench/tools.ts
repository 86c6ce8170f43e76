import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { dvcStageName, type Emitted } from './emit.ts';
import { capture, timed } from './proc.ts';
import { allSteps, stripRun, type Workload } from './workload.ts';

/**
 * One adapter per tool: make a fresh workspace from the workload, build (timed), apply an edit,
 * and say which targets the last build re-executed.
 *
 * How "re-executed" is counted, per tool:
 * - ours: the run's meta.json (outcome `built`), which the engine writes for every run;
 * - DVC: its "Running stage '<name>'" lines (a run-cache restore would not be an execution);
 * - make and Snakemake: targets any of whose outputs changed (mtime or inode) during the build;
 *   neither restores from a cache, so a rewritten output is an executed recipe.
 */
export type ToolName = 'ours' | 'make' | 'dvc' | 'snakemake';
export const TOOLS: ToolName[] = ['ours', 'make', 'dvc', 'snakemake'];

export interface BuildResult {
  seconds: number;
  maxRssKb: number | null;
  /** Target names re-executed by this build. */
  executed: string[];
}

export interface Env {
  /** The engine's checkout (a snapshot under bench/.work/engine): holds build.ts. */
  engineDir: string;
  /** The bench venv's bin/ (dvc, snakemake). */
  venvBin: string;
  jobs: number;
  /** Generated declarations of this workload. */
  emitted: Emitted;
  /** Path of the generated BUILD_TASKS module. */
  tasksModule: string;
  /** Directory to copy into every workspace first (the real flavour's example project), or null. */
  copyFrom: string | null;
}

const GIT_ID = ['-c', 'user.email=bench@example.invalid', '-c', 'user.name=bench', '-c', 'commit.gpgsign=false'];

async function git(cwd: string, ...args: string[]): Promise<void> {
  await capture(['git', ...GIT_ID, ...args], { cwd });
}

/** Environment for every tool: the caller's, with the bench venv first on PATH and analytics off. */
function toolEnv(env: Env, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, PATH: `${env.venvBin}:${process.env.PATH ?? ''}`, DVC_NO_ANALYTICS: '1', ...extra };
  delete out.BUILD_TASKS;
  delete out.BUILD_CACHE_DIR;
  return out;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

/** Output files of every target, workspace-relative, for the mtime/inode comparison. */
function outputsByTarget(w: Workload): Map<string, string[]> {
  return new Map(allSteps(w).map((s) => [s.name, s.outputs.map(stripRun)]));
}

type Snapshot = Map<string, string>;
async function snapshot(dir: string, files: Iterable<string>): Promise<Snapshot> {
  const out: Snapshot = new Map();
  for (const f of files) {
    try {
      const st = await stat(join(dir, f), { bigint: true });
      out.set(f, `${st.mtimeNs}:${st.ino}:${st.size}`);
    } catch {
      out.set(f, 'missing');
    }
  }
  return out;
}

export abstract class Tool {
  abstract readonly name: ToolName;
  readonly dir: string;
  protected readonly w: Workload;
  protected readonly env: Env;
  protected builds = 0;

  constructor(dir: string, w: Workload, env: Env) {
    this.dir = dir;
    this.w = w;
    this.env = env;
  }

  get logDir(): string {
    return `${this.dir}.logs`;
  }

  /** A fresh workspace: the workload's files, its declaration, output directories. */
  async create(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await rm(this.logDir, { recursive: true, force: true });
    await mkdir(this.logDir, { recursive: true });
    if (this.env.copyFrom) await cp(this.env.copyFrom, this.dir, { recursive: true });
    await mkdir(this.dir, { recursive: true });
    await writeFiles(this.dir, this.w.files);
    await this.init();
  }

  protected abstract init(): Promise<void>;
  abstract build(label: string): Promise<BuildResult>;

  /** Changes one workspace file (append), as a user would before rebuilding. */
  async edit(file: string, append: string): Promise<void> {
    const path = join(this.dir, file);
    await writeFile(path, (await readFile(path, 'utf8')) + append);
  }

  /** Path of a built output (ours: inside the latest run directory). */
  async outputPath(runRelative: string): Promise<string> {
    return join(this.dir, runRelative);
  }

  protected log(label: string): string {
    return join(this.logDir, `${String(++this.builds).padStart(3, '0')}-${label}.log`);
  }
}

/** make and Snakemake: executed = targets whose outputs changed. */
abstract class FileTool extends Tool {
  protected async timedWithDiff(label: string, argv: string[], extraEnv: Record<string, string> = {}): Promise<BuildResult> {
    const outputs = outputsByTarget(this.w);
    const all = [...outputs.values()].flat();
    const before = await snapshot(this.dir, all);
    const t = await timed(argv, { cwd: this.dir, env: toolEnv(this.env, extraEnv), log: this.log(label) });
    const after = await snapshot(this.dir, all);
    const executed = [...outputs].filter(([, files]) => files.some((f) => before.get(f) !== after.get(f))).map(([name]) => name);
    return { seconds: t.seconds, maxRssKb: t.maxRssKb, executed };
  }

  protected async makeOutputDirs(): Promise<void> {
    for (const d of this.w.outputDirs) await mkdir(join(this.dir, d), { recursive: true });
  }
}

export class MakeTool extends FileTool {
  readonly name = 'make';
  protected async init(): Promise<void> {
    await writeFile(join(this.dir, 'Makefile'), this.env.emitted.makefile);
    await this.makeOutputDirs();
  }
  build(label: string): Promise<BuildResult> {
    return this.timedWithDiff(label, ['make', `-j${this.env.jobs}`]);
  }
}

export class SnakemakeTool extends FileTool {
  readonly name = 'snakemake';
  protected async init(): Promise<void> {
    await writeFile(join(this.dir, 'Snakefile'), this.env.emitted.snakefile);
    await this.makeOutputDirs();
  }
  build(label: string): Promise<BuildResult> {
    return this.timedWithDiff(label, [join(this.env.venvBin, 'snakemake'), '--cores', String(this.env.jobs)]);
  }
}

export class DvcTool extends Tool {
  readonly name = 'dvc';
  protected async init(): Promise<void> {
    await writeFile(join(this.dir, 'dvc.yaml'), this.env.emitted.dvcYaml);
    for (const d of this.w.outputDirs) await mkdir(join(this.dir, d), { recursive: true });
    await git(this.dir, 'init', '-q');
    const dvc = join(this.env.venvBin, 'dvc');
    await capture([dvc, 'init', '-q'], { cwd: this.dir, env: toolEnv(this.env) });
    await capture([dvc, 'config', 'core.analytics', 'false'], { cwd: this.dir, env: toolEnv(this.env) });
    await capture([dvc, 'config', 'core.autostage', 'false'], { cwd: this.dir, env: toolEnv(this.env) });
    await git(this.dir, 'add', '-A');
    await git(this.dir, 'commit', '-qm', 'workload');
  }
  async build(label: string): Promise<BuildResult> {
    const log = this.log(label);
    const t = await timed([join(this.env.venvBin, 'dvc'), 'repro'], { cwd: this.dir, env: toolEnv(this.env), log });
    const text = await readFile(log, 'utf8');
    const byStage = new Map(allSteps(this.w).map((s) => [dvcStageName(s.name), s.name]));
    const executed = [...text.matchAll(/^Running stage '([^']+)'/gm)].map((m) => byStage.get(m[1]!) ?? m[1]!);
    return { seconds: t.seconds, maxRssKb: t.maxRssKb, executed };
  }
}

/**
 * Our engine, through its real entry point (`./build.ts pipeline`), on a git repository (runs are
 * pinned to a commit: edits are committed before the timed build, as a user of the engine would).
 * The plain logger is used (stdout to a file), as in CI; counts come from the run's meta.json.
 */
export class OursTool extends Tool {
  readonly name = 'ours';
  private lastRunDir: string | null = null;

  get cacheDir(): string {
    return `${this.dir}.cache`;
  }

  protected async init(): Promise<void> {
    await rm(this.cacheDir, { recursive: true, force: true });
    await git(this.dir, 'init', '-q');
    await git(this.dir, 'add', '-A');
    await git(this.dir, 'commit', '-qm', 'workload');
  }

  override async edit(file: string, append: string): Promise<void> {
    await super.edit(file, append);
    await git(this.dir, 'commit', '-qam', `edit ${file}`);
  }

  async build(label: string): Promise<BuildResult> {
    const log = this.log(label);
    const argv = [join(this.env.engineDir, 'build.ts'), 'pipeline', `REPO=${this.dir}`, '-j', String(this.env.jobs)];
    const t = await timed(argv, {
      cwd: this.dir,
      env: { ...toolEnv(this.env), BUILD_TASKS: this.env.tasksModule, BUILD_CACHE_DIR: this.cacheDir, CI: '1' },
      log,
    });
    const text = await readFile(log, 'utf8');
    const summary = [...text.matchAll(/\(run ([^)\s]+)\)\s*$/gm)].pop();
    if (!summary) throw new Error(`ours: no summary line in ${log}`);
    this.lastRunDir = join(this.cacheDir, 'runs', summary[1]!);
    const meta = JSON.parse(await readFile(join(this.lastRunDir, 'meta.json'), 'utf8')) as { status: string; targets: Record<string, { outcome: string }> };
    if (meta.status !== 'completed') throw new Error(`ours: run ${summary[1]} ended ${meta.status}; see ${log}`);
    const executed = Object.entries(meta.targets).filter(([, t]) => t.outcome === 'built').map(([name]) => name);
    return { seconds: t.seconds, maxRssKb: t.maxRssKb, executed };
  }

  override async outputPath(runRelative: string): Promise<string> {
    if (!this.lastRunDir) throw new Error('ours: no run yet');
    return join(this.lastRunDir, runRelative);
  }
}

export function makeTool(name: ToolName, dir: string, w: Workload, env: Env): Tool {
  switch (name) {
    case 'ours':
      return new OursTool(dir, w, env);
    case 'make':
      return new MakeTool(dir, w, env);
    case 'dvc':
      return new DvcTool(dir, w, env);
    case 'snakemake':
      return new SnakemakeTool(dir, w, env);
  }
}
