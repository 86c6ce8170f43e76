// dist/cli.mjs: runs the bundled CLI (dist/cli.cjs) through a V8 code cache.
//
// Node 20 has no compile cache for ES modules, and every start parsed and compiled the bundle
// (~65 ms of a ~0.37 s no-op build, measured in bench/PROFILE.md). The bundle is one CommonJS
// file, compiled with vm.Script from `cli.cjs.cache` when V8 accepts it (same source, same V8,
// same flags; anything else is rejected and the source is compiled as usual). A build command
// writes the cache after it ran, so it holds every function a build compiled. A build takes one of
// two paths, the walk or the replay of an unchanged run (src/replay.ts), so the cache is written
// again the first time each path runs: the new cache keeps what the old one held and adds what
// this path compiled. An empty marker file per path (`cli.cjs.cache.<path>`) records that; it is
// only looked at after a build. Writing goes through a temporary name and a rename; a read-only
// install simply runs without a cache.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const dir = dirname(fileURLToPath(import.meta.url));
const file = join(dir, 'cli.cjs');
const cacheFile = `${file}.cache`;
// The cache starts with the path of the file it was made for, then a NUL: V8 accepts a cache made
// for the same source anywhere, and its functions then keep that path, so a copied checkout's
// stack traces named the original checkout's files. A cache made for another path is not used.
const header = Buffer.from(`${file}\0`);
let cachedData;
try {
  const read = readFileSync(cacheFile);
  if (read.subarray(0, header.length).equals(header)) cachedData = read.subarray(header.length);
} catch {
  // first start after bundling
}
// The wrapper takes a line of its own, and lineOffset hides it: stack traces give the file's own
// lines and columns, which its source map (cli.cjs.map) translates.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {\n${readFileSync(file, 'utf8')}\n})`, {
  filename: file,
  lineOffset: -1,
  cachedData,
});
// A script compiled from a code cache has no loader for a native import(): the bundle imports
// packages and BUILD_TASKS modules through this one (src/util/dynamic-import.ts), resolved from dist/.
globalThis[Symbol.for('build.import')] = (specifier) => import(specifier);
const stale = !cachedData || script.cachedDataRejected;
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(file), module, file, dir);

// Called by the build command once it has run (src/cli/build-command.ts), with the path it took.
globalThis[Symbol.for('build.saveCodeCache')] = (path) => {
  const marker = `${cacheFile}.${path}`;
  if (!stale && existsSync(marker)) return;
  try {
    // A rejected cache's markers describe it, not the one written now.
    if (stale) for (const name of readdirSync(dir)) if (name.startsWith('cli.cjs.cache.')) rmSync(join(dir, name), { force: true });
    const tmp = `${cacheFile}.tmp-${process.pid}`;
    writeFileSync(tmp, Buffer.concat([header, script.createCachedData()]));
    renameSync(tmp, cacheFile);
    writeFileSync(marker, '');
  } catch {
    // not writable: run without a cache
  }
};
const code = await module.exports.main(process.argv.slice(2));
// process.exit drops what a pipe has not taken yet (a long `cache ls --json` read by a busy parent
// lost its tail): exit once stdout and stderr have handed over everything written.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
