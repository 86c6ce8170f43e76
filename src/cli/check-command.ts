import type { PlanReport } from '../check/plan-check.ts';
import { prepare, type Prepared } from '../prepare.ts';
import type { CommandContext } from './command.ts';
import type { Event } from '../report/events.ts';
import { planReport } from './plan-preflight.ts';
import { pipelineDeclaration } from './pipeline-declaration.ts';

/**
 * `./build.ts check [<target>...] [REPO=...] [VAR=...]`: the plan against the pinned tree,
 * statically (src/check/plan-check.ts says what is verified), for every target (or the named
 * ones and what they need). Prints one line per problem and exits 2, or a one-line summary and
 * exits 0. BUILD_DB is checked as a build of the database (its ETL commands), whatever a build's
 * default would be.
 */
export async function checkCommand(c: CommandContext): Promise<number> {
  const p = await prepare({ assignments: c.argv.assignments, goals: c.words.length ? c.words : 'default', declaration: pipelineDeclaration(c.settings.tasksFile), settings: c.settings });
  const goals = c.words.length ? p.goals : [...p.graph.nodes.keys()];
  const report = planReport(p, goals);
  const json = c.argv.flags.json;
  const out = (line: string, event: Event) => (json ? c.logger.emit(event) : void process.stdout.write(`${line}\n`));
  for (const n of report.notes) out(`note: ${n.target}: ${n.message}`, { event: 'check-note', ...n });
  for (const e of report.problems) out(`${e.target}: ${e.message}`, { event: 'check-problem', ...e });
  const summary = summaryLine(p, report);
  out(summary, { event: 'check-summary', problems: report.problems.length, notes: report.notes.length, ...report.counts, sha: p.sha });
  return report.problems.length ? 2 : 0;
}

function summaryLine(p: Prepared, r: PlanReport): string {
  const at = `${p.repo} at ${p.sha.slice(0, 12)}`;
  const what = `${r.counts.targets} targets, ${r.counts.modules} Python entry points, ${r.counts.paths} tree paths`;
  const notes = r.notes.length ? `; ${r.notes.length} note(s)` : '';
  return r.problems.length ? `check: ${r.problems.length} problem(s) in the plan for ${at} (${what}${notes})` : `check: the plan matches ${at} (${what}${notes})`;
}
