import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

/**
 * The layering rules of src/ (../shared/design/architecture.md), checked on the source itself so
 * every move is checked: each .ts file under src/ and tasks/ is parsed with the TypeScript compiler
 * (syntax only, no type checking) and its imports, re-exports, dynamic `import('...')` calls and
 * uses of the standard streams are collected.
 *
 * Cycles are looked for among every edge: static imports, re-exports, dynamic `import()` (a lazy
 * edge is still a dependency; it only hides the cycle until the code path runs) and type-only
 * imports. A pure `import type` is erased before the code runs, so a cycle through one cannot
 * break loading, but it still means two modules each need the other, which the layering forbids;
 * such edges are marked `(type)` in the printed path, and moving the shared type into a module of
 * its own breaks them (src/caching/digest.ts). An import whose names are all marked `type` inside
 * the braces (`import { type A } from`) is a runtime edge: under `verbatimModuleSyntax` it stays
 * in the output as `import {} from`, a real load.
 */

/** Where each kind of code may live: a file breaks a rule when it does the thing and is not in `allowed`. */
const RULES: { rule: string; find: (file: SourceFacts) => Finding[]; allowed: string[] }[] = [
  {
    rule: 'tasks/ is imported only by the CLI layer (the composition root)',
    find: (f) => f.imports.filter((i) => i.target?.startsWith('tasks/')),
    allowed: ['src/cli/', 'tasks/'],
  },
  {
    rule: 'stdout and stderr are written only by the CLI layer and the loggers',
    find: (f) => f.stdio,
    allowed: ['src/cli/', 'src/report/logger.ts'],
  },
  {
    rule: "a package is imported dynamically only through the one helper (a bare import() fails in the bundle's vm.Script)",
    find: (f) => f.imports.filter((i) => i.kind === 'dynamic' && !i.relative),
    allowed: ['src/util/dynamic-import.ts'],
  },
];

/** The folders whose files are checked, relative to the project root. */
const SCANNED = ['src', 'tasks'];

interface Finding {
  line: number;
  text: string;
}

/** One import-like reference of a file. `target` is the project-relative path of a relative specifier. */
interface ImportRef extends Finding {
  kind: 'static' | 'type' | 'dynamic';
  /** The specifier as written, or undefined for `import(expression)`. */
  specifier: string | undefined;
  relative: boolean;
  target?: string;
}

interface SourceFacts {
  file: string;
  imports: ImportRef[];
  /** References to process.stdout / process.stderr / console, and imports of node:process streams. */
  stdio: Finding[];
}

/** What one file imports and whether it touches the standard streams (`file` is project-relative). */
function scanSource(file: string, text: string): SourceFacts {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const facts: SourceFacts = { file, imports: [], stdio: [] };
  const at = (node: ts.Node): Finding => ({
    line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1,
    text: node.getText(source).split('\n')[0]!.slice(0, 120),
  });
  const addImport = (node: ts.Node, kind: ImportRef['kind'], specifierNode: ts.Node | undefined) => {
    const specifier = specifierNode && ts.isStringLiteralLike(specifierNode) ? specifierNode.text : undefined;
    const isRelative = specifier !== undefined && /^\.\.?\//.test(specifier);
    const ref: ImportRef = { ...at(node), kind, specifier, relative: isRelative };
    if (isRelative) ref.target = relative(ROOT, resolveSpecifier(join(ROOT, file), specifier!));
    facts.imports.push(ref);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      addImport(node, node.importClause?.isTypeOnly ? 'type' : 'static', node.moduleSpecifier);
      const spec = node.moduleSpecifier;
      const bindings = node.importClause?.namedBindings;
      if (ts.isStringLiteral(spec) && /^(node:)?process$/.test(spec.text) && bindings && ts.isNamedImports(bindings)) {
        for (const e of bindings.elements) if (/^std(out|err)$/.test((e.propertyName ?? e.name).text)) facts.stdio.push(at(node));
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      addImport(node, node.isTypeOnly ? 'type' : 'static', node.moduleSpecifier);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      addImport(node, 'dynamic', node.arguments[0]);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      addImport(node, 'type', ts.isLiteralTypeNode(arg) ? arg.literal : undefined);
    } else if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      const object = node.expression.text;
      const name = node.name.text;
      if ((object === 'process' && (name === 'stdout' || name === 'stderr')) || object === 'console') facts.stdio.push(at(node));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return facts;
}

/** The file a relative specifier names: as written, or with `.ts` / `/index.ts` added, or `.js` read as `.ts`. */
function resolveSpecifier(fromFile: string, specifier: string): string {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base, `${base}.ts`, join(base, 'index.ts'), base.replace(/\.js$/, '.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? base;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.isFile() && e.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * One cycle per strongly connected component of the graph (Tarjan), each as a path that starts and
 * ends at the same file, so a failure says exactly which edges to cut.
 */
function findCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const strongConnect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strongConnect(v);
  return components.map((component) => cycleWithin(graph, new Set(component)));
}

/** A shortest path from the component's first file (sorted) back to itself, inside the component. */
function cycleWithin(graph: Map<string, string[]>, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = previous.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

const files = SCANNED.flatMap((dir) => tsFiles(join(ROOT, dir)))
  .map((path) => scanSource(relative(ROOT, path), readFileSync(path, 'utf8')))
  .sort((a, b) => a.file.localeCompare(b.file));

describe('import rules', () => {
  it('every relative import names a file that exists (so no edge is missed)', () => {
    const missing = files.flatMap((f) =>
      f.imports.filter((i) => i.target !== undefined && !existsSync(join(ROOT, i.target))).map((i) => `${f.file}:${i.line}: ${i.text}`),
    );
    expect(missing).toEqual([]);
  });

  it('no import cycle (static, re-exports, dynamic import() and import type)', () => {
    const scanned = new Set(files.map((f) => f.file));
    const graph = new Map(
      files.map((f) => [f.file, [...new Set(f.imports.filter((i) => i.target && scanned.has(i.target)).map((i) => i.target!))]]),
    );
    // An edge is type-only when every import from one file of the other is.
    const typeOnly = (from: string, to: string) =>
      files.find((f) => f.file === from)!.imports.every((i) => i.target !== to || i.kind === 'type');
    const cycles = findCycles(graph).map((c) => c.map((file, k) => (k === 0 ? file : `${typeOnly(c[k - 1]!, file) ? '-(type)->' : '->'} ${file}`)).join(' '));
    expect(cycles, `import cycles:\n  ${cycles.join('\n  ')}`).toEqual([]);
  });

  for (const { rule, find, allowed } of RULES) {
    it(rule, () => {
      const breaking = files
        .filter((f) => !allowed.some((prefix) => f.file === prefix || (prefix.endsWith('/') && f.file.startsWith(prefix))))
        .flatMap((f) => find(f).map((x) => `${f.file}:${x.line}: ${x.text}`));
      expect(breaking).toEqual([]);
    });
  }
});

describe('the import scanner', () => {
  it('finds every kind of import, tells type-only ones apart, and every use of the standard streams', () => {
    const facts = scanSource(
      'src/util/example.ts',
      [
        "import { a } from './fs-atomic.ts';",
        "import type { B } from '../target.ts';",
        "import { type C } from '../graph.ts';",
        "export { d } from '../git.ts';",
        "export type { E } from '../run.ts';",
        "import 'zod';",
        "type F = typeof import('../replay.ts');",
        "const g = await import('../scheduler.ts');",
        "const h = await import('zx/core');",
        'const i = await import(name);',
        "import { stdout as out } from 'node:process';",
        'process.stdout.write("x");',
        'const s = process.stderr;',
        'console.log(1);',
        'process.env.X;',
      ].join('\n'),
    );
    expect(facts.imports.map((i) => [i.line, i.kind, i.specifier, i.target])).toEqual([
      [1, 'static', './fs-atomic.ts', 'src/util/fs-atomic.ts'],
      [2, 'type', '../target.ts', 'src/target.ts'],
      [3, 'static', '../graph.ts', 'src/graph.ts'],
      [4, 'static', '../git.ts', 'src/git.ts'],
      [5, 'type', '../run.ts', 'src/run.ts'],
      [6, 'static', 'zod', undefined],
      [7, 'type', '../replay.ts', 'src/replay.ts'],
      [8, 'dynamic', '../scheduler.ts', 'src/scheduler.ts'],
      [9, 'dynamic', 'zx/core', undefined],
      [10, 'dynamic', undefined, undefined],
      [11, 'static', 'node:process', undefined],
    ]);
    expect(facts.stdio.map((s) => s.line)).toEqual([11, 12, 13, 14]);
  });

  it('names the path of each cycle', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(findCycles(graph)).toEqual([
      ['a', 'b', 'c', 'a'],
      ['e', 'e'],
    ]);
  });
});
