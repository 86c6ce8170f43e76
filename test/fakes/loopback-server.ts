import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deferredResponse, FaultInjector, readBody } from './fault-injector.ts';

/**
 * An HTTP server on 127.0.0.1 and a free port, the common base of the protocol stand-ins
 * (fake-hf-hub.ts, fake-gcs.ts): start, close, the base URL clients are pointed at, and the
 * fault injection and request log every request goes through before the service's own routes.
 */
export abstract class LoopbackServer {
  #server: Server | undefined;
  #url = '';

  /** Base URL of the running server (e.g. `hubUrl` or a GCS `apiEndpoint`). */
  get url(): string {
    return this.#url;
  }

  /** Faults to inject, and the log of every request (tests assert on both). */
  readonly faults = new FaultInjector();

  /** Answers one request with the service's protocol. */
  protected abstract route(req: IncomingMessage, res: ServerResponse, body: Buffer): void | Promise<void>;

  /** Writes an error in the service's format: an injected fault, or a bug in the stand-in. */
  protected abstract writeError(req: IncomingMessage, res: ServerResponse, status: number, message: string, cause: 'fault' | 'bug', headers?: Record<string, string>): void;

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const decision = await this.faults.decide(req);
    const url = req.url ?? '/';
    if (decision.kind === 'drop') {
      this.faults.log.push({ method: req.method ?? '', url, status: 0, bytesIn: 0, faulted: true });
      req.socket.destroy();
      return;
    }
    if (decision.kind === 'fail') {
      const body = await readBody(req);
      this.faults.log.push({ method: req.method ?? '', url, status: decision.status, bytesIn: body.length, faulted: true });
      this.writeError(req, res, decision.status, `injected fault: HTTP ${decision.status}`, 'fault', decision.headers);
      return;
    }
    const deferred = deferredResponse(res, decision);
    let bytesIn = 0;
    try {
      const body = await readBody(req);
      bytesIn = body.length;
      await this.route(req, res, body);
    } catch (error) {
      if (!res.headersSent) this.writeError(req, res, 500, `stand-in bug: ${(error as Error).message}`, 'bug');
    }
    this.faults.log.push({ method: req.method ?? '', url, status: res.statusCode, bytesIn, faulted: decision.kind !== 'serve' });
    await deferred.release();
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      void this.dispatch(req, res);
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}
