import { UsageError } from './report/failures.ts';
import type { ExecutorKind, Pipeline, Target, Vars } from './target.ts';
import { didYouMean } from './util/did-you-mean.ts';
import { targetGlob } from './util/target-glob.ts';

/**
 * Where each target runs, from the variables: `EXECUTOR=modal` sends the targets that declare
 * `executor: 'modal'` (the data build, the package, the fits, the areas), and `MODAL_TARGETS`
 * (comma-separated names or `*` globs, e.g. `db-*,acs`) sends those it names as well, whatever
 * EXECUTOR is. Everything else runs here. A target declaring `executor: 'local'` (an in-process
 * download) and the pipeline's Python environment always run here. The choice never changes a key.
 */
export function executorChooser(pipeline: Pipeline, vars: Vars): (target: Target) => ExecutorKind {
  const patterns = modalPatterns(pipeline, vars.MODAL_TARGETS);
  const declared = vars.EXECUTOR === 'modal';
  return (t) => {
    if (t.environment || t.executor === 'local') return 'local';
    return (declared && t.executor === 'modal') || patterns.some((p) => p.test(t.name)) ? 'modal' : 'local';
  };
}

/** Whether any target can go to Modal under these variables (so the Modal executor is needed). */
export function wantsModal(vars: Vars): boolean {
  return vars.EXECUTOR === 'modal' || Boolean(vars.MODAL_TARGETS);
}

/**
 * MODAL_TARGETS as regular expressions (target globs, as `status` and `cache ls` read them); a pattern that names no declared target (nor a fan-out's
 * items, `h5:states/*`), or only targets that always run here, is a usage error naming it.
 */
function modalPatterns(pipeline: Pipeline, list: string | undefined): RegExp[] {
  if (!list) return [];
  const targets = pipeline.nodes.flatMap((n) => (n.kind === 'target' ? [n.target] : []));
  const prefixes = pipeline.nodes.flatMap((n) => (n.kind === 'fanout' ? [n.fanout.childPrefix] : []));
  return list.split(',').map((word) => {
    const pattern = word.trim();
    const re = targetGlob(pattern);
    const matched = targets.filter((t) => re.test(t.name));
    const items = prefixes.some((prefix) => pattern.startsWith(prefix) || re.test(prefix));
    if (matched.length === 0 && !items) {
      const hint = didYouMean(pattern, targets.map((t) => t.name));
      throw new UsageError('unknown-target', `MODAL_TARGETS: ${pattern} names no target${hint ? ` (${hint})` : ''}; see ./build.ts targets`);
    }
    if (!items && matched.every((t) => t.environment || t.executor === 'local')) {
      throw new UsageError('unknown-target', `MODAL_TARGETS: ${matched.map((t) => t.name).join(', ')} always runs here (it builds the Python environment or runs in-process); leave it out`);
    }
    return re;
  });
}
