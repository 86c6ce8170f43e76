import { VARIABLES } from '../../tasks/index.ts';

/** `./build.ts vars`: every variable with its default and meaning. */
export function varsCommand(): number {
  for (const v of VARIABLES) {
    process.stdout.write(`${`${v.name}=${v.default ?? ''}`.padEnd(24)} ${v.description}\n`);
  }
  return 0;
}
