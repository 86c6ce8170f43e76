import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Graph } from '../graph.ts';
import { adaptersNamed } from '../placeholders.ts';
import { cliSurface } from '../python/cli-surface.ts';
import type { PyFile, PythonIndex } from '../python/python-index.ts';
import type { MakefileMirror, Target, Vars } from '../target.ts';
import { didYouMean, nearestNames } from '../util/did-you-mean.ts';
import { invocations, type Invocation } from './invocations.ts';
import { readMakefile, recipeModules, type Makefile } from './makefile.ts';

/**
 * `check`: the plan against the pinned tree, statically, before any work. For every target of the
 * plan (a fan-out by its sample child, the area worker for one area) it reads the command
 * (invocations.ts) and verifies, without importing anything:
 * - each `python -m M` of the project exists at the pinned SHA and does something when run (a
 *   `__main__` guard or module-level code), and is declared in `pythonModules` (else the files it
 *   imports are not in the key);
 * - every flag passed is defined by M's argparse, its own `add_argument` calls and those of the
 *   project's parser helpers it calls (cli-surface.ts); a script that reads `sys.argv` by hand is
 *   a note, not a problem; a flag passed to a script with no parser is a problem (it is ignored);
 * - each `make T` names a rule of the Makefile, each `VAR=value` a variable it uses, and a chain
 *   of targets declared to mirror a rule (Pipeline.mirrorsMakefile) runs the recipe's modules in
 *   its order with the same flags;
 * - each argument that is a relative path into the tree exists (output flags' values excepted);
 * - each declared output is one the step can write: its command names `{run}/<output>` or a
 *   directory holding it, or a storage copy collects it (tasks/storage.ts), or an adapter of this
 *   build system runs (trusted). A storage copy must come from the storage folder, and (the weak
 *   part) some file the step runs must name the file's basename in a string literal or f-string.
 *   An input placed into storage must be a declared output of a dependency.
 * One line per problem, naming the target, the flag or path and the fix. Not checked: flag values
 * (types, choices), required flags and positional arguments, and what an adapter writes.
 */
export interface PlanLine {
  target: string;
  message: string;
}

export interface PlanReport {
  problems: PlanLine[];
  /** What check could not verify, and why (a hand-parsed sys.argv). */
  notes: PlanLine[];
  /** How many targets, Python entry points and paths were checked (for the summary line). */
  counts: { targets: number; modules: number; paths: number };
}

export interface PlanCheckOptions {
  graph: Graph;
  goals: string[];
  vars: Vars;
  /** The project directory of the pinned tree (commands run in a copy of it). */
  projectDir: string;
  index: PythonIndex;
  /** The storage folder real scripts read and write (tasks/storage.ts STORAGE). */
  storageDir: string;
  mirrors: MakefileMirror[];
  /** Short SHA, for messages. */
  sha: string;
}

export function checkPlan(o: PlanCheckOptions): PlanReport {
  return new PlanChecker(o).run();
}

class PlanChecker {
  private readonly o: PlanCheckOptions;
  private readonly problems: PlanLine[] = [];
  private readonly notes: PlanLine[] = [];
  private readonly counts = { targets: 0, modules: 0, paths: 0 };
  private makefile: Makefile | null | undefined;
  private treeFiles: string[] | undefined;

  constructor(o: PlanCheckOptions) {
    this.o = o;
  }

  run(): PlanReport {
    const { graph, goals } = this.o;
    for (const name of graph.select(goals).names) {
      const node = graph.get(name);
      if (node.kind === 'target') this.target(node.target);
      else if (node.fanout.sample) this.target(node.fanout.sample());
      else this.problem(name, `fan-out ${name} declares no sample child, so its command cannot be checked; add \`sample\` (one child as expand() would make it)`);
    }
    for (const mirror of this.o.mirrors) this.mirror(mirror);
    return { problems: this.problems, notes: this.notes, counts: this.counts };
  }

  private problem(target: string, message: string): void {
    this.problems.push({ target, message });
  }

  private target(t: Target): void {
    this.counts.targets++;
    const argv = t.command(this.o.vars);
    const runs = invocations(argv);
    const declared = new Set(t.pythonModules ?? []);
    const ran = new Set(runs.flatMap((r) => (r.kind === 'python-module' ? [r.module] : [])));
    for (const entry of declared) {
      // A missing module the command runs is named once, by its invocation.
      if (ran.has(entry) || entry.startsWith('{adapters}/') || this.o.index.entryFiles(entry).length > 0) continue;
      this.problem(t.name, `pythonModules names ${entry}, which is not a module of the tree at ${this.o.sha}; ${this.movedHint(entry) ?? 'fix or remove it'}`);
    }
    const written: PyFile[] = [];
    for (const run of runs) {
      if (run.kind === 'python-module') written.push(...this.pythonModule(t, run, declared));
      else if (run.kind === 'python-script') written.push(...this.pythonScript(t, run));
      else if (run.kind === 'make') written.push(...this.make(t, run, declared));
    }
    for (const run of runs) if (run.kind === 'copy') this.copy(t, run, written);
    this.outputs(t, argv, runs);
  }

  /** `python -m M args`: M exists and runs, is declared, and takes the flags; the files it runs. */
  private pythonModule(t: Target, run: Extract<Invocation, { kind: 'python-module' }>, declared: Set<string>): PyFile[] {
    const { index, sha } = this.o;
    const m = run.module;
    const entry = index.moduleEntry(m);
    const top = m.split('.')[0]!;
    if (!entry) {
      // Not a project module: the standard library or an installed tool (venv, pytest, pip).
      if (declared.has(m) || index.moduleEntry(top)) this.problem(t.name, `python -m ${m}: no such module at ${sha}; ${this.movedHint(m) ?? 'fix the module path'}`);
      else this.paths(t, `python -m ${m}`, run.args);
      return [];
    }
    this.counts.modules++;
    if (!declared.has(m)) this.problem(t.name, `runs python -m ${m}, which pythonModules does not declare, so edits to the files it imports would not rebuild ${t.name}; add '${m}' to its pythonModules`);
    if (!entry.run) {
      this.problem(t.name, `python -m ${m}: ${m} is a package without __main__.py, so it cannot be run; name the module that has the entry point`);
      return [];
    }
    const file: PyFile = { root: 'tree', path: entry.run };
    const facts = index.facts(file)!;
    if (!facts.mainGuard && !facts.moduleCode) {
      this.problem(t.name, `python -m ${m}: ${entry.run} has no \`if __name__ == "__main__":\` and no module-level code, so running it does nothing; call its functions from an adapter (tasks/adapters/)`);
    }
    this.flags(t, `python -m ${m}`, m, file, run.args);
    this.paths(t, `python -m ${m}`, run.args);
    return index.closureOf(m);
  }

  /** `python <script> args`: an adapter of this build system or a script of the tree. */
  private pythonScript(t: Target, run: Extract<Invocation, { kind: 'python-script' }>): PyFile[] {
    const adapter = /^\{adapters\}\/(.+)$/.exec(run.script);
    // Another placeholder or an absolute path is outside what check can read.
    if (!adapter && (run.script.startsWith('{') || run.script.startsWith('/'))) return [];
    const file: PyFile = adapter ? { root: 'adapters', path: adapter[1]! } : { root: 'tree', path: posix.normalize(run.script) };
    if (!this.o.index.facts(file)) {
      const where = adapter ? `tasks/adapters/${file.path} does not exist` : `${file.path} does not exist in the tree at ${this.o.sha}`;
      this.problem(t.name, `python ${run.script}: ${where}; fix the script path`);
      return [];
    }
    this.counts.modules++;
    this.flags(t, `python ${run.script}`, run.script, file, run.args);
    this.paths(t, `python ${run.script}`, run.args);
    return this.o.index.closure([file]);
  }

  private flags(t: Target, what: string, name: string, file: PyFile, args: string[]): void {
    const passed = args.filter((a) => /^--?[A-Za-z]/.test(a)).map((a) => a.split('=')[0]!);
    const surface = cliSurface(this.o.index, file);
    if (surface.kind === 'sys-argv') {
      this.notes.push({ target: t.name, message: `${what}: no argparse (it reads sys.argv by hand): flags are not checked` });
      return;
    }
    if (surface.kind === 'none') {
      for (const flag of passed) this.problem(t.name, `${what} passes ${flag}, but ${name} has no argparse and reads no sys.argv, so it ignores the flag; drop it`);
      return;
    }
    for (const flag of passed) {
      if (surface.flags.has(flag)) continue;
      if (surface.tolerant) {
        this.problem(t.name, `${what} passes ${flag}, which ${name} does not define; it parses with parse_known_args, so the flag is ignored; drop it`);
        continue;
      }
      const longer = [...surface.flags].filter((f) => f.startsWith(flag));
      if (longer.length === 1) {
        this.problem(t.name, `${what} passes ${flag}, an abbreviation of ${longer[0]}; spell it out`);
        continue;
      }
      const all = [...surface.flags].sort();
      const hint = didYouMean(flag, all) ?? (all.length <= 12 ? `its flags are ${all.join(' ')}` : `see python -m ${name} --help`);
      this.problem(t.name, `${what} passes ${flag}, which ${name}'s argparse does not define (it exits 2); ${hint}`);
    }
  }

  /** Relative path arguments that point into the tree must exist (a value after an output flag may be new). */
  private paths(t: Target, what: string, args: string[]): void {
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      // `--flag=value` or `--flag value`: the flag says whether the value may be a new file.
      const inline = /^(--[^=]+)=(.*)$/s.exec(arg);
      const flag = inline ? inline[1]! : (args[i - 1] ?? '');
      const value = inline ? inline[2]! : arg;
      if (!looksLikeTreePath(value) || /out/i.test(flag)) continue;
      this.counts.paths++;
      if (existsSync(join(this.o.projectDir, value))) continue;
      const hint = this.sameName(value);
      this.problem(t.name, `${what} passes ${value}, which does not exist in the tree at ${this.o.sha}; ${hint ? `did you mean ${hint}?` : 'fix the path'}`);
    }
  }

  /** `make T VAR=v`: the rule exists, the variables are used; the recipe's modules are declared. */
  private make(t: Target, run: Extract<Invocation, { kind: 'make' }>, declared: Set<string>): PyFile[] {
    const makefile = this.readMakefile();
    if (!makefile) {
      this.problem(t.name, `make ${run.targets.join(' ')}: the tree at ${this.o.sha} has no Makefile; run the modules themselves`);
      return [];
    }
    const files: PyFile[] = [];
    for (const goal of run.targets.length ? run.targets : []) {
      const rule = makefile.rules.get(goal);
      if (!rule) {
        this.problem(t.name, `make ${goal}: the Makefile has no target ${goal}; ${didYouMean(goal, makefile.rules.keys()) ?? 'fix the target name'}`);
        continue;
      }
      const modules = recipeModules(rule.recipe).map((r) => r.module);
      const undeclared = modules.filter((m) => !declared.has(m) && this.o.index.moduleEntry(m));
      if (undeclared.length) {
        this.problem(t.name, `make ${goal} runs ${undeclared.length} module(s) that pythonModules does not declare (${undeclared.join(', ')}), so edits to the files they import would not rebuild ${t.name}; declare them`);
      }
      for (const m of modules) files.push(...this.o.index.closureOf(m));
    }
    for (const a of run.assignments) {
      const name = a.slice(0, a.indexOf('='));
      if (!makefile.referenced.has(name)) this.problem(t.name, `make ${run.targets.join(' ')} ${a}: the Makefile never uses $(${name}), so the assignment does nothing; drop it`);
    }
    return files;
  }

  /**
   * A storage step's copies: an input placed into storage must be a dependency's output; a
   * result collected from storage must be a file the step's scripts write there.
   */
  private copy(t: Target, run: Extract<Invocation, { kind: 'copy' }>, written: PyFile[]): void {
    for (const from of run.from) {
      if (from.startsWith('{run}/')) {
        const output = from.slice('{run}/'.length);
        const known = t.deps.map((d) => this.outputsOf(d));
        if (known.some((outs) => outs === null || outs.includes(output))) continue;
        this.problem(t.name, `copies ${output} into ${run.to}, but none of its deps (${t.deps.join(', ') || 'none'}) declares that output; add the target that builds it to deps`);
        continue;
      }
      if (!run.to.startsWith('{run}/') || from.startsWith('/') || from.startsWith('{')) continue;
      const { storageDir, projectDir } = this.o;
      if (!from.startsWith(`${storageDir}/`) && existsSync(join(projectDir, storageDir)) && !existsSync(join(projectDir, posix.dirname(from)))) {
        this.problem(t.name, `collects ${from}, but the scripts write under ${storageDir}/ (STORAGE_FOLDER); collect ${storageDir}/${from.replace(/^(\.\/)?storage\//, '')} (tasks/storage.ts storageStep)`);
        continue;
      }
      const base = posix.basename(from);
      if (written.length > 0 && !this.named(written, base)) {
        this.problem(t.name, `collects ${from}, but no file the step runs names ${base}, so it cannot write it; check the file name`);
      }
    }
  }

  /** Whether any of `files` has a string literal naming `base` (an f-string's fields match anything). */
  private named(files: PyFile[], base: string): boolean {
    for (const f of files) {
      for (const text of this.o.index.facts(f)?.fileNames ?? []) {
        if (text === base || text.endsWith(`/${base}`)) return true;
        if (text.includes('\0') && fieldPattern(text).test(base)) return true;
      }
    }
    return false;
  }

  /** Each declared output is one the command can write (see the module note). */
  private outputs(t: Target, argv: string[], runs: Invocation[]): void {
    if (t.environment || adaptersNamed(argv).length > 0) return;
    const text = argv.join('\n');
    for (const output of t.outputs) {
      if (text.includes(`{run}/${output}`)) continue;
      const dirs = output.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'));
      if (dirs.some((d) => argv.some((a) => a === `{run}/${d}` || a === `{run}/${d}/`))) continue;
      if (runs.some((r) => r.kind === 'copy' && (r.to === `{run}/${output}` || dirs.some((d) => r.to === `{run}/${d}/` || r.to === `{run}/${d}`)))) continue;
      this.problem(t.name, `declares output ${output}, but its command names neither {run}/${output} nor a directory holding it, and collects nothing there; make the command write it`);
    }
  }

  /** A chain of targets that mirrors a Makefile rule runs the recipe's modules, in order, with the same flags. */
  private mirror(mirror: MakefileMirror): void {
    const label = `make ${mirror.makeTarget} mirror`;
    const makefile = this.readMakefile();
    const rule = makefile?.rules.get(mirror.makeTarget);
    if (!rule) {
      this.problem(mirror.targets[0] ?? label, `the chain ${mirror.targets.join(', ')} mirrors make ${mirror.makeTarget}, but the Makefile has no target ${mirror.makeTarget} at ${this.o.sha}; fix the mirror`);
      return;
    }
    const recipe = recipeModules(rule.recipe);
    const chain: { name: string; module: string | null; args: string[] }[] = mirror.targets.map((name) => {
      const node = this.o.graph.nodes.get(name);
      const run = node?.kind === 'target' ? invocations(node.target.command(this.o.vars)).find((r) => r.kind === 'python-module') : undefined;
      return { name, module: run?.kind === 'python-module' ? run.module : null, args: run?.kind === 'python-module' ? run.args : [] };
    });
    const n = Math.max(recipe.length, chain.length);
    for (let i = 0; i < n; i++) {
      const want = recipe[i];
      const have = chain[i];
      if (!have) {
        this.problem(mirror.targets[mirror.targets.length - 1] ?? label, `the chain mirroring make ${mirror.makeTarget} ends after ${chain.length} targets, but Makefile:${want!.line} then runs ${want!.module}; add a target for it`);
        return;
      }
      if (!want) {
        this.problem(have.name, `is target ${i + 1} of the chain mirroring make ${mirror.makeTarget}, but the recipe (Makefile:${rule.line}) runs only ${recipe.length} modules; remove it from the chain`);
        return;
      }
      if (have.module !== want.module) {
        this.problem(have.name, `is target ${i + 1} of the chain mirroring make ${mirror.makeTarget} and runs ${have.module ?? 'no python -m module'}, but Makefile:${want.line} runs ${want.module} there; keep the Makefile's modules in its order`);
        return;
      }
      const flagsOf = (args: string[]) => args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!).sort().join(' ');
      if (flagsOf(have.args) !== flagsOf(want.args)) {
        this.problem(have.name, `runs ${want.module} with flags [${flagsOf(have.args)}], but Makefile:${want.line} passes [${flagsOf(want.args)}]; pass the recipe's flags`);
      }
    }
  }

  /** Declared outputs of a dependency; null for a fan-out (its children's outputs are not known statically). */
  private outputsOf(dep: string): string[] | null {
    const node = this.o.graph.nodes.get(dep);
    return node?.kind === 'target' ? node.target.outputs : null;
  }

  private readMakefile(): Makefile | null {
    if (this.makefile !== undefined) return this.makefile;
    const file = join(this.o.projectDir, 'Makefile');
    this.makefile = existsSync(file) ? readMakefile(readFileSync(file, 'utf8')) : null;
    return this.makefile;
  }

  /** For a module that is not there: a module of the same name elsewhere (it moved), or a near name. */
  private movedHint(dotted: string): string | undefined {
    const last = dotted.slice(dotted.lastIndexOf('.') + 1);
    const modules = this.o.index.moduleNames();
    const moved = modules.filter((m) => m.endsWith(`.${last}`) || m === last);
    if (moved.length) return `did it move to ${moved.slice(0, 3).join(' or ')}?`;
    return didYouMean(dotted, modules);
  }

  /** A tree path with the same name as a missing one (`calibration/target_config.yaml` -> `policyengine_us_data/...`). */
  private sameName(path: string): string | undefined {
    this.treeFiles ??= listFiles(this.o.projectDir);
    const base = posix.basename(path.replace(/\/$/, ''));
    const same = this.treeFiles.filter((f) => posix.basename(f) === base);
    if (same.length) return same.slice(0, 3).join(' or ');
    // Renamed in place: a near name in the same directory.
    const dir = posix.dirname(path.replace(/\/$/, ''));
    const siblings = this.treeFiles.filter((f) => posix.dirname(f) === dir).map((f) => posix.basename(f));
    const near = nearestNames(base, siblings).map((n) => posix.join(dir, n));
    return near.length ? near.join(' or ') : undefined;
  }
}

/** A relative path with a directory part (`a/b.yaml`, `tests/unit/`): not a placeholder, flag, URL, number or JSON. */
function looksLikeTreePath(s: string): boolean {
  return !s.startsWith('{') && !s.startsWith('/') && !s.startsWith('-') && !s.includes('://') && /^[\w.@+-]+(\/[\w.@+-]*)+$/.test(s);
}

/**
 * An f-string's pattern (`\0` per field) as a regular expression on a basename; one with fewer
 * than two literal characters before its extension (`f"{name}.h5"`) names nothing in particular.
 */
function fieldPattern(text: string): RegExp {
  const base = text.slice(text.lastIndexOf('/') + 1);
  if (base.replace(/\.[^.]*$/, '').replaceAll('\0', '').length < 2) return /(?!)/;
  return new RegExp(`^${base.split('\0').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Every path under `dir` (files and directories), relative. */
function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => !p.startsWith('.git/'));
  } catch {
    return [];
  }
}
