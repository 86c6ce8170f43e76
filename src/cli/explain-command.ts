import type { CommandContext } from './command.ts';
import { executorChooser } from '../executor-choice.ts';
import { Cache } from '../caching/cache.ts';
import type { Cause, Event } from '../report/events.ts';
import { describeCause } from '../stale-reason.ts';
import { UsageError } from '../report/failures.ts';
import { planBuild } from '../plan.ts';
import { ignoreEnvironmentFailure } from '../report/environment-failure.ts';
import { prepareBuild } from './prepare-build.ts';
import { planSharedCache } from './build-command.ts';
import { findRun, type RunSource } from './run-source.ts';
import type { DigestMemo } from '../caching/digest-memo.ts';
import { diffFingerprints, type Fingerprint } from '../fingerprint.ts';
import { changeCauses } from '../stale-reason.ts';
import { checkRunId, type RunMeta } from '../run.ts';

type PlanEvent = Extract<Event, { event: 'plan' }>;
type TargetEvent = Extract<Event, { event: 'target' }>;

/** One target's answer, as the `explain` event carries it (report/event-schema.ts). */
export type Explanation = Omit<Extract<Event, { event: 'explain' }>, 'event'>;

/**
 * `./build.ts explain <target>`: the answer `-n` gives, in full. It is a view of the dry run's own
 * events (plan.ts): a cached target names the entry the build would use; one that would run lists
 * every cause against the closest entry (stale-reason.ts); one waiting on upstreams explains the
 * upstreams whose own inputs changed; a fan-out counts its items and explains those that would run.
 * With RUN_ID=<run> (local, or another machine's on the Modal volume) it first says how that run
 * built the target and what changed since the entry it used.
 */
export async function explainCommand({ words, argv, settings, logger }: CommandContext): Promise<number> {
  if (words.length !== 1) throw new UsageError('bad-explain', 'explain takes one target, e.g. ./build.ts explain database');
  const name = words[0]!;
  const p = await prepareBuild(argv, [name], settings);
  // RUN_ID=<run> (here or on the Modal volume): also compare with the entry that run used.
  const run = p.vars.RUN_ID ? await findRun(checkRunId(p.vars.RUN_ID), settings) : null;
  const cache = new Cache(p.cacheDir, p.memo, p.envsDir);
  const events: Event[] = [];
  let today: Fingerprint | undefined;
  const shared = await planSharedCache(p, cache, settings, (message) => process.stderr.write(`warning: ${message}\n`));
  const planned = await planBuild({
    prepared: p, cache, emit: (e) => events.push(e), signal: new AbortController().signal, jobs: 1,
    executorFor: executorChooser(p.pipeline, p.vars), showCommands: false, ...(shared && { shared }),
    onFingerprint: (t, fp) => {
      if (t.name === name) today = fp;
    },
  });
  await p.memo.save().catch(ignoreEnvironmentFailure);
  if (planned.usageError) throw planned.usageError;
  const explanations = [...(run ? [await againstRun(name, run, today, p.memo)] : []), ...explain(name, events, p.graph.nodes.get(name)?.kind === 'fanout')];
  if (argv.flags.json) {
    for (const e of explanations) logger.emit({ event: 'explain', ...e });
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
  const runRecord = {
    runId: meta.runId, where: source.where, outcome: recorded.outcome,
    ...(recorded.executor && { executor: recorded.executor }), ...(recorded.key && { key: recorded.key }), ...(recorded.error && { error: recorded.error.split('\n')[0]! }),
  };
  const key = recorded.key;
  const unknown = (why: 'no-key' | 'inputs-not-known' | 'entry-unreadable'): Explanation => ({ target: name, action: 'failed', run: runRecord, causes: [{ kind: 'not-comparable', why, ...(key && { key }) }], ...(key && { key }) });
  if (!key) return unknown('no-key');
  if (source.remote) await source.remote.mirrorEntry(key).catch(() => false);
  const entry = new Cache(source.cacheDir, memo).resultOf(name, key);
  if (!today) return unknown('inputs-not-known');
  if (!entry) return unknown('entry-unreadable');
  const changes = diffFingerprints(entry.fingerprint, today);
  return { target: name, action: changes.length ? 'run' : 'cached', run: runRecord, causes: changeCauses(changes), key };
}

function render(e: Explanation): string {
  if (e.run) {
    const r = e.run;
    const head = `${e.target} in run ${r.runId} (${r.where}): ${r.outcome}${r.executor ? ` on ${r.executor}` : ''}${r.key ? `, entry ${r.key.slice(0, 12)}` : ''}${r.error ? ` (${r.error})` : ''}`;
    const since = e.action === 'cached' ? ['since then: nothing changed'] : e.causes.map((c) => (c.kind === 'not-comparable' ? describeCause(c) : `since then: ${describeCause(c)}`));
    return [`${head}:`, ...since.map((c) => `  ${c}`)].join('\n');
  }
  const head = e.action === 'cached' ? `${e.target}: cached` : e.action === 'failed' ? `${e.target}: cannot be planned` : `${e.target}: would run`;
  const lines = e.action === 'cached' ? [`nothing changed; the build would use entry ${e.key?.slice(0, 12)}${e.fromSharedCache ? ' from the shared cache (another machine built it)' : ''}`] : e.causes.map(describeCause);
  if (e.closest) lines.push(`(compared with the closest cache entry ${e.closest.key.slice(0, 12)}, ${e.closest.createdAt})`);
  if (lines.length === 1) return `${head}: ${lines[0]}`;
  return [`${head}:`, ...lines.map((c) => `  ${c}`)].join('\n');
}

/** Causes that only say the target waits on an upstream (or a fan-out on its list), not what changed. */
const waiting = (c: Cause) => c.kind === 'upstream-would-run' || c.kind === 'items-not-known';

/** The explanations of `name` from the dry run's events: its own first, then what it waits on. */
export function explain(name: string, events: Event[], isFanout: boolean): Explanation[] {
  const plans = new Map<string, PlanEvent>();
  const outcomes = new Map<string, TargetEvent>();
  for (const e of events) {
    if (e.event === 'plan') plans.set(e.target, e);
    if (e.event === 'target') outcomes.set(e.target, e);
  }
  const ownCauses = (e: PlanEvent) => e.causes !== undefined && !e.causes.every(waiting);
  // Targets whose own inputs changed (not merely "an upstream would run"): the real causes.
  const roots = [...plans.values()].filter((e) => ownCauses(e) && e.target !== name).map(own);
  const expand = events.find((e): e is Extract<Event, { event: 'expand' }> => e.event === 'expand' && e.target === name);
  if (isFanout && expand) {
    const children = [...outcomes.values()].filter((e) => e.target.startsWith(expand.childPrefix));
    const childPlans = [...plans.values()].filter((e) => e.target.startsWith(expand.childPrefix));
    const cached = children.filter((e) => e.outcome === 'cached').length;
    const head: Explanation = {
      target: name,
      action: childPlans.length ? 'run' : 'cached',
      causes: [{ kind: 'fan-out', items: expand.children, cached, wouldRun: childPlans.length }],
    };
    return [head, ...childPlans.map(own), ...roots.filter((r) => !r.target.startsWith(expand.childPrefix))];
  }
  const outcome = outcomes.get(name);
  if (outcome?.outcome === 'cached') return [{ target: name, action: 'cached', causes: [], ...(outcome.key ? { key: outcome.key } : {}), ...(outcome.fromSharedCache ? { fromSharedCache: true } : {}) }];
  if (outcome?.outcome === 'failed') {
    return [{ target: name, action: 'failed', causes: [{ kind: 'cannot-plan', error: outcome.error ?? outcome.reason ?? 'failed', ...(outcome.reason ? { reason: outcome.reason } : {}) }] }];
  }
  const plan = plans.get(name);
  if (!plan) return [{ target: name, action: 'failed', causes: [{ kind: 'not-reached' }] }];
  if (ownCauses(plan)) return [own(plan)];
  // Its inputs are not known until upstreams run: their causes are its causes.
  return [{ target: name, action: 'run', causes: plan.causes ?? [] }, ...roots];
}

function own(plan: PlanEvent): Explanation {
  return { target: plan.target, action: 'run', causes: plan.causes ?? [], ...(plan.closest ? { closest: plan.closest } : {}) };
}
