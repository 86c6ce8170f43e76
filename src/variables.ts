import { z } from 'zod';
import { UsageError } from './report/failures.ts';
import type { Profile } from './target.ts';
import { didYouMean } from './util/did-you-mean.ts';

/**
 * Make-style variables (`VAR=value` on the command line). Each is declared once with a zod schema
 * so that a bad value fails before any work, with one line naming the variable and the fix.
 */
export interface VarSpec {
  name: string;
  description: string;
  /** Default value; `undefined` means "unset" (the variable is optional). */
  default?: string;
  /**
   * A different default for a profile (a real checkout runs 430 clones, the example 3): applied
   * once the pinned tree's profile is known, so only prepare() sees it; other commands see `default`.
   */
  profileDefaults?: Partial<Record<Profile, string>>;
  schema: z.ZodType<string>;
  /** How to fix a bad value, appended to the error. */
  hint: string;
}

export const positiveInt = z.string().regex(/^[1-9][0-9]*$/, 'must be a positive whole number');
export const nonNegativeInt = z.string().regex(/^(0|[1-9][0-9]*)$/, 'must be a whole number');
export const flag = z.enum(['0', '1']);

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;

export function isAssignment(word: string): boolean {
  return ASSIGNMENT.test(word);
}

/**
 * Validates `VAR=value` words against the declared variables and returns every variable's value
 * (defaults filled in, the profile's where it has its own). Unknown names list the valid ones and
 * the nearest (`households` -> HOUSEHOLDS).
 */
export function parseVariables(words: string[], specs: VarSpec[], profile?: Profile): Record<string, string> {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values: Record<string, string> = {};
  for (const word of words) {
    const match = ASSIGNMENT.exec(word);
    if (!match) throw new UsageError('bad-assignment', `malformed variable '${word}'; write it as NAME=value`);
    const [, name, value] = match as unknown as [string, string, string];
    const spec = byName.get(name);
    if (!spec) {
      const names = specs.map((s) => s.name);
      const hint = didYouMean(name, names);
      throw new UsageError('unknown-variable', `unknown variable ${name}; valid variables: ${names.join(', ')}${hint ? `; ${hint}` : ''}`);
    }
    const parsed = spec.schema.safeParse(value);
    if (!parsed.success) {
      const why = parsed.error.issues[0]?.message ?? 'invalid';
      throw new UsageError('bad-variable', `${name}=${value} is invalid (${why}); ${spec.hint}`);
    }
    values[name] = parsed.data;
  }
  for (const spec of specs) {
    const fallback = (profile && spec.profileDefaults?.[profile]) ?? spec.default;
    if (!(spec.name in values) && fallback !== undefined) values[spec.name] = fallback;
  }
  return values;
}
