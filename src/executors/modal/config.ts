import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Environment } from '../../target.ts';
import { StandinTransport } from './standin.ts';
import { ModalCliTransport, type ModalTransport } from './transport.ts';

/** Where the Modal pieces are and which transport to use, as the CLI read them from the environment (cli/settings.ts). */
export interface ModalSettings {
  /** BUILD_MODAL_APP: the deployed app's name (default policyengine-us-data-build). */
  app?: string;
  /** BUILD_MODAL_VOLUME: the volume's name (default pipeline-artifacts). */
  volume?: string;
  /**
   * BUILD_MODAL_PYTHON: a Python with the pinned modal + xxhash (default
   * node_modules/.cache/modal-venv/bin/python, made by modal_app/setup.sh).
   */
  python?: string;
  /** MODAL_STANDIN_DIR: use the local stand-in with this directory as its volume and call store. */
  standinDir?: string;
  /** BUILD_VOLUME_STATE=1 (the coordinator on Modal): this build's cache dir is the volume's shared state. */
  volumeState?: boolean;
  /** BUILD_MODAL_BATCH_QUIET_MS: the batching window's quiet time. */
  batchQuietMs?: number;
  /** MODAL_STANDIN_FAULT=kill-after-spawn (tests only): the stand-in kills the orchestrator right after a call starts. */
  fault?: 'kill-after-spawn';
  /** Whether Modal can be asked at all: the stand-in, or a token (MODAL_TOKEN_ID or ~/.modal.toml). */
  configured?: boolean;
  /** What the Modal client (and the stand-in's containers) run in: the whole environment, with the Modal token. */
  env?: Environment;
}

export const DEFAULT_APP = 'policyengine-us-data-build';
export const DEFAULT_VOLUME = 'pipeline-artifacts';

/** The directory holding modal_app/ (the bundle runs from dist/chunks, the sources from src/executors). */
export function modalAppDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'modal_app', 'runner_core.py'))) return join(dir, 'modal_app');
    dir = dirname(dir);
  }
  throw new Error('modal_app/runner_core.py not found above the build tool');
}

export function modalPython(s: ModalSettings): string {
  if (s.python) return s.python;
  const venv = join(dirname(modalAppDir()), 'node_modules', '.cache', 'modal-venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** The transport the settings ask for. */
export function modalTransport(s: ModalSettings): ModalTransport {
  const volume = s.volume ?? DEFAULT_VOLUME;
  const appDir = modalAppDir();
  const env = s.env ? { env: s.env } : {};
  if (s.standinDir) return new StandinTransport({ dir: resolve(s.standinDir), python: modalPython(s), appDir, volume, ...env, ...(s.fault && { fault: s.fault }) });
  return new ModalCliTransport({ python: modalPython(s), appDir, app: s.app ?? DEFAULT_APP, volume, ...env });
}

/** The transport an output record names (`remote` is a transport id): what `fetch` downloads through. */
export function transportForRecord(remote: string, s: ModalSettings): ModalTransport | null {
  const appDir = modalAppDir();
  const env = s.env ? { env: s.env } : {};
  if (remote.startsWith('standin:')) return new StandinTransport({ dir: remote.slice('standin:'.length), python: modalPython(s), appDir, volume: s.volume ?? DEFAULT_VOLUME, ...env });
  if (remote.startsWith('modal:')) return new ModalCliTransport({ python: modalPython(s), appDir, app: s.app ?? DEFAULT_APP, volume: remote.slice('modal:'.length), ...env });
  return null;
}
