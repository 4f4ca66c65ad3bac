import * as hdr from 'hdr-histogram-js';
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

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Latencies in an HDR histogram: constant memory however long the run, recorded in µs
 * with `digits` significant digits (3: within 0.1%), reported in ms.
 */
export function latencies(digits: 1 | 2 | 3 | 4 | 5 = 3) {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: digits, useWebAssembly: false });
  return {
    record(ms: number): void {
      h.recordValue(Math.min(3_600_000_000, Math.max(1, Math.round(ms * 1000))));
    },
    get count(): number {
      return h.totalCount;
    },
    percentiles(): Percentiles {
      if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 };
      const at = (p: number) => round(h.getValueAtPercentile(p) / 1000);
      return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), max: round(h.maxValue / 1000) };
    },
  };
}

/** An HDR histogram of latencies. */
export type Latencies = ReturnType<typeof latencies>;

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
  const all = latencies();
  const byKind = new Map<string, Latencies>();
  const statuses = new Map<string, number>();
  const buckets: Array<{ latencies: Latencies; errors: number }> = [];
  const lags = latencies();
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
      while (buckets.length <= second) buckets.push({ latencies: latencies(2), errors: 0 });
      const bucket = buckets[second]!;
      const key = statusKey(answer);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (answer.status === 0 || answer.status >= 500) bucket.errors++;
      bucket.latencies.record(answer.ms);
      all.record(answer.ms);
      let list = byKind.get(kind);
      if (!list) byKind.set(kind, (list = latencies()));
      list.record(answer.ms);
    },

    /** A lag probe: ms from a command's reply until a read showed its change; `fresh` false if it did not. */
    lag(ms: number, fresh: boolean): void {
      if (!inWindow(performance.now() - ms)) return;
      lags.record(ms);
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
        requests: all.count,
        throughput: round(all.count / durationS),
        okThroughput: round(ok / durationS),
        latency: all.percentiles(),
        byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, { ...v.percentiles(), perSec: round(v.count / durationS) }])),
        statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a.localeCompare(b))),
        errors: [...statuses].filter(([k]) => k.startsWith('0 ') || k.startsWith('5')).reduce((s, [, n]) => s + n, 0),
        lag: { ...lags.percentiles(), stale },
        seconds: buckets.slice(0, Math.ceil(durationS)).map((b, t) => second(t, b)),
      };
    },
  };
}

function second(t: number, b: { latencies: Latencies; errors: number }): Second {
  const p = b.latencies.percentiles();
  return { t, requests: p.count, p50: p.p50, p99: p.p99, errors: b.errors };
}

/** What one run recorded. */
export type Recorder = ReturnType<typeof recorder>;
/** A run's figures, as printed and written to JSON. */
export type Summary = ReturnType<Recorder['summary']>;
