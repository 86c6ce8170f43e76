import { resolve, join } from 'node:path';
import { UsageError } from '../report/failures.ts';
import { StoreConfigSchema, hfTokenFrom, openStore, type OpenStoreOptions, type StoreConfig, type StoreEnv } from '../stores/open-store.ts';
import type { Store } from '../stores/store.ts';

/**
 * Which stores a run publishes to, decided once from validated configuration so that a bad repo
 * name or a missing token fails before any work, naming the action that needs it.
 *
 * Two roles, as in the real pipeline (reference §2.3, §5.1):
 * - the **release store** holds diagnostics, run-scoped staging and the production paths, and is
 *   versioned by snapshot: a Hugging Face repo (`HF_REPO=`), else a local directory (`STORE_DIR=`,
 *   default `<cache>/store`) so the whole flow works on a laptop with no account;
 * - the **GCS mirror** (`GCS_BUCKET=`, optional) receives the production files with
 *   `ifGenerationMatch` and holds the authoritative registry, because the real producers read the
 *   registry from GCS. Without a bucket the release store holds the registry.
 *
 * Values come from `VAR=value` (already validated by tasks/variables.ts) or the environment
 * variable of the same name; tokens come only from the environment (HF_TOKEN / HUGGING_FACE_TOKEN,
 * GOOGLE_APPLICATION_CREDENTIALS), never from variables, so they never reach meta.json. Test
 * servers are named by HF_ENDPOINT and GCS_ENDPOINT (the HF SDK ignores HF_ENDPOINT, so it is
 * passed as `hubUrl`; see gcsEndpoint for STORAGE_EMULATOR_HOST).
 */
export interface PublishConfig {
  /** The release store (HF's role). */
  release: StoreConfig & { kind: 'hf' | 'local' };
  /** The GCS mirror of production, if a bucket is configured. */
  gcs?: StoreConfig & { kind: 'gcs' };
}

/**
 * The environment variables publishing reads (the CLI passes the ones it read, cli/settings.ts):
 * defaults of the same-named variables, test endpoints, and the stores' credentials.
 */
export interface PublishEnv extends StoreEnv {
  HF_REPO?: string | undefined;
  HF_REPO_TYPE?: string | undefined;
  STORE_DIR?: string | undefined;
  GCS_BUCKET?: string | undefined;
  HF_ENDPOINT?: string | undefined;
  GCS_ENDPOINT?: string | undefined;
}

/** The opened stores, by role. */
export interface PublishStores {
  config: PublishConfig;
  release: Store;
  gcs?: Store;
  /** Where `version_manifest.json` is authoritative (written first, with a precondition). */
  registryHome: Store;
  /** The copy consumers read (HF), refreshed from the home after every registry change. */
  registryMirror?: Store;
  /** Every credential in play, to scrub from anything printed or recorded. */
  secrets: string[];
}

/**
 * Reads the publishing configuration from validated variables and the environment. Throws a
 * UsageError (exit 2, before any work) when it cannot work.
 */
export function publishConfig(vars: Readonly<Record<string, string | undefined>>, env: PublishEnv, cacheDir: string): PublishConfig {
  const pick = (name: 'HF_REPO' | 'HF_REPO_TYPE' | 'STORE_DIR' | 'GCS_BUCKET'): string | undefined => vars[name] ?? (env[name] || undefined);
  const hfRepo = pick('HF_REPO');
  const storeDir = pick('STORE_DIR');
  const bucket = pick('GCS_BUCKET');
  if (hfRepo && vars.STORE_DIR) {
    throw new UsageError('publish-config', `HF_REPO=${hfRepo} and STORE_DIR=${vars.STORE_DIR} both name the release store; pass one of them`);
  }
  const release = hfRepo
    ? { kind: 'hf' as const, repo: hfRepo, repoType: pick('HF_REPO_TYPE') ?? 'model', ...(env.HF_ENDPOINT && { hubUrl: env.HF_ENDPOINT }) }
    : { kind: 'local' as const, dir: resolve(storeDir ?? join(cacheDir, 'store')) };
  const endpoint = gcsEndpoint(env);
  const gcs = bucket ? { kind: 'gcs' as const, bucket, ...(endpoint && { apiEndpoint: endpoint }) } : undefined;
  return { release: validated(release, 'HF_REPO') as PublishConfig['release'], ...(gcs && { gcs: validated(gcs, 'GCS_BUCKET') as PublishConfig['gcs'] }) };
}

function validated(config: unknown, variable: string): StoreConfig {
  const parsed = StoreConfigSchema.safeParse(config);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new UsageError('publish-config', `${variable} (or its endpoint) is invalid: ${issue?.path.join('.') || 'config'}: ${issue?.message ?? 'invalid'}`);
}

/**
 * The GCS JSON API endpoint of a test server or emulator: GCS_ENDPOINT (a base URL such as
 * `http://127.0.0.1:9023`). STORAGE_EMULATOR_HOST is read by @google-cloud/storage itself, which
 * then sends JSON API requests to it *as given* (7.22.0, storage.js): unless it ends in
 * `/storage/v1`, every metadata read silently 404s and looks like a missing object, so such a value
 * is refused rather than trusted.
 */
function gcsEndpoint(env: PublishEnv): string | undefined {
  const sdkHost = env.STORAGE_EMULATOR_HOST;
  if (sdkHost) {
    const match = /^(https?:\/\/[^/]+)\/storage\/v1\/?$/.exec(sdkHost);
    if (!match) {
      throw new UsageError('publish-config', `STORAGE_EMULATOR_HOST=${sdkHost} would send GCS requests to the wrong paths (the SDK expects it to end in /storage/v1); unset it and pass GCS_ENDPOINT=<base URL> instead`);
    }
    return env.GCS_ENDPOINT || match[1];
  }
  return env.GCS_ENDPOINT || undefined;
}

/**
 * Opens every configured store for `action`. With `write`, a missing or malformed credential is a
 * UsageError naming the action and the variable to set, raised before anything is read or written.
 */
export async function openPublishStores(
  config: PublishConfig,
  purpose: { action: string; write: boolean },
  options: Omit<OpenStoreOptions, 'env'> & { env?: PublishEnv } = {},
): Promise<PublishStores> {
  const env = options.env ?? {};
  const open = async (cfg: StoreConfig): Promise<Store> => {
    const opened = await openStore(cfg, purpose, options);
    if (!opened.ok) throw new UsageError(opened.failure.reason, opened.failure.message);
    return opened.value;
  };
  const release = await open(config.release);
  const gcs = config.gcs ? await open(config.gcs) : undefined;
  const token = config.release.kind === 'hf' ? hfTokenFrom(config.release, env) : undefined;
  return {
    config,
    release,
    ...(gcs && { gcs }),
    registryHome: gcs ?? release,
    ...(gcs && { registryMirror: release }),
    secrets: [token, env.HF_TOKEN, env.HUGGING_FACE_TOKEN].filter((s): s is string => Boolean(s)),
  };
}
