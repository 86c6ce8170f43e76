#!/usr/bin/env node
// `npm run bench`: bundles the suite (bench/*.ts, type-checked by `npm run typecheck`) with esbuild
// into bench/.work/bench.mjs and runs it. Options: see bench/main.ts (e.g. `npm run bench -- --quick`).
import { build } from 'esbuild';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'bench', '.work', 'bench.mjs');
await mkdir(dirname(out), { recursive: true });
await build({
  entryPoints: [join(root, 'bench', 'main.ts')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['esbuild', 'fast-glob'],
  logLevel: 'warning',
});
const { main } = await import(pathToFileURL(out).href);
await main(process.argv.slice(2), root);
