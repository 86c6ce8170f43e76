/**
 * FakeHfHub: a TEST DOUBLE, a stand-in for the real Hugging Face Hub that speaks its HTTP protocol,
 * so `@huggingface/hub` 2.17.5 runs unmodified against it (pass `hubUrl: fake.url`). No Hub
 * emulator exists (npm, Debian, PyPI), and the Hub cannot be reached from CI.
 *
 * Endpoints served, as the SDK calls them (see node_modules/@huggingface/hub/src/lib/*.ts):
 * - POST /api/{t}s/{repo}/preupload/{rev}        -> {files:[{path, uploadMode}]}
 * - POST /{prefix}{repo}.git/info/lfs/objects/batch -> basic transfer; no `actions` if stored
 * - PUT  /__lfs/{repoKey}/{oid}                   (the upload href; body must hash to oid)
 * - POST /api/{t}s/{repo}/commit/{rev}           NDJSON: header{parentCommit}, file, lfsFile,
 *                                                 deletedFile, deletedFolder. A parentCommit that
 *                                                 is not the branch head gets the real Hub's
 *                                                 `412 {"error":"A commit has happened since. Please
 *                                                 refresh and try again."}` (huggingface_hub tests
 *                                                 assert exactly that status and text). An lfsFile
 *                                                 line may name any LFS object already stored in
 *                                                 the repo: that is how huggingface_hub's
 *                                                 CommitOperationCopy copies LFS files without
 *                                                 moving bytes.
 * - GET  /api/{t}s/{repo}/tree/{rev}[/{path}]    ?recursive&expand, paginated by `Link: rel="next"`
 * - POST /api/{t}s/{repo}/paths-info/{rev}       {paths, expand}
 * - GET  /api/{t}s/{repo}/commits/{rev}          ?limit&p, newest first, Link pagination
 * - GET  /{prefix}{repo}/resolve/{rev}/{path}    Range -> 206 + Content-Range; LFS files answer 302
 *                                                 to a CDN-like URL with X-Linked-Size/ETag, as the
 *                                                 Hub does; `X-Repo-Commit`; missing file -> 404 with
 *                                                 `X-Error-Code: EntryNotFound` (RevisionNotFound /
 *                                                 RepoNotFound for those cases)
 * - HEAD/GET /{prefix}{repo}/raw/{rev}/{path}    raw git content (the pointer for LFS files)
 *
 * History is real: every commit is a full snapshot with a 40-hex OID and a parent, so any
 * revision (branch or commit OID) can be listed and read. Not modelled: xet transfers (the batch
 * answers `transfer: "basic"`, which makes the SDK fall back to plain PUTs), multipart LFS, PRs,
 * branches other than the ones created by commits, gitattributes-driven LFS rules (a file is LFS
 * when it is >= `lfsThreshold` bytes or its 512-byte sample contains a NUL byte, close to the Hub's
 * size/binary heuristics).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.ts';

/** A repo designation as the SDK's RepoId. */
export interface FakeRepoId {
  type: 'model' | 'dataset' | 'space';
  name: string;
}

interface StoredFile {
  content: Buffer;
  /** git blob sha1 of what git stores (the content, or the pointer for LFS files). */
  gitOid: string;
  lfs?: { oid: string; size: number; pointerSize: number };
  lastCommit: string;
}

/** One commit: a full snapshot of the tree plus what it changed. */
export interface FakeCommit {
  oid: string;
  parent: string | null;
  title: string;
  description: string;
  date: string;
  files: Map<string, StoredFile>;
  /** Paths added/changed/deleted by this commit, for test assertions. */
  changed: string[];
}

interface Repo {
  id: FakeRepoId;
  commits: Map<string, FakeCommit>;
  branches: Map<string, string>;
  lfs: Map<string, Buffer>;
}

/** Options of {@link FakeHfHub}. */
export interface FakeHfHubOptions {
  /** Tokens accepted with write access; requests with another token get 401. */
  tokens?: string[];
  /** Size from which preupload answers `lfs` (default 1 MiB, small so tests exercise LFS). */
  lfsThreshold?: number;
  /** Page size of tree/commit listings (default 1000, as the Hub's tree API). */
  pageSize?: number;
  /** Misbehave: echo the request's Authorization header in error bodies, to prove clients scrub it. */
  leakAuthInErrors?: boolean;
}

const COMMIT_RACE_MESSAGE = 'A commit has happened since. Please refresh and try again.';

export class FakeHfHub extends LoopbackServer {
  /** Bytes received by LFS uploads (PUT), i.e. large-file bytes that really moved. */
  lfsBytesUploaded = 0;
  /** Bytes received inline in commits (base64-decoded `file` lines). */
  inlineBytesCommitted = 0;
  readonly #repos = new Map<string, Repo>();
  readonly #options: Required<Omit<FakeHfHubOptions, 'tokens'>> & { tokens: Set<string> };
  #counter = 0;

  constructor(options: FakeHfHubOptions = {}) {
    super();
    this.#options = {
      tokens: new Set(options.tokens ?? []),
      lfsThreshold: options.lfsThreshold ?? 1024 * 1024,
      pageSize: options.pageSize ?? 1000,
      leakAuthInErrors: options.leakAuthInErrors ?? false,
    };
  }




  /** Creates a repo with the Hub's initial commit (a `.gitattributes`). */
  createRepo(id: FakeRepoId): void {
    const repo: Repo = { id, commits: new Map(), branches: new Map(), lfs: new Map() };
    this.#repos.set(repoKey(id), repo);
    const attributes = Buffer.from('*.h5 filter=lfs diff=lfs merge=lfs -text\n*.db filter=lfs diff=lfs merge=lfs -text\n');
    this.#makeCommit(repo, 'main', { title: 'initial commit', description: '' }, (files) => {
      files.set('.gitattributes', { content: attributes, gitOid: gitBlobOid(attributes), lastCommit: '' });
      return ['.gitattributes'];
    });
  }

  /** Head commit OID of a branch. */
  head(id: FakeRepoId, branch = 'main'): string {
    return this.#repo(id).branches.get(branch) as string;
  }

  /** Commits of a branch, newest first. */
  history(id: FakeRepoId, branch = 'main'): FakeCommit[] {
    const repo = this.#repo(id);
    const out: FakeCommit[] = [];
    for (let oid: string | null = repo.branches.get(branch) ?? null; oid; ) {
      const commit = repo.commits.get(oid) as FakeCommit;
      out.push(commit);
      oid = commit.parent;
    }
    return out;
  }

  /** Content of a file at a revision, or undefined. */
  fileAt(id: FakeRepoId, revision: string, path: string): Buffer | undefined {
    const repo = this.#repo(id);
    const commit = resolveRevision(repo, revision);
    return commit?.files.get(path)?.content;
  }

  /** Whether a file is stored as LFS at the head of main. */
  isLfs(id: FakeRepoId, path: string): boolean {
    return this.#repo(id).commits.get(this.head(id))?.files.get(path)?.lfs !== undefined;
  }

  #repo(id: FakeRepoId): Repo {
    const repo = this.#repos.get(repoKey(id));
    if (!repo) throw new Error(`fake hub: no repo ${repoKey(id)}`);
    return repo;
  }

  #makeCommit(
    repo: Repo,
    branch: string,
    header: { title: string; description: string },
    apply: (files: Map<string, StoredFile>) => string[],
  ): FakeCommit {
    const parentOid = repo.branches.get(branch) ?? null;
    const parent = parentOid ? (repo.commits.get(parentOid) as FakeCommit) : undefined;
    const files = new Map(parent?.files ?? []);
    const changed = apply(files);
    const oid = createHash('sha1')
      .update(`${parentOid}\n${header.title}\n${++this.#counter}\n${changed.join('\n')}`)
      .digest('hex');
    for (const path of changed) {
      const file = files.get(path);
      if (file) files.set(path, { ...file, lastCommit: oid });
    }
    const commit: FakeCommit = { oid, parent: parentOid, ...header, date: new Date().toISOString(), files, changed };
    repo.commits.set(oid, commit);
    repo.branches.set(branch, oid);
    return commit;
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  protected override writeError(req: IncomingMessage, res: ServerResponse, status: number, message: string, cause: 'fault' | 'bug', headers?: Record<string, string>): void {
    if (cause === 'bug') return this.#error(req, res, status, message);
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: message }));
  }

  protected override async route(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const method = req.method ?? 'GET';

    if (segments[0] === '__lfs') return this.#lfsObject(req, res, segments, body, url);

    if (!this.#authorized(req)) return this.#error(req, res, 401, 'Invalid credentials in Authorization header');

    if (segments[0] === 'api') {
      const type = { models: 'model', datasets: 'dataset', spaces: 'space' }[segments[1] ?? ''] as FakeRepoId['type'] | undefined;
      if (!type) return this.#error(req, res, 404, 'Not found');
      const id: FakeRepoId = { type, name: `${segments[2]}/${segments[3]}` };
      const repo = this.#repos.get(repoKey(id));
      if (!repo) return this.#error(req, res, 404, 'Repository not found', 'RepoNotFound');
      const [action, rev = 'main', ...rest] = segments.slice(4);
      if (action === 'preupload' && method === 'POST') return this.#preupload(res, body);
      if (action === 'commit' && method === 'POST') return this.#commit(req, res, repo, rev, body);
      if (action === 'tree' && method === 'GET') return this.#tree(req, res, repo, rev, rest.join('/'), url);
      if (action === 'paths-info' && method === 'POST') return this.#pathsInfo(req, res, repo, rev, body);
      if (action === 'commits' && method === 'GET') return this.#commits(req, res, repo, rev, url);
      return this.#error(req, res, 404, `fake hub: unsupported ${method} ${url.pathname}`);
    }

    // Git-side URLs: /{prefix}{ns}/{name}/... with prefix datasets/ or spaces/ (none for models).
    const typed = segments[0] === 'datasets' || segments[0] === 'spaces';
    const type: FakeRepoId['type'] = segments[0] === 'datasets' ? 'dataset' : segments[0] === 'spaces' ? 'space' : 'model';
    const [ns, nameMaybeGit, action, ...rest] = typed ? segments.slice(1) : segments;
    if (!ns || !nameMaybeGit) return this.#error(req, res, 404, 'Not found');
    if (nameMaybeGit.endsWith('.git') && action === 'info' && rest.join('/') === 'lfs/objects/batch') {
      const repo = this.#repos.get(repoKey({ type, name: `${ns}/${nameMaybeGit.slice(0, -4)}` }));
      if (!repo) return this.#error(req, res, 404, 'Repository not found', 'RepoNotFound');
      return this.#lfsBatch(res, repo, body);
    }
    const repo = this.#repos.get(repoKey({ type, name: `${ns}/${nameMaybeGit}` }));
    if (!repo) return this.#error(req, res, 404, 'Repository not found', 'RepoNotFound');
    if (action === 'resolve' || action === 'raw') {
      const [rev = 'main', ...pathParts] = rest;
      return this.#resolve(req, res, repo, rev, pathParts.join('/'), action === 'raw');
    }
    return this.#error(req, res, 404, `fake hub: unsupported ${method} ${url.pathname}`);
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    if (this.#options.tokens.size === 0) return true;
    return typeof header === 'string' && header.startsWith('Bearer ') && this.#options.tokens.has(header.slice('Bearer '.length));
  }

  #preupload(res: ServerResponse, body: Buffer): void {
    const request = JSON.parse(body.toString('utf8')) as { files: Array<{ path: string; size: number; sample: string }> };
    const files = request.files.map((file) => {
      const sample = Buffer.from(file.sample, 'base64');
      const lfs = file.size >= this.#options.lfsThreshold || sample.includes(0);
      return { path: file.path, uploadMode: lfs ? 'lfs' : 'regular', shouldIgnore: false };
    });
    json(res, 200, { files, commitOid: undefined });
  }

  #lfsBatch(res: ServerResponse, repo: Repo, body: Buffer): void {
    const request = JSON.parse(body.toString('utf8')) as { operation: string; objects: Array<{ oid: string; size: number }> };
    const objects = request.objects.map((object) =>
      repo.lfs.has(object.oid)
        ? { oid: object.oid, size: object.size, authenticated: true }
        : {
            oid: object.oid,
            size: object.size,
            authenticated: true,
            actions: { upload: { href: `${this.url}/__lfs/${encodeURIComponent(repoKey(repo.id))}/${object.oid}`, expires_in: 3600 } },
          },
    );
    res.writeHead(200, { 'Content-Type': 'application/vnd.git-lfs+json', 'X-Request-Id': randomBytes(8).toString('hex') });
    res.end(JSON.stringify({ transfer: 'basic', objects }));
  }

  /** LFS storage: PUT stores an object (verified against its oid), GET serves it like the CDN. */
  #lfsObject(req: IncomingMessage, res: ServerResponse, segments: string[], body: Buffer, url: URL): void {
    const repo = this.#repos.get(segments[1] ?? '');
    const oid = segments[2] ?? '';
    if (!repo) return this.#error(req, res, 404, 'no such LFS namespace');
    if (req.method === 'PUT') {
      const actual = createHash('sha256').update(body).digest('hex');
      if (actual !== oid) return this.#error(req, res, 400, `LFS object hash mismatch: got ${actual}, expected ${oid}`);
      repo.lfs.set(oid, body);
      this.lfsBytesUploaded += body.length;
      res.writeHead(200, { ETag: `"${oid}"` });
      res.end();
      return;
    }
    const content = repo.lfs.get(oid);
    if (!content) return this.#error(req, res, 404, 'LFS object not found');
    void url;
    sendRange(req, res, content, { ETag: `"${oid}"` });
  }

  #commit(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, body: Buffer): void {
    const lines = body
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { key: string; value: Record<string, unknown> });
    const header = lines.find((line) => line.key === 'header')?.value ?? {};
    const head = repo.branches.get(rev);
    if (!head) return this.#error(req, res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    if (typeof header.parentCommit === 'string' && header.parentCommit !== head) {
      return this.#error(req, res, 412, COMMIT_RACE_MESSAGE);
    }
    // Validate every operation before applying any: a commit is all or nothing.
    const current = repo.commits.get(head) as FakeCommit;
    for (const { key, value } of lines) {
      if (key === 'lfsFile' && !repo.lfs.has(String(value.oid))) {
        return this.#error(req, res, 422, `Your push was rejected because an LFS pointer pointed to a file that does not exist: ${String(value.path)}`);
      }
      if (key === 'deletedFile' && !current.files.has(String(value.path))) {
        return this.#error(req, res, 404, `File not found in repository: ${String(value.path)}`);
      }
    }
    const commit = this.#makeCommit(repo, rev, { title: String(header.summary ?? ''), description: String(header.description ?? '') }, (files) => {
      const changed: string[] = [];
      for (const { key, value } of lines) {
        const path = String(value.path);
        if (key === 'file') {
          const content = Buffer.from(String(value.content), value.encoding === 'base64' ? 'base64' : 'utf8');
          this.inlineBytesCommitted += content.length;
          files.set(path, { content, gitOid: gitBlobOid(content), lastCommit: '' });
          changed.push(path);
        } else if (key === 'lfsFile') {
          const oid = String(value.oid);
          const content = repo.lfs.get(oid) as Buffer;
          const pointer = lfsPointer(oid, content.length);
          files.set(path, { content, gitOid: gitBlobOid(pointer), lfs: { oid, size: content.length, pointerSize: pointer.length }, lastCommit: '' });
          changed.push(path);
        } else if (key === 'deletedFile') {
          files.delete(path);
          changed.push(path);
        } else if (key === 'deletedFolder') {
          for (const existing of [...files.keys()]) {
            if (existing.startsWith(`${path.replace(/\/$/, '')}/`)) {
              files.delete(existing);
              changed.push(existing);
            }
          }
        }
      }
      return changed;
    });
    const prefix = repo.id.type === 'model' ? '' : `${repo.id.type}s/`;
    json(res, 200, { success: true, commitOid: commit.oid, commitUrl: `${this.url}/${prefix}${repo.id.name}/commit/${commit.oid}`, hookOutput: '' });
  }

  #tree(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, path: string, url: URL): void {
    const commit = resolveRevision(repo, rev);
    if (!commit) return this.#error(req, res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    const recursive = url.searchParams.get('recursive') === 'true';
    const expand = url.searchParams.get('expand') === 'true';
    const base = path ? `${path}/` : '';
    const entries = new Map<string, object>();
    for (const [filePath, file] of commit.files) {
      if (!filePath.startsWith(base)) continue;
      const rest = filePath.slice(base.length).split('/');
      // Directories on the way, as the tree API lists them.
      for (let depth = 1; depth < rest.length && (recursive || depth === 1); depth++) {
        const dir = base + rest.slice(0, depth).join('/');
        entries.set(dir, { type: 'directory', oid: createHash('sha1').update(`tree:${commit.oid}:${dir}`).digest('hex'), size: 0, path: dir });
      }
      if (recursive || rest.length === 1) entries.set(filePath, fileEntry(repo, filePath, file, expand));
    }
    if (path && entries.size === 0) return this.#error(req, res, 404, `Entry not found`, 'EntryNotFound');
    const sorted = [...entries.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, entry]) => entry);
    const cursor = Number(url.searchParams.get('cursor') ?? '0');
    const page = sorted.slice(cursor, cursor + this.#options.pageSize);
    const headers: Record<string, string> = {};
    if (cursor + this.#options.pageSize < sorted.length) {
      const next = new URL(url.pathname + url.search, this.url);
      next.searchParams.set('cursor', String(cursor + this.#options.pageSize));
      headers.Link = `<${next.toString()}>; rel="next"`;
    }
    json(res, 200, page, headers);
  }

  #pathsInfo(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, body: Buffer): void {
    const commit = resolveRevision(repo, rev);
    if (!commit) return this.#error(req, res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    const request = JSON.parse(body.toString('utf8')) as { paths: string[]; expand?: boolean };
    const out: object[] = [];
    for (const path of request.paths) {
      const file = commit.files.get(path);
      if (file) out.push(fileEntry(repo, path, file, request.expand ?? false));
      else if ([...commit.files.keys()].some((p) => p.startsWith(`${path}/`))) out.push({ type: 'directory', path, size: 0, oid: createHash('sha1').update(`tree:${path}`).digest('hex') });
    }
    json(res, 200, out);
  }

  #commits(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, url: URL): void {
    const start = resolveRevision(repo, rev);
    if (!start) return this.#error(req, res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    const all: FakeCommit[] = [];
    for (let c: FakeCommit | undefined = start; c; c = c.parent ? repo.commits.get(c.parent) : undefined) all.push(c);
    const limit = Math.max(1, Math.min(Number(url.searchParams.get('limit') ?? '50'), 1000));
    const pageIndex = Number(url.searchParams.get('p') ?? '0');
    const page = all.slice(pageIndex * limit, (pageIndex + 1) * limit);
    const headers: Record<string, string> = {};
    if ((pageIndex + 1) * limit < all.length) {
      const next = new URL(url.pathname + url.search, this.url);
      next.searchParams.set('p', String(pageIndex + 1));
      headers.Link = `<${next.toString()}>; rel="next"`;
    }
    json(
      res,
      200,
      page.map((c) => ({ id: c.oid, title: c.title, message: c.description, date: c.date, authors: [{ user: 'fake-user', avatar: '' }] })),
      headers,
    );
  }

  #resolve(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, path: string, raw: boolean): void {
    const commit = resolveRevision(repo, rev);
    if (!commit) return this.#error(req, res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    const file = commit.files.get(path);
    if (!file) return this.#error(req, res, 404, 'Entry not found', 'EntryNotFound');
    const common = { 'X-Repo-Commit': commit.oid };
    if (file.lfs && !raw) {
      // The Hub redirects LFS downloads to its CDN, announcing size and etag of the target.
      res.writeHead(302, {
        ...common,
        Location: `${this.url}/__lfs/${encodeURIComponent(repoKey(repo.id))}/${file.lfs.oid}`,
        'X-Linked-Size': String(file.lfs.size),
        'X-Linked-ETag': `"${file.lfs.oid}"`,
        ETag: `"${file.gitOid}"`,
      });
      res.end();
      return;
    }
    const content = file.lfs && raw ? lfsPointer(file.lfs.oid, file.lfs.size) : file.content;
    sendRange(req, res, content, { ...common, ETag: `"${file.gitOid}"` });
  }

  #error(req: IncomingMessage, res: ServerResponse, status: number, message: string, errorCode?: string): void {
    const leak = this.#options.leakAuthInErrors && req.headers.authorization ? ` (request had Authorization: ${req.headers.authorization})` : '';
    const headers: Record<string, string> = errorCode ? { 'X-Error-Code': errorCode, 'X-Error-Message': message } : {};
    json(res, status, { error: message + leak }, headers);
  }
}

function fileEntry(repo: Repo, path: string, file: StoredFile, expand: boolean): object {
  const commit = repo.commits.get(file.lastCommit);
  return {
    type: 'file',
    oid: file.gitOid,
    size: file.content.length,
    path,
    ...(file.lfs && { lfs: file.lfs }),
    ...(expand && commit && { lastCommit: { id: commit.oid, title: commit.title, date: commit.date } }),
  };
}

function resolveRevision(repo: Repo, rev: string): FakeCommit | undefined {
  const oid = repo.branches.get(rev) ?? rev;
  return repo.commits.get(oid);
}

/** Serves bytes honouring a single `Range: bytes=a-b` (206 + Content-Range) as the Hub and its CDN do. */
function sendRange(req: IncomingMessage, res: ServerResponse, content: Buffer, headers: Record<string, string>): void {
  const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
  const base = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
  if (range && content.length > 0) {
    const start = range[1] === '' ? Math.max(0, content.length - Number(range[2])) : Number(range[1]);
    const end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), content.length - 1) : content.length - 1;
    if (start >= content.length || start > end) {
      res.writeHead(416, { ...base, 'Content-Range': `bytes */${content.length}` });
      res.end();
      return;
    }
    const slice = content.subarray(start, end + 1);
    res.writeHead(206, { ...base, 'Content-Range': `bytes ${start}-${end}/${content.length}`, 'Content-Length': String(slice.length) });
    res.end(req.method === 'HEAD' ? undefined : slice);
    return;
  }
  res.writeHead(200, { ...base, 'Content-Length': String(content.length) });
  res.end(req.method === 'HEAD' ? undefined : content);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

const repoKey = (id: FakeRepoId): string => `${id.type}s/${id.name}`;

/** git's blob object id: sha1 of `blob {size}\0{content}`. */
export function gitBlobOid(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function lfsPointer(oid: string, size: number): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${size}\n`);
}
