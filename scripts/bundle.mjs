// Bundles the CLI into dist/cli.cjs (and its source map), one file with no transpilation at start-up, run by the loader
// dist/cli.mjs through a V8 code cache (scripts/cli-loader.mjs says why). Heavy clients (zx,
// @huggingface/hub, @google-cloud/storage) stay external and are imported lazily, with a real
// import(), by the commands that use them; xxhash-addon is a native module and stays external too.
import { build } from 'esbuild';
import { copyFile, rename, rm } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Built into a temporary directory and swapped in, so a concurrent CLI start never sees half a bundle.
const tmp = join(root, `dist.tmp-${process.pid}`);
await build({
  entryPoints: { cli: join(root, 'src', 'cli', 'main.ts') },
  outdir: tmp,
  outExtension: { '.js': '.cjs' },
  minify: process.env.BUNDLE_MINIFY !== "0",
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['zx', '@huggingface/hub', '@google-cloud/storage', 'xxhash-addon'],
  // The loader compiles the file with vm.Script: `import.meta.url` becomes the file's URL.
  define: { 'import.meta.url': '__importMetaUrl' },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  // dist/cli.cjs.map, named at the end of the bundle: an internal error's stack is mapped back to
  // src/ lines through it (src/util/source-mapped-stack.ts). Without the sources' text, which
  // stays in the checkout the bundle was made from; only read when such an error is printed.
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
  plugins: [zodEnglishOnly()],
});
await copyFile(join(root, 'scripts', 'cli-loader.mjs'), join(tmp, 'cli.mjs'));
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
