import { main } from './cli.ts';

/** Entry of the bundled CLI (dist/cli.mjs). */
process.exit(await main(process.argv.slice(2)));
