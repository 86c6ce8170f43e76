import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { recordProcessGroup } from '../caching/action-lock.ts';
import { importModule } from '../util/dynamic-import.ts';

/**
 * A long-lived POSIX shell, started once through zx, that forks the actions it is sent.
 *
 * Why: Node forks its own ~100 MB process for every `spawn`, synchronously on the main thread
 * (~2.5 ms per action here, and zx adds a bash per action on top). A cold build of ~500 short
 * actions spent more time forking than running them. A shell forks a small process in ~0.2 ms,
 * the price make pays, and Node writes one line and reads two per action (bench/PROFILE.md).
 * The launcher is `sh` (dash on Debian): bash reads a script from a pipe one byte per read(2)
 * call, ~800 system calls per action; dash reads it in blocks.
 *
 * Protocol, one action at a time: we write a job line; the shell starts the job in the
 * background, prints `start <id> <pid>`, waits, and prints `exit <id> <status>` (128+n when
 * signal n killed it). The job's stdout and stderr are appended to its log file by the shell.
 * Cancelling kills the job's process tree with zx's `kill`. The launcher runs in its own session,
 * so a terminal's Ctrl-C reaches only the orchestrator, which cancels the jobs it started.
 *
 * Because of that session, a kill of the orchestrator (kill -9 of its process group) would not
 * reach the jobs: they kept running beside the rerun that took their lock over. So the launcher
 * has a watchdog: a background subshell blocked reading fd 3, a pipe whose only writer is this
 * process, which never writes. When this process dies, for whatever reason, the kernel closes the
 * pipe, the read returns, and the watchdog ends the launcher's whole process group (the shell and
 * its jobs; the shell leads it): SIGTERM, then SIGKILL 2 s later. The group is recorded in this
 * process's lock owner files (action-lock.ts), so its locks are taken over only once it is gone.
 */
export class ShellLauncher {
  private readonly child: ChildProcess;
  /** The write end of the watchdog's pipe: held open, never written, for as long as we live. */
  private readonly lifeline: Writable | undefined;
  private readonly waiting = new Map<number, { started: (pid: number) => void; exited: (status: number) => void }>();
  private nextId = 1;
  private dead: string | null = null;
  private stderrTail = '';

  private readonly kill: (pid: number, signal?: NodeJS.Signals) => Promise<void>;

  private constructor(child: ChildProcess, kill: (pid: number, signal?: NodeJS.Signals) => Promise<void>) {
    this.child = child;
    this.kill = kill;
    this.lifeline = child.stdio[3] as Writable | undefined;
    this.lifeline?.on('error', () => {});
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [kind, id, value] = line.split(' ');
      const job = this.waiting.get(Number(id));
      if (!job) return;
      if (kind === 'start') job.started(Number(value));
      else if (kind === 'exit') job.exited(Number(value));
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      this.dead = `the action launcher (sh) exited with ${code ?? signal}${this.stderrTail ? `: ${this.stderrTail.trim().split('\n').pop()}` : ''}`;
      for (const job of this.waiting.values()) job.exited(-1);
      this.lifeline?.destroy();
    });
    child.stdin!.on('error', () => {}); // a dead launcher is reported through 'exit'
    this.idle();
  }

  static async start(env: Record<string, string>): Promise<ShellLauncher> {
    const { $, kill } = await importModule<typeof import('zx/core')>('zx/core');
    // zx's default shell is bash with `set -euo pipefail`: bash started with a socket as stdin
    // sources ~/.bashrc, which would leak into every action's environment. sh reads no rc file.
    const p = $({ env, shell: '/bin/sh', prefix: '', postfix: '', detached: true, quiet: true, nothrow: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] })`exec sh -s`;
    let ended: string | null = null;
    void p.then((out) => (ended = `sh exited at once (${out.exitCode ?? out.signal}): ${out.stderr.trim()}`));
    const child = await new Promise<ChildProcess>((resolve, reject) => {
      const poll = () => (p.child ? resolve(p.child) : ended ? reject(new Error(ended)) : setImmediate(poll));
      poll();
    });
    // The shell leads its own process group (detached: a new session): record it before any job.
    if (child.pid) recordProcessGroup(child.pid);
    child.stdin!.write(WATCHDOG);
    return new ShellLauncher(child, kill);
  }

  /** Why this launcher cannot run anything any more, or null while it is alive. */
  get failure(): string | null {
    return this.dead;
  }

  /**
   * Runs argv in cwd, output appended to logFile; resolves to the exit status (128+n for signal
   * n), or -1 when the launcher itself died (see `failure`).
   */
  async run(argv: string[], cwd: string, logFile: string, signal: AbortSignal): Promise<number> {
    if (this.dead) return -1;
    const id = this.nextId++;
    let pid = 0;
    let exited = false;
    let escalate: NodeJS.Timeout | undefined;
    const cancel = () => {
      if (!pid || exited) return;
      void this.kill(pid, 'SIGTERM').catch(() => {});
      escalate = setTimeout(() => void (exited || this.kill(pid, 'SIGKILL').catch(() => {})), 5000).unref();
    };
    const status = new Promise<number>((resolve) => {
      this.waiting.set(id, {
        started: (p) => {
          pid = p;
          if (signal.aborted) cancel();
        },
        exited: resolve,
      });
    });
    signal.addEventListener('abort', cancel, { once: true });
    this.busy();
    const job = `(cd -- ${shQuote(cwd)} && exec ${argv.map(shQuote).join(' ')}) </dev/null >>${shQuote(logFile)} 2>&1 &\n`;
    this.child.stdin!.write(`${job}echo "start ${id} $!"; wait $!; echo "exit ${id} $?"\n`);
    try {
      return await status;
    } finally {
      exited = true;
      clearTimeout(escalate);
      signal.removeEventListener('abort', cancel);
      this.waiting.delete(id);
      this.idle();
    }
  }

  /** Ends the launcher (it exits after its current job, if any). */
  close(): void {
    this.child.stdin!.end();
  }

  // Keep the event loop alive only while a job runs, so an idle launcher never holds the process.
  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref?: () => void }).ref?.();
  }

  private idle(): void {
    this.child.unref();
    (this.lifeline as unknown as { unref?: () => void } | undefined)?.unref?.();
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
    (this.child.stderr as unknown as { unref?: () => void }).unref?.();
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
  }
}

/**
 * The first lines the launcher reads (see the class comment). `kill 0` signals the caller's own
 * process group; the watchdog ignores the SIGTERM it sends itself. The shell then closes its own
 * copy of fd 3, so jobs do not inherit it, and ends the watchdog when it exits normally (its input
 * closed by `close`; SIGKILL, as it ignores SIGTERM).
 */
const WATCHDOG = `{ trap '' TERM; read _ <&3; kill -TERM 0; sleep 2; kill -KILL 0; } </dev/null >/dev/null 2>&1 &
watchdog=$!
trap 'kill -KILL $watchdog 2>/dev/null' EXIT
exec 3<&-
`;

/** POSIX single-quoting (zx's `quote` emits bash-only `$'...'`, which dash does not read). */
function shQuote(arg: string): string {
  return /^[\w/.,:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
