import { VARIABLES } from '../../tasks/index.ts';

/** `./build.ts vars`: every variable with its default and meaning. */
export function varsCommand(): number {
  for (const v of VARIABLES) {
    const others = Object.entries(v.profileDefaults ?? {}).map(([profile, value]) => ` (${profile === 'real' ? 'a real checkout' : profile}: ${value})`);
    process.stdout.write(`${`${v.name}=${v.default ?? ''}`.padEnd(24)} ${v.description}${others.join('')}\n`);
  }
  return 0;
}
