import { Agent, request } from 'node:http';
import { assertLoopback } from '../load/client.js';

/** What one HTTP request came to: a status, or a connection-level failure (`status` 0). */
export interface Reply {
  readonly status: number;
  /** The JSON body's `error` code, when it has one. */
  readonly code?: string;
  readonly retryAfter?: string;
  /** The connection-level failure when `status` is 0: ECONNRESET, ECONNREFUSED, timeout, … */
  readonly failure?: string;
  readonly body: string;
  /** When the request was sent (ms since the epoch). */
  readonly sentAt: number;
  readonly ms: number;
}

/** A request the harness makes, always to a loopback origin. */
export interface Call {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly body?: object;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/**
 * A keep-alive client that never throws: every outcome is a `Reply`, so each one can be
 * classified. Each reply is handed to `observe` as well.
 */
export function httpClient(sockets: number, observe: (call: Call, reply: Reply) => void) {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const send = (call: Call, retryStale = true): Promise<Reply> =>
    new Promise((resolve) => {
      assertLoopback(call.url);
      const sentAt = Date.now();
      const started = performance.now();
      const body = call.body === undefined ? undefined : JSON.stringify(call.body);
      const headers: Record<string, string> = { ...call.headers };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
      }
      let done = false;
      const finish = (reply: Omit<Reply, 'sentAt' | 'ms'>) => {
        if (done) return;
        done = true;
        const full = { ...reply, sentAt, ms: performance.now() - started };
        observe(call, full);
        resolve(full);
      };
      const req = request(call.url, { method: call.method, agent, headers, timeout: call.timeoutMs ?? 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const retryAfter = res.headers['retry-after'];
          finish({ status: res.statusCode ?? 0, body: text, ...errorCode(text), ...(retryAfter ? { retryAfter: String(retryAfter) } : {}) });
        });
        res.on('error', (err: NodeJS.ErrnoException) => finish({ status: 0, body: '', failure: `${err.code ?? err.message} during the response` }));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        // The keep-alive race: the server closed an idle socket just as this request went out on
        // it, so the server never saw the request. HTTP clients send it again on a new socket.
        if (retryStale && req.reusedSocket && err.code === 'ECONNRESET' && !done) {
          done = true;
          return void send(call, false).then(resolve);
        }
        // Which socket it was tells a server's reset from the client's own race in the report.
        const socket = req.reusedSocket ? (retryStale ? 'a reused socket' : 'a new socket after a resend') : 'a new socket';
        finish({ status: 0, body: '', failure: err.code === 'ECONNRESET' ? `ECONNRESET on ${socket}` : (err.code ?? err.message) });
      });
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** The harness's HTTP client. */
export type HttpClient = ReturnType<typeof httpClient>;

function errorCode(text: string): { code?: string } {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && 'error' in parsed && typeof parsed.error === 'string') return { code: parsed.error };
  } catch {
    // not JSON: no code
  }
  return {};
}

/** Parses a JSON body, or undefined. */
export function json<T>(reply: Reply): T | undefined {
  try {
    return JSON.parse(reply.body) as T;
  } catch {
    return undefined;
  }
}
