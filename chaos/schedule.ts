/** The faults the chaos run can inject. */
export const faultNames = ['worker', 'projector', 'primary', 'nats', 'nats-pause', 'freeze', 'fresh-store', 'archiver'] as const;
export type FaultName = (typeof faultNames)[number];

/** One planned fault: when it starts (seconds into the run), what it is, and its parameters. */
export interface PlannedFault {
  readonly atS: number;
  readonly fault: FaultName;
  /** The worker index it targets (`worker`, `freeze`). */
  readonly workerIndex?: number;
  /** How long the fault lasts before the harness ends it (pauses, the nats restart delay). */
  readonly holdMs: number;
  /**
   * `archiver`: what is killed once the archiver is seen mid-round (an archive record just
   * appended): the projector, which holds its lease, or nats-server; and how long after the
   * record, so that some kills land before the copied commits are removed and some during.
   */
  readonly archiver?: { readonly kill: 'projector' | 'nats'; readonly afterRecordMs: number };
}

/** mulberry32: a small seeded PRNG, so one seed always draws one schedule. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seconds of steady load before the first fault, and kept free of faults at the end of the run. */
export const WARMUP_S = 4;
export const SETTLE_S = 8;
/** The shortest recovery gap after a fault ends, kept even when a slow restart makes the plan late. */
export const MIN_GAP_S = 8;

/**
 * Draws the fault schedule for a run: faults one at a time, each followed by a recovery gap
 * long enough for the promised recovery (commands within 5 s, lag within 10 s) to be seen,
 * none starting so late that it cannot end before the last `SETTLE_S` seconds.
 */
export function drawSchedule(seed: number, durationS: number, faults: readonly FaultName[], workers: number): PlannedFault[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
  const plan: PlannedFault[] = [];
  let at = WARMUP_S;
  for (;;) {
    const fault = pick(faults);
    const archiver = fault === 'archiver' ? { kill: random() < 2 / 3 ? ('projector' as const) : ('nats' as const), afterRecordMs: between(0, 40) } : undefined;
    const holdMs = fault === 'nats' || archiver?.kill === 'nats' ? 3000 : fault === 'nats-pause' || fault === 'freeze' ? between(3000, 6000) : 0;
    const gapS = between(MIN_GAP_S, MIN_GAP_S + 3);
    if (at + holdMs / 1000 > durationS - SETTLE_S) break;
    plan.push({ atS: at, fault, holdMs, ...(fault === 'worker' || fault === 'freeze' ? { workerIndex: between(0, workers - 1) } : {}), ...(archiver ? { archiver } : {}) });
    at += Math.ceil(holdMs / 1000) + gapS;
  }
  return plan;
}
