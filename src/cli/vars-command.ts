import { VARIABLES } from '../../tasks/index.ts';
import { ENVIRONMENT_SETTINGS } from './environment-settings.ts';

/** `./build.ts vars`: every variable with its default and meaning, then every environment setting. */
export function varsCommand(): number {
  for (const v of VARIABLES) {
    const others = Object.entries(v.profileDefaults ?? {}).map(([profile, value]) => ` (${profile === 'real' ? 'a real checkout' : profile}: ${value})`);
    process.stdout.write(`${`${v.name}=${v.default ?? ''}`.padEnd(24)} ${v.description}${others.join('')}\n`);
  }
  process.stdout.write('\nenvironment settings:\n');
  for (const s of ENVIRONMENT_SETTINGS) process.stdout.write(`${s.name.padEnd(32)} ${s.description}\n`);
  return 0;
}
