import { join } from 'node:path';
import { STORAGE } from '../../tasks/index.ts';
import { checkPlan, type PlanReport } from '../check/plan-check.ts';
import { lazyPythonIndex, type Prepared } from '../prepare.ts';
import { UsageError } from '../report/failures.ts';

// The plan check of a prepared build, shared by `./build.ts check` (check-command.ts) and every
// build's preflight (prepare-build.ts); its own file so those two do not import each other.

/** The check of a prepared build's plan, for `check` and the preflight of a build. */
export function planReport(p: Prepared, goals: string[]): PlanReport {
  return checkPlan({
    graph: p.graph,
    goals,
    vars: p.vars,
    projectDir: join(p.tree, p.layout.projectDir),
    index: lazyPythonIndex(p)(),
    storageDir: STORAGE,
    mirrors: p.pipeline.mirrorsMakefile ?? [],
    sha: p.sha.slice(0, 12),
  });
}

/**
 * The preflight of every build of a checkout that is not the twin (profile `real`, the tasks/
 * declaration; prepare-build.ts leaves BUILD_TASKS harnesses alone): before
 * anything runs or is dispatched, a plan that does not match the pinned tree is a usage error
 * listing every problem (exit 2).
 */
export function preflight(p: Prepared): void {
  if (p.layout.profile !== 'real') return;
  const report = planReport(p, p.goals);
  if (report.problems.length === 0) return;
  const lines = report.problems.map((e) => `  ${e.target}: ${e.message}`);
  throw new UsageError('plan-check', `the plan does not match ${p.repo} at ${p.sha.slice(0, 12)} (${report.problems.length} problem(s); nothing was run):\n${lines.join('\n')}`);
}
