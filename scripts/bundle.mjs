// Bundles the CLI into dist/cli.mjs (one file, no transpilation at start-up). Heavy clients
// (zx, @huggingface/hub, @google-cloud/storage) stay external and are imported lazily by the
// commands that use them; xxhash-addon is a native module and stays external too.
import { build } from 'esbuild';
import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = join(root, 'dist', `cli.mjs.tmp-${process.pid}`);
await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['zx', '@huggingface/hub', '@google-cloud/storage', 'xxhash-addon', 'hash-wasm', 'xxhash-wasm'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});
await rename(tmp, join(root, 'dist', 'cli.mjs'));
