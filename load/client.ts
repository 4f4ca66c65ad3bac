import { Agent, request } from 'node:http';

/** One answered request: its status (0 when the request failed without one), its body and its time. */
export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/** A request the load tool sends: always to a loopback origin, with a JSON body for commands. */
export interface Call {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly body?: object;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Hosts the load tool will talk to: it loads this machine only. */
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Throws unless `base` is an http URL on the loopback interface. */
export function assertLoopback(base: string): void {
  const url = new URL(base);
  if (url.protocol !== 'http:' || !LOOPBACK.has(url.hostname)) {
    throw new Error(`${base}: the load tool only talks to http://127.0.0.1 (or localhost)`);
  }
}

/**
 * A keep-alive HTTP client with at most `connections` sockets per origin. Plain
 * `node:http` keeps the load generator's own cost visible and the same for every target.
 */
export function httpClient(connections: number, timeoutMs = 10_000) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const send = (call: Call): Promise<Answer> =>
    new Promise((resolve) => {
      const started = performance.now();
      const body = call.body === undefined ? undefined : JSON.stringify(call.body);
      const headers: Record<string, string> = { ...call.headers };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
      }
      const req = request(call.url, { method: call.method, agent, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
        res.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - started }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - started }));
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** The load tool's HTTP client. */
export type HttpClient = ReturnType<typeof httpClient>;

/** The JSON object in a body, or an empty object when it is not one. */
export function json(body: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
