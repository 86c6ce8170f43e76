import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../report/failures.ts';
import type { ActionSpec, ExecOutcome, Executor } from '../executors/executor.ts';
import { openPublishStores, type PublishConfig, type PublishStores } from './config.ts';
import type { StoreEnv } from '../stores/open-store.ts';
import { releaseManifestPath } from './layout.ts';
import { PIN_VARS, parsePublishedCommand, PUBLISHED_DB_PATH } from './published-input.ts';
import { currentEntry, readRegistry, type VersionEntry } from './registry.ts';
import { parseManifest } from './staging-manifest.ts';
import { asStoreVersion, type Store, type StoreVersion } from '../stores/store.ts';

/**
 * BUILD_DB=0: resolves the current registered version's `policy_data.db` to a pin (the store it
 * is read from, at the commit / generation / local version the registry recorded, plus its sha256
 * from the release manifest at that pin), and performs the `download-published` action the
 * `database` target then declares. See published-input.ts for why it is an action.
 */
export interface PublishedDb {
  /** Variables that make the database target's command (and key) name this pin. */
  vars: Record<string, string>;
  /** The build's local executor, wrapped so it performs the download action in-process. */
  wrap(inner: Executor): Executor;
}

/** Reads the registry (with the credentials in `env`, if any); throws a UsageError (before any work) when there is nothing to take. */
export async function resolvePublishedDb(config: PublishConfig, env: StoreEnv): Promise<PublishedDb> {
  const stores = await openPublishStores(config, { action: 'BUILD_DB=0 (taking policy_data.db from the registered version)', write: false }, { env });
  const read = await readRegistry(stores.registryHome);
  if (!read.ok) throw new UsageError(read.failure.reason, `BUILD_DB=0 cannot read the registry: ${read.failure.message}`);
  const entry = currentEntry(read.value.registry);
  if (!entry) {
    throw new UsageError(
      'no-registered-version',
      `BUILD_DB=0 takes ${PUBLISHED_DB_PATH} from the current registered version, but ${stores.registryHome.location} has none; build the database with BUILD_DB=1, or promote a run first`,
    );
  }
  const pin = pinOf(entry, stores);
  if (!pin) throw new UsageError('not-published-here', `the current version ${entry.version} has no pinned ${PUBLISHED_DB_PATH} in ${stores.release.location}${stores.gcs ? ` or ${stores.gcs.location}` : ''}; build the database with BUILD_DB=1`);
  const sha256 = await releasedSha256(entry, pin.store, stores);
  const vars = { [PIN_VARS.store]: pin.store.location, [PIN_VARS.version]: pin.version, [PIN_VARS.sha256]: sha256 ?? '-', [PIN_VARS.release]: entry.version };
  const byLocation = new Map([stores.release, ...(stores.gcs ? [stores.gcs] : [])].map((s) => [s.location, s]));
  return { vars, wrap: (inner) => new PublishedInputExecutor(inner, byLocation) };
}

/** Where the entry pins a path on the configured stores: the release store first, else GCS. */
function pinFor(entry: VersionEntry, stores: PublishStores, path: string): { store: Store; version: StoreVersion } | null {
  const release = stores.config.release;
  if (release.kind === 'local' && entry.local?.dir === release.dir && entry.local.versions[path] !== undefined) {
    return { store: stores.release, version: asStoreVersion(String(entry.local.versions[path])) };
  }
  if (release.kind === 'hf' && entry.hf?.repo === release.repo) return { store: stores.release, version: asStoreVersion(entry.hf.commit) };
  if (stores.gcs && stores.config.gcs && entry.gcs?.bucket === stores.config.gcs.bucket && entry.gcs.generations[path] !== undefined) {
    return { store: stores.gcs, version: asStoreVersion(String(entry.gcs.generations[path])) };
  }
  return null;
}

const pinOf = (entry: VersionEntry, stores: PublishStores) => pinFor(entry, stores, PUBLISHED_DB_PATH);

/** The database's sha256 from the release manifest at the same pin, if that release has one. */
async function releasedSha256(entry: VersionEntry, store: Store, stores: PublishStores): Promise<string | null> {
  const path = releaseManifestPath(entry.version);
  const pin = pinFor(entry, stores, path);
  if (!pin || pin.store !== store) return null;
  const dir = await mkdtemp(join(tmpdir(), 'published-'));
  try {
    const got = await store.download(path, join(dir, 'manifest.json'), { version: pin.version });
    if (!got.ok) return null;
    const parsed = parseManifest(new Uint8Array(await readFile(join(dir, 'manifest.json'))));
    return parsed.ok ? (parsed.value.files[PUBLISHED_DB_PATH]?.sha256 ?? null) : null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Performs `download-published` actions itself; every other action goes to the wrapped executor. */
export class PublishedInputExecutor implements Executor {
  readonly kind: string;
  readonly concurrency?: number;
  readonly materialise?: Executor['materialise'];
  readonly #inner: Executor;
  readonly #stores: Map<string, Store>;

  constructor(inner: Executor, stores: Map<string, Store>) {
    this.#inner = inner;
    this.kind = inner.kind;
    if (inner.concurrency !== undefined) this.concurrency = inner.concurrency;
    if (inner.materialise) this.materialise = inner.materialise.bind(inner);
    this.#stores = stores;
  }

  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    const download = parsePublishedCommand(spec.argv);
    if (!download) return this.#inner.execute(spec);
    const started = Date.now();
    const log = (line: string) => appendFile(spec.logFile, `${line}\n`).catch(() => undefined);
    const failed = async (message: string): Promise<ExecOutcome> => {
      await log(message);
      return { ok: false, failure: { reason: 'download-failed', message: `${spec.target}: ${message}; full log: ${spec.logFile}`, logTail: message } };
    };
    const store = this.#stores.get(download.store);
    if (!store) return failed(`${download.store} is not a configured store (configured: ${[...this.#stores.keys()].join(', ')})`);
    await log(`downloading ${download.path} of version ${download.release} from ${store.location} at ${download.version}`);
    const got = await store.download(download.path, download.output, { version: asStoreVersion(download.version) });
    if (!got.ok) return failed(`cannot download ${download.path} at ${download.version} from ${store.location}: ${got.failure.message}`);
    if (download.sha256 && got.value.sha256 !== download.sha256) {
      await rm(download.output, { force: true });
      return failed(`${download.path} at ${download.version} has sha256 ${got.value.sha256}, the release manifest says ${download.sha256}`);
    }
    await log(`ok: ${got.value.size} bytes, sha256 ${got.value.sha256}`);
    return { ok: true, durationMs: Date.now() - started };
  }
}
