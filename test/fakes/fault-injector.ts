/**
 * Fault injection shared by the fake HF Hub and the fake GCS server: tests schedule "the Nth
 * matching request answers 503", "the next commit hangs for 2 s", "drop the connection", and the
 * fakes consult the plan before serving each request. The fakes also keep a request log, so tests
 * assert on what actually went over the wire (bytes uploaded, commits made, retries).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Which requests a fault applies to. */
export interface RequestMatcher {
  method?: string;
  /** Substring or pattern tested against the request's path + query. */
  url?: string | RegExp;
}

/** One scheduled fault. */
export interface Fault {
  match?: RequestMatcher;
  /** Let this many matching requests through first (default 0: the next one). */
  skip?: number;
  /** How many matching requests (after `skip`) get the fault (default 1). */
  times?: number;
  /** Answer with this status and a JSON error body in the service's format, without serving. */
  status?: number;
  /** Extra response headers sent with `status` (e.g. `Retry-After`). */
  headers?: Record<string, string>;
  /** Wait this long before doing anything else (timeouts). */
  delayMs?: number;
  /** Destroy the socket instead of answering (a dropped connection). */
  drop?: boolean;
  /** Serve the request normally but then delay/drop the response: the write lands, the client never hears. */
  afterServe?: boolean;
}

/** One served request, as the fakes record it. */
export interface LoggedRequest {
  method: string;
  url: string;
  status: number;
  /** Bytes of request body received. */
  bytesIn: number;
  /** Whether a fault answered instead of the service. */
  faulted: boolean;
}

/** What the fault plan decided for one request. */
export type FaultDecision =
  | { kind: 'serve' }
  | { kind: 'fail'; status: number; headers: Record<string, string> }
  | { kind: 'drop' }
  | { kind: 'serve-then-drop' }
  | { kind: 'serve-then-delay'; delayMs: number };

interface ActiveFault extends Fault {
  seen: number;
  fired: number;
}

/** The plan of faults a fake consults for each request. */
export class FaultInjector {
  readonly #faults: ActiveFault[] = [];
  readonly log: LoggedRequest[] = [];

  /** Schedules a fault; faults are checked in the order they were added. */
  add(fault: Fault): void {
    this.#faults.push({ ...fault, seen: 0, fired: 0 });
  }

  /** Removes every scheduled fault (the log is kept). */
  clear(): void {
    this.#faults.length = 0;
  }

  /** Decides what to do with a request, waiting first if a fault asks for a delay before serving. */
  async decide(req: IncomingMessage): Promise<FaultDecision> {
    for (const fault of this.#faults) {
      if (!matches(fault.match, req)) continue;
      fault.seen++;
      if (fault.seen <= (fault.skip ?? 0)) continue;
      if (fault.fired >= (fault.times ?? 1)) continue;
      fault.fired++;
      if (fault.afterServe) {
        if (fault.drop) return { kind: 'serve-then-drop' };
        return { kind: 'serve-then-delay', delayMs: fault.delayMs ?? 0 };
      }
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault.drop) return { kind: 'drop' };
      if (fault.status !== undefined) return { kind: 'fail', status: fault.status, headers: fault.headers ?? {} };
      return { kind: 'serve' };
    }
    return { kind: 'serve' };
  }
}

function matches(matcher: RequestMatcher | undefined, req: IncomingMessage): boolean {
  if (!matcher) return true;
  if (matcher.method && matcher.method !== req.method) return false;
  const url = req.url ?? '';
  if (typeof matcher.url === 'string' && !url.includes(matcher.url)) return false;
  if (matcher.url instanceof RegExp && !matcher.url.test(url)) return false;
  return true;
}

/** Reads a whole request body. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Holds a response so a fault can act after the service has done its work: the handler writes into
 * a buffer, and `release` then sends it, delays it, or drops the socket.
 */
export function deferredResponse(res: ServerResponse, decision: FaultDecision): { release: () => Promise<void> } {
  if (decision.kind !== 'serve-then-drop' && decision.kind !== 'serve-then-delay') return { release: async () => undefined };
  const originalEnd = res.end.bind(res);
  let pending: unknown[] | undefined;
  // Capture the final end() call; headers written before are buffered by node until then.
  (res as unknown as { end: (...args: unknown[]) => ServerResponse }).end = (...args: unknown[]) => {
    pending = args;
    return res;
  };
  return {
    release: async () => {
      if (decision.kind === 'serve-then-drop') {
        res.socket?.destroy();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, decision.delayMs));
      if (!res.socket?.destroyed) (originalEnd as (...args: unknown[]) => void)(...(pending ?? []));
    },
  };
}
