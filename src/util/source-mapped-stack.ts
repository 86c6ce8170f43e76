import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * An error's stack with every frame in a file that has a source map beside it (`<file>.map`, as
 * scripts/bundle.mjs writes for dist/cli.cjs) pointed back at the TypeScript line it came from;
 * other frames are left as they are.
 *
 * Node maps stacks itself (--enable-source-maps) only for code its module loaders compile; the
 * bundle is compiled with vm.Script for its code cache (scripts/cli-loader.mjs), which Node 20
 * never maps. So the frames are mapped here, with Node's own source map parser, and only when an
 * internal error is printed: a normal start never reads the map.
 */
export function sourceMappedStack(error: unknown): string {
  const stack = error instanceof Error && error.stack ? error.stack : String(error);
  const maps = new Map<string, SourceMap | null>();
  return stack
    .split('\n')
    .map((line) => {
      const frame = FRAME.exec(line);
      if (!frame) return line;
      const [, at, file, lineNumber, column] = frame as unknown as [string, string, string, string, string];
      const path = file.startsWith('file://') ? fileURLToPath(file) : file;
      if (!maps.has(path)) maps.set(path, readMap(path));
      const entry = maps.get(path)?.findEntry(Number(lineNumber) - 1, Number(column) - 1);
      // findEntry answers with the nearest mapping before the position, even lines earlier: code
      // with no mapping of its own on its line (the bundler's helpers) is left unmapped.
      if (!entry || !('originalSource' in entry) || entry.generatedLine !== Number(lineNumber) - 1) return line;
      // The function's name is the minifier's (`at Object.QL`), so only the location is kept.
      return `${at}${resolve(dirname(path), entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    })
    .join('\n');
}

/** A frame line, `at [async] fn (/path/file:line:column)` or `at [async] /path/file:line:column`. */
const FRAME = /^(\s+at (?:async )?)(?:.* \()?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/;

function readMap(path: string): SourceMap | null {
  try {
    return new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')));
  } catch {
    return null; // no map beside the file (run from source), or one that cannot be read
  }
}
