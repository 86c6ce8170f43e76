#!/bin/sh
":" //; case $0 in */*) root=${0%/*} ;; *) root=. ;; esac; . "$root/scripts/launch.sh"
/**
 * The CLI users type: `./build.ts pipeline`, `./build.ts promote RUN_ID=...`, ...
 *
 * The file is both a shell script and TypeScript. Run as `./build.ts`, the shell executes line 2
 * (to TypeScript a string and a comment; to the shell the no-op builtin `:`, so no process is
 * started for it): it takes the project directory from `$0` and sources
 * scripts/launch.sh, which re-bundles dist/ with esbuild when its sources changed and runs the
 * bundle, so every start skips TypeScript transpilation (a no-op build is the most common
 * command). Run with tsx (`npx tsx build.ts`), the code below runs the same CLI from source.
 */
import { main } from './src/cli/main.ts';

const code = await main(process.argv.slice(2));
// process.exit drops what a pipe has not taken yet (a long `cache ls --json` read by a busy parent
// lost its tail): exit once stdout and stderr have handed over everything written.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
