import type { Call, Reply } from './http.js';

/** Which API a request went to. */
export type Api = 'command' | 'query' | 'admin';

/** A span of time in which the harness had killed (or stopped) the processes serving `apis`. */
export interface KillWindow {
  readonly from: number;
  to: number;
  readonly apis: ReadonlySet<Api>;
  readonly fault: string;
}

/** An answer outside the contract, kept as a sample for the report. */
export interface Unexpected {
  readonly atMs: number;
  readonly api: Api;
  readonly request: string;
  readonly answer: string;
}

/**
 * Classifies every answer converge gives the harness. Allowed: 2xx, 4xx with a JSON
 * `error` code, 503 with `Retry-After`, 504 `outcome_unknown`. Anything else is
 * unexpected; those sent or answered within a kill (or freeze) window of a process
 * serving that API are counted apart, since such a process takes its connections with it.
 */
export class AnswerBook {
  readonly allowed = new Map<string, number>();
  readonly unexpected = new Map<string, number>();
  readonly nearKill = new Map<string, number>();
  readonly samples: Unexpected[] = [];
  readonly nearKillSamples: Unexpected[] = [];
  private readonly windows: KillWindow[] = [];

  constructor(
    private readonly startedAt: number,
    private readonly apiOf: (url: string) => Api | undefined,
  ) {}

  /**
   * Opens a kill window of a second, or, when `open`, one that lasts until the caller sets
   * `to` (the harness restarting the whole cluster: nothing listens until it is back).
   */
  openWindow(fault: string, apis: readonly Api[], open = false, at = Date.now()): KillWindow {
    const window: KillWindow = { from: at, to: open ? Infinity : at + 1000, apis: new Set(apis), fault };
    this.windows.push(window);
    return window;
  }

  record(call: Call, reply: Reply): void {
    const api = this.apiOf(call.url);
    if (!api) return;
    const label = allowedLabel(reply);
    if (label) return void bump(this.allowed, label);
    const answer = reply.status === 0 ? `no answer: ${reply.failure ?? 'unknown'}` : `${reply.status} ${reply.code ?? '(no error code)'}${reply.status === 503 ? ' without Retry-After' : ''}`;
    const at = reply.sentAt + reply.ms;
    const sample: Unexpected = { atMs: Math.round(at - this.startedAt), api, request: `${call.method} ${new URL(call.url).pathname}`, answer };
    // Sent or answered within a window: a connection handed to a process as it was killed (or
    // frozen) is lost with it, and its request only times out later.
    const excused = this.windows.some((w) => w.apis.has(api) && ((at >= w.from && at <= w.to) || (reply.sentAt >= w.from && reply.sentAt <= w.to)));
    bump(excused ? this.nearKill : this.unexpected, `${api}: ${answer}`);
    const list = excused ? this.nearKillSamples : this.samples;
    if (list.length < 30) list.push(sample);
  }

  total(map: Map<string, number>): number {
    return [...map.values()].reduce((a, b) => a + b, 0);
  }
}

function allowedLabel(reply: Reply): string | undefined {
  if (reply.status >= 200 && reply.status < 300) return String(reply.status);
  if (reply.status >= 400 && reply.status < 500 && reply.code) return `${reply.status} ${reply.code}`;
  if (reply.status === 503 && reply.retryAfter !== undefined) return `503 ${reply.code ?? ''} (Retry-After)`.replace('  ', ' ');
  if (reply.status === 504 && reply.code === 'outcome_unknown') return '504 outcome_unknown';
  return undefined;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
