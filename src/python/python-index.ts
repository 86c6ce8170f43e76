import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { digestBytes } from '../caching/hash.ts';
import { z } from 'zod';
import { writeFileAtomicSync } from '../util/fs-atomic.ts';
import { moduleFacts, type ImportStatement, type ModuleFacts } from './module-facts.ts';

/**
 * The Python files of a project directory and what each one says (module-facts.ts), with module
 * resolution as `python -m` sees it from that directory (it is the working directory, so it is
 * first on sys.path): `a.b` is `a/b/__init__.py` (a package), else `a/b.py`, else a directory
 * `a/b/` holding Python files (a namespace package). A name that resolves nowhere in the project
 * is a third-party or standard-library module, and is ignored.
 *
 * A pinned tree never changes, so its index is memoised as JSON beside the tree
 * (`cache/trees/<sha>.python-index.json`): a build reads one file instead of ~300 sources.
 * PYTHON_INDEX_SCHEMA is part of the replay's inputs key, since what the reader finds decides keys.
 */
export const PYTHON_INDEX_SCHEMA = 2;

/** A file of the project (path relative to the project directory), or an adapter script of this build system. */
export type PyFile = { root: 'tree' | 'adapters'; path: string };

/**
 * The memo's schema. A file's facts are checked by shape, not field by field: the memo is this
 * program's own atomic write of a tree that never changes, and a deep parse of ~300 files' facts
 * cost more than the rest of `check` (~40 ms); a memo that fails it is rebuilt.
 */
const factsSchema = z.object({
  imports: z.array(z.object({ level: z.number(), module: z.string(), names: z.array(z.string()) }).loose()),
  mainGuard: z.boolean(),
  moduleCode: z.boolean(),
  argparse: z.object({ flags: z.array(z.string()), calls: z.array(z.string()), parserFunctions: z.record(z.string(), z.unknown()) }).loose(),
  fileNames: z.array(z.string()),
  lazyModules: z.array(z.string()).optional(),
});
const memoSchema = z.object({ schema: z.literal(PYTHON_INDEX_SCHEMA), files: z.record(z.string(), factsSchema), digests: z.record(z.string(), z.string()) });

/** The Python files under one directory, their facts, and the directories holding them. */
class FileSet {
  readonly facts: Map<string, ModuleFacts>;
  readonly dirs = new Set<string>();

  constructor(facts: Map<string, ModuleFacts>) {
    this.facts = facts;
    for (const file of facts.keys()) {
      const parts = file.split('/');
      for (let i = 1; i < parts.length; i++) this.dirs.add(parts.slice(0, i).join('/'));
    }
  }

  /** Where a dotted module lives here: its file (null for a namespace package), or undefined if nowhere. */
  find(dotted: string): { file: string | null; package: boolean } | undefined {
    const path = dotted.replaceAll('.', '/');
    if (this.facts.has(`${path}/__init__.py`)) return { file: `${path}/__init__.py`, package: true };
    if (this.facts.has(`${path}.py`)) return { file: `${path}.py`, package: false };
    if (this.dirs.has(path)) return { file: null, package: true };
    return undefined;
  }
}

export class PythonIndex {
  private readonly tree: FileSet;
  private readonly adapters: FileSet;
  private readonly closures = new Map<string, PyFile[]>();
  private readonly imports = new Map<string, PyFile[]>();

  constructor(o: { tree: Map<string, ModuleFacts>; adapters: Map<string, ModuleFacts> }) {
    this.tree = new FileSet(o.tree);
    this.adapters = new FileSet(o.adapters);
  }

  /** How many project files were indexed. */
  get size(): number {
    return this.tree.facts.size;
  }

  /** Every dotted module name of the project (packages by their `__init__.py`). */
  moduleNames(): string[] {
    return [...this.tree.facts.keys()].filter((f) => !f.endsWith('/__main__.py')).map((f) => f.replace(/(\/__init__)?\.py$/, '').replaceAll('/', '.'));
  }

  facts(file: PyFile): ModuleFacts | undefined {
    return this.set(file.root).facts.get(file.path);
  }

  private set(root: PyFile['root']): FileSet {
    return root === 'tree' ? this.tree : this.adapters;
  }

  /**
   * What `python -m <dotted>` runs: the file executed as `__main__` (a package's `__main__.py`),
   * and the package `__init__.py` files imported before it. Null when the module is not in the
   * project (`run` null: a package without `__main__.py`, or a namespace package).
   */
  moduleEntry(dotted: string): { run: string | null; imported: string[] } | null {
    const found = this.tree.find(dotted);
    if (!found) return null;
    const imported = this.parents(this.tree, dotted);
    if (!found.package) return { run: found.file, imported };
    if (found.file) imported.push(found.file);
    const main = `${dotted.replaceAll('.', '/')}/__main__.py`;
    return { run: this.tree.facts.has(main) ? main : null, imported };
  }

  /** The `__init__.py` of every package above `dotted` (which Python imports first). */
  private parents(set: FileSet, dotted: string): string[] {
    const parts = dotted.split('.');
    const out: string[] = [];
    for (let i = 1; i < parts.length; i++) {
      const file = set.find(parts.slice(0, i).join('.'))?.file;
      if (file) out.push(file);
    }
    return out;
  }

  /**
   * Where an import statement's module lives: `from ..a import b` in `p/q/m.py` is `p.a`. An
   * adapter's own directory comes first on its sys.path, then the project (the adapter puts it
   * there). Null for a third-party module, or a relative import above the project.
   */
  resolveBase(file: PyFile, stmt: ImportStatement): { root: PyFile['root']; dotted: string } | null {
    let dotted: string;
    if (stmt.level > 0) {
      if (file.root !== 'tree') return null; // an adapter is a script: no package to be relative to
      const pkg = file.path.split('/').slice(0, -1);
      if (stmt.level - 1 >= pkg.length) return null; // beyond the top-level package: Python raises
      dotted = [...pkg.slice(0, pkg.length - (stmt.level - 1)), ...(stmt.module ? [stmt.module] : [])].join('.');
    } else dotted = stmt.module;
    if (!dotted) return null;
    const roots: PyFile['root'][] = file.root === 'adapters' && stmt.level === 0 ? ['adapters', 'tree'] : ['tree'];
    const root = roots.find((r) => this.set(r).find(dotted));
    return root ? { root, dotted } : null;
  }

  /** The file of a dotted module under `root` (a namespace package has none). */
  moduleFile(root: PyFile['root'], dotted: string): PyFile | null {
    const file = this.set(root).find(dotted)?.file;
    return file ? { root, path: file } : null;
  }

  /** The files a file imports directly (resolved; third-party imports dropped), resolved once per file. */
  importsOf(file: PyFile): PyFile[] {
    const key = `${file.root}:${file.path}`;
    let imports = this.imports.get(key);
    if (!imports) {
      imports = this.resolveImports(file);
      this.imports.set(key, imports);
    }
    return imports;
  }

  private resolveImports(file: PyFile): PyFile[] {
    const facts = this.facts(file);
    if (!facts) return [];
    const out = new Map<string, PyFile>();
    const add = (f: PyFile) => out.set(`${f.root}:${f.path}`, f);
    for (const stmt of facts.imports) {
      const base = this.resolveBase(file, stmt);
      if (!base) continue;
      const set = this.set(base.root);
      for (const p of [...this.parents(set, base.dotted), set.find(base.dotted)!.file]) if (p) add({ root: base.root, path: p });
      // `from a import b`: b may be a submodule, which Python then imports; any other name of a
      // package with lazy exports may import each module they name.
      let lazy = false;
      for (const name of stmt.from ? stmt.names : []) {
        const sub = name === '*' ? null : set.find(`${base.dotted}.${name}`)?.file;
        if (sub) add({ root: base.root, path: sub });
        else lazy = true;
      }
      const pkg = set.find(base.dotted)?.file;
      for (const m of lazy && pkg ? (set.facts.get(pkg)?.lazyModules ?? []) : []) {
        const found = set.find(m);
        if (!found) continue;
        for (const p of [...this.parents(set, m), found.file]) if (p) add({ root: base.root, path: p });
      }
    }
    return [...out.values()];
  }

  /** Every file `entries` import, transitively, the entries included; sorted, tree files first. */
  closure(entries: PyFile[]): PyFile[] {
    const id = entries.map((e) => `${e.root}:${e.path}`).sort().join('\n');
    const memo = this.closures.get(id);
    if (memo) return memo;
    const seen = new Map<string, PyFile>();
    const queue = [...entries];
    while (queue.length) {
      const f = queue.pop()!;
      const key = `${f.root}:${f.path}`;
      if (seen.has(key) || !this.facts(f)) continue;
      seen.set(key, f);
      queue.push(...this.importsOf(f));
    }
    const out = [...seen.values()].sort((a, b) => (a.root === b.root ? (a.path < b.path ? -1 : 1) : a.root === 'tree' ? -1 : 1));
    this.closures.set(id, out);
    return out;
  }

  /**
   * The files `python -m <dotted>` (or an adapter, `{adapters}/<file>`, or a project path
   * `a/b.py`) runs and imports; empty when it names nothing in the project.
   */
  closureOf(entry: string): PyFile[] {
    return this.closure(this.entryFiles(entry));
  }

  /** The files an entry of Target.pythonModules starts from. */
  entryFiles(entry: string): PyFile[] {
    const adapter = /^\{adapters\}\/(.+)$/.exec(entry);
    if (adapter) return this.adapters.facts.has(adapter[1]!) ? [{ root: 'adapters', path: adapter[1]! }] : [];
    if (entry.endsWith('.py')) return this.tree.facts.has(entry) ? [{ root: 'tree', path: entry }] : [];
    const found = this.moduleEntry(entry);
    if (!found) return [];
    return [...found.imported, ...(found.run ? [found.run] : [])].map((path) => ({ root: 'tree' as const, path }));
  }
}

/** The Python files under `dir` (relative paths, `/`-separated), skipping caches and hidden directories. */
function pythonFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.py'))
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .filter((p) => !p.split('/').some((part) => part === '__pycache__' || part === 'node_modules' || part.startsWith('.')))
    .sort();
}

function readFacts(dir: string, files: string[]): Map<string, ModuleFacts> {
  const out = new Map<string, ModuleFacts>();
  for (const f of files) out.set(f, moduleFacts(readFileSync(join(dir, f), 'utf8')));
  return out;
}

type Memo = z.infer<typeof memoSchema>;

function readMemo(file: string): Memo | null {
  try {
    const parsed = memoSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null; // no memo yet, or a torn one
  }
}

/**
 * The facts of a tree seen for the first time. Every commit is a new tree, but most of its files
 * are unchanged: facts are taken from the newest other tree's memo where a file's bytes are the
 * same (by digest), and only changed files are read through (~0.25 s for the ~300 files of the
 * real repository, ~20 ms to read and digest them). Reused facts are valid only if the project's
 * parser helpers are the same set (onlyParserCalls filtered calls by it); otherwise all are read.
 */
function buildFacts(projectDir: string, memoFile: string): { facts: Map<string, ModuleFacts>; digests: Record<string, string> } {
  const files = pythonFiles(projectDir);
  const texts = new Map(files.map((f) => [f, readFileSync(join(projectDir, f), 'utf8')]));
  const digests = Object.fromEntries(files.map((f) => [f, digestBytes(texts.get(f)!)]));
  const previous = newestOtherMemo(memoFile);
  const facts = new Map<string, ModuleFacts>();
  for (const f of files) {
    const reused = previous && previous.digests[f] === digests[f] ? (previous.files[f] as unknown as ModuleFacts | undefined) : undefined;
    facts.set(f, reused ?? moduleFacts(texts.get(f)!));
  }
  if (previous && !sameHelpers(helpersOf(facts), helpersOf(new Map(Object.entries(previous.files as unknown as Record<string, ModuleFacts>))))) {
    for (const f of files) facts.set(f, moduleFacts(texts.get(f)!));
  }
  return { facts: onlyParserCalls(facts), digests };
}

function newestOtherMemo(memoFile: string): Memo | null {
  const dir = dirname(memoFile);
  let newest: { file: string; mtime: number } | null = null;
  try {
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.python-index.json') || join(dir, name) === memoFile) continue;
      const mtime = statSync(join(dir, name)).mtimeMs;
      if (!newest || mtime > newest.mtime) newest = { file: join(dir, name), mtime };
    }
  } catch {
    return null;
  }
  return newest ? readMemo(newest.file) : null;
}

function helpersOf(files: Map<string, ModuleFacts>): Set<string> {
  const helpers = new Set<string>();
  for (const f of files.values()) for (const name of Object.keys(f.argparse.parserFunctions)) helpers.add(name);
  return helpers;
}

const sameHelpers = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));

/**
 * Keeps, of each file's calls, those that may name a parser helper of the project (a function
 * that adds arguments): the only calls cli-surface.ts follows. Keeps the memo small.
 */
function onlyParserCalls(files: Map<string, ModuleFacts>): Map<string, ModuleFacts> {
  const helpers = helpersOf(files);
  const keep = (calls: string[]) => calls.filter((c) => helpers.has(c.slice(c.lastIndexOf('.') + 1)));
  for (const f of files.values()) {
    f.argparse.calls = keep(f.argparse.calls);
    for (const fn of Object.values(f.argparse.parserFunctions)) fn.calls = keep(fn.calls);
  }
  return files;
}

/**
 * The index of a pinned project directory, from its memo when there is one (written on first
 * use; an unreadable or outdated memo is rebuilt, see buildFacts), plus the adapter scripts,
 * which are read each time (a handful of small files outside the pinned tree).
 */
export function loadPythonIndex(o: { projectDir: string; memoFile: string; adaptersDir: string }): { index: PythonIndex; fromMemo: boolean } {
  const memo = readMemo(o.memoFile);
  let tree: Map<string, ModuleFacts>;
  if (memo) tree = new Map(Object.entries(memo.files as unknown as Record<string, ModuleFacts>));
  else {
    const built = buildFacts(o.projectDir, o.memoFile);
    tree = built.facts;
    try {
      writeFileAtomicSync(o.memoFile, JSON.stringify({ schema: PYTHON_INDEX_SCHEMA, files: Object.fromEntries(tree), digests: built.digests }));
    } catch {
      // a read-only cache only costs the next build the same reading
    }
  }
  const adapters = readFacts(o.adaptersDir, pythonFiles(o.adaptersDir));
  return { index: new PythonIndex({ tree, adapters }), fromMemo: memo !== null };
}
