import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { capture } from './proc.ts';

/**
 * Everything the suite needs, installed by the suite itself:
 * - dvc and snakemake, pinned, from PyPI into a virtual environment under bench/.work/venv;
 * - `xxhsum` from the Debian package `xxhash`, and GNU `time` (peak memory), with apt-get when
 *   missing and we are root;
 * - a snapshot of the engine (build.ts, src/, tasks/, scripts/, package.json) under
 *   bench/.work/engine, bundled once, so that edits made elsewhere while the suite runs cannot
 *   change what is measured; it runs through its real entry point, `./build.ts`.
 */
export const PINNED = { dvc: '3.67.1', snakemake: '9.27.1' } as const;

export interface Setup {
  venvBin: string;
  python: string;
  xxhsum: string;
  engineDir: string;
  hashCli: string;
}

async function has(cmd: string): Promise<boolean> {
  return (await capture(['sh', '-c', `command -v ${cmd}`], { allowFail: true })).trim() !== '';
}

async function aptInstall(pkg: string, log: (l: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error(`${pkg} is missing: install it (apt-get install -y ${pkg})`);
  log(`installing Debian package ${pkg}`);
  try {
    await capture(['apt-get', 'install', '-y', '-q', pkg], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    await capture(['apt-get', 'update', '-q']);
    await capture(['apt-get', 'install', '-y', '-q', pkg], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}

export async function ensurePeers(work: string, log: (l: string) => void): Promise<Pick<Setup, 'venvBin' | 'python' | 'xxhsum'>> {
  const venv = join(work, 'venv');
  const venvBin = join(venv, 'bin');
  const stamp = join(venv, 'bench-pins.json');
  const want = JSON.stringify(PINNED);
  if (!existsSync(stamp) || (await readFile(stamp, 'utf8')) !== want) {
    log(`installing dvc==${PINNED.dvc} snakemake==${PINNED.snakemake} into ${venv} (once)`);
    if (!existsSync(join(venvBin, 'python'))) await capture(['python3', '-m', 'venv', venv]);
    await capture([join(venvBin, 'pip'), 'install', '-q', '--disable-pip-version-check', `dvc==${PINNED.dvc}`, `snakemake==${PINNED.snakemake}`]);
    await writeFile(stamp, want);
  }
  if (!(await has('xxhsum'))) await aptInstall('xxhash', log);
  if (!existsSync('/usr/bin/time')) await aptInstall('time', log);
  if (!(await has('make'))) await aptInstall('make', log);
  return { venvBin, python: join(venvBin, 'python'), xxhsum: (await capture(['sh', '-c', 'command -v xxhsum'])).trim() };
}

/** Copies the engine (as it is in this checkout, committed or not) and bundles it and the hashing entry. */
export async function snapshotEngine(root: string, work: string, log: (l: string) => void): Promise<Pick<Setup, 'engineDir' | 'hashCli'>> {
  const engineDir = join(work, 'engine');
  await rm(engineDir, { recursive: true, force: true });
  await mkdir(engineDir, { recursive: true });
  for (const entry of ['build.ts', 'src', 'tasks', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json']) {
    if (existsSync(join(root, entry))) await cp(join(root, entry), join(engineDir, entry), { recursive: true });
  }
  await mkdir(join(engineDir, 'bench'), { recursive: true });
  await cp(join(root, 'bench', 'hash-cli.ts'), join(engineDir, 'bench', 'hash-cli.ts'));
  await symlink(join(root, 'node_modules'), join(engineDir, 'node_modules'));
  await mkdir(join(engineDir, 'dist'), { recursive: true });
  log('bundling the engine snapshot');
  await capture([process.execPath, join(engineDir, 'scripts', 'bundle.mjs')], { cwd: engineDir });
  const { build } = await import('esbuild');
  const hashCli = join(engineDir, 'dist', 'hash-cli.mjs');
  await build({
    entryPoints: [join(engineDir, 'bench', 'hash-cli.ts')],
    outfile: hashCli,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['xxhash-addon'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  return { engineDir, hashCli };
}

const firstLine = (s: string) => s.trim().split('\n')[0]?.trim() ?? '';

export async function versions(root: string, s: Setup): Promise<Record<string, string>> {
  const sha = (await capture(['git', '-C', root, 'rev-parse', 'HEAD'], { allowFail: true })).trim();
  const dirty = (await capture(['git', '-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'src', 'tasks', 'build.ts', 'scripts'], { allowFail: true })).trim();
  const v = (argv: string[]) => capture(argv, { allowFail: true }).then(firstLine);
  const xx = await capture(['sh', '-c', `${s.xxhsum} --version 2>&1`], { allowFail: true });
  return {
    ours: `${sha.slice(0, 12)}${dirty ? ' + uncommitted changes to src/tasks' : ''}`,
    node: process.version,
    make: await v(['make', '--version']),
    dvc: await v([join(s.venvBin, 'dvc'), '--version']),
    'dvc-data': (await v([s.python, '-c', 'import importlib.metadata as m; print(m.version("dvc-data"))'])),
    snakemake: await v([join(s.venvBin, 'snakemake'), '--version']),
    python: await v([s.python, '--version']),
    xxhsum: firstLine(xx),
    git: await v(['git', '--version']),
  };
}

export function machine(): Record<string, string | number> {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadavgAtStart: loadavg().map((l) => l.toFixed(2)).join(' '),
    NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset',
  };
}
