/**
 * Builds a Store from configuration, validated with zod at start-up, so a bad repo id or a missing
 * token fails before any work and says which variable to set and which action needs it.
 *
 * The HF and GCS implementations (and their SDKs) are imported only here, on demand, so commands
 * that never touch a remote store do not load them.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { storeFail, storeOk, type RetryPolicy, type Store, type StoreResult } from './store.ts';

/** Store configuration, as read from the command line / config file (before secrets are resolved). */
export const StoreConfigSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('local'),
    /** Directory holding the store; created on first write. */
    dir: z.string().min(1),
  }),
  z.object({
    kind: z.literal('hf'),
    /** `namespace/name`, e.g. `policyengine/policyengine-us-data`. */
    repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'expected namespace/name'),
    repoType: z.enum(['model', 'dataset', 'space']).default('model'),
    branch: z.string().min(1).default('main'),
    /** Explicit token; normally unset and taken from HF_TOKEN / HUGGING_FACE_TOKEN. */
    token: z.string().optional(),
    /** Hub base URL; a test server in tests. */
    hubUrl: z.url().optional(),
  }),
  z.object({
    kind: z.literal('gcs'),
    /** Bucket name (GCS naming rules). */
    bucket: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a GCS bucket name'),
    /** JSON API endpoint of an emulator or test server; unset for the real service. */
    apiEndpoint: z.url().optional(),
    projectId: z.string().optional(),
  }),
]);

/** Validated store configuration. */
export type StoreConfig = z.infer<typeof StoreConfigSchema>;

/** What the store is opened for: named in messages; `write` decides whether credentials are required. */
export interface StorePurpose {
  /** e.g. "publish diagnostics", "promote run 1.2.3_ab12cd34_20261128_101500". */
  action: string;
  write: boolean;
}

/**
 * The environment variables opening a store reads (the CLI passes the ones it read, cli/settings.ts):
 * credentials and the GCS emulator. Unset means none: no token, real GCS.
 */
export interface StoreEnv {
  HF_TOKEN?: string | undefined;
  HUGGING_FACE_TOKEN?: string | undefined;
  STORAGE_EMULATOR_HOST?: string | undefined;
  GOOGLE_APPLICATION_CREDENTIALS?: string | undefined;
  CLOUDSDK_CONFIG?: string | undefined;
}

/** Knobs that tests and the CLI pass through to every store. */
export interface OpenStoreOptions {
  env?: StoreEnv;
  retry?: RetryPolicy;
  requestTimeoutMs?: number;
}

/** The HF token from config or the environment variables the Hub tooling uses. */
export function hfTokenFrom(config: { token?: string | undefined }, env: StoreEnv): string | undefined {
  return config.token ?? env.HF_TOKEN ?? env.HUGGING_FACE_TOKEN ?? undefined;
}

/** Validates `config` and opens the store it describes, or says precisely what is missing. */
export async function openStore(config: unknown, purpose: StorePurpose, options: OpenStoreOptions = {}): Promise<StoreResult<Store>> {
  const parsed = StoreConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return storeFail('config-invalid', `invalid store configuration for ${purpose.action}: ${issue?.path.join('.') || 'config'}: ${issue?.message ?? 'invalid'}`);
  }
  const env = options.env ?? {};
  const common = {
    ...(options.retry && { retry: options.retry }),
    ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }),
  };
  const cfg = parsed.data;
  switch (cfg.kind) {
    case 'local': {
      const { LocalStore } = await import('./local.ts');
      return storeOk(new LocalStore({ root: cfg.dir }));
    }
    case 'hf': {
      const token = hfTokenFrom(cfg, env);
      if (!token && purpose.write) {
        return storeFail('auth-missing', `${purpose.action} writes to Hugging Face repo ${cfg.repo} and needs a token: set HF_TOKEN (or HUGGING_FACE_TOKEN) to a token with write access`);
      }
      if (token && !token.startsWith('hf_')) {
        // Never echo the value: it may be a real secret pasted into the wrong variable.
        return storeFail('config-invalid', `the Hugging Face token (HF_TOKEN / HUGGING_FACE_TOKEN) does not look like one (it must start with "hf_"); needed for ${purpose.action}`);
      }
      const { HfStore } = await import('./hf.ts');
      return storeOk(
        new HfStore({
          repo: { type: cfg.repoType, name: cfg.repo },
          branch: cfg.branch,
          ...(token && { token }),
          ...(cfg.hubUrl && { hubUrl: cfg.hubUrl }),
          ...common,
        }),
      );
    }
    case 'gcs': {
      const emulator = cfg.apiEndpoint ?? (env.STORAGE_EMULATOR_HOST || undefined);
      if (!emulator && purpose.write && !hasGoogleCredentials(env)) {
        return storeFail('auth-missing', `${purpose.action} writes to gs://${cfg.bucket} and needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or run \`gcloud auth application-default login\`)`);
      }
      const { GcsStore } = await import('./gcs.ts');
      return storeOk(
        new GcsStore({
          bucket: cfg.bucket,
          ...(cfg.apiEndpoint && { apiEndpoint: cfg.apiEndpoint }),
          ...(cfg.projectId && { projectId: cfg.projectId }),
          ...(env.GOOGLE_APPLICATION_CREDENTIALS && !emulator && { keyFilename: env.GOOGLE_APPLICATION_CREDENTIALS }),
          ...common,
        }),
      );
    }
  }
}

/** GOOGLE_APPLICATION_CREDENTIALS, or gcloud's application-default credentials file. */
function hasGoogleCredentials(env: StoreEnv): boolean {
  if (env.GOOGLE_APPLICATION_CREDENTIALS) return existsSync(env.GOOGLE_APPLICATION_CREDENTIALS);
  const configDir = env.CLOUDSDK_CONFIG ?? join(homedir(), '.config', 'gcloud');
  return existsSync(join(configDir, 'application_default_credentials.json'));
}
