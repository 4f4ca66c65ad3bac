import { request } from 'node:http';

/** A failure the CLI reports in one line and exits 1 for: unreachable, refused, timed out, or an error reply. */
export class CliError extends Error {}

/** A small client of the admin API for the CLI: JSON in and out, the bearer token, one-line errors. */
export interface AdminClient {
  readonly base: string;
  get<T = Record<string, unknown>>(path: string): Promise<T>;
  send<T = Record<string, unknown>>(method: 'POST' | 'DELETE', path: string, body?: object): Promise<T>;
  /** A POST that may run for minutes (verify): no deadline but `timeoutMs`, if given. */
  longPost<T>(path: string, body: object): Promise<T>;
}

type Body = { error?: unknown; message?: unknown };

/**
 * `timeoutMs`: how long one request may wait for its answer (10 s when not given, except
 * `longPost`, which then waits as long as it takes).
 */
export function adminClient(base: string, token: string | undefined, timeoutMs?: number): AdminClient {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const unreachable = (err: unknown) => {
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const why = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    return new CliError(`the admin API at ${base} is not reachable (is converge running?): ${String(why)}`);
  };
  const refused = (method: string, path: string, status: number, body: Body) =>
    status === 401
      ? new CliError(`the admin API at ${base} refused the token (401 unauthorized): pass one of http.tokens with --token`)
      : new CliError(`${method} ${path} answered ${status} ${String(body.error ?? '')}: ${String(body.message ?? '')}`);

  async function call<T>(method: string, path: string, payload?: object): Promise<T> {
    const limit = timeoutMs ?? 10_000;
    const init: RequestInit = {
      method,
      headers: payload ? { ...auth, 'content-type': 'application/json' } : auth,
      signal: AbortSignal.timeout(limit),
      ...(payload ? { body: JSON.stringify(payload) } : {}),
    };
    const res = await fetch(base + path, init).catch((err: unknown) => {
      if ((err as { name?: unknown }).name === 'TimeoutError') throw new CliError(`${method} ${path} got no answer within ${limit / 1000} s`);
      throw unreachable(err);
    });
    const body = (await res.json().catch(() => ({}))) as T & Body;
    if (!res.ok) throw refused(method, path, res.status, body);
    return body;
  }

  return {
    base,
    get: (path) => call('GET', path),
    send: (method, path, body) => call(method, path, body),
    // Not fetch: it gives up on response headers after 5 minutes, and a verify of a large store takes longer.
    longPost: (path, payload) =>
      new Promise((resolve, reject) => {
        const text = JSON.stringify(payload);
        const headers = { ...auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
        const req = request(base + path, { method: 'POST', headers }, (res) => {
          let got = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (got += chunk));
          res.on('end', () => {
            let parsed: Body;
            try {
              parsed = JSON.parse(got) as Body;
            } catch {
              return reject(new CliError(`POST ${path} answered ${res.statusCode} with a body that is not JSON`));
            }
            if (res.statusCode !== 200) return reject(refused('POST', path, res.statusCode ?? 0, parsed));
            resolve(parsed as never);
          });
        });
        if (timeoutMs !== undefined) {
          req.setTimeout(timeoutMs, () => req.destroy(new CliError(`POST ${path} got no answer within ${timeoutMs / 1000} s`)));
        }
        req.on('error', (err) => reject(err instanceof CliError ? err : unreachable({ cause: err })));
        req.end(text);
      }),
  };
}
