import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP server on 127.0.0.1 and a free port, the common base of the protocol stand-ins
 * (fake-hf-hub.ts, fake-gcs.ts): start, close, and the base URL clients are pointed at.
 */
export abstract class LoopbackServer {
  #server: Server | undefined;
  #url = '';

  /** Base URL of the running server (e.g. `hubUrl` or a GCS `apiEndpoint`). */
  get url(): string {
    return this.#url;
  }

  /** Answers one request; the subclass speaks the service's protocol. */
  protected abstract dispatch(req: IncomingMessage, res: ServerResponse): Promise<void>;

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
