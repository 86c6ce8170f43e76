// Bundles the CLI into dist/cli.mjs (one file, no transpilation at start-up). Heavy clients
// (zx, @huggingface/hub, @google-cloud/storage) stay external and are imported lazily by the
// commands that use them; xxhash-addon is a native module and stays external too.
import { build } from 'esbuild';
import { rename, rm } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Built into a temporary directory and swapped in, so a concurrent CLI start never sees half a bundle.
const tmp = join(root, `dist.tmp-${process.pid}`);
await build({
  entryPoints: { cli: join(root, 'src', 'main.ts') },
  outdir: tmp,
  outExtension: { '.js': '.mjs' },
  // Code splitting turns each lazily imported command into its own chunk: `--help` or `status`
  // parse a few kB, and a no-op build does not parse the publishing code.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  minify: process.env.BUNDLE_MINIFY !== "0",
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['zx', '@huggingface/hub', '@google-cloud/storage', 'xxhash-addon', 'hash-wasm', 'xxhash-wasm'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
  plugins: [zodEnglishOnly()],
});
const old = join(root, `dist.old-${process.pid}`);
await rename(join(root, 'dist'), old).catch(() => undefined);
await rename(tmp, join(root, 'dist'));
await rm(old, { recursive: true, force: true });

/**
 * zod's `z` namespace re-exports every locale (`z.locales`), ~40% of the bundled zod, which every
 * start of the CLI parsed and compiled (~15 ms of a no-op build). Errors are English (zod's
 * default, configured by zod itself from locales/en.js); the other locales are left out.
 */
function zodEnglishOnly() {
  return {
    name: 'zod-english-only',
    setup(b) {
      b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
        args.importer.includes(`${sep}zod${sep}`) ? { path: join(dirname(args.importer), '..', 'locales', 'en.js') } : undefined,
      );
    },
  };
}
