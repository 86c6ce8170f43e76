import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, cli, ROOT, tempDir } from './helpers.ts';

/**
 * The example CI workflow (.github/workflows/pipeline.yaml) cannot run here (no GitHub, no Modal),
 * so it is checked for what it promises: it starts on a version-bump commit and on manual dispatch
 * with the pipeline's knobs as inputs, its only secret is the Modal token, and the build command
 * it runs, with the values a push gives it, is accepted by `./build.ts pipeline -n`.
 */
type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * The YAML subset GitHub workflows use here: block mappings and sequences by indentation, `|` and
 * `>-` block scalars, `[a, b]` flow lists, quoted scalars, comments. Not a general YAML parser.
 */
function parseYaml(text: string): Yaml {
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  let i = 0;
  const indent = (l: string) => l.length - l.trimStart().length;
  const scalar = (v: string): Yaml => {
    v = v.trim();
    if (/^\[.*\]$/.test(v)) return v.slice(1, -1).split(',').map((s) => scalar(s));
    if (/^".*"$/.test(v) || /^'.*'$/.test(v)) return v.slice(1, -1);
    return v;
  };
  const block = (parentIndent: number, style: string): string => {
    const body: string[] = [];
    while (i < lines.length && indent(lines[i]!) > parentIndent) body.push(lines[i++]!);
    const n = Math.min(...body.map(indent));
    const stripped = body.map((l) => l.slice(n));
    return style.startsWith('>') ? stripped.join(' ') : stripped.join('\n') + '\n';
  };
  const value = (rest: string, ownIndent: number): Yaml => {
    if (rest === '|' || rest === '>-' || rest === '>') return block(ownIndent, rest);
    if (rest !== '') return scalar(rest);
    return i < lines.length && indent(lines[i]!) > ownIndent ? node(indent(lines[i]!)) : '';
  };
  const node = (at: number): Yaml => {
    if (lines[i]!.trimStart().startsWith('- ')) {
      const list: Yaml[] = [];
      while (i < lines.length && indent(lines[i]!) === at && lines[i]!.trimStart().startsWith('- ')) {
        // `- key: v` opens a mapping whose keys sit two columns further in.
        lines[i] = ' '.repeat(at + 2) + lines[i]!.trimStart().slice(2);
        list.push(node(at + 2));
      }
      return list;
    }
    const map: Record<string, Yaml> = {};
    while (i < lines.length && indent(lines[i]!) === at) {
      const m = /^([^:]+):(?:\s+(.*))?$/.exec(lines[i]!.trim());
      if (!m) throw new Error(`unparsed line: ${lines[i]}`);
      i++;
      map[m[1]!.trim().replace(/^"|"$/g, '')] = value((m[2] ?? '').trim(), at);
    }
    return map;
  };
  return node(0);
}

const get = (y: Yaml, ...path: (string | number)[]): Yaml => path.reduce<Yaml>((at, k) => (at as Record<string, Yaml>)[k as string]!, y);

/** A step's `${{ inputs.x || 'default' }}` as a push evaluates it (no inputs: the default). */
const onPush = (expr: string) => expr.replace(/\$\{\{\s*inputs\.\w+\s*\|\|\s*'([^']*)'\s*\}\}/g, '$1');

describe('the example CI workflow', () => {
  const workflow = parseYaml(readFileSync(join(ROOT, '.github', 'workflows', 'pipeline.yaml'), 'utf8'));
  const job = get(workflow, 'jobs', 'pipeline');
  const steps = get(job, 'steps') as Yaml[];
  const launch = steps.find((s) => typeof get(s, 'run') === 'string' && (get(s, 'run') as string).includes('./build.ts pipeline'))!;
  const cache = tempDir('ci-workflow');
  afterAll(() => cleanup(cache));

  it('starts on a version-bump commit to main and on manual dispatch with the pipeline knobs', () => {
    expect(get(workflow, 'on', 'push', 'branches')).toEqual(['main']);
    expect(get(job, 'if')).toMatch(/github\.event_name == 'workflow_dispatch' \|\|\s+github\.event\.head_commit\.message == 'Update package version'/);
    expect(Object.keys(get(workflow, 'on', 'workflow_dispatch', 'inputs') as object).sort()).toEqual(['epochs', 'gpu', 'national_epochs', 'national_gpu', 'num_workers', 'resume']);
  });

  it('has the Modal token as its only secret', () => {
    const secrets = [...readFileSync(join(ROOT, '.github', 'workflows', 'pipeline.yaml'), 'utf8').matchAll(/secrets\.(\w+)/g)].map((m) => m[1]);
    expect([...new Set(secrets)].sort()).toEqual(['MODAL_TOKEN_ID', 'MODAL_TOKEN_SECRET']);
  });

  /** The launch step's build command as a shell on a push would run it: argv after `./build.ts`. */
  function buildArgs(overrides: Record<string, string> = {}): string[] {
    const env: Record<string, string> = { GITHUB_SHA: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() };
    for (const [name, expr] of Object.entries(get(launch, 'env') as Record<string, string>)) if (!expr.includes('secrets.')) env[name] = onPush(expr);
    Object.assign(env, overrides);
    const line = (get(launch, 'run') as string).split('\n').find((l) => l.startsWith('./build.ts pipeline'))!;
    const words = line.split(/\s+/).slice(1);
    return words
      .map((w) => w.replace(/^\$\{(\w+):\+(.*)\}$/, (_, name: string, alt: string) => (env[name] ? alt : '')))
      .filter((w) => w !== '')
      .map((w) => w.replace(/"\$(\w+)"/g, (_, name: string) => env[name] ?? ''));
  }

  it('runs a detached build on Modal whose variables `./build.ts pipeline -n` accepts', async () => {
    const args = buildArgs();
    expect(args).toContain('EXECUTOR=modal');
    expect(args).toContain('--detach');
    expect(args.filter((a) => a.startsWith('RESUME'))).toEqual([]); // empty on a push: not passed
    const dry = await cli([...args.filter((a) => a !== '--detach'), '-n'], { cache });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would run fit-regional/);
    // The same command with a dispatch input the build refuses fails there, before anything starts.
    const refused = await cli([...buildArgs({ GPU: 'K80' }).filter((a) => a !== '--detach'), '-n'], { cache });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/GPU=K80 is invalid/);
  });
});
