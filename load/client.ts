import { Pool } from 'undici';

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
 * A keep-alive HTTP client: one undici `Pool` of at most `connections` sockets per origin.
 * undici parses replies with far less CPU than `node:http`, so on a 2-core machine the
 * load generator takes less of the cores it shares with the system under test, and the
 * same client drives every target and every benchmark.
 */
export function httpClient(connections: number, timeoutMs = 10_000) {
  const pools = new Map<string, Pool>();
  const poolOf = (origin: string) => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, { connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 4_000 });
      pools.set(origin, pool);
    }
    return pool;
  };
  const send = async (call: Call): Promise<Answer> => {
    const started = performance.now();
    const url = new URL(call.url);
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const headers: Record<string, string> = body === undefined ? { ...call.headers } : { ...call.headers, 'content-type': 'application/json' };
    try {
      const res = await poolOf(url.origin).request({ method: call.method, path: url.pathname + url.search, headers, body });
      const text = await res.body.text();
      return { status: res.statusCode, body: text, ms: performance.now() - started };
    } catch {
      return { status: 0, body: '', ms: performance.now() - started };
    }
  };
  const close = () => {
    for (const pool of pools.values()) void pool.destroy().catch(() => undefined);
    pools.clear();
  };
  return { send, close };
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
