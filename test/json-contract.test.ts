import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli/commands.ts';
import { EVENT_SCHEMA_VERSION, wireEventSchema } from '../src/report/event-schema.ts';
import { SCHEMA_FILE, schemaText } from '../scripts/events-schema.ts';
import { cleanup, cli, exampleRepo, scratchDirs, SMALL, type CliResult } from './helpers.ts';

/**
 * `--json` is one contract across commands (issue 12, item 12): every command that takes the flag
 * (read from the command table, so a new one is covered or fails here) is run through the real
 * CLI on the built-in example, and every line it prints must parse as one event of the published
 * schema (src/report/event-schema.ts), the first one being the `schema` header naming the command.
 * A pretty-printed document, a bare object without `event`, a field the schema does not declare or
 * a multi-line message fails the test.
 */

/** Every line of a --json output against the contract; returns the events after the header. */
function contract(command: string | null, r: Pick<CliResult, 'stdout' | 'stderr'>): Record<string, unknown>[] {
  const context = `${command} --json printed:\n${r.stdout}\nstderr:\n${r.stderr}`;
  expect(r.stdout.endsWith('\n'), context).toBe(true);
  const lines = r.stdout.slice(0, -1).split('\n');
  const events = lines.map((line, i) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`line ${i + 1} of ${command} --json is not JSON: ${line.slice(0, 200)}`);
    }
    const checked = wireEventSchema.safeParse(parsed);
    if (!checked.success) throw new Error(`line ${i + 1} of ${command} --json breaks the schema: ${line.slice(0, 400)}\n${checked.error.message}`);
    return checked.data as Record<string, unknown>;
  });
  expect(events[0], context).toEqual({ event: 'schema', version: EVENT_SCHEMA_VERSION, command });
  expect(events.slice(1).filter((e) => e.event === 'schema'), context).toEqual([]);
  return events.slice(1);
}

describe('the --json contract', () => {
  const scratch = scratchDirs('json-contract');
  let repo: string;
  let cache: string;
  /** The commands whose --json output was checked, by the header's name. */
  const covered = new Set<string>();
  let runId: string;

  /** Runs a command with --json, checks every line, and returns its events (after the header). */
  const run = async (args: string[], expected: number | number[] = 0): Promise<Record<string, unknown>[]> => {
    const r = await cli([...args, '--json'], { cache });
    const command = COMMANDS.some((c) => c.name === args[0]) ? args[0]! : 'pipeline';
    expect([expected].flat(), `${args.join(' ')}: ${r.stdout}${r.stderr}`).toContain(r.code);
    const events = contract(command, r);
    covered.add(command);
    return events;
  };

  beforeAll(async () => {
    repo = exampleRepo();
    cache = join(scratch(), 'cache');
  });
  afterAll(() => cleanup(repo));

  it('the published JSON Schema is the one the zod definitions generate (npm run schema)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(schemaText());
  });

  it('every line of a build, a dry run and a no-op is an event of the schema', async () => {
    const dry = await run(['pipeline', '-n', `REPO=${repo}`, ...SMALL]);
    expect(dry.at(-1)).toMatchObject({ event: 'summary', status: 'dry-run' });
    const plan = (target: string) => dry.find((e) => e.event === 'plan' && e.target === target);
    expect(plan('db-create-tables')).toMatchObject({ causes: [{ kind: 'never-built' }] });
    expect(plan('database')).toMatchObject({ causes: [{ kind: 'upstream-would-run', target: expect.any(String) }] });
    expect(plan('areas')).toMatchObject({ causes: [{ kind: 'items-not-known' }] });
    const build = await run(['pipeline', `REPO=${repo}`, ...SMALL]);
    runId = build.find((e) => e.event === 'run-start')!.runId as string;
    expect(build.filter((e) => e.event === 'publish').length).toBeGreaterThan(0);
    expect(await run(['pipeline', `REPO=${repo}`, ...SMALL])).toEqual([expect.objectContaining({ event: 'summary', status: 'unchanged', runId })]);
    const one = await run(['acs', `REPO=${repo}`, ...SMALL, 'SEED=7', '-n']);
    expect(one.find((e) => e.event === 'plan' && e.target === 'acs')).toMatchObject({ causes: [{ kind: 'var', name: 'SEED', after: '7' }] });
  }, 900_000);

  it('explain answers in fields: causes with before and after values, the entry it compared with', async () => {
    const miss = await run(['explain', 'acs', `REPO=${repo}`, ...SMALL, 'SEED=7']);
    expect(miss).toEqual([
      { event: 'explain', target: 'acs', action: 'run', causes: [{ kind: 'var', name: 'SEED', before: expect.any(String), after: '7' }], closest: { key: expect.any(String), createdAt: expect.any(String) } },
    ]);
    const hit = await run(['explain', 'database', `REPO=${repo}`, ...SMALL]);
    expect(hit).toEqual([{ event: 'explain', target: 'database', action: 'cached', causes: [], key: expect.stringMatching(/^[0-9a-f]+$/) }]);
    const fanout = await run(['explain', 'areas', `REPO=${repo}`, ...SMALL]);
    expect(fanout[0]).toMatchObject({ target: 'areas', action: 'cached', causes: [{ kind: 'fan-out', items: 489, cached: 489, wouldRun: 0 }] });
  }, 300_000);

  it('status, targets, check and cache print events with the build events\' field names', async () => {
    const runs = await run(['status']);
    expect(runs).toEqual([expect.objectContaining({ event: 'run', runId, status: 'completed' })]);
    const one = await run(['status', `RUN_ID=${runId}`]);
    expect(one[0]).toMatchObject({ event: 'run', runId, status: 'completed', variables: expect.any(Object) });
    expect(one.find((e) => e.target === 'database')).toMatchObject({ event: 'run-target', runId, outcome: 'built', key: expect.any(String) });
    expect((await run(['status', `RUN_ID=${runId}`, 'h5:*', '--failed'])).map((e) => e.event)).toEqual(['run']);
    // A run that has ended: nothing to cancel (exit 1), said as an event.
    expect(await run(['cancel', `RUN_ID=${runId}`], 1)).toEqual([{ event: 'cancel', runId, outcome: 'ended', status: 'completed' }]);
    expect((await run(['targets'])).find((e) => e.target === 'areas')).toMatchObject({ event: 'target-info', kind: 'fanout', items: expect.any(Array) });
    // check exits 2 when it finds problems (on the example today: flags its scripts ignore).
    const check = await run(['check', `REPO=${repo}`], [0, 2]);
    expect(check.at(-1)).toMatchObject({ event: 'check-summary', problems: check.filter((e) => e.event === 'check-problem').length });
    expect((await run(['cache', 'ls'])).find((e) => e.target === 'database')).toMatchObject({ event: 'cache-entry', corrupt: false, key: expect.any(String) });
    const du = (await run(['cache', 'du'])).map((e) => e.event);
    expect([new Set(du.slice(0, -1)), du.at(-1)]).toEqual([new Set(['cache-area']), 'cache-total']);
    expect(await run(['cache', 'verify', '-n'])).toEqual([expect.objectContaining({ event: 'cache-verify', corrupt: [], dryRun: true })]);
    expect((await run(['cache', 'gc', '-n'])).at(-1)).toMatchObject({ event: 'cache-gc', dryRun: true });
  }, 300_000);

  it('review, publishing and the registry: report, diff, stage, promote, versions, rollback, gc, fetch', async () => {
    expect(await run(['report', `RUN_ID=${runId}`])).toEqual([expect.objectContaining({ event: 'report', runId })]);
    expect(await run(['diff', `RUN_ID=${runId}`])).toEqual([expect.objectContaining({ event: 'diff', runId })]);
    expect((await run(['stage', `RUN_ID=${runId}`])).length).toBeGreaterThan(0);
    const plan = await run(['promote', `RUN_ID=${runId}`, '-n']);
    // The plan a terminal shows as a block is one line here; what it lists is in `data`.
    expect(plan.find((e) => e.step === 'plan')).toMatchObject({ event: 'publish', data: { runId, files: expect.any(Array) } });
    await run(['promote', `RUN_ID=${runId}`, '--yes']);
    const versions = await run(['versions']);
    expect(versions[0]).toMatchObject({ event: 'registry', versions: 1 });
    const version = versions[1]!;
    expect(version).toMatchObject({ event: 'version', current: true, runId });
    await run(['rollback', `VERSION=${version.version as string}`, 'NEW_VERSION=99.0.0', '-n']);
    await run(['gc', '-n']);
    expect(await run(['fetch', 'acs', `RUN_ID=${runId}`])).toEqual([expect.objectContaining({ event: 'fetched', runId })]);
  }, 600_000);

  it('a refused command line is the header and one error event', async () => {
    expect(await run(['status', 'RUN_ID=no-such-run'], 2)).toEqual([{ event: 'error', reason: 'bad-run-id', message: expect.any(String) }]);
    // A command line that cannot be parsed names no command.
    const unparsed = await cli(['--jobs', 'x', '--json'], { cache });
    expect(unparsed.code).toBe(2);
    expect(contract(null, unparsed)).toEqual([{ event: 'error', reason: 'bad-flag', message: expect.any(String) }]);
  });

  it('--detach prints the header and the run it started', async () => {
    const detached = await run(['pipeline', '--detach', '--new-run', `REPO=${repo}`, ...SMALL]);
    expect(detached).toEqual([{ event: 'detached', runId: expect.any(String), pid: expect.any(Number) }]);
    const followed = await cli(['logs', `RUN_ID=${detached[0]!.runId as string}`, '-f'], { cache });
    expect(followed.code, followed.stdout + followed.stderr).toBe(0);
    // The background build wrote its own --json output to run.log: that is the contract too.
    const log = readFileSync(join(cache, 'runs', detached[0]!.runId as string, 'run.log'), 'utf8');
    expect(contract('pipeline', { stdout: log, stderr: '' }).at(-1)).toMatchObject({ event: 'summary', status: 'completed' });
  }, 300_000);

  it('--help --json is the commands as events: every one for ./build.ts --help, one for <command> --help', async () => {
    const all = await cli(['--help', '--json'], { cache });
    expect(all.code, all.stderr).toBe(0);
    const commands = contract(null, all);
    expect(commands.map((e) => e.name)).toEqual(COMMANDS.map((c) => c.name));
    const one = await cli(['pipeline', '--help', '--json'], { cache });
    expect(one.code, one.stderr).toBe(0);
    const [pipeline, ...rest] = contract('pipeline', one);
    expect(rest).toEqual([]);
    expect(pipeline).toMatchObject({ event: 'command', name: 'pipeline', usage: expect.arrayContaining([expect.stringMatching(/^\.\/build\.ts pipeline /)]) });
    expect(pipeline!.options).toEqual(expect.arrayContaining([{ flag: '--dry-run', short: '-n', help: expect.any(String) }, { flag: '--jobs', short: '-j', value: expect.any(String), help: expect.any(String) }]));
  });

  it('covers every command of the table that takes --json', () => {
    const taking = COMMANDS.filter((c) => c.flags.includes('json')).map((c) => c.name);
    expect(taking.length).toBeGreaterThan(10);
    expect([...covered].sort()).toEqual([...taking].sort());
  });
});
