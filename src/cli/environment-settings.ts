/**
 * Every setting read from the environment, for `./build.ts vars` and the README (a test checks
 * that each name the sources read is listed here). Build variables (`VAR=value`) are tasks/variables.ts.
 */
export const ENVIRONMENT_SETTINGS: readonly { name: string; description: string }[] = [
  { name: 'BUILD_CACHE_DIR', description: 'the cache directory (default: <project>/cache)' },
  { name: 'BUILD_ENVS_DIR', description: 'where Python environments live, shareable between caches (default: <cache>/envs)' },
  { name: 'BUILD_TASKS', description: 'a pipeline declaration module to use instead of tasks/ (tests); disables publishing' },
  { name: 'BUILD_HASH_WORKERS', description: 'threads hashing large files (default: from the CPU count)' },
  { name: 'BUILD_EXTRA_CA_CERTS', description: 'NODE_EXTRA_CA_CERTS as build.ts stashed it, restored only for commands that open TLS connections' },
  { name: 'NODE_EXTRA_CA_CERTS', description: 'extra CA certificates for TLS (HF, GCS, Modal)' },
  { name: 'CI', description: 'set: plain output even on a terminal' },
  { name: 'HF_REPO', description: 'Hugging Face repository to publish to (also a VAR=value)' },
  { name: 'HF_TOKEN', description: 'Hugging Face token (secret: never logged or keyed)' },
  { name: 'HUGGING_FACE_TOKEN', description: 'alternative name of HF_TOKEN' },
  { name: 'HF_ENDPOINT', description: 'Hugging Face API endpoint (default: https://huggingface.co)' },
  { name: 'GCS_BUCKET', description: 'Google Cloud Storage bucket to publish to (also a VAR=value)' },
  { name: 'GCS_ENDPOINT', description: 'Google Cloud Storage endpoint' },
  { name: 'STORAGE_EMULATOR_HOST', description: 'Google Cloud Storage emulator address' },
  { name: 'GOOGLE_APPLICATION_CREDENTIALS', description: 'Google service-account credentials file (secret)' },
  { name: 'CLOUDSDK_CONFIG', description: 'gcloud configuration directory (application-default credentials)' },
  { name: 'BUILD_MODAL_APP', description: 'Modal app name for EXECUTOR=modal' },
  { name: 'BUILD_MODAL_VOLUME', description: 'Modal volume holding remote outputs' },
  { name: 'BUILD_MODAL_PYTHON', description: 'Python interpreter that runs the Modal client' },
  { name: 'BUILD_MODAL_BATCH_QUIET_MS', description: 'how long the Modal executor waits for more actions before sending a batch' },
  { name: 'MODAL_STANDIN_DIR', description: 'run Modal actions in a local stand-in at this directory (tests)' },
  { name: 'MODAL_STANDIN_FAULT', description: 'tests only: kill-after-spawn makes the stand-in kill the orchestrator right after a call starts' },
  { name: 'BUILD_HEARTBEAT_MS', description: "how often a build rewrites its run's heartbeat.json (default 30000); other machines take a run unseen for 5 beats as lost" },
  { name: 'MODAL_TOKEN_ID', description: 'Modal token id (CI; else ~/.modal.toml): with it, status lists the runs on the Modal volume' },
  { name: 'BUILD_RUN_ID', description: 'internal: the run a --detach child builds' },
  { name: 'BUILD_PINNED_SHA', description: 'internal: the SHA a --detach child builds' },
  { name: 'BUILD_PINNED_DIRTY', description: 'internal: whether a --detach child builds a dirty snapshot' },
  { name: 'BUNDLE_MINIFY', description: 'scripts/bundle.mjs: 0 leaves the CLI bundle unminified' },
];
