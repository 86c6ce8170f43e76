#!/bin/sh
//usr/bin/true; d=$(cd "$(dirname "$0")" && pwd); if [ ! -f "$d/dist/cli.mjs" ] || [ -n "$(find "$d/src" "$d/tasks" "$d/build.ts" -newer "$d/dist/cli.mjs" -print -quit)" ]; then node "$d/scripts/bundle.mjs" >&2 || exit 2; fi; [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && export BUILD_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS" && unset NODE_EXTRA_CA_CERTS; exec node "$d/dist/cli.mjs" "$@"
/**
 * The CLI users type: `./build.ts pipeline`, `./build.ts promote RUN_ID=...`, ...
 *
 * The file is both a shell script and TypeScript. Run as `./build.ts`, the shell executes line 2
 * (a comment to TypeScript): it re-bundles dist/cli.mjs with esbuild when src/ or tasks/ changed,
 * then runs the bundle, so every start skips TypeScript transpilation (a no-op build is the most
 * common command). It also moves NODE_EXTRA_CA_CERTS aside (Node 20 parses that file at start-up:
 * ~80 ms here); commands that open TLS connections restore it (src/network.ts).
 * Run with tsx (`npx tsx build.ts`), the code below runs the same CLI from source.
 */
import { main } from './src/cli/main.ts';

process.exit(await main(process.argv.slice(2)));
