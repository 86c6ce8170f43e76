import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { UsageError } from './report/failures.ts';
import { exists } from './util/fs-atomic.ts';
import { toolDiskError } from './util/tool-disk-error.ts';

/** A full 40-hex commit id. A run resolves its ref to one of these once, at start. */
export type GitSha = string & { readonly __brand: 'GitSha' };

/**
 * Git access through the `git` binary with execFile: a handful of calls per run, so a process
 * layer (zx) would only add start-up time on the no-op path. `options` go before the command
 * (`--no-replace-objects`, which git passes on to the processes it starts, like its variable).
 */
export function git(repo: string, args: string[], options: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', [...options, '-C', repo, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`git ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** The repository's top-level directory, or a usage error if `repo` is not inside a git work tree. */
export async function repoRoot(repo: string): Promise<string> {
  try {
    await stat(repo);
  } catch {
    throw new UsageError('repo-not-found', `REPO=${repo} does not exist; pass REPO=<path to a git checkout>`);
  }
  try {
    return (await git(repo, ['rev-parse', '--show-toplevel'])).trim();
  } catch {
    throw new UsageError('repo-not-git', `REPO=${repo} is not a git repository; pass REPO=<path to a git checkout>`);
  }
}

export async function currentBranch(repo: string): Promise<string> {
  const name = (await git(repo, ['rev-parse', '--abbrev-ref', 'HEAD']).catch(() => 'HEAD')).trim();
  return name;
}

/** Resolves a branch, tag or commit to a SHA exactly once; later commits on the branch cannot leak in. */
export async function resolveRef(repo: string, ref: string): Promise<GitSha> {
  if (ref.startsWith('-')) throw new UsageError('bad-ref', `BRANCH=${ref} is not a ref; pass a branch, tag or commit`);
  try {
    return (await git(repo, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim() as GitSha;
  } catch {
    throw new UsageError('ref-not-found', `BRANCH=${ref} does not resolve to a commit in ${repo}; pass an existing branch, tag or SHA`);
  }
}

/**
 * The commit to build when the user opted in to uncommitted changes: `git stash create` records
 * tracked modifications as a commit without touching the work tree or the stash list. Returns
 * null when the tree is clean. Untracked files are not included (they are not part of any commit).
 */
export async function dirtySnapshot(repo: string): Promise<GitSha | null> {
  const sha = (await git(repo, ['stash', 'create'])).trim();
  return sha ? (sha as GitSha) : null;
}

/** Paths with uncommitted changes to tracked files, for the refusal message. */
export async function uncommittedPaths(repo: string): Promise<string[]> {
  const out = await git(repo, ['status', '--porcelain', '--untracked-files=no']);
  return out.split('\n').filter(Boolean).map((line) => line.slice(3));
}

/**
 * Materialises the tree at `sha` under `treesDir/<sha>` (once; reused by every run at that SHA).
 * Extracted with `git archive | tar` into a temporary directory and renamed, so a concurrent or
 * interrupted extraction never leaves a half tree behind.
 */
export async function materialiseTree(repo: string, sha: GitSha, treesDir: string): Promise<string> {
  const dest = join(treesDir, sha);
  if (await exists(dest)) return dest;
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const archive = spawn('git', ['-C', repo, 'archive', '--format=tar', sha], { stdio: ['ignore', 'pipe', 'pipe'] });
      const tar = spawn('tar', ['-x', '-C', tmp], { stdio: ['pipe', 'ignore', 'pipe'] });
      archive.stdout.pipe(tar.stdin);
      let stderr = '';
      archive.stderr.on('data', (d) => (stderr += d));
      tar.stderr.on('data', (d) => (stderr += d));
      let pending = 2;
      const done = (code: number | null) => {
        if (code !== 0) reject(toolDiskError(`could not materialise ${sha}`, stderr, treesDir));
        else if (--pending === 0) resolve();
      };
      archive.on('close', done);
      tar.on('close', done);
    });
    await rename(tmp, dest).catch(async (error: NodeJS.ErrnoException) => {
      // Another run materialised the same SHA first: theirs is identical.
      if (error.code === 'ENOTEMPTY' || error.code === 'EEXIST') await rm(tmp, { recursive: true, force: true });
      else throw error;
    });
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return dest;
}

