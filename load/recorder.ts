import { json, type Answer } from './client.js';

/** Latency percentiles in ms. */
export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** One second of the run, for the chart and the progress line. */
export interface Second {
  readonly t: number;
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** The percentiles of a list of ms figures (sorted in place). */
export function percentiles(values: number[]): Percentiles {
  values.sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p of the values at or below it.
  const at = (p: number) => round(values[Math.max(0, Math.ceil(values.length * p) - 1)] ?? 0);
  return { count: values.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(values[values.length - 1] ?? 0) };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Where a status is counted: `200`, `422 rejected/shop_closed`, `0 no reply`. A non-2xx
 * reply's code (and reason) is read from its body, so errors say what they were.
 */
function statusKey(answer: Answer): string {
  if (answer.status === 0) return '0 no reply (socket error or timeout)';
  if (answer.status < 300) return String(answer.status);
  const body = json(answer.body);
  // Converge answers `{ error }`; the baselines' bodies may name it `code`.
  const named = body.error ?? body.code;
  const code = typeof named === 'string' ? named : '';
  const reason = typeof body.reason === 'string' ? `/${body.reason}` : '';
  return `${answer.status} ${code}${reason}`.trim();
}

/**
 * Collects every answer of a run: latencies by kind, counts by status, one bucket per
 * second, and the projection lag probes. A request counts when it was *sent* inside the
 * measured window, however late its answer came, so the figures divide by the window.
 */
export function recorder() {
  let startedAt = Infinity;
  let endAt = Infinity;
  const inWindow = (sentAt: number) => sentAt >= startedAt && sentAt < endAt;
  const all: number[] = [];
  const byKind = new Map<string, number[]>();
  const statuses = new Map<string, number>();
  const buckets: Array<{ latencies: number[]; errors: number }> = [];
  const lags: number[] = [];
  let stale = 0;

  return {
    /** Opens the measured window of `durationS` from now; seeding and warm-up before it are not counted. */
    start(durationS: number): void {
      startedAt = performance.now();
      endAt = startedAt + durationS * 1000;
    },

    record(kind: string, answer: Answer): void {
      const sentAt = performance.now() - answer.ms;
      if (!inWindow(sentAt)) return;
      const second = Math.floor((sentAt - startedAt) / 1000);
      while (buckets.length <= second) buckets.push({ latencies: [], errors: 0 });
      const bucket = buckets[second]!;
      const key = statusKey(answer);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (answer.status === 0 || answer.status >= 500) bucket.errors++;
      bucket.latencies.push(answer.ms);
      all.push(answer.ms);
      let list = byKind.get(kind);
      if (!list) byKind.set(kind, (list = []));
      list.push(answer.ms);
    },

    /** A lag probe: ms from a command's reply until a read showed its change; `fresh` false if it did not. */
    lag(ms: number, fresh: boolean): void {
      if (!inWindow(performance.now() - ms)) return;
      lags.push(ms);
      if (!fresh) stale++;
    },

    /** How many whole seconds of the window have passed. */
    completeSeconds(): number {
      return Math.max(0, Math.floor((performance.now() - startedAt) / 1000));
    },

    /** Second `t` of the window, for the progress line; undefined when nothing was recorded in it. */
    secondAt(t: number): Second | undefined {
      const b = buckets[t];
      return b ? second(t, b) : undefined;
    },

    summary(durationS: number) {
      const ok = [...statuses].filter(([k]) => /^2\d\d$/.test(k)).reduce((s, [, n]) => s + n, 0);
      return {
        durationS: round(durationS),
        requests: all.length,
        throughput: round(all.length / durationS),
        okThroughput: round(ok / durationS),
        latency: percentiles([...all]),
        byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, { ...percentiles([...v]), perSec: round(v.length / durationS) }])),
        statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a.localeCompare(b))),
        errors: [...statuses].filter(([k]) => k.startsWith('0 ') || k.startsWith('5')).reduce((s, [, n]) => s + n, 0),
        lag: { ...percentiles([...lags]), stale },
        seconds: buckets.slice(0, Math.ceil(durationS)).map((b, t) => second(t, b)),
      };
    },
  };
}

function second(t: number, b: { latencies: number[]; errors: number }): Second {
  const p = percentiles([...b.latencies]);
  return { t, requests: p.count, p50: p.p50, p99: p.p99, errors: b.errors };
}

/** What one run recorded. */
export type Recorder = ReturnType<typeof recorder>;
/** A run's figures, as printed and written to JSON. */
export type Summary = ReturnType<Recorder['summary']>;
