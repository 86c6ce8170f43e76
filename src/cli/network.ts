import { spawn } from 'node:child_process';

/**
 * Node 20 reads NODE_EXTRA_CA_CERTS once, at start-up, and that costs ~80 ms on this machine, a
 * third of a no-op build. build.ts therefore moves it to BUILD_EXTRA_CA_CERTS; a command that
 * will open TLS connections (publishing, Modal) re-executes the CLI with it restored.
 * Returns the child's exit code, or null when no re-exec is needed.
 */
export async function withExtraCaCerts(args: string[]): Promise<number | null> {
  const stashed = process.env.BUILD_EXTRA_CA_CERTS;
  if (!stashed || process.env.NODE_EXTRA_CA_CERTS) return null;
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: stashed };
  delete env.BUILD_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [process.argv[1]!, ...args], { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}

/** Child processes (Node-based tools among them) get the certificates back. */
export function restoredCaEnv(): Record<string, string> {
  const stashed = process.env.BUILD_EXTRA_CA_CERTS;
  return stashed ? { NODE_EXTRA_CA_CERTS: stashed } : {};
}
