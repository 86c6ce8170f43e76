import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { Cache } from '../caching/cache.ts';
import { UsageError } from '../report/failures.ts';
import { diffFingerprints, type Change, type Fingerprint } from '../fingerprint.ts';
import type { PythonIndex } from '../python/python-index.ts';
import { importChain, pythonEntries } from '../python/python-sources.ts';
import { adaptersNamed } from '../placeholders.ts';
import { schedulerInputs } from '../prepare.ts';
import { prepareBuild } from './prepare-build.ts';
import { Scheduler } from '../scheduler.ts';
import type { Target, Vars } from '../target.ts';

/**
 * `./build.ts explain <target>`: computes today's fingerprint the way a build would (upstreams
 * restored from the cache where they are fresh) and diffs it against the newest cached entry,
 * naming each source file, variable, env value or upstream output that changed.
 */
export async function explainCommand(words: string[], argv: Argv, settings: Settings): Promise<number> {
  if (words.length !== 1) throw new UsageError('bad-explain', 'explain takes one target, e.g. ./build.ts explain database');
  const name = words[0]!;
  const p = await prepareBuild(argv, [name], settings);
  const cache = new Cache(p.cacheDir, p.memo, p.envsDir);
  const inputs = schedulerInputs(p, cache);
  const fingerprints = new Map<string, { target: Target; fp: Fingerprint }>();
  const stale: string[] = [];
  const scheduler = new Scheduler({
    ...inputs,
    goals: [name],
    executors: {}, executorFor: () => 'local', baseEnv: {},
    jobs: 1, keepGoing: true, signal: new AbortController().signal, record: () => undefined,
    emit: (e) => {
      if (e.event === 'plan' && e.action === 'run') stale.push(e.target);
    },
    onFingerprint: (target, fp) => fingerprints.set(target.name, { target, fp }),
  });
  await scheduler.run();
  await p.memo.save();
  const lines: string[] = [];
  const current = fingerprints.get(name);
  if (!current) {
    const blocking = stale.filter((s) => s !== name && fingerprints.has(s));
    lines.push(`${name}: its inputs are not all known yet, because upstream targets would rebuild first:`);
    for (const up of blocking) {
      const { target, fp } = fingerprints.get(up)!;
      lines.push(...(await explainOne(cache, up, fp, importedVia(target, p.vars, inputs.pythonIndex))).map((l) => `  ${l}`));
    }
  } else {
    lines.push(...(await explainOne(cache, name, current.fp, importedVia(current.target, p.vars, inputs.pythonIndex))));
  }
  if (argv.flags.json) process.stdout.write(`${JSON.stringify({ event: 'explain', target: name, lines })}\n`);
  else process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

async function explainOne(cache: Cache, name: string, fp: Fingerprint, via: (source: string) => string[] | null): Promise<string[]> {
  const previous = await cache.latest(name);
  if (!previous) return [`${name}: never built in this cache`];
  const changes = diffFingerprints(previous.fingerprint, fp);
  if (changes.length === 0) return [`${name}: up to date (cached entry ${previous.key.slice(0, 12)} from ${previous.createdAt})`];
  const line = (c: Change) => {
    const chain = c.kind === 'source' ? via(c.name) : null;
    return `  ${c.kind} ${c.name}: ${c.detail}${chain ? ` (imported: ${chain.join(' -> ')})` : ''}`;
  };
  return [`${name}: changed since the cached entry ${previous.key.slice(0, 12)} (${previous.createdAt}):`, ...changes.map(line)];
}

/**
 * For a source that is one because the target's Python imports it (not by a glob), the import
 * chain from the entry module to it; null for other sources.
 */
function importedVia(target: Target, vars: Vars, index: () => PythonIndex): (source: string) => string[] | null {
  const entries = pythonEntries(target, adaptersNamed(target.command(vars)));
  if (entries.length === 0) return () => null;
  return (source) => {
    const chain = importChain(index(), entries, source);
    return chain && chain.length > 2 ? chain : null;
  };
}
