import type { CallState } from './protocol.ts';
import { TransportError, type ModalTransport } from './transport.ts';

/**
 * Waits on many calls with one poller: every pending call id goes into the same `wait` (one
 * Python process long-polling all of them on real Modal), so 50 area batches cost one process,
 * not 50. Each id resolves once, to a final state (done, failed or unknown). A transport that
 * keeps failing (network gone while a laptop sleeps...) is retried with backoff before the
 * pending calls are given up, as failures the next run can reattach to.
 */
export class CallWaiter {
  private readonly transport: ModalTransport;
  private readonly pollSeconds: number;
  private readonly pending = new Map<string, { promise: Promise<CallState>; resolve: (s: CallState) => void }>();
  private running = false;

  constructor(transport: ModalTransport, pollSeconds: number) {
    this.transport = transport;
    this.pollSeconds = pollSeconds;
  }

  wait(callId: string): Promise<CallState> {
    let entry = this.pending.get(callId);
    if (!entry) {
      let resolve!: (s: CallState) => void;
      const promise = new Promise<CallState>((r) => (resolve = r));
      entry = { promise, resolve };
      this.pending.set(callId, entry);
      if (!this.running) void this.loop();
    }
    return entry.promise;
  }

  private async loop(): Promise<void> {
    this.running = true;
    let failures = 0;
    try {
      while (this.pending.size > 0) {
        let states: Record<string, CallState>;
        try {
          states = await this.transport.wait([...this.pending.keys()], this.pollSeconds);
          failures = 0;
        } catch (error) {
          if (++failures > 5) {
            const reason = error instanceof TransportError ? error.reason : 'modal-unreachable';
            for (const [id, entry] of this.pending) {
              entry.resolve({ state: 'failed', reason, message: `lost contact with call ${id} (${(error as Error).message}); it may still be running: rerun to reattach` });
            }
            this.pending.clear();
            return;
          }
          await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** failures)));
          continue;
        }
        for (const [id, state] of Object.entries(states)) {
          if (state.state === 'running') continue;
          this.pending.get(id)?.resolve(state);
          this.pending.delete(id);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
