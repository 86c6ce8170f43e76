import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StandinTransport } from './standin.ts';
import { ModalCliTransport, type ModalTransport } from './transport.ts';

/**
 * Where the Modal pieces are and which transport to use, from the environment:
 *   MODAL_STANDIN_DIR=<dir>   use the local stand-in with <dir> as its volume and call store
 *   MODAL_STANDIN_FAULT=kill-after-spawn   (tests) the stand-in kills the orchestrator right after a call starts
 *   BUILD_MODAL_APP           deployed app name (default policyengine-us-data-build)
 *   BUILD_MODAL_VOLUME        volume name (default pipeline-artifacts)
 *   BUILD_MODAL_PYTHON        Python with the pinned modal + xxhash
 *                             (default node_modules/.cache/modal-venv/bin/python, made by modal_app/setup.sh)
 */
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

export function modalPython(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BUILD_MODAL_PYTHON) return env.BUILD_MODAL_PYTHON;
  const venv = join(dirname(modalAppDir()), 'node_modules', '.cache', 'modal-venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** The transport the environment asks for. */
export function transportFromEnv(env: NodeJS.ProcessEnv = process.env): ModalTransport {
  const volume = env.BUILD_MODAL_VOLUME || DEFAULT_VOLUME;
  const appDir = modalAppDir();
  if (env.MODAL_STANDIN_DIR) {
    const fault = env.MODAL_STANDIN_FAULT === 'kill-after-spawn' ? ('kill-after-spawn' as const) : undefined;
    return new StandinTransport({ dir: resolve(env.MODAL_STANDIN_DIR), python: modalPython(env), appDir, volume, ...(fault && { fault }) });
  }
  return new ModalCliTransport({ python: modalPython(env), appDir, app: env.BUILD_MODAL_APP || DEFAULT_APP, volume });
}

/** The transport an output record names (`remote` is a transport id): what `fetch` downloads through. */
export function transportForRecord(remote: string, env: NodeJS.ProcessEnv = process.env): ModalTransport | null {
  const appDir = modalAppDir();
  if (remote.startsWith('standin:')) return new StandinTransport({ dir: remote.slice('standin:'.length), python: modalPython(env), appDir, volume: env.BUILD_MODAL_VOLUME || DEFAULT_VOLUME });
  if (remote.startsWith('modal:')) return new ModalCliTransport({ python: modalPython(env), appDir, app: env.BUILD_MODAL_APP || DEFAULT_APP, volume: remote.slice('modal:'.length) });
  return null;
}
