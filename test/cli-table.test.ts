import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FLAGS } from '../src/cli/argv.ts';
import { COMMANDS } from '../src/cli/commands.ts';
import { cli, git, outcomes, ROOT, scratchDirs, type CliResult } from './helpers.ts';

/**
 * The command table (src/cli/commands.ts) as users meet it, through the real CLI bundle: help
 * generated per command, flags checked per command, `--version`, combined short flags and `--`,
 * "did you mean" for misspelt commands, targets and variables, and mistakes in a pipeline
 * declaration (BUILD_TASKS) reported as usage errors that name the targets.
 */
const target = (name: string, deps: string[] = []) =>
  `{ kind: 'target', target: { name: ${JSON.stringify(name)}, deps: ${JSON.stringify(deps)}, sources: ['in.txt'], vars: [], command: () => ['sh', '-c', 'cp in.txt {run}/${name.replace(/\W/g, '_')}.txt'], outputs: ['${name.replace(/\W/g, '_')}.txt'] } }`;
const declaration = (nodes: string[]) => `export function makePipeline() { return { defaultGoals: ['out'], nodes: [${nodes.join(', ')}] }; }\n`;

/** One line on stderr, exit 2, nothing on stdout, no cache directory made. */
function usageError(r: CliResult, cache: string, message: RegExp): void {
  expect(r.code, r.stdout + r.stderr).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
  expect(r.stdout).toBe('');
  expect(existsSync(cache)).toBe(false);
}

describe('the command table', () => {
  const scratch = scratchDirs('cli-table');
  let root: string;
  let repo: string;
  /** A fresh cache directory path (not created) per call. */
  const cache = () => join(scratch(), 'cache');
  const tasksFile = (name: string, nodes: string[]) => {
    const file = join(root, `${name}.mjs`);
    writeFileSync(file, declaration(nodes));
    return file;
  };

  beforeAll(() => {
    root = scratch();
    repo = join(root, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'in.txt'), 'hello\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'add', '-A');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'commit', '-q', '-m', 'init');
  });

  it('--version and version print the package.json version', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['version']]) {
      const r = await cli(args, { cache: cache() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });

  it('--help lists every command; help <command> equals <command> --help', async () => {
    const r = await cli(['--help'], { cache: cache() });
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c.name} +\\S`, 'm'));
    const viaHelp = await cli(['help', 'rollback'], { cache: cache() });
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe((await cli(['rollback', '--help'], { cache: cache() })).stdout);
  });

  it("every command's --help exits 0 with its usage and every flag it takes, and no other", async () => {
    for (const c of COMMANDS) {
      const r = await cli([c.name, '--help'], { cache: cache() });
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`usage: ./build.ts ${c.usage[0]}`);
      for (const name of Object.keys(FLAGS)) {
        const listed = new RegExp(`^ +(-\\w, )?--${name}\\b`, 'm').test(r.stdout);
        expect(listed, `${c.name} --help and --${name}`).toBe(name === 'help' || (c.flags as string[]).includes(name));
      }
    }
  });

  it('promote --help names its variables and flags', async () => {
    const r = await cli(['promote', '--help'], { cache: cache() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: \.\/build\.ts promote RUN_ID=<run>/);
    expect(r.stdout).toMatch(/^ +-n, --dry-run +\S/m);
    expect(r.stdout).toMatch(/^ +-y, --yes +\S/m);
    expect(r.stdout).toMatch(/^ +--json +\S/m);
  });

  it('a flag the command does not take is a usage error naming the command and its help', async () => {
    const dir = cache();
    usageError(await cli(['status', '--dot'], { cache: dir }), dir, /^error: status does not take --dot; see \.\/build\.ts status --help$/);
    usageError(await cli(['status', '--dot', '--follow', '--yes'], { cache: dir }), dir, /status does not take --dot/);
    usageError(await cli(['logs', '-y', 'RUN_ID=x'], { cache: dir }), dir, /logs does not take -y; see \.\/build\.ts logs --help/);
    usageError(await cli(['out', '--dot', `REPO=${repo}`], { cache: dir }), dir, /does not take --dot; see \.\/build\.ts pipeline --help/);
  });

  it('-kn is -k and -n: a dry run that writes no run', async () => {
    const dir = cache();
    const r = await cli(['pipeline', '-kn', `REPO=${repo}`, '--json'], { cache: dir, env: { BUILD_TASKS: tasksFile('one', [target('out')]) } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.events.filter((e) => e.event === 'plan').map((e) => [e.target, e.action])).toEqual([['out', 'run']]);
    expect(existsSync(join(dir, 'runs'))).toBe(false);
  });

  it('-j2, -j 2, -kj1 and --jobs=2 are counts of parallel actions', async () => {
    const tasks = tasksFile('two', [target('out')]);
    for (const flags of [['-j2'], ['-j', '2'], ['-kj1'], ['--jobs=2']]) {
      const r = await cli(['pipeline', ...flags, `REPO=${repo}`, '--json'], { cache: cache(), env: { BUILD_TASKS: tasks } });
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(0);
      expect(outcomes(r).get('out')).toBe('built');
    }
  });

  it('after --, every word is a word: a target named like a flag builds', async () => {
    const tasks = tasksFile('dash', [target('-odd'), target('out', ['-odd'])]);
    const dir = cache();
    const bare = await cli([`REPO=${repo}`, '--json', '--', '-odd'], { cache: dir, env: { BUILD_TASKS: tasks } });
    expect(bare.code, bare.stderr).toBe(0);
    expect([...outcomes(bare)]).toEqual([['-odd', 'built']]);
    const named = await cli(['pipeline', `REPO=${repo}`, '--json', '--new-run', '--', '-odd'], { cache: dir, env: { BUILD_TASKS: tasks } });
    expect(named.code, named.stderr).toBe(0);
    expect(outcomes(named).get('-odd')).toBe('cached');
    const withoutTerminator = join(scratch(), 'cache');
    usageError(await cli(['pipeline', `REPO=${repo}`, '-odd'], { cache: withoutTerminator, env: { BUILD_TASKS: tasks } }), withoutTerminator, /unknown option -o/);
  });

  it('did you mean: a misspelt command, target, variable or option', async () => {
    const dir = cache();
    usageError(await cli(['pipline', `REPO=${repo}`], { cache: dir }), dir, /^error: unknown command 'pipline'; did you mean pipeline\?$/);
    usageError(await cli(['stauts'], { cache: dir }), dir, /unknown command 'stauts'; did you mean status\?/);
    usageError(await cli(['help', 'promot'], { cache: dir }), dir, /unknown command 'promot'; did you mean promote\?/);
    usageError(await cli(['datbase', `REPO=${repo}`], { cache: dir }), dir, /^error: unknown target 'datbase'; did you mean database\? list targets with \.\/build\.ts targets$/);
    usageError(await cli(['pipeline', 'households=20', `REPO=${repo}`], { cache: dir }), dir, /unknown variable households; valid variables: .*; did you mean HOUSEHOLDS\?$/);
    usageError(await cli(['pipeline', '--dryrun', `REPO=${repo}`], { cache: dir }), dir, /unknown option --dryrun; did you mean --dry-run\?/);
  });

  it('a declared target whose name is close to a command builds', async () => {
    const r = await cli(['stages', `REPO=${repo}`, '--json'], { cache: cache(), env: { BUILD_TASKS: tasksFile('near', [target('stages'), target('out')]) } });
    expect(r.code, r.stderr).toBe(0);
    expect([...outcomes(r)]).toEqual([['stages', 'built']]);
  });

  describe('mistakes in the pipeline declaration are usage errors naming the targets', () => {
    const cases: [string, string[], RegExp][] = [
      ['a cycle', [target('a', ['b']), target('b', ['a']), target('out', ['a'])], /^error: the pipeline declares a dependency cycle a -> b -> a; remove one of these dependencies$/],
      ['a self-dependency', [target('out', ['out'])], /dependency cycle out -> out/],
      ['an unknown dependency', [target('base'), target('out', ['bsae'])], /^error: the pipeline's target out depends on bsae, which is not declared; did you mean base\?$/],
      ['a duplicate target', [target('out'), target('a'), target('a')], /^error: the pipeline declares target a twice; give each target its own name$/],
    ];
    for (const [name, nodes, message] of cases) {
      it(`${name}: exit 2 from a build and from graph`, async () => {
        const env = { BUILD_TASKS: tasksFile(name.replace(/\W/g, '-'), nodes) };
        const dir = cache();
        usageError(await cli(['pipeline', `REPO=${repo}`], { cache: dir, env }), dir, message);
        usageError(await cli(['graph'], { cache: dir, env }), dir, message);
      });
    }
  });
});
