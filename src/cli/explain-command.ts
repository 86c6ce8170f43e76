import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { Cache } from '../caching/cache.ts';
import type { Event } from '../report/events.ts';
import { UsageError } from '../report/failures.ts';
import { planBuild } from '../plan.ts';
import { ignoreEnvironmentFailure } from '../report/environment-failure.ts';
import { prepareBuild } from './prepare-build.ts';
import { findRun, type RunSource } from './run-source.ts';
import type { DigestMemo } from '../caching/digest-memo.ts';
import { diffFingerprints, type Fingerprint } from '../fingerprint.ts';
import { describeChanges } from '../stale-reason.ts';
import { checkRunId, type RunMeta } from '../run.ts';

type PlanEvent = Extract<Event, { event: 'plan' }>;
type TargetEvent = Extract<Event, { event: 'target' }>;

/** One target's answer: would it run, and the causes (cached: the entry the build would use). */
export interface Explanation {
  target: string;
  action: 'run' | 'cached' | 'failed';
  causes: string[];
  key?: string;
}

/**
 * `./build.ts explain <target>`: the answer `-n` gives, in full. It is a view of the dry run's own
 * events (plan.ts): a cached target names the entry the build would use; one that would run lists
 * every cause against the closest entry (stale-reason.ts); one waiting on upstreams explains the
 * upstreams whose own inputs changed; a fan-out counts its items and explains those that would run.
 * With RUN_ID=<run> (local, or another machine's on the Modal volume) it first says how that run
 * built the target and what changed since the entry it used.
 */
export async function explainCommand(words: string[], argv: Argv, settings: Settings): Promise<number> {
  if (words.length !== 1) throw new UsageError('bad-explain', 'explain takes one target, e.g. ./build.ts explain database');
  const name = words[0]!;
  const p = await prepareBuild(argv, [name], settings);
  // RUN_ID=<run> (here or on the Modal volume): also compare with the entry that run used.
  const run = p.vars.RUN_ID ? await findRun(checkRunId(p.vars.RUN_ID), settings) : null;
  const cache = new Cache(p.cacheDir, p.memo, p.envsDir);
  const events: Event[] = [];
  let today: Fingerprint | undefined;
  const planned = await planBuild({
    prepared: p, cache, emit: (e) => events.push(e), signal: new AbortController().signal, jobs: 1,
    executorFor: (t) => (p.vars.EXECUTOR === 'modal' && t.executor === 'modal' ? 'modal' : 'local'), showCommands: false,
    onFingerprint: (t, fp) => {
      if (t.name === name) today = fp;
    },
  });
  await p.memo.save().catch(ignoreEnvironmentFailure);
  if (planned.usageError) throw planned.usageError;
  const explanations = [...(run ? [await againstRun(name, run, today, p.memo)] : []), ...explain(name, events, p.graph.nodes.get(name)?.kind === 'fanout')];
  if (argv.flags.json) {
    for (const e of explanations) process.stdout.write(`${JSON.stringify({ event: 'explain', ...e })}\n`);
  } else {
    process.stdout.write(`${explanations.map(render).join('\n')}\n`);
  }
  return 0;
}

/**
 * The target as that run recorded it (outcome, executor, key), and what differs between the
 * entry it used and today's inputs. A run on the volume is read from its mirror; its entry from
 * the volume's action cache when this cache has none.
 */
async function againstRun(name: string, run: { source: RunSource; meta: RunMeta }, today: Fingerprint | undefined, memo: DigestMemo): Promise<Explanation> {
  const { source, meta } = run;
  const recorded = meta.targets[name];
  if (!recorded) throw new UsageError('unknown-target', `run ${meta.runId} (${source.where}) has no target ${name}; see ./build.ts status RUN_ID=${meta.runId}`);
  const head = `in run ${meta.runId} (${source.where}): ${recorded.outcome}${recorded.executor ? ` on ${recorded.executor}` : ''}${recorded.key ? `, entry ${recorded.key.slice(0, 12)}` : ''}${recorded.error ? ` (${recorded.error.split('\n')[0]})` : ''}`;
  const key = recorded.key;
  if (!key) return { target: name, action: 'failed', causes: [head, 'that run recorded no key for it'] };
  if (source.remote) await source.remote.mirrorEntry(key).catch(() => false);
  const entry = new Cache(source.cacheDir, memo).resultOf(name, key);
  if (!today) return { target: name, action: 'failed', causes: [head, 'its inputs today are not known (an upstream would run first)'], key };
  if (!entry) return { target: name, action: 'failed', causes: [head, `its entry ${key.slice(0, 12)} is in no cache this machine can read`], key };
  const changes = diffFingerprints(entry.fingerprint, today);
  return { target: name, action: changes.length ? 'run' : 'cached', causes: [head, ...(changes.length ? describeChanges(changes).map((c) => `since then: ${c}`) : ['since then: nothing changed'])], key };
}

function render(e: Explanation): string {
  const head = e.action === 'cached' ? `${e.target}: cached` : e.action === 'failed' ? `${e.target}: cannot be planned` : `${e.target}: would run`;
  if (e.causes.length === 1) return `${head}: ${e.causes[0]}`;
  return [`${head}:`, ...e.causes.map((c) => `  ${c}`)].join('\n');
}

/** The explanations of `name` from the dry run's events: its own first, then what it waits on. */
export function explain(name: string, events: Event[], isFanout: boolean): Explanation[] {
  const plans = new Map<string, PlanEvent>();
  const outcomes = new Map<string, TargetEvent>();
  for (const e of events) {
    if (e.event === 'plan') plans.set(e.target, e);
    if (e.event === 'target') outcomes.set(e.target, e);
  }
  // Targets whose own inputs changed (not merely "an upstream would run"): the real causes.
  const roots = [...plans.values()].filter((e) => e.causes && e.target !== name).map(own);
  const expand = events.find((e): e is Extract<Event, { event: 'expand' }> => e.event === 'expand' && e.target === name);
  if (isFanout && expand) {
    const children = [...outcomes.values()].filter((e) => e.target.startsWith(expand.childPrefix));
    const childPlans = [...plans.values()].filter((e) => e.target.startsWith(expand.childPrefix));
    const cached = children.filter((e) => e.outcome === 'cached').length;
    const head: Explanation = {
      target: name,
      action: childPlans.length ? 'run' : 'cached',
      causes: [`fan-out of ${expand.children} items: ${cached} cached, ${childPlans.length} would run`],
    };
    return [head, ...childPlans.map(own), ...roots.filter((r) => !r.target.startsWith(expand.childPrefix))];
  }
  const outcome = outcomes.get(name);
  if (outcome?.outcome === 'cached') {
    return [{ target: name, action: 'cached', causes: [`nothing changed; the build would use entry ${outcome.key?.slice(0, 12)}`], ...(outcome.key ? { key: outcome.key } : {}) }];
  }
  if (outcome?.outcome === 'failed') return [{ target: name, action: 'failed', causes: [outcome.error ?? outcome.reason ?? 'failed'] }];
  const plan = plans.get(name);
  if (!plan) return [{ target: name, action: 'failed', causes: ['the dry run did not reach it (an upstream could not be planned)'] }];
  if (plan.causes) return [own(plan)];
  // Its inputs are not known until upstreams run: their causes are its causes.
  return [{ target: name, action: 'run', causes: [plan.why] }, ...roots];
}

function own(plan: PlanEvent): Explanation {
  const against = plan.closest ? [`(compared with the closest cache entry ${plan.closest.key.slice(0, 12)}, ${plan.closest.createdAt})`] : [];
  return { target: plan.target, action: 'run', causes: [...plan.causes!, ...against], ...(plan.closest ? { key: plan.closest.key } : {}) };
}
