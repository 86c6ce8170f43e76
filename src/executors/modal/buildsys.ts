import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { digestBytes, digestFile } from '../../caching/hash.ts';
import { UsageError } from '../../report/failures.ts';
import { remoteState } from './remote-state.ts';
import type { ModalTransport } from './transport.ts';

/**
 * The build system's own code, shipped content-addressed so that the coordinator on Modal runs
 * exactly the build the operator has: the CLI bundle (dist/: cli.cjs, its loader cli.mjs and its
 * source map), the files it reads at run time (build.ts and package.json, by which it finds its
 * root; tasks/ with the adapters; modal_app/; scripts/; src/python-env/hdf5_digest.py), and the
 * npm packages the bundle keeps external (with their dependency closure, as installed).
 *
 * MANIFEST lists `<XXH3-128> <size> <path>` per file, sorted by path; the build system's digest
 * is the XXH3-128 of the MANIFEST's bytes. It goes to `buildsys/<digest>/` on the volume, files
 * first and MANIFEST last, so a present MANIFEST means a complete upload; nothing is uploaded when
 * it is there. modal_app/coordinator_core.py recomputes both before running anything.
 */

/** The packages dist/cli.cjs requires at run time (scripts/bundle.mjs `external`, and chart.js for the review page). */
export const RUNTIME_PACKAGES = ['zx', '@huggingface/hub', '@google-cloud/storage', 'xxhash-addon', 'chart.js'];

const OWN_FILES = ['build.ts', 'package.json', 'dist/cli.cjs', 'dist/cli.mjs', 'dist/cli.cjs.map', 'src/python-env/hdf5_digest.py'];
const OWN_DIRS = ['tasks', 'modal_app', 'scripts'];

export interface BuildSystem {
  digest: string;
  manifest: string;
  /** Path in the build system (relative, `/`-separated) -> the local file. */
  files: Map<string, string>;
}

/** Collects and hashes the build system at `root` (the directory holding build.ts). */
export async function collectBuildSystem(root: string): Promise<BuildSystem> {
  if (!existsSync(join(root, 'dist', 'cli.cjs'))) {
    throw new UsageError('no-bundle', `${join(root, 'dist', 'cli.cjs')} is missing, so the build system cannot be shipped to Modal; run ./build.ts once (it bundles dist/), then retry`);
  }
  const files = new Map<string, string>();
  for (const f of OWN_FILES) if (existsSync(join(root, f))) files.set(f, join(root, f));
  for (const d of OWN_DIRS) for (const f of await walk(join(root, d))) files.set(posix(relative(root, f)), f);
  const modules = realpathSync(join(root, 'node_modules'));
  for (const pkg of packageClosure(root, RUNTIME_PACKAGES)) {
    for (const f of await walk(pkg, true)) files.set(posix(join('node_modules', relative(modules, f))), f);
  }
  // ~3,000 small files: hashed 32 at a time (their reads overlap), listed in path order.
  const paths = [...files.keys()].sort();
  const lines: string[] = new Array<string>(paths.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < paths.length; i = next++) {
      const { digest, size } = await digestFile(files.get(paths[i]!)!, { workers: false });
      lines[i] = `${digest} ${size} ${paths[i]}\n`;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  const manifest = lines.join('');
  return { digest: digestBytes(manifest), manifest, files };
}

/** Uploads the build system unless the volume has it; resolves to its digest and the bytes sent. */
export async function shipBuildSystem(transport: ModalTransport, root: string): Promise<{ digest: string; bytes: number }> {
  const b = await collectBuildSystem(root);
  if ((await transport.list(remoteState.buildsys(b.digest))).includes('MANIFEST')) return { digest: b.digest, bytes: 0 };
  const dest = remoteState.buildsys(b.digest);
  let bytes = await transport.put([...b.files].map(([path, local]) => ({ local, remote: `${dest}/${path}` })));
  const stage = await mkdtemp(join(tmpdir(), 'buildsys-'));
  try {
    await writeFile(join(stage, 'MANIFEST'), b.manifest);
    bytes += await transport.put([{ local: join(stage, 'MANIFEST'), remote: remoteState.buildsysManifest(b.digest) }]);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return { digest: b.digest, bytes };
}

/**
 * Package directories (real paths) of `names` and everything they depend on, resolved as Node
 * resolves them: from each package's directory upwards through node_modules.
 */
function packageClosure(root: string, names: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string, from: string, optional: boolean) => {
    let dir = from;
    for (;;) {
      const pj = join(dir, 'node_modules', name, 'package.json');
      if (existsSync(pj)) {
        const pkg = realpathSync(dirname(pj));
        if (seen.has(pkg)) return;
        seen.add(pkg);
        const json = JSON.parse(readFileSync(pj, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
        for (const d of Object.keys(json.dependencies ?? {})) visit(d, pkg, false);
        for (const d of Object.keys(json.optionalDependencies ?? {})) visit(d, pkg, true);
        return;
      }
      const up = dirname(dir);
      if (up === dir) {
        if (optional) return;
        throw new UsageError('no-bundle', `the npm package ${name} (needed by the build system on Modal) is not installed; run npm ci`);
      }
      dir = up;
    }
  };
  for (const n of names) visit(n, root, false);
  return [...seen];
}

/** Regular files under `dir`, recursively; no caches, no symlinks (node_modules/.bin), and, for a package, not its nested node_modules (visited as packages of their own). */
async function walk(dir: string, pkg = false): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.name === '__pycache__' || e.name.endsWith('.pyc') || e.name === '.cache' || e.name === '.bin') continue;
    if (pkg && e.name === 'node_modules') continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(path, pkg)));
    else if (e.isFile()) out.push(path);
  }
  return out;
}

const posix = (p: string) => p.split(sep).join('/');

