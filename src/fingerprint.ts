import { z } from 'zod';
import { digestBytes, type Digest } from './caching/hash.ts';
import type { Environment, Target, Vars } from './target.ts';

/**
 * The fingerprint is the explicit, ordered record that an action key hashes. It is saved beside
 * each cache entry so `explain` can diff yesterday's record against today's and name exactly
 * what changed. Bump FINGERPRINT_SCHEMA whenever its meaning changes: old entries then miss.
 */
export const FINGERPRINT_SCHEMA = 1;

export type ActionKey = string & { readonly __brand: 'ActionKey' };

const digest = z.string().regex(/^[0-9a-f]{32}$/);

export const fingerprintSchema = z.object({
  schema: z.number(),
  target: z.string(),
  /** argv with placeholders unresolved, so the key does not depend on the run directory. */
  command: z.array(z.string()),
  /** Only the variables the target declares; sorted by name. */
  vars: z.record(z.string(), z.string()),
  /** Source file (project-relative) -> digest; sorted by path. */
  sources: z.record(z.string(), digest),
  /** "<upstream target> <run-relative output>" -> digest: early cutoff follows from hashing bytes. */
  upstream: z.record(z.string(), digest),
  /** Declared environment variable -> digest of its value (never the value: it may be a secret). */
  env: z.record(z.string(), digest.nullable()),
  outputs: z.array(z.string()),
});

export type Fingerprint = z.infer<typeof fingerprintSchema>;

function sorted<T>(record: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key] as T;
  return out;
}

export function makeFingerprint(parts: Omit<Fingerprint, 'schema'>): Fingerprint {
  return {
    schema: FINGERPRINT_SCHEMA,
    target: parts.target,
    command: parts.command,
    vars: sorted(parts.vars),
    sources: sorted(parts.sources),
    upstream: sorted(parts.upstream),
    env: sorted(parts.env),
    outputs: [...parts.outputs],
  };
}

/**
 * The parts of a target's fingerprint that its declaration and the build's variables decide: the
 * rest (source and upstream digests) comes from bytes. A replay (replay.ts) hashes these too.
 * `env` is the environment the CLI read (only the target's declared names are looked at).
 */
export function declaredParts(target: Target, vars: Vars, env: Environment): Pick<Fingerprint, 'command' | 'vars' | 'env'> {
  const own: Record<string, string> = {};
  for (const name of target.vars) own[name] = vars[name] ?? '';
  const declared: Record<string, Digest | null> = {};
  for (const name of target.env ?? []) declared[name] = envDigest(env[name]);
  return { command: target.command(vars), vars: own, env: declared };
}

/** Field order is fixed by makeFingerprint, so JSON.stringify is canonical. */
export function actionKey(fp: Fingerprint): ActionKey {
  return digestBytes(JSON.stringify(fp)) as string as ActionKey;
}

export function envDigest(value: string | undefined): Digest | null {
  return value === undefined ? null : digestBytes(`env:${value}`);
}

/** One difference between a stored fingerprint and today's, as `explain` prints it. */
export interface Change {
  kind: 'schema' | 'command' | 'var' | 'source' | 'upstream' | 'env' | 'outputs';
  name: string;
  detail: string;
  /** The two sides as the fingerprints hold them (undefined: absent on that side), for the structured causes (stale-reason.ts). */
  before?: unknown;
  after?: unknown;
}

export function diffFingerprints(before: Fingerprint, after: Fingerprint): Change[] {
  const changes: Change[] = [];
  if (before.schema !== after.schema) {
    changes.push({ kind: 'schema', name: 'schema', detail: `fingerprint schema ${before.schema} -> ${after.schema}`, before: before.schema, after: after.schema });
  }
  if (JSON.stringify(before.command) !== JSON.stringify(after.command)) {
    changes.push({ kind: 'command', name: 'command', detail: `${before.command.join(' ')}  ->  ${after.command.join(' ')}`, before: before.command, after: after.command });
  }
  diffRecord('var', before.vars, after.vars, changes, (a, b) => `${a ?? '(unset)'} -> ${b ?? '(unset)'}`);
  diffRecord('source', before.sources, after.sources, changes, contentChange);
  diffRecord('upstream', before.upstream, after.upstream, changes, contentChange);
  diffRecord('env', before.env, after.env, changes, (a, b) => (a === null ? 'was unset, now set' : b === null ? 'was set, now unset' : 'value changed'));
  if (JSON.stringify(before.outputs) !== JSON.stringify(after.outputs)) {
    changes.push({ kind: 'outputs', name: 'outputs', detail: `${before.outputs.join(', ')} -> ${after.outputs.join(', ')}`, before: before.outputs, after: after.outputs });
  }
  return changes;
}

function contentChange(a: string | null | undefined, b: string | null | undefined): string {
  if (a === undefined) return 'added';
  if (b === undefined) return 'removed';
  return `content changed (${String(a).slice(0, 8)} -> ${String(b).slice(0, 8)})`;
}

function diffRecord<T>(
  kind: Change['kind'],
  before: Record<string, T>,
  after: Record<string, T>,
  out: Change[],
  describe: (a: T | undefined, b: T | undefined) => string,
): void {
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[name];
    const b = after[name];
    if (a !== b) out.push({ kind, name, detail: describe(a, b), before: a, after: b });
  }
}
