import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSurface } from '../src/python/cli-surface.ts';
import { moduleFacts } from '../src/python/module-facts.ts';
import { logicalLines } from '../src/python/tokenizer.ts';
import { loadPythonIndex, type PythonIndex } from '../src/python/python-index.ts';
import { scratchDirs } from './helpers.ts';

/** The static Python reader (src/python/) on small snippets: real files in a temp project. */
const scratch = scratchDirs('python-reader');

function project(files: Record<string, string>, adapters: Record<string, string> = {}): { index: PythonIndex; dir: string; memo: string } {
  const dir = scratch();
  const write = (root: string, rel: string, text: string) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  for (const [rel, text] of Object.entries(files)) write(join(dir, 'tree'), rel, text);
  for (const [rel, text] of Object.entries(adapters)) write(join(dir, 'adapters'), rel, text);
  const memo = join(dir, 'memo.json');
  return { index: loadPythonIndex({ projectDir: join(dir, 'tree'), memoFile: memo, adaptersDir: join(dir, 'adapters') }).index, dir, memo };
}

const paths = (index: PythonIndex, entry: string) => index.closureOf(entry).map((f) => (f.root === 'tree' ? f.path : `{adapters}/${f.path}`));

describe('imports', () => {
  it('resolves relative imports, `from . import x` submodules and parent packages', () => {
    const { index } = project({
      'pkg/__init__.py': '',
      'pkg/sub/__init__.py': 'from . import helper\n',
      'pkg/sub/helper.py': 'from ..top import thing\nfrom .deep import leaf\n',
      'pkg/sub/deep/__init__.py': '',
      'pkg/sub/deep/leaf.py': 'x = 1\n',
      'pkg/top.py': 'thing = 1\n',
      'pkg/unused.py': '',
      'main.py': 'import pkg.sub.helper\n',
    });
    expect(paths(index, 'main.py')).toEqual([
      'main.py', 'pkg/__init__.py', 'pkg/sub/__init__.py', 'pkg/sub/deep/__init__.py', 'pkg/sub/deep/leaf.py', 'pkg/sub/helper.py', 'pkg/top.py',
    ]);
  });

  it('counts imports in functions, if and try blocks, ignores strings and comments, and drops third-party modules', () => {
    const { index } = project({
      'app/__init__.py': '',
      'app/run.py': [
        '"""Docstring: import app.in_docstring',
        'from app import in_docstring_too"""',
        'import os, numpy as np',
        '# import app.in_comment',
        "s = f\"{'#'} {x['k']!r:>{width}} import app.in_fstring\"",
        't = f"{d["nested"]}"  # 3.12 nested quotes',
        'try:',
        '    from app.optional import thing',
        'except ImportError:',
        '    pass',
        'if TYPE_CHECKING:',
        '    import app.typing_only',
        'def main():',
        '    from app.lazy import (a,',
        '        b as c)',
        '    x = 1; import app.after_semicolon',
        "    return r'\\' import app.raw'",
        'if __name__ == "__main__":',
        '    main()',
        '',
      ].join('\n'),
      'app/optional.py': '', 'app/typing_only.py': '', 'app/lazy.py': '', 'app/after_semicolon.py': '',
      'app/in_docstring.py': '', 'app/in_docstring_too.py': '', 'app/in_comment.py': '', 'app/in_fstring.py': '', 'app/raw.py': '',
    });
    expect(paths(index, 'app.run')).toEqual(['app/__init__.py', 'app/after_semicolon.py', 'app/lazy.py', 'app/optional.py', 'app/run.py', 'app/typing_only.py']);
  });

  it('resolves namespace packages (no __init__.py) and a package run with -m through its __main__.py', () => {
    const { index } = project({
      'ns/inner/mod.py': 'from ns.inner import other\n',
      'ns/inner/other.py': '',
      'tool/__init__.py': '',
      'tool/__main__.py': 'from tool import cli\n',
      'tool/cli.py': '',
      'lib/__init__.py': '',
    });
    expect(paths(index, 'ns.inner.mod')).toEqual(['ns/inner/mod.py', 'ns/inner/other.py']);
    expect(index.moduleEntry('tool')).toEqual({ run: 'tool/__main__.py', imported: ['tool/__init__.py'] });
    expect(paths(index, 'tool')).toEqual(['tool/__init__.py', 'tool/__main__.py', 'tool/cli.py']);
    expect(index.moduleEntry('lib')).toEqual({ run: null, imported: ['lib/__init__.py'] });
    expect(index.moduleEntry('missing.module')).toBeNull();
  });

  it("follows a package's lazy __getattr__ exports (utils/__init__.py) for a name that is no submodule", () => {
    const { index } = project({
      'pkg/__init__.py': '',
      'pkg/utils/__init__.py': [
        'from importlib import import_module',
        '_LAZY_MODULES = ("pkg.utils.loss", "pkg.utils.seed", "numpy.linalg")',
        'def __getattr__(name):',
        '    for m in _LAZY_MODULES:',
        '        module = import_module(m)',
        '        if hasattr(module, name):',
        '            return getattr(module, name)',
        '    raise AttributeError(name)',
        '',
      ].join('\n'),
      'pkg/utils/loss.py': 'def build_loss_matrix():\n    pass\n',
      'pkg/utils/seed.py': '',
      'pkg/utils/plain.py': '',
      'pkg/lazy_user.py': 'from pkg.utils import build_loss_matrix\n',
      'pkg/submodule_user.py': 'from pkg.utils import plain\n',
    });
    expect(paths(index, 'pkg.lazy_user')).toEqual(['pkg/__init__.py', 'pkg/lazy_user.py', 'pkg/utils/__init__.py', 'pkg/utils/loss.py', 'pkg/utils/seed.py']);
    expect(paths(index, 'pkg.submodule_user')).toEqual(['pkg/__init__.py', 'pkg/submodule_user.py', 'pkg/utils/__init__.py', 'pkg/utils/plain.py']);
  });

  it("resolves an adapter's imports in its own directory first, then in the project", () => {
    const { index } = project({ 'pkg/__init__.py': '', 'pkg/api.py': 'from pkg import util\n', 'pkg/util.py': '' }, { 'area_list.py': 'import sys\nimport _shared\nfrom pkg.api import f\n', '_shared.py': '' });
    expect(paths(index, '{adapters}/area_list.py')).toEqual(['pkg/__init__.py', 'pkg/api.py', 'pkg/util.py', '{adapters}/_shared.py', '{adapters}/area_list.py']);
  });
});

describe('the tokenizer', () => {
  it('keeps f-strings whole: nested quotes (3.12), # inside a field, format specs with their own fields', () => {
    const lines = logicalLines(`a = f"{'#'} {x['k']!r:>{width}} {d["n"]}/out_{y}.csv" + 'b.h5'  # comment\nimport z\n`);
    expect(lines.map((l) => l.tokens.map((t) => (t.kind === 'string' ? `${t.fstring ? 'f' : ''}str:${t.fstring ? t.pattern : t.value}` : t.value)))).toEqual([
      ['a', '=', 'fstr:\0 \0 \0/out_\0.csv', '+', 'str:b.h5'],
      ['import', 'z'],
    ]);
  });

  it('joins lines inside brackets and after a backslash, and records each logical line\'s indent', () => {
    const lines = logicalLines('x = (1,\n  2)\ny = 1 + \\\n  2\nif a:\n    b()\n');
    expect(lines.map((l) => [l.indent, l.line, l.tokens.length])).toEqual([[0, 1, 7], [0, 3, 5], [0, 5, 3], [4, 6, 3]]);
  });
});

describe('entry points', () => {
  it('tells a __main__ guard from module-level code from neither', () => {
    expect(moduleFacts('def f():\n    pass\n\nif __name__ == "__main__":\n    f()\n')).toMatchObject({ mainGuard: true, moduleCode: false });
    expect(moduleFacts("if '__main__' == __name__:\n    f()\n").mainGuard).toBe(true);
    expect(moduleFacts('from x import download\n\ndownload(\n    repo="a",\n)\n')).toMatchObject({ mainGuard: false, moduleCode: true });
    expect(moduleFacts('X = compute()\nY: int = 3\n"""doc"""\n@decorator\ndef g():\n    g()\n')).toMatchObject({ mainGuard: false, moduleCode: false });
  });
});

describe('argparse', () => {
  it('reads add_argument calls, mutually exclusive groups and BooleanOptionalAction', () => {
    const { index } = project({
      'cli.py': [
        'import argparse',
        'def main():',
        '    parser = argparse.ArgumentParser()',
        "    parser.add_argument('--year', type=int, help='--not-a-flag')",
        '    group = parser.add_mutually_exclusive_group(required=True)',
        '    group.add_argument("--work-items", "-w")',
        '    group.add_argument(',
        '        "--requests-json",',
        '    )',
        '    parser.add_argument("--validate", action=argparse.BooleanOptionalAction)',
        '    parser.add_argument("path")',
        '    return parser.parse_args()',
        '',
      ].join('\n'),
    });
    const surface = cliSurface(index, { root: 'tree', path: 'cli.py' });
    expect(surface.kind).toBe('argparse');
    if (surface.kind !== 'argparse') return;
    expect([...surface.flags].sort()).toEqual(['--no-validate', '--requests-json', '--validate', '--work-items', '--year', '-w']);
    expect(surface.positionals).toBe(1);
    expect(surface.tolerant).toBe(false);
  });

  it("takes the flags of a shared parser helper the script calls, not of every module it imports", () => {
    const { index } = project({
      'pkg/__init__.py': '',
      'pkg/utils/__init__.py': '',
      'pkg/utils/db.py': [
        'import argparse',
        'def etl_argparser(description, extra_args_fn=None):',
        '    parser = argparse.ArgumentParser(description=description)',
        '    parser.add_argument("--year", type=int)',
        '    if extra_args_fn is not None:',
        '        extra_args_fn(parser)',
        '    return parser.parse_args()',
        '',
      ].join('\n'),
      'pkg/other.py': 'import argparse\ndef other_parser():\n    p = argparse.ArgumentParser()\n    p.add_argument("--other")\n    return p.parse_args()\n',
      'pkg/etl.py': [
        'from pkg.utils.db import etl_argparser',
        'import pkg.other',
        'def main():',
        '    def add_lag(parser):',
        '        parser.add_argument("--lag", type=int)',
        '    args = etl_argparser("ETL", extra_args_fn=add_lag)',
        'if __name__ == "__main__":',
        '    main()',
        '',
      ].join('\n'),
      'pkg/aliased.py': 'from pkg.utils import db as dbu\nimport pkg.utils.db as full\ndbu.etl_argparser("x")\n',
      'pkg/dotted.py': 'import pkg.utils.db\npkg.utils.db.etl_argparser("x")\n',
    });
    const flagsOf = (path: string) => {
      const s = cliSurface(index, { root: 'tree', path });
      return s.kind === 'argparse' ? [...s.flags].sort() : s.kind;
    };
    expect(flagsOf('pkg/etl.py')).toEqual(['--lag', '--year']);
    expect(flagsOf('pkg/aliased.py')).toEqual(['--year']);
    expect(flagsOf('pkg/dotted.py')).toEqual(['--year']);
  });

  it('reports a hand-parsed sys.argv script, parse_known_args, and a script with no parser', () => {
    const { index } = project({
      'by_hand.py': 'import sys\nif __name__ == "__main__":\n    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12000\n',
      'from_sys.py': 'from sys import argv\nprint(argv)\n',
      'known.py': 'import argparse\np = argparse.ArgumentParser()\np.add_argument("--a")\nargs, rest = p.parse_known_args()\n',
      'plain.py': 'print("hi")\n',
    });
    expect(cliSurface(index, { root: 'tree', path: 'by_hand.py' }).kind).toBe('sys-argv');
    expect(cliSurface(index, { root: 'tree', path: 'from_sys.py' }).kind).toBe('sys-argv');
    expect(cliSurface(index, { root: 'tree', path: 'known.py' })).toMatchObject({ kind: 'argparse', tolerant: true });
    expect(cliSurface(index, { root: 'tree', path: 'plain.py' }).kind).toBe('none');
  });
});

describe('the memo', () => {
  it('is written on first use and read instead of the sources afterwards; an outdated one is rebuilt', () => {
    const { dir, memo } = project({ 'a.py': 'import b\n', 'b.py': '' });
    const memoText = readFileSync(memo, 'utf8');
    expect(JSON.parse(memoText).files['a.py'].imports[0].module).toBe('b');
    // A memo is trusted for its tree: a changed source is not re-read (pinned trees never change).
    writeFileSync(join(dir, 'tree', 'a.py'), 'import c\n');
    const again = loadPythonIndex({ projectDir: join(dir, 'tree'), memoFile: memo, adaptersDir: join(dir, 'adapters') });
    expect(again.fromMemo).toBe(true);
    expect(paths(again.index, 'a.py')).toEqual(['a.py', 'b.py']);
    writeFileSync(memo, JSON.stringify({ schema: -1, files: {} }));
    const rebuilt = loadPythonIndex({ projectDir: join(dir, 'tree'), memoFile: memo, adaptersDir: join(dir, 'adapters') });
    expect(rebuilt.fromMemo).toBe(false);
    expect(paths(rebuilt.index, 'a.py')).toEqual(['a.py']);
  });

  it("a new tree takes the facts of unchanged files from the newest other tree's memo, by digest", () => {
    const a = project({ 'a.py': 'import b\n', 'b.py': '', 'c.py': '' });
    // Tree A's memo, marked: its facts for c.py claim an import that c.py does not have.
    const memoA = JSON.parse(readFileSync(a.memo, 'utf8'));
    memoA.files['c.py'].imports.push({ level: 0, module: 'b', names: [], from: false, line: 1 });
    const treesDir = join(a.dir, 'trees');
    mkdirSync(treesDir);
    writeFileSync(join(treesDir, 'A.python-index.json'), JSON.stringify(memoA));
    // Tree B: a.py changed, c.py the same bytes.
    const b = join(a.dir, 'tree-b');
    mkdirSync(b);
    writeFileSync(join(b, 'a.py'), 'x = 1\n');
    writeFileSync(join(b, 'b.py'), '');
    writeFileSync(join(b, 'c.py'), '');
    const { index, fromMemo } = loadPythonIndex({ projectDir: b, memoFile: join(treesDir, 'B.python-index.json'), adaptersDir: join(a.dir, 'adapters') });
    expect(fromMemo).toBe(false);
    expect(paths(index, 'a.py')).toEqual(['a.py']);
    expect(paths(index, 'c.py')).toEqual(['b.py', 'c.py']);
  });
});
