import { spawn } from 'node:child_process';
import { cliEnv, type Settings } from './settings.ts';

/**
 * Node 20 reads NODE_EXTRA_CA_CERTS once, at start-up, and that costs ~80 ms on this machine, a
 * third of a no-op build. build.ts therefore moves it to BUILD_EXTRA_CA_CERTS; a command that
 * will open TLS connections (publishing, Modal) re-executes the CLI with it restored.
 * Returns the child's exit code, or null when no re-exec is needed.
 */
export async function withExtraCaCerts(args: string[], settings: Pick<Settings, 'caCerts' | 'env'>): Promise<number | null> {
  const { stashed, active } = settings.caCerts;
  if (!stashed || active) return null;
  const env = cliEnv(settings.env, { NODE_EXTRA_CA_CERTS: stashed, BUILD_EXTRA_CA_CERTS: undefined });
  const child = spawn(process.execPath, [process.argv[1]!, ...args], { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}
