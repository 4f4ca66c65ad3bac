/** One reading of a rebuild's checkpoint. */
export interface ProgressSample {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly position: number;
}

/** How far a rebuild is and when it should be done (see docs/architecture.md, "Projections"). */
export interface RebuildProgress {
  /** Commits the rebuild applied per second over the measuring window; null until it has moved. */
  readonly ratePerS: number | null;
  /** Milliseconds until it reaches `target` at that rate; null while the rate is unknown. */
  readonly etaMs: number | null;
}

/** How much history the rate is measured over: long enough to smooth batches, short enough to follow a changing pace. */
export const PROGRESS_WINDOW_MS = 10_000;

/**
 * Keeps the samples of the last `PROGRESS_WINDOW_MS` (and at least the newest one before
 * it, so a window always has a start) after adding `sample`.
 */
export function addSample(samples: readonly ProgressSample[], sample: ProgressSample): ProgressSample[] {
  const all = [...samples, sample];
  const firstInWindow = all.findIndex((s) => sample.at - s.at <= PROGRESS_WINDOW_MS);
  return all.slice(Math.max(0, firstInWindow - 1));
}

/**
 * The rate between the oldest sample and `now`/`position`, and the time left to `target`
 * at that rate. A rebuild chases a moving target (commands go on meanwhile), so the ETA
 * is an estimate that shrinks as it closes in.
 */
export function measureProgress(samples: readonly ProgressSample[], now: number, position: number, target: number): RebuildProgress {
  const first = samples[0];
  if (!first || now <= first.at || position <= first.position) return { ratePerS: null, etaMs: null };
  const ratePerS = ((position - first.position) * 1000) / (now - first.at);
  return { ratePerS: Math.round(ratePerS * 10) / 10, etaMs: Math.round((Math.max(0, target - position) / ratePerS) * 1000) };
}
